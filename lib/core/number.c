/*
 * number.c: the one reader of decimal numbers, and the parsers built on
 * it: SIZE (with K, M, G, T), -k and -w values, revision ids.  Every
 * value is checked for overflow digit by digit; nothing is accepted but
 * what the man pages describe (no sign where none is allowed, no space,
 * no base prefix).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core.h"

/* Reads the decimal digits at *text, at least one, into *value: EINVAL
 * without a digit, ERANGE above max.  *text moves past the digits. */
static int digits_read(const char **text, uint64_t max, uint64_t *value)
{
	const char *p = *text;

	*value = 0;
	if (!isdigit((unsigned char)*p)) {
		errno = EINVAL;
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		unsigned digit = (unsigned)(*p - '0');

		if (*value > (max - digit) / 10) {
			errno = ERANGE;
			return -1;
		}
		*value = *value * 10 + digit;
	}
	*text = p;
	return 0;
}

int number_parse(const char *text, uint64_t max, uint64_t *value)
{
	if (digits_read(&text, max, value) != 0)
		return -1;
	if (*text != '\0') {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int size_parse(const char *text, off_t *size)
{
	const char *units = "KMGT";
	uint64_t value, limit = INT64_MAX;
	int shift = 0;

	if (digits_read(&text, limit, &value) != 0)
		return -1;
	if (*text != '\0') {
		const char *unit = strchr(units, toupper((unsigned char)*text));

		if (unit == NULL) {
			errno = EINVAL;
			return -1;
		}
		shift = 10 * (int)(unit - units + 1);
		text++;
		if (strcasecmp(text, "iB") == 0)
			text += 2;
		if (*text != '\0') {
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

/* An integer from min to max, with an optional leading "-". */
static int integer_parse(const char *text, long min, long max, long *out)
{
	int negative = *text == '-';
	uint64_t value;

	if (number_parse(text + negative, LONG_MAX, &value) != 0)
		return -1;
	*out = negative ? -(long)value : (long)value;
	if (*out < min || *out > max) {
		errno = ERANGE;
		return -1;
	}
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
