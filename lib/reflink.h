/*
 * reflink.h: the helper library shared by the file-reflink tools.
 *
 * Library functions never exit and never print diagnostics: they return -1
 * (or a small status) with errno set, and the tool chooses the message and
 * the exit status.  The exceptions are the logging functions, whose job is
 * to print, and option_common(), which implements --help and --version for
 * every tool.
 */
#ifndef REFLINK_H
#define REFLINK_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sysexits.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define FILE_REFLINK_VERSION "0.1.0"

/* Exit statuses beyond sysexits.h (DESIGN.md section 5). */
#define EXIT_NOT_IN_STATE 1 /* vol-info -t: no; pool-check: findings */

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

/* ---- tool.c: option handling, exit statuses, parsing ---- */

/*
 * Handles an option every tool shares: -h/--help (usage on stdout, exit 0),
 * -V/--version (exit 0), -q, -v, and unknown options ('?' or ':': usage on
 * stderr, exit 64).  usage() prints the tool's usage to the given stream.
 * Returns only for -q and -v.
 */
void option_common(int ch, void (*usage)(FILE *));
/* The long options every tool shares; append to a tool's own table. */
/* clang-format off */
#define LONG_OPTIONS_COMMON \
	{"help", no_argument, NULL, 'h'}, \
	{"quiet", no_argument, NULL, 'q'}, \
	{"version", no_argument, NULL, 'V'}, \
	{"verbose", no_argument, NULL, 'v'}
/* clang-format on */
#define SHORT_OPTIONS_COMMON "hqVv"

/* The exit status (DESIGN.md section 5) for a failed system call. */
int exit_status_for_errno(int err);
/* Flushes and closes stdout; returns -1 if anything written was lost. */
int stdout_close(void);

/*
 * Parses SIZE: decimal bytes, or a number followed by K, M, G or T (also
 * KiB, MiB, GiB, TiB; powers of 1024).  Returns -1 with errno EINVAL for
 * malformed input and ERANGE when the value does not fit an off_t.
 */
int size_parse(const char *text, off_t *size);
/* Parses a -k value: an integer from -1 to INT_MAX.  -1 with EINVAL if not. */
int keep_parse(const char *text, int *keep);
/* Parses a -w value: whole seconds from 0 to 86400 * 365. */
int seconds_parse(const char *text, int *seconds);

/* ---- durable.c: changes to directories that survive a power cut ---- */

/* An open directory and the path it was opened by, for log messages. */
struct dir {
	int fd;
	char path[PATH_MAX];
};

/* Opens path as a directory (O_DIRECTORY, following symlinks). */
int dir_open(struct dir *dir, const char *path);
/* Opens name below parent as a directory without following a symlink. */
int dir_openat(struct dir *dir, const struct dir *parent, const char *name);
void dir_close(struct dir *dir);
/* Writes "<dir>/<name>" into buf (for messages); returns buf. */
const char *dir_join(const struct dir *dir, const char *name, char *buf,
                     size_t len);
/* Fsyncs the directory itself, so that entry changes reach the disk. */
int dir_sync(const struct dir *dir);

/* unlinkat + fsync of the directory.  ENOENT is returned as an error. */
int durable_unlink(const struct dir *dir, const char *name);
/* linkat (no symlink following) + fsync of the directory. */
int durable_link(const struct dir *dir, const char *from, const char *to);
/* renameat (flags as renameat2) + fsync of both directories. */
int durable_rename(const struct dir *from_dir, const char *from,
                   const struct dir *to_dir, const char *to, unsigned flags);
/* mkdirat + fsync of the parent.  Returns 1 if made, 0 if it was a dir. */
int durable_mkdir(const struct dir *dir, const char *name, mode_t mode);
/* rmdir + fsync of the parent. */
int durable_rmdir(const struct dir *dir, const char *name);

/* A file being written under a temp name next to its final name. */
struct temp_file {
	const struct dir *dir;
	int fd;
	char name[PATH_MAX];  /* "<final>~XXXXXX" */
	char final[PATH_MAX]; /* the name it will get */
};

/* Creates "<final>~XXXXXX" in dir: O_EXCL, no symlink followed, mode 0600. */
int temp_create(struct temp_file *temp, const struct dir *dir,
                const char *final);
/*
 * Fsyncs the temp file, closes it, renames it to its final name (with
 * rename_flags, e.g. RENAME_NOREPLACE) and fsyncs the directory.  On
 * failure the temp file is removed.
 */
int temp_commit(struct temp_file *temp, unsigned rename_flags);
/* Closes and removes the temp file, keeping errno. */
void temp_abort(struct temp_file *temp);
/* True if name is final + "~" + anything: a temp file of final. */
int temp_name_of(const char *name, const char *final);

/* ---- copy.c: clones and sparse copies ---- */

enum reflink_mode { REFLINK_AUTO, REFLINK_ALWAYS, REFLINK_NEVER };

/* True if err from FICLONE means "this filesystem cannot clone this". */
int clone_unsupported(int err);

/* What copy_data did, and where it failed. */
struct copy_result {
	int cloned;        /* 1 if FICLONE made the data, 0 if copied */
	int source_failed; /* on error: 1 if reading the source failed */
};

/*
 * Fills the empty file dst_fd with the first size bytes of src_fd (its
 * length extended with zeros past the source's end).  AUTO clones, falling
 * back to a sparse copy only when clone_unsupported(); ALWAYS fails with
 * EOPNOTSUPP instead of copying; NEVER copies.  size 0 touches nothing.
 */
int copy_data(int dst_fd, int src_fd, off_t size, enum reflink_mode mode,
              struct copy_result *result);
/*
 * Sparse copy: copies the data of src (found with SEEK_DATA/SEEK_HOLE) into
 * the empty file dst, leaving holes for holes and all-zero blocks, then sets
 * dst's length to size.
 */
int copy_sparse(int dst_fd, int src_fd, off_t size, struct copy_result *result);
/* ---- progress.c: one stderr line for long copies ---- */

/* PROGRESS_AUTO shows it when stderr is a terminal and the copy is large. */
enum progress_mode { PROGRESS_AUTO, PROGRESS_ALWAYS, PROGRESS_NEVER };
void progress_set_mode(enum progress_mode mode);
void progress_start(uint64_t total);
void progress_update(uint64_t done_now);
void progress_finish(void);

#endif
