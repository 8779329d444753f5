/*
 * log.c: one small logging API for every tool.  File operations go to
 * syslog at LOG_INFO so that "journalctl -t TOOL" shows what a tool did;
 * -v echoes them on stderr.  Warnings and errors go to stderr as
 * "tool: message", and to syslog as well, always on one line: control
 * characters and bytes that are not UTF-8 are escaped as in C.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "frame.h"

const char *program_name = "file-reflink";
static enum log_verbosity verbosity = VERBOSITY_NORMAL;

void log_init(const char *name)
{
	const char *slash = strrchr(name, '/');

	program_name = slash ? slash + 1 : name;
	/* LOG_NDELAY is not used: a tool that logs nothing opens no socket. */
	openlog(program_name, LOG_PID, LOG_USER);
}

void log_set_verbosity(enum log_verbosity level)
{
	verbosity = level;
}

static void log_emit(int priority, int to_stderr, int err, const char *fmt,
                     va_list ap) __attribute__((format(printf, 4, 0)));

static void log_emit(int priority, int to_stderr, int err, const char *fmt,
                     va_list ap)
{
	char formatted[2 * PATH_MAX + 256], message[4 * sizeof(formatted)];
	int saved = errno;

	vsnprintf(formatted, sizeof(formatted), fmt, ap);
	/*
	 * The formats hold no control character, but the file names in
	 * them may: a name with a newline would otherwise write a second
	 * line of its own making to stderr and syslog.  Escaped as a whole,
	 * every message is one line, whatever it names.
	 */
	text_escape(formatted, message, sizeof(message));
	if (err)
		syslog(priority, "%s: %s", message, strerror(err));
	else
		syslog(priority, "%s", message);
	if (to_stderr) {
		if (err)
			fprintf(stderr, "%s: %s: %s\n", program_name, message,
			        strerror(err));
		else
			fprintf(stderr, "%s: %s\n", program_name, message);
	}
	errno = saved;
}

void log_op(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, verbosity == VERBOSITY_VERBOSE, 0, fmt, ap);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, verbosity != VERBOSITY_QUIET, 0, fmt, ap);
	va_end(ap);
}

void log_errx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_ERR, 1, 0, fmt, ap);
	va_end(ap);
}

void log_errc(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_ERR, 1, err, fmt, ap);
	va_end(ap);
}
