/*
 * options.c: what every tool's main() shares before it works: its name
 * and usage, registered once; the common options; the parsers of SIZE,
 * -k and -w values with their usage errors; the count of operands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static void (*tool_usage)(FILE *);

/* The core's changes go to the log, its copies to the progress line. */
static void changed_log(const char *what)
{
	log_op("%s", what);
}

static const struct core_listener listener = {
    .changed = changed_log,
    .copy_start = progress_start,
    .copy_advance = progress_update,
    .copy_end = progress_finish,
};

void tool_init(const char *argv0, void (*usage)(FILE *))
{
	log_init(argv0);
	tool_usage = usage;
	core_listen(&listener);
}

void usage_error(const char *fmt, ...)
{
	char message[2 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_errx("%s", message);
	tool_usage(stderr);
	exit(EX_USAGE);
}

void option_common(int ch)
{
	switch (ch) {
	case 'h':
		tool_usage(stdout);
		exit(stdout_close() == 0 ? 0 : EX_IOERR);
	case 'V':
		printf("%s (file-reflink) %s\n", program_name,
		       FILE_REFLINK_VERSION);
		exit(stdout_close() == 0 ? 0 : EX_IOERR);
	case 'q':
		log_set_verbosity(VERBOSITY_QUIET);
		return;
	case 'v':
		log_set_verbosity(VERBOSITY_VERBOSE);
		return;
	case 'P':
		/* Shown whenever a tool copies rather than clones. */
		progress_set_mode(PROGRESS_ALWAYS);
		return;
	case 'U':
		dir_trust_unsafe(1);
		return;
	default:
		/* getopt said what was wrong already. */
		tool_usage(stderr);
		exit(EX_USAGE);
	}
}

void option_keep(const char *arg, struct keep_policy *policy)
{
	if (keep_parse(arg, &policy->keep) != 0)
		usage_error("invalid -k value: %s (an integer from -1 up)",
		            arg);
	policy->given = 1;
}

void option_precache(const char *arg, struct keep_policy *policy)
{
	if (strcmp(arg, "now") == 0)
		policy->precache_later = 0;
	else if (strcmp(arg, "later") == 0)
		policy->precache_later = 1;
	else
		usage_error("invalid --precache value: %s (now or later)", arg);
}

int option_wait(const char *arg)
{
	int seconds;

	if (seconds_parse(arg, &seconds) != 0)
		usage_error("invalid -w value: %s (whole seconds)", arg);
	return seconds;
}

off_t option_size(const char *arg)
{
	off_t size;

	if (size_parse(arg, &size) != 0)
		usage_error("invalid size: %s", arg);
	return size;
}

uint64_t option_number(const char *arg, uint64_t max, const char *what)
{
	uint64_t value;

	if (number_parse(arg, max, &value) != 0)
		usage_error("invalid %s: %s", what, arg);
	return value;
}

const char *option_revision(const char *arg)
{
	if (strcmp(arg, "latest") != 0 &&
	    (*arg == '\0' || strspn(arg, "0123456789") != strlen(arg)))
		usage_error("invalid revision: %s (an id or latest)", arg);
	return arg;
}

void operands_expect(int argc, char *argv[], int min, int max)
{
	if (argc < min)
		usage_error("missing operand");
	if (max >= 0 && argc > max)
		usage_error("extra operand: %s", argv[max]);
}
