/*
 * revision_name.c: libFuzzer target for the names of a volume's files.
 *
 * The input is a directory entry name; volume_name_kind() classifies it
 * for the fixed base "private".  Every answer is checked against a
 * reference classifier written here from DESIGN.md section 1 (its own
 * date arithmetic, no timegm), and every revision it accepts must survive
 * a round trip through revision_name_format().  The input also serves as
 * the text of revision_time_parse(), and its first eight bytes as a
 * time_t for revision_time_format().
 *
 * The name is copied into a buffer of exactly its length plus the NUL, so
 * AddressSanitizer reports any read past the end of the string.
 *
 * A name holds the years 0000 to 9999; revision_time_format() writes an
 * earlier or later time as the nearest one a name can hold.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "core.h"

#define BASE "private"

#define FOUR_DIGIT_YEARS_FIRST (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define FOUR_DIGIT_YEARS_LAST 253402300799LL    /* 9999-12-31T23:59:59Z */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Days from 1970-01-01 to the given proleptic Gregorian date. */
static int64_t days_from_civil(int64_t year, int64_t month, int64_t day)
{
	int64_t era, year_of_era, day_of_year, day_of_era;

	year -= month <= 2;
	era = (year >= 0 ? year : year - 399) / 400;
	year_of_era = year - era * 400;
	day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 +
	             day_of_year;
	return era * 146097 + day_of_era - 719468;
}

static int number(const char *text, int count)
{
	int value = 0, i;

	for (i = 0; i < count; i++)
		value = value * 10 + (text[i] - '0');
	return value;
}

/* Reference for "YYYY-MM-DDTHH:MM:SSZ": 1 and the time if valid. */
static int reference_time(const char *text, time_t *when)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ";
	static const int month_days[] = {31, 28, 31, 30, 31, 30,
	                                 31, 31, 30, 31, 30, 31};
	int year, month, day, hour, minute, second, leap, i;

	if (strlen(text) != sizeof(pattern) - 1)
		return 0;
	for (i = 0; pattern[i] != '\0'; i++)
		if (pattern[i] == 'd' ? !is_digit(text[i])
		                      : text[i] != pattern[i])
			return 0;
	year = number(text, 4);
	month = number(text + 5, 2);
	day = number(text + 8, 2);
	hour = number(text + 11, 2);
	minute = number(text + 14, 2);
	second = number(text + 17, 2);
	leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (month < 1 || month > 12 || day < 1 ||
	    day > month_days[month - 1] + (month == 2 && leap) || hour > 23 ||
	    minute > 59 || second > 59)
		return 0;
	*when = (time_t)(days_from_civil(year, month, day) * 86400 +
	                 hour * 3600 + minute * 60 + second);
	return 1;
}

/*
 * Reference for what follows "B.img": ".N@TIME" (numbered; N decimal and
 * below 2^64) or "@TIME" (legacy).  Returns 1 and fills id, legacy, when.
 */
static int reference_suffix(const char *text, uint64_t *id, int *legacy,
                            time_t *when)
{
	const char *at;
	uint64_t value = 0;

	*legacy = text[0] == '@';
	if (*legacy) {
		*id = 0;
		return reference_time(text + 1, when);
	}
	if (text[0] != '.' || !is_digit(text[1]))
		return 0;
	for (at = text + 1; is_digit(*at); at++) {
		if (value > UINT64_MAX / 10 ||
		    value * 10 > UINT64_MAX - (uint64_t)(*at - '0'))
			return 0;
		value = value * 10 + (uint64_t)(*at - '0');
	}
	if (*at != '@')
		return 0;
	*id = value;
	return reference_time(at + 1, when);
}

static const char *const fixed_suffix[] = {".img", "-dirty.img",
                                           "-precache.img", "-import.img"};
static const enum name_kind fixed_kind[] = {NAME_CLEAN, NAME_DIRTY,
                                            NAME_PRECACHE, NAME_IMPORT};

/* Reference classifier, written from DESIGN.md section 1. */
static enum name_kind reference_kind(const char *name)
{
	const char *rest, *tilde;
	uint64_t id;
	time_t when;
	size_t i;
	int legacy;

	if (strncmp(name, BASE, strlen(BASE)) != 0)
		return NAME_OTHER;
	rest = name + strlen(BASE);
	tilde = strchr(rest, '~');
	for (i = 0; i < 4; i++) {
		size_t length = strlen(fixed_suffix[i]);

		if (strcmp(rest, fixed_suffix[i]) == 0)
			return fixed_kind[i];
		if (tilde == rest + length &&
		    strncmp(rest, fixed_suffix[i], length) == 0 &&
		    tilde[1] != '\0')
			return NAME_TEMP;
	}
	if (strncmp(rest, ".img.", 5) != 0 && strncmp(rest, ".img@", 5) != 0)
		return NAME_OTHER;
	if (tilde != NULL) {
		char prefix[NAME_MAX + 1];
		size_t length = (size_t)(tilde - rest) - 4;

		/* "B.img.N@TIME~X" is the temp file of a numbered revision;
		 * a legacy revision is never written, so it has none. */
		if (tilde[1] == '\0')
			return NAME_OTHER;
		memcpy(prefix, rest + 4, length);
		prefix[length] = '\0';
		/* ... and "B.img.N@TIME.pin~X" that of its pin marker. */
		if (length > 4 && strcmp(prefix + length - 4, ".pin") == 0)
			prefix[length - 4] = '\0';
		return reference_suffix(prefix, &id, &legacy, &when) && !legacy
		           ? NAME_TEMP
		           : NAME_OTHER;
	}
	if (strlen(name) > NAME_MAX)
		return NAME_OTHER;
	if (reference_suffix(rest + 4, &id, &legacy, &when))
		return legacy ? NAME_LEGACY : NAME_REVISION;
	/* "B.img.N@TIME.pin": the pin marker of a numbered revision. */
	if (strlen(rest) > 8 && strcmp(rest + strlen(rest) - 4, ".pin") == 0) {
		char revision_part[NAME_MAX + 1];
		size_t length = strlen(rest + 4) - 4;

		memcpy(revision_part, rest + 4, length);
		revision_part[length] = '\0';
		if (reference_suffix(revision_part, &id, &legacy, &when) &&
		    !legacy)
			return NAME_PIN;
	}
	if (strchr(rest, '@') == NULL)
		return NAME_OTHER;
	/* A revision of a volume whose name goes on past "B.img" (such as
	 * "B.img.old") is that volume's, not a malformed one of B. */
	for (i = 4; rest[i] != '\0'; i++)
		if (strncmp(rest + i, ".img", 4) == 0 &&
		    reference_suffix(rest + i + 4, &id, &legacy, &when))
			return NAME_OTHER;
	return NAME_MALFORMED;
}

