/*
 * names.c: the naming rules of a pool: what a volume may be called, and
 * what each of its files is.  A revision is "B.img.N@YYYY-MM-DDTHH:MM:SSZ"
 * with N decimal; "B.img@...Z" is the legacy format of 2018; a
 * revision's name + ".pin" marks it pinned; "F~XXXXXX" is a temp file of
 * F.  Parsing is strict: a name that only looks like a
 * revision is classified as malformed, never guessed at.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core.h"

#define TIME_TEXT_LENGTH 20 /* "YYYY-MM-DDTHH:MM:SSZ" */

static int digits(const char *text, size_t count, int *value)
{
	size_t i;

	*value = 0;
	for (i = 0; i < count; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		*value = *value * 10 + (text[i] - '0');
	}
	return 0;
}

int revision_time_parse(const char *text, time_t *when)
{
	struct tm tm, check;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(text) != TIME_TEXT_LENGTH || text[4] != '-' ||
	    text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
	    text[16] != ':' || text[19] != 'Z' ||
	    digits(text, 4, &tm.tm_year) || digits(text + 5, 2, &tm.tm_mon) ||
	    digits(text + 8, 2, &tm.tm_mday) ||
	    digits(text + 11, 2, &tm.tm_hour) ||
	    digits(text + 14, 2, &tm.tm_min) ||
	    digits(text + 17, 2, &tm.tm_sec))
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	check = tm;
	t = timegm(&tm);
	/* timegm normalises 2018-02-30 to March 2: a changed field means
	 * the date did not exist. */
	if (tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon ||
	    tm.tm_mday != check.tm_mday || tm.tm_hour != check.tm_hour ||
	    tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
		return -1;
	*when = t;
	return 0;
}

int revision_time_format(time_t when, char *buf, size_t len)
{
	static const struct tm first = {.tm_year = -1900, .tm_mday = 1};
	static const struct tm last = {.tm_year = 9999 - 1900,
	                               .tm_mon = 11,
	                               .tm_mday = 31,
	                               .tm_hour = 23,
	                               .tm_min = 59,
	                               .tm_sec = 59};
	struct tm tm;

	/* A name has room for years 0000 to 9999 only: a time outside them
	 * is written as the nearest one, so that the name parses back. */
	if (gmtime_r(&when, &tm) == NULL)
		tm = when < 0 ? first : last;
	else if (tm.tm_year + 1900 < 0)
		tm = first;
	else if (tm.tm_year + 1900 > 9999)
		tm = last;
	if ((size_t)snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ",
	                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	                     tm.tm_hour, tm.tm_min, tm.tm_sec) >= len) {
		errno = EOVERFLOW;
		return -1;
	}
	return 0;
}

