/*
 * size.c: libFuzzer target for the number parsers of the tools' options:
 * size_parse() (SIZE of -s), keep_parse() (-k) and seconds_parse() (-w).
 *
 * Each answer is compared with a reference written here from the
 * documented grammar, with 128-bit arithmetic instead of overflow checks:
 *   SIZE    digits, optionally followed by K, M, G or T (powers of 1024),
 *           optionally followed by "iB"; any letter may be lower or
 *           upper case (1kib, 1KIB).
 *           The value must fit an off_t.
 *   -k N    an optional "-", then digits; from -1 to INT_MAX.
 *   -w S    the same; from 0 to 86400 * 365.
 * The input is copied into a buffer of exactly its length plus the NUL,
 * so AddressSanitizer reports any read past the end of the string.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "core.h"

typedef unsigned __int128 big;

/* Above every value the parsers accept: a saturated accumulator, small
 * enough that shifting it by 40 bits (T) still fits 128 bits. */
#define TOO_BIG ((big)1 << 80)

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads the digits at *text (at least one), saturating at TOO_BIG. */
static int reference_digits(const char **text, big *value)
{
	const char *p = *text;

	*value = 0;
	if (!is_digit(*p))
		return 0;
	for (; is_digit(*p); p++) {
		*value = *value * 10 + (unsigned)(*p - '0');
		if (*value > TOO_BIG)
			*value = TOO_BIG;
	}
	*text = p;
	return 1;
}

/* The power of 1024 a unit letter stands for; 0 if it is none. */
static int unit_power(char letter)
{
	switch (letter) {
	case 'K':
	case 'k':
		return 1;
	case 'M':
	case 'm':
		return 2;
	case 'G':
	case 'g':
		return 3;
	case 'T':
	case 't':
		return 4;
	default:
		return 0;
	}
}

/* 1: well-formed (*value set, possibly too large); 0: malformed. */
static int reference_size(const char *text, big *value)
{
	int power;

	if (!reference_digits(&text, value))
		return 0;
	if (*text == '\0')
		return 1;
	power = unit_power(*text);
	if (power == 0)
		return 0;
	*value <<= 10 * power;
	text++;
	if (strcasecmp(text, "iB") == 0)
		text += 2;
	return *text == '\0';
}

static void check_size(const char *text)
{
	off_t size = -7;
	big expected = 0;
	int rc, saved;
	int well_formed = reference_size(text, &expected);

	errno = 0;
	rc = size_parse(text, &size);
	saved = errno;
	if (!well_formed) {
		CHECK(rc == -1, "\"%s\": malformed but accepted as %lld", text,
		      (long long)size);
		/* The header promises EINVAL for malformed input; ERANGE is
		 * tolerated where the digits alone already overflow. */
		CHECK(saved == EINVAL || saved == ERANGE, "\"%s\": errno %d",
		      text, saved);
		return;
	}
	if (expected > (big)INT64_MAX) {
		CHECK(rc == -1 && saved == ERANGE,
		      "\"%s\": too large, but rc %d errno %d size %lld", text,
		      rc, saved, (long long)size);
		return;
	}
	CHECK(rc == 0, "\"%s\": rejected (errno %d)", text, saved);
	CHECK((big)size == expected, "\"%s\": %lld, expected %llu", text,
	      (long long)size, (unsigned long long)expected);
}

/*
 * Reference for -k and -w: an optional "-" and digits; 1 and the value if
 * in [min, max].  (So "-0" is a valid -w 0: harmless.)
 */
static int reference_integer(const char *text, long long min, long long max,
                             long long *out)
{
	int negative = 0;
	big value;

	if (*text == '-') {
		negative = 1;
		text++;
	}
	if (!reference_digits(&text, &value) || *text != '\0')
		return 0;
	if (value > (big)LLONG_MAX)
		return 0;
	*out = negative ? -(long long)value : (long long)value;
	return *out >= min && *out <= max;
}

static void check_keep(const char *text)
{
	long long expected = 0;
	int keep = -7, rc = keep_parse(text, &keep);
	int ok = reference_integer(text, -1, INT_MAX, &expected);

	CHECK((rc == 0) == ok, "-k \"%s\": rc %d, reference %d", text, rc, ok);
	if (ok)
		CHECK(keep == expected, "-k \"%s\": %d, expected %lld", text,
		      keep, expected);
}

static void check_seconds(const char *text)
{
	long long expected = 0;
	int seconds = -7, rc = seconds_parse(text, &seconds);
	int ok = reference_integer(text, 0, 86400LL * 365, &expected);

	CHECK((rc == 0) == ok, "-w \"%s\": rc %d, reference %d", text, rc, ok);
	if (ok)
		CHECK(seconds == expected, "-w \"%s\": %d, expected %lld", text,
		      seconds, expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_size(text);
	check_keep(text);
	check_seconds(text);
	free(text);
	return 0;
}