/* The canonical name of a revision: the id without leading zeros. */
static void canonical_name(const char *name, char *buf, size_t len)
{
	const char *digits = name + strlen(BASE ".img.");

	while (*digits == '0' && is_digit(digits[1]))
		digits++;
	snprintf(buf, len, "%s%s", BASE ".img.", digits);
}

/* False when the round trips must skip this time (see the top). */
/* The times a revision name can hold: years 0000 to 9999. */
static int round_trip_checked(time_t when)
{
	return when >= FOUR_DIGIT_YEARS_FIRST && when <= FOUR_DIGIT_YEARS_LAST;
}

static void check_name(const char *name)
{
	struct revision revision, again;
	enum name_kind kind, expected;
	char formatted[NAME_MAX + 1], canonical[NAME_MAX + 1];

	memset(&revision, 0xa5, sizeof(revision));
	kind = volume_name_kind(BASE, name, &revision);
	/* No directory entry is longer than NAME_MAX: such a name must only
	 * not be taken for a revision (nor crash). */
	if (strlen(name) > NAME_MAX) {
		CHECK(kind == NAME_OTHER || kind == NAME_TEMP,
		      "a name of %zu bytes: kind %d", strlen(name), kind);
		return;
	}
	expected = reference_kind(name);
	CHECK(kind == expected, "\"%s\": kind %d, reference %d", name, kind,
	      expected);
	CHECK(volume_name_kind(BASE, name, NULL) == kind,
	      "\"%s\": the kind depends on the revision argument", name);
	if (kind != NAME_REVISION && kind != NAME_LEGACY)
		return;

	CHECK(strcmp(revision.name, name) == 0, "\"%s\": name \"%s\"", name,
	      revision.name);
	CHECK(revision.legacy == (kind == NAME_LEGACY), "\"%s\"", name);
	if (kind == NAME_LEGACY) {
		CHECK(revision.id == 0, "\"%s\": legacy id %llu", name,
		      (unsigned long long)revision.id);
		return;
	}
	if (!round_trip_checked(revision.time))
		return;
	/* A revision the tools list is one they could have made: its
	 * canonical name formats and parses back to the same id and time. */
	CHECK(revision_name_format(formatted, sizeof(formatted), BASE,
	                           revision.id, revision.time) == 0,
	      "\"%s\": revision_name_format failed: %s", name, strerror(errno));
	canonical_name(name, canonical, sizeof(canonical));
	CHECK(strcmp(formatted, canonical) == 0, "\"%s\": formatted as \"%s\"",
	      name, formatted);
	CHECK(volume_name_kind(BASE, formatted, &again) == NAME_REVISION &&
	          again.id == revision.id && again.time == revision.time,
	      "\"%s\": \"%s\" does not parse back", name, formatted);
}

static void check_time_text(const char *text)
{
	time_t parsed = 0, expected = 0;
	char formatted[64];
	int ok = revision_time_parse(text, &parsed) == 0;
	int reference_ok = reference_time(text, &expected);

	CHECK(ok == reference_ok, "\"%s\": parse %d, reference %d", text, ok,
	      reference_ok);
	if (!ok)
		return;
	CHECK(parsed == expected, "\"%s\": %lld, reference %lld", text,
	      (long long)parsed, (long long)expected);
	if (!round_trip_checked(parsed))
		return;
	CHECK(revision_time_format(parsed, formatted, sizeof(formatted)) == 0,
	      "\"%s\": format failed", text);
	CHECK(strcmp(formatted, text) == 0, "\"%s\": formatted as \"%s\"", text,
	      formatted);
}

/* Every time the tools can meet, an mtime, must format to a name that
 * parses back: to the same time if a name can hold it, else to the
 * nearest time one can (year 0000 or 9999), never to a non-revision. */
static void check_time_value(time_t when)
{
	char formatted[64];
	time_t parsed, expected = when;

	if (when < FOUR_DIGIT_YEARS_FIRST)
		expected = FOUR_DIGIT_YEARS_FIRST;
	else if (when > FOUR_DIGIT_YEARS_LAST)
		expected = FOUR_DIGIT_YEARS_LAST;
	CHECK(revision_time_format(when, formatted, sizeof(formatted)) == 0,
	      "%lld does not format", (long long)when);
	CHECK(revision_time_parse(formatted, &parsed) == 0 &&
	          parsed == expected,
	      "%lld formats as \"%s\", which does not parse back to %lld",
	      (long long)when, formatted, (long long)expected);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	int64_t when;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_name(text);
	check_time_text(text);
	if (size >= sizeof(when)) {
		memcpy(&when, data, sizeof(when));
		check_time_value((time_t)when);
	}
	free(text);
	return 0;
}
