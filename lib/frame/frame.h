/*
 * frame.h: the frame every tool's main() stands in: the options all tools
 * share and their parsers, the usage registered once, messages on stderr
 * and syslog, the exit statuses of DESIGN.md section 5, the progress line
 * of long copies, and volume_open_locked.
 *
 * The frame prints and exits on the tools' behalf; the core (core.h)
 * below it never does.  A tool includes this header only.
 */
#ifndef FRAME_H
#define FRAME_H

#include <getopt.h>
#include <stdio.h>
#include <sysexits.h>

#include "core.h"

#define FILE_REFLINK_VERSION "0.1.0"

/* Exit statuses beyond sysexits.h (DESIGN.md section 5). */
#define EXIT_NOT_IN_STATE 1 /* vol-info -t: no; pool-check: findings */

/* ---- options.c: the tool's name, usage and options ---- */

/*
 * Starts a tool: its name for messages and syslog (from argv0), its
 * usage (printed to the stream given, for --help and for every usage
 * error), and the listener that logs what the core changes and draws
 * the progress line of long copies.
 */
void tool_init(const char *argv0, void (*usage)(FILE *));
/*
 * Handles an option every tool shares: -h/--help (usage on stdout, exit 0),
 * -V/--version (exit 0), -q, -v, --progress, --unsafe-dirs, and unknown
 * options ('?' or ':': usage on stderr, exit 64).  Returns only for -q,
 * -v, --progress and --unsafe-dirs.
 */
void option_common(int ch);
/* The long options every tool shares; append to a tool's own table. */
/* clang-format off */
#define LONG_OPTIONS_COMMON \
	{"help", no_argument, NULL, 'h'}, \
	{"progress", no_argument, NULL, 'P'}, \
	{"quiet", no_argument, NULL, 'q'}, \
	{"unsafe-dirs", no_argument, NULL, 'U'}, \
	{"version", no_argument, NULL, 'V'}, \
	{"verbose", no_argument, NULL, 'v'}
/* clang-format on */
#define SHORT_OPTIONS_COMMON "hqVv"
/* --precache=now|later, of the tools that change C (option_precache). */
#define OPTION_PRECACHE 0x100
/* clang-format off */
#define LONG_OPTION_PRECACHE \
	{"precache", required_argument, NULL, OPTION_PRECACHE}
/* clang-format on */

/* Prints "prog: message", the usage on stderr, and exits 64. */
void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* Option parsers: each parses arg, or is a usage_error ("invalid ..."). */
void option_keep(const char *arg, struct keep_policy *policy);
int option_wait(const char *arg);
/* --precache=now (make P at once, the default) or later (leave it to the
 * next start or vol-precache). */
void option_precache(const char *arg, struct keep_policy *policy);
off_t option_size(const char *arg);
/* A number of decimal digits up to max; what names it in the message
 * ("invalid WHAT: ARG"). */
uint64_t option_number(const char *arg, uint64_t max, const char *what);
/* -r REV: a revision id (decimal digits) or "latest"; returns arg. */
const char *option_revision(const char *arg);
/* Checks the operand count (max < 0: no limit); else a usage_error that
 * says which is missing or extra. */
void operands_expect(int argc, char *argv[], int min, int max);

/* ---- log.c: stderr and syslog ---- */

enum log_verbosity { VERBOSITY_QUIET, VERBOSITY_NORMAL, VERBOSITY_VERBOSE };

extern const char *program_name;

/* Sets the program name used on stderr and as the syslog ident. */
void log_init(const char *name);
void log_set_verbosity(enum log_verbosity verbosity);
/* Records a file operation: syslog LOG_INFO, and stderr with -v. */
void log_op(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warning: stderr unless -q, and syslog LOG_WARNING. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Error: always on stderr as "prog: message", and syslog LOG_ERR. */
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Error with strerror(err) appended as ": reason". */
void log_errc(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- status.c: exit statuses ---- */

/* The exit status (DESIGN.md section 5) for a failed system call. */
int exit_status_for_errno(int err);
/* Logs the error recorded by a failed volume function (errno = err) and
 * returns the exit status for it. */
int volume_report_error(const struct volume *volume, int err);
/* Flushes and closes stdout; returns -1 if anything written was lost. */
int stdout_close(void);

/* ---- open.c: opening the volumes a tool works on ---- */

/*
 * Opens VOLUME (see volume_open), takes the lock of its VM directory
 * (waiting wait_seconds; < 0: for ever) and re-reads its files.  On
 * failure logs why and returns the exit status; 0 on success.  A VM
 * directory made here (create_dir) is removed again, if still empty,
 * when the tool exits with a status other than 0.
 */
int volume_open_locked(struct volume *volume, const char *argument,
                       int create_dir, int wait_seconds);
/* Opens the source volume SRC of -S, which must have a clean image (else
 * 66); on failure logs why and returns the exit status; 0 on success. */
int source_open(struct volume *source, const char *argument);
/* Takes back, when the tool fails, the directory path it made: see
 * volume_open_locked. */
void made_dir_undo_on_failure(const char *path);

/* ---- progress.c: one stderr line for long copies ---- */

/* PROGRESS_AUTO shows it when stderr is a terminal and the copy is large. */
enum progress_mode { PROGRESS_AUTO, PROGRESS_ALWAYS, PROGRESS_NEVER };
void progress_set_mode(enum progress_mode mode);
/*
 * A copy of total bytes starts (0: not known, e.g. from a pipe).  The line
 * shows with PROGRESS_ALWAYS, or with PROGRESS_AUTO when stderr is a
 * terminal and the copy is larger than 64 MiB (known total) or once 64 MiB
 * have passed (unknown total).
 */
void progress_start(uint64_t total);
/* done_now more bytes are done; holes skipped count too. */
void progress_update(uint64_t done_now);
/* Draws the line a last time and ends it with a newline, if it showed. */
void progress_finish(void);

#endif
