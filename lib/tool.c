/*
 * tool.c: what every tool's main() shares: the common options, the mapping
 * from errno to the exit statuses of sysexits.h, and the parsers of SIZE,
 * -k and -w values.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reflink.h"

void option_common(int ch, void (*usage)(FILE *))
{
	switch (ch) {
	case 'h':
		usage(stdout);
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
		usage(stderr);
		exit(EX_USAGE);
	}
}

int exit_status_for_errno(int err)
{
	switch (err) {
	case ENOENT:
		return EX_NOINPUT;
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case EINVAL:
	case EFBIG:
	case ENXIO:
	case ENODEV:
	case ENAMETOOLONG:
	case EOVERFLOW:
		/* The path names something of the wrong kind. */
		return EX_DATAERR;
	case EEXIST:
	case ENOTEMPTY:
		return EX_CANTCREAT;
	case EACCES:
	case EPERM:
	case EROFS:
		return EX_NOPERM;
	case EWOULDBLOCK:
	case EBUSY:
	case ETXTBSY:
		return EX_TEMPFAIL;
	case EOPNOTSUPP:
		return EX_UNAVAILABLE;
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return EX_SOFTWARE;
	default:
		/* EIO, ENOSPC, EDQUOT and whatever else the disk may say. */
		return EX_IOERR;
	}
}

int stdout_close(void)
{
	/*
	 * A full disk or a closed pipe shows up only when the buffer is
	 * flushed; checking here turns that into an error, not silence.
	 */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fclose(stdout);
		return -1;
	}
	return fclose(stdout) == 0 ? 0 : -1;
}

int size_parse(const char *text, off_t *size)
{
	const char *p = text;
	const char *units = "KMGT";
	uint64_t value = 0, limit = INT64_MAX;
	int shift = 0;

	if (!isdigit((unsigned char)*p)) {
		errno = EINVAL;
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (value > (limit - digit) / 10) {
			errno = ERANGE;
			return -1;
		}
		value = value * 10 + digit;
	}
	if (*p != '\0') {
		const char *unit = strchr(units, toupper((unsigned char)*p));

		if (unit == NULL) {
			errno = EINVAL;
			return -1;
		}
		shift = 10 * (int)(unit - units + 1);
		p++;
		if (strcasecmp(p, "iB") == 0)
			p += 2;
		if (*p != '\0') {
			errno = EINVAL;
			return -1;
		}
	}
	if (shift && value > limit >> shift) {
		errno = ERANGE;
		return -1;
	}
	*size = (off_t)(value << shift);
	return 0;
}

static int integer_parse(const char *text, long min, long max, long *out)
{
	const char *p = text;
	long value = 0;
	int negative = 0;

	if (*p == '-') {
		negative = 1;
		p++;
	}
	if (!isdigit((unsigned char)*p)) {
		errno = EINVAL;
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		if (value > (LONG_MAX - (*p - '0')) / 10) {
			errno = ERANGE;
			return -1;
		}
		value = value * 10 + (*p - '0');
	}
	if (*p != '\0') {
		errno = EINVAL;
		return -1;
	}
	if (negative)
		value = -value;
	if (value < min || value > max) {
		errno = ERANGE;
		return -1;
	}
	*out = value;
	return 0;
}

int keep_parse(const char *text, int *keep)
{
	long value;

	if (integer_parse(text, -1, INT_MAX, &value) != 0)
		return -1;
	*keep = (int)value;
	return 0;
}

int seconds_parse(const char *text, int *seconds)
{
	long value;

	if (integer_parse(text, 0, 86400L * 365, &value) != 0)
		return -1;
	*seconds = (int)value;
	return 0;
}

void option_keep(const char *arg, struct keep_policy *policy,
                 void (*usage)(FILE *))
{
	if (keep_parse(arg, &policy->keep) != 0) {
		log_errx("invalid -k value: %s (an integer from -1 up)", arg);
		usage(stderr);
		exit(EX_USAGE);
	}
	policy->given = 1;
}

int option_wait(const char *arg, void (*usage)(FILE *))
{
	int seconds;

	if (seconds_parse(arg, &seconds) != 0) {
		log_errx("invalid -w value: %s (whole seconds)", arg);
		usage(stderr);
		exit(EX_USAGE);
	}
	return seconds;
}

off_t option_size(const char *arg, void (*usage)(FILE *))
{
	off_t size;

	if (size_parse(arg, &size) != 0) {
		log_errx("invalid size: %s", arg);
		usage(stderr);
		exit(EX_USAGE);
	}
	return size;
}

int volume_open_locked(struct volume *volume, const char *argument,
                       int create_dir, int wait_seconds)
{
	if (volume_open(volume, argument, create_dir) != 0 ||
	    volume_lock(volume, wait_seconds) != 0 || volume_stat(volume) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

int source_open(struct volume *source, const char *argument)
{
	char path[PATH_MAX];

	if (volume_open(source, argument, 0) != 0)
		return volume_report_error(source, errno);
	if (!source->clean.exists) {
		log_errx("%s: No such file or directory",
		         volume_path(source, source->clean.name, path));
		return EX_NOINPUT;
	}
	return 0;
}

void operands_expect(int argc, char *argv[], int min, int max,
                     void (*usage)(FILE *))
{
	if (argc < min)
		log_errx("missing operand");
	else if (max >= 0 && argc > max)
		log_errx("extra operand: %s", argv[max]);
	else
		return;
	usage(stderr);
	exit(EX_USAGE);
}

const char *human_size(double bytes, char *buf, size_t length)
{
	static const char *const units[] = {"B",   "KiB", "MiB",
	                                    "GiB", "TiB", "PiB"};
	int i = 0;

	while (bytes >= 1024 && i < 5) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, length, i ? "%.1f %s" : "%.0f %s", bytes, units[i]);
	return buf;
}
