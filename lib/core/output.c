/*
 * output.c: file names written so that a reader can trust what it reads.
 * A file name is any string of bytes but "/" and NUL: it may hold a
 * newline that would forge a line of a log, a TAB that would shift a
 * field, terminal escapes, or bytes that are not UTF-8, which a JSON
 * parser refuses.  Every name a tool writes goes through one of these
 * escapes, and each one can be undone to give the exact bytes back.
 */
#include <stdio.h>
#include <string.h>

#include "core.h"

/*
 * Where escaped text goes: a stream, or a buffer that keeps what fits.
 * A buffer that is full takes nothing more, so that an escape is never
 * cut in half.
 */
struct sink {
	FILE *stream;
	char *buf;
	size_t size, length;
	int full;
};

static void sink_put(struct sink *sink, const char *bytes, size_t count)
{
	if (sink->stream != NULL) {
		fwrite(bytes, 1, count, sink->stream);
		return;
	}
	if (sink->full || sink->length + count >= sink->size) {
		sink->full = 1;
		return;
	}
	memcpy(sink->buf + sink->length, bytes, count);
	sink->length += count;
	sink->buf[sink->length] = '\0';
}

/* Writes prefix and the byte in two lowercase hex digits: "\\x7f". */
static void sink_hex(struct sink *sink, const char *prefix, unsigned char byte)
{
	static const char digits[] = "0123456789abcdef";
	char hex[2] = {digits[byte >> 4], digits[byte & 15]};

	sink_put(sink, prefix, strlen(prefix));
	sink_put(sink, hex, 2);
}

/*
 * The length of the valid UTF-8 sequence at p (RFC 3629: no overlong
 * form, no surrogate, nothing above U+10FFFF), or 0 if the byte at p
 * does not begin one.  The NUL ending the string is no continuation
 * byte, so nothing past it is read.
 */