int revision_name_format(char *buf, size_t len, const char *base, uint64_t id,
                         time_t when)
{
	char when_text[64];

	if (revision_time_format(when, when_text, sizeof(when_text)) != 0)
		return -1;
	if ((size_t)snprintf(buf, len, "%s.img.%llu@%s", base,
	                     (unsigned long long)id, when_text) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Parses "N@time" (numbered) or "@time" (legacy) after "B.img". */
static int revision_suffix_parse(const char *text, struct revision *revision)
{
	uint64_t id = 0;

	revision->legacy = text[0] == '@';
	if (!revision->legacy) {
		if (text[0] != '.')
			return -1;
		text++;
		if (*text < '0' || *text > '9')
			return -1;
		for (; *text >= '0' && *text <= '9'; text++) {
			unsigned digit = (unsigned)(*text - '0');

			if (id > (UINT64_MAX - digit) / 10)
				return -1; /* beyond 64 bits */
			id = id * 10 + digit;
		}
		if (*text != '@')
			return -1;
	}
	revision->id = id;
	return revision_time_parse(text + 1, &revision->time);
}

/* Cuts PIN_SUFFIX off the end of text, if it is there. */
static void pin_suffix_strip(char *text)
{
	size_t length = strlen(text), suffix = strlen(PIN_SUFFIX);

	if (length > suffix && strcmp(text + length - suffix, PIN_SUFFIX) == 0)
		text[length - suffix] = '\0';
}

/* Parses "N@time.pin" after "B.img": the pin marker of a numbered
 * revision (a legacy revision cannot be pinned). */
static int pin_marker_parse(const char *text, struct revision *revision)
{
	char suffix[NAME_MAX + 1];
	size_t length = strlen(text);

	if (length >= sizeof(suffix))
		return -1;
	memcpy(suffix, text, length + 1);
	pin_suffix_strip(suffix);
	if (strlen(suffix) == length ||
	    revision_suffix_parse(suffix, revision) != 0 || revision->legacy)
		return -1;
	return 0;
}

int pin_name_format(char *buf, size_t len, const char *revision_name)
{
	if ((size_t)snprintf(buf, len, "%s%s", revision_name, PIN_SUFFIX) >=
	    len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* True if text has ".img.N@...Z" or ".img@...Z" at its end, after some
 * more of a name: a revision of a volume whose name contains ".img.". */
static int revision_of_longer_name(const char *text)
{
	struct revision scratch;
	const char *at;

	for (at = strstr(text, ".img"); at != NULL; at = strstr(at + 1, ".img"))
		if ((at[4] == '.' || at[4] == '@') &&
		    revision_suffix_parse(at + 4, &scratch) == 0)
			return 1;
	return 0;
}

enum name_kind volume_name_kind(const char *base, const char *name,
                                struct revision *revision)
{
	static const struct {
		const char *suffix;
		enum name_kind kind;
	} fixed[] = {{".img", NAME_CLEAN},
	             {"-dirty.img", NAME_DIRTY},
	             {"-precache.img", NAME_PRECACHE},
	             {"-import.img", NAME_IMPORT}};
	size_t base_length = strlen(base), i;
	struct revision scratch;
	const char *rest, *tilde;

	if (revision == NULL)
		revision = &scratch;
	if (strncmp(name, base, base_length) != 0)
		return NAME_OTHER;
	rest = name + base_length;
	tilde = strchr(rest, '~');
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		size_t length = strlen(fixed[i].suffix);

		if (strncmp(rest, fixed[i].suffix, length) != 0)
			continue;
		if (rest[length] == '\0')
			return fixed[i].kind;
		if (rest[length] == '~' && rest[length + 1] != '\0')
			return NAME_TEMP;
	}
	if (strncmp(rest, ".img", 4) != 0 || (rest[4] != '.' && rest[4] != '@'))
		return NAME_OTHER;
	if (tilde != NULL) {
		/* A temp file of a revision: "B.img.N@...Z~XXXXXX". */
		char prefix[NAME_MAX + 1];
		size_t length = (size_t)(tilde - rest);

		if (length >= sizeof(prefix) || tilde[1] == '\0')
			return NAME_OTHER;
		memcpy(prefix, rest + 4, length - 4);
		prefix[length - 4] = '\0';
		/* ... or of a pin marker: "B.img.N@...Z.pin~XXXXXX". */
		pin_suffix_strip(prefix);
		if (revision_suffix_parse(prefix, revision) == 0 &&
		    !revision->legacy)
			return NAME_TEMP;
		return NAME_OTHER;
	}
	if (strlen(name) > NAME_MAX)
		return NAME_OTHER;
	strcpy(revision->name, name);
	if (revision_suffix_parse(rest + 4, revision) == 0)
		return revision->legacy ? NAME_LEGACY : NAME_REVISION;
	if (pin_marker_parse(rest + 4, revision) == 0)
		return NAME_PIN;
	/* Only what resembles a revision is called malformed; a backup
	 * such as "B.img.bak" is someone else's file, and so is a revision
	 * of a volume whose name goes on past "B.img" ("B.img.old"). */
	if (strchr(rest, '@') != NULL && !revision_of_longer_name(rest + 4))
		return NAME_MALFORMED;
	return NAME_OTHER;
}

enum name_kind volume_name_split(const char *name, char *base,
                                 struct revision *revision)
{
	static const char *const suffixes[] = {"-dirty.img", "-precache.img",
	                                       "-import.img", ".img"};
	char image[NAME_MAX + 1];
	const char *tilde = strrchr(name, '~'), *at;
	size_t length, i;

	/* A temp file is named after the file it will become. */
	length = tilde != NULL && tilde > name && tilde[1] != '\0'
	             ? (size_t)(tilde - name)
	             : strlen(name);
	if (length > NAME_MAX)
		return NAME_OTHER;
	memcpy(image, name, length);
	image[length] = '\0';
	*base = '\0';
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t suffix_length = strlen(suffixes[i]);

		if (length > suffix_length &&
		    strcmp(image + length - suffix_length, suffixes[i]) == 0) {
			memcpy(base, image, length - suffix_length);
			base[length - suffix_length] = '\0';
			break;
		}
	}
	if (*base != '\0')
		return volume_name_kind(base, name, revision);
	/* A revision: the base ends before one ".img." or ".img@"; a volume
	 * name may hold ".img." itself, so each is tried, first to last. */
	for (at = strstr(image, ".img"); at != NULL;
	     at = strstr(at + 1, ".img")) {
		enum name_kind kind;

		if (at == image || (at[4] != '.' && at[4] != '@'))
			continue;
		memcpy(base, image, (size_t)(at - image));
		base[at - image] = '\0';
		kind = volume_name_kind(base, name, revision);
		if (kind != NAME_OTHER)
			return kind;
	}
	*base = '\0';
	return NAME_OTHER;
}

int volume_name_invalid(const char *base, const char **reason)
{
	static const char *const taken[] = {"-dirty", "-precache", "-import"};
	size_t length = strlen(base), i;

	if (length == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		*reason = "not a volume name (a volume is a file's base "
		          "name, such as appvms/vm1/private)";
		return 1;
	}
	/* "B.img~..." is a temp file of volume B: a volume named so would
	 * have its files removed as B's leftovers. */
	if (strchr(base, '~') != NULL) {
		*reason = "not a volume name: a '~' in it would make its files "
		          "look like another volume's temp files";
		return 1;
	}
	/* "B.img.N@YYYY-MM-DDTHH:MM:SSZ" with a 20-digit N must still fit
	 * in a file name. */
	if (length > NAME_MAX - 46) {
		*reason = "volume name too long: its revision names would not "
		          "fit in a file name (at most 209 bytes)";
		return 1;
	}
	/* B-dirty.img is the dirty image of B: a volume named "B-dirty"
	 * would have B's dirty image as its clean image. */
	for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		size_t suffix = strlen(taken[i]);

		if (length > suffix &&
		    strcmp(base + length - suffix, taken[i]) == 0) {
			*reason = "not a volume name: it ends like the dirty, "
			          "precache or import image of another volume";
			return 1;
		}
	}
	return 0;
}

int temp_name_of(const char *name, const char *final)
{
	size_t len = strlen(final);

	return strncmp(name, final, len) == 0 && name[len] == '~' &&
	       strlen(name + len + 1) >= 1;
}

static const char temp_alphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

int temp_name_make(char *name, size_t size, const char *final)
{
	size_t len = strlen(final), i;
	unsigned char random[6];

	if (len + 8 > size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (getrandom(random, sizeof(random), 0) != sizeof(random))
		return -1;
	memcpy(name, final, len);
	name[len] = '~';
	for (i = 0; i < sizeof(random); i++)
		name[len + 1 + i] =
		    temp_alphabet[random[i] % (sizeof(temp_alphabet) - 1)];
	name[len + 7] = '\0';
	return 0;
}