static size_t utf8_length(const unsigned char *p)
{
	unsigned char low = 0x80, high = 0xbf;
	size_t length, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		length = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		length = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		length = 4;
	else
		return 0;
	/* The second byte rules out what the first cannot alone. */
	if (p[0] == 0xe0)
		low = 0xa0; /* overlong */
	else if (p[0] == 0xed)
		high = 0x9f; /* a surrogate, U+D800 to U+DFFF */
	else if (p[0] == 0xf0)
		low = 0x90; /* overlong */
	else if (p[0] == 0xf4)
		high = 0x8f; /* above U+10FFFF */
	if (p[1] < low || p[1] > high)
		return 0;
	for (i = 2; i < length; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return length;
}

/* True for the C1 control characters, U+0080 to U+009F, in UTF-8:
 * some terminals obey them as they obey ESC. */
static int utf8_c1_control(const unsigned char *p, size_t length)
{
	return length == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

static void text_escape_sink(struct sink *sink, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t length, i;

	while (*p != '\0') {
		length = utf8_length(p);
		if (length == 0 || utf8_c1_control(p, length)) {
			/* Each byte on its own; a C1 control is both. */
			for (i = 0; i < (length ? length : 1); i++)
				sink_hex(sink, "\\x", p[i]);
			p += length ? length : 1;
		} else if (*p == '\\') {
			sink_put(sink, "\\\\", 2);
			p++;
		} else if (*p == '\t') {
			sink_put(sink, "\\t", 2);
			p++;
		} else if (*p == '\n') {
			sink_put(sink, "\\n", 2);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			sink_hex(sink, "\\x", *p);
			p++;
		} else {
			sink_put(sink, (const char *)p, length);
			p += length;
		}
	}
}

void text_escape_write(FILE *stream, const char *text)
{
	struct sink sink = {stream, NULL, 0, 0, 0};

	text_escape_sink(&sink, text);
}

const char *text_escape(const char *text, char *buf, size_t size)
{
	struct sink sink = {NULL, buf, size, 0, 0};

	if (size > 0)
		buf[0] = '\0';
	text_escape_sink(&sink, text);
	return buf;
}

void json_string_write(FILE *stream, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;
	struct sink sink = {stream, NULL, 0, 0, 0};
	size_t length;

	sink_put(&sink, "\"", 1);
	while (*p != '\0') {
		length = utf8_length(p);
		if (length == 0) {
			/* PEP 383: the lone surrogate U+DC80 + byte stands
			 * for a byte that is not UTF-8; Python turns it back
			 * with .encode("utf-8", "surrogateescape"). */
			sink_hex(&sink, "\\udc", *p);
			p++;
		} else if (utf8_c1_control(p, length)) {
			sink_hex(&sink, "\\u00", p[1]);
			p += length;
		} else if (*p == '"') {
			sink_put(&sink, "\\\"", 2);
			p++;
		} else if (*p == '\\') {
			sink_put(&sink, "\\\\", 2);
			p++;
		} else if (*p == '\n') {
			sink_put(&sink, "\\n", 2);
			p++;
		} else if (*p == '\t') {
			sink_put(&sink, "\\t", 2);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			sink_hex(&sink, "\\u00", *p);
			p++;
		} else {
			sink_put(&sink, (const char *)p, length);
			p += length;
		}
	}
	sink_put(&sink, "\"", 1);
}

/* The bytes that need no quoting in a word of sh(1). */
static int shell_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("_./%+:=@-", c) != NULL;
}

const char *shell_quote(const char *word, char *buf, size_t size)
{
	struct sink sink = {NULL, buf, size, 0, 0};
	const unsigned char *p;
	int quote = word[0] == '\0';

	if (size > 0)
		buf[0] = '\0';
	for (p = (const unsigned char *)word; *p != '\0' && !quote; p++)
		quote = !shell_safe(*p);
	if (quote)
		sink_put(&sink, "'", 1);
	/* A word that begins with "-" would be read as an option: "./"
	 * names the same relative path. */
	if (word[0] == '-')
		sink_put(&sink, "./", 2);
	for (p = (const unsigned char *)word; *p != '\0'; p++) {
		/* Nothing is special inside '...' but the quote itself,
		 * which ends it: close, an escaped quote, open again. */
		if (*p == '\'' && quote)
			sink_put(&sink, "'\\''", 4);
		else
			sink_put(&sink, (const char *)p, 1);
	}
	if (quote)
		sink_put(&sink, "'", 1);
	if (sink.full) {
		if (size > 0)
			buf[0] = '\0';
		return NULL;
	}
	return buf;
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

/*
 * Records: what the tools print for scripts, one writer for both forms.
 * TSV writes a record as one line of TAB-separated fields, PAIRS as one
 * "key<TAB>value" line per field, JSON as one object; every string goes
 * through the escapes above, so that no name can add a line or a field.
 */

void record_begin(struct record_writer *writer)
{
	writer->fields = 0;
	if (writer->format != RECORD_JSON)
		return;
	if (writer->records > 0 && writer->separator != NULL)
		fputs(writer->separator, writer->stream);
	if (writer->indent != NULL)
		fputs(writer->indent, writer->stream);
	fputc('{', writer->stream);
}

void record_end(struct record_writer *writer)
{
	if (writer->format == RECORD_JSON)
		fputc('}', writer->stream);
	else if (writer->format == RECORD_TSV)
		fputc('\n', writer->stream);
	writer->records++;
}

/* Writes what goes before a field's value: its key, or a TAB. */
static void field_start(struct record_writer *writer, const char *key)
{
	switch (writer->format) {
	case RECORD_JSON:
		fprintf(writer->stream,
		        "%s\"%s\": ", writer->fields ? ", " : "", key);
		break;
	case RECORD_PAIRS:
		fprintf(writer->stream, "%s\t", key);
		break;
	case RECORD_TSV:
		if (writer->fields)
			fputc('\t', writer->stream);
		break;
	}
	writer->fields++;
}

static void field_finish(struct record_writer *writer)
{
	if (writer->format == RECORD_PAIRS)
		fputc('\n', writer->stream);
}

void field_text(struct record_writer *writer, const char *key,
                const char *value)
{
	if (value == NULL) {
		field_null(writer, key);
		return;
	}
	field_start(writer, key);
	if (writer->format == RECORD_JSON)
		json_string_write(writer->stream, value);
	else
		text_escape_write(writer->stream, value);
	field_finish(writer);
}

void field_number(struct record_writer *writer, const char *key,
                  long long value)
{
	field_start(writer, key);
	fprintf(writer->stream, "%lld", value);
	field_finish(writer);
}

void field_unsigned(struct record_writer *writer, const char *key,
                    unsigned long long value)
{
	field_start(writer, key);
	fprintf(writer->stream, "%llu", value);
	field_finish(writer);
}

void field_bool(struct record_writer *writer, const char *key, int value)
{
	field_start(writer, key);
	if (writer->format == RECORD_JSON)
		fputs(value ? "true" : "false", writer->stream);
	else
		fputs(value ? "yes" : "no", writer->stream);
	field_finish(writer);
}

void field_null(struct record_writer *writer, const char *key)
{
	field_start(writer, key);
	fputs(writer->format == RECORD_JSON ? "null" : "-", writer->stream);
	field_finish(writer);
}

void field_list_begin(struct record_writer *writer, const char *key,
                      struct record_writer *items)
{
	field_start(writer, key);
	memset(items, 0, sizeof(*items));
	items->stream = writer->stream;
	items->format = writer->format;
	items->separator = ", ";
	if (writer->format == RECORD_JSON)
		fputc('[', writer->stream);
}

void field_list_end(struct record_writer *writer)
{
	if (writer->format == RECORD_JSON)
		fputc(']', writer->stream);
	field_finish(writer);
}
