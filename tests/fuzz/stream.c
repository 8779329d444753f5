/*
 * stream.c: libFuzzer target for the reader of rbd diff v1 streams
 * (lib/core/stream.c): diff_read_header(), diff_read_record(),
 * diff_read_data() and diff_read_trailing().
 *
 * The input is the stream, given to the reader on a file descriptor (a
 * memfd).  It is read as vol-receive reads it: the header, then records
 * until the end record or a refusal, all the bytes of each 'w' record
 * read in pieces, then the check that nothing follows the end.  Each step
 * is compared with a reference that walks the same bytes by the format's
 * rules, written here on their own, with 128-bit arithmetic instead of
 * overflow checks:
 *   - the header is exactly "rbd diff v1\n";
 *   - 'f' and 't' (le32 length, then the name) and 's' (le64 size) each
 *     appear at most once, and before any data record; a name is 1 to
 *     255 bytes without a NUL; the size is at most INT64_MAX;
 *   - 'w' (le64 offset, le64 length, the bytes) and 'z' (le64 offset,
 *     le64 length) need a size record before them, lie within the size,
 *     and each starts at or after the end of the one before;
 *   - 'e' ends the stream: a record after it is refused, and so is any
 *     byte after it;
 *   - any other tag is refused, and so is a stream that ends early.
 * A refusal must be -1 with errno EINVAL and a reason; every accepted
 * record must carry what the reference read, after exactly as many bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "core.h"

typedef unsigned __int128 big;

/* The size of the pieces a 'w' record's bytes are read in. */
#define PIECE 4096

/* The reference's walk through the input, and what it has seen. */
struct reference {
	const uint8_t *data;
	size_t size, pos;
	int has_from, has_to, has_size, data_seen;
	char from[256], to[256];
	uint64_t image_size;
	big next; /* where the last data record ended */
};

static uint64_t le_get(const uint8_t *p, int bytes)
{
	uint64_t value = 0;
	int i;

	for (i = 0; i < bytes; i++)
		value |= (uint64_t)p[i] << (8 * i);
	return value;
}

/* 1 and *p the next count bytes, consumed; 0 if fewer are left. */
static int take(struct reference *ref, size_t count, const uint8_t **p)
{
	if (ref->size - ref->pos < count)
		return 0;
	*p = ref->data + ref->pos;
	ref->pos += count;
	return 1;
}

static int reference_header(struct reference *ref)
{
	static const char header[] = "rbd diff v1\n";
	const uint8_t *p;

	return take(ref, 12, &p) && memcmp(p, header, 12) == 0;
}

static int reference_name(struct reference *ref, int *seen, char *name)
{
	const uint8_t *p;
	uint64_t length;

	if (ref->data_seen || *seen)
		return 0;
	*seen = 1;
	if (!take(ref, 4, &p))
		return 0;
	length = le_get(p, 4);
	if (length < 1 || length > 255)
		return 0;
	if (!take(ref, (size_t)length, &p))
		return 0;
	if (memchr(p, '\0', (size_t)length) != NULL)
		return 0;
	memcpy(name, p, (size_t)length);
	name[length] = '\0';
	return 1;
}

/* 1 and *rec the next record; 0 if the reader must refuse it. */
static int reference_record(struct reference *ref, struct diff_record *rec)
{
	const uint8_t *p;
	uint64_t offset, length;

	memset(rec, 0, sizeof(*rec));
	if (!take(ref, 1, &p))
		return 0;
	rec->tag = *p;
	switch (*p) {
	case 'f':
		return reference_name(ref, &ref->has_from, ref->from);
	case 't':
		return reference_name(ref, &ref->has_to, ref->to);
	case 's':
		if (ref->data_seen || ref->has_size || !take(ref, 8, &p))
			return 0;
		ref->image_size = le_get(p, 8);
		if (ref->image_size > (uint64_t)INT64_MAX)
			return 0;
		ref->has_size = 1;
		return 1;
	case 'w':
	case 'z':
		if (!ref->has_size || !take(ref, 16, &p))
			return 0;
		offset = le_get(p, 8);
		length = le_get(p + 8, 8);
		if ((big)offset + length > ref->image_size)
			return 0;
		if (ref->data_seen && offset < ref->next)
			return 0;
		ref->data_seen = 1;
		ref->next = (big)offset + length;
		rec->offset = offset;
		rec->length = length;
		return 1;
	case 'e':
		return 1;
	default:
		return 0;
	}
}

/* What a refusal must look like. */
static void check_refused(const struct diff_reader *r, int rc, int saved,
                          const char *step)
{
	CHECK(rc == -1, "%s: accepted, the reference refuses it", step);
	CHECK(saved == EINVAL, "%s: refused with errno %d", step, saved);
	CHECK(r->reason != NULL && r->reason[0] != '\0',
	      "%s: refused without a reason", step);
}

/* What the reader holds after an accepted record. */
static void check_reader(const struct diff_reader *r,
                         const struct reference *ref)
{
	CHECK(r->consumed == ref->pos, "consumed %llu, expected %zu",
	      (unsigned long long)r->consumed, ref->pos);
	CHECK(!r->has_from == !ref->has_from, "has_from %d", r->has_from);
	CHECK(!r->has_to == !ref->has_to, "has_to %d", r->has_to);
	CHECK(!r->has_size == !ref->has_size, "has_size %d", r->has_size);
	if (ref->has_from)
		CHECK(strcmp(r->from, ref->from) == 0, "from \"%s\"", r->from);
	if (ref->has_to)
		CHECK(strcmp(r->to, ref->to) == 0, "to \"%s\"", r->to);
	if (ref->has_size)
		CHECK(r->size == ref->image_size, "size %llu, expected %llu",
		      (unsigned long long)r->size,
		      (unsigned long long)ref->image_size);
}

/* Reads all the bytes of an accepted 'w' record: 1, or 0 if refused. */
static int check_data(struct diff_reader *r, struct reference *ref,
                      uint64_t length)
{
	static unsigned char buf[PIECE];
	const uint8_t *p;

	while (length > 0) {
		size_t piece = length < PIECE ? (size_t)length : PIECE;
		int rc, saved, expected;

		errno = 0;
		rc = diff_read_data(r, buf, piece);
		saved = errno;
		expected = take(ref, piece, &p);
		if (!expected) {
			check_refused(r, rc, saved, "data");
			return 0;
		}
		CHECK(rc == 0, "data: refused (errno %d, %s)", saved,
		      r->reason ? r->reason : "no reason");
		CHECK(memcmp(buf, p, piece) == 0, "data: other bytes");
		CHECK(r->consumed == ref->pos, "data: consumed %llu of %zu",
		      (unsigned long long)r->consumed, ref->pos);
		length -= piece;
	}
	return 1;
}

/* The stream as the reader's descriptor: a memfd, made once. */
static int stream_fd(const uint8_t *data, size_t size)
{
	static int fd = -1;
	size_t done = 0;

	if (fd < 0) {
		fd = memfd_create("stream", MFD_CLOEXEC);
		CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	}
	CHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", strerror(errno));
	while (done < size) {
		ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);

		CHECK(n > 0, "pwrite: %s", strerror(errno));
		done += (size_t)n;
	}
	CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reference ref;
	struct diff_reader r;
	struct diff_record rec, expected_rec;
	int rc, saved, expected;
	uint64_t consumed;

	memset(&ref, 0, sizeof(ref));
	ref.data = data;
	ref.size = size;
	diff_reader_init(&r, stream_fd(data, size));

	errno = 0;
	rc = diff_read_header(&r);
	saved = errno;
	if (!reference_header(&ref)) {
		check_refused(&r, rc, saved, "header");
		return 0;
	}
	CHECK(rc == 0, "header: refused (errno %d)", saved);
	check_reader(&r, &ref);

	/* Each record takes a byte at least, so the loop ends. */
	for (;;) {
		errno = 0;
		rc = diff_read_record(&r, &rec);
		saved = errno;
		expected = reference_record(&ref, &expected_rec);
		if (!expected) {
			check_refused(&r, rc, saved, "record");
			return 0;
		}
		CHECK(rc == 0, "record '%c' at %zu: refused (errno %d, %s)",
		      expected_rec.tag, ref.pos, saved,
		      r.reason ? r.reason : "no reason");
		CHECK(rec.tag == expected_rec.tag, "tag %d, expected %d",
		      rec.tag, expected_rec.tag);
		if (rec.tag == 'w' || rec.tag == 'z')
			CHECK(rec.offset == expected_rec.offset &&
			          rec.length == expected_rec.length,
			      "'%c' %llu+%llu, expected %llu+%llu", rec.tag,
			      (unsigned long long)rec.offset,
			      (unsigned long long)rec.length,
			      (unsigned long long)expected_rec.offset,
			      (unsigned long long)expected_rec.length);
		check_reader(&r, &ref);
		if (rec.tag == 'w' && !check_data(&r, &ref, rec.length))
			return 0;
		if (rec.tag == 'e')
			break;
	}

	/* A record after the end: refused, and nothing read. */
	consumed = r.consumed;
	errno = 0;
	rc = diff_read_record(&r, &rec);
	check_refused(&r, rc, errno, "a record after 'e'");
	CHECK(r.consumed == consumed, "a record after 'e' read bytes");

	/* The stream is accepted if and only if nothing follows 'e'. */
	r.reason = NULL;
	errno = 0;
	rc = diff_read_trailing(&r);
	saved = errno;
	if (ref.pos < ref.size)
		check_refused(&r, rc, saved, "bytes after 'e'");
	else
		CHECK(rc == 0, "trailing: refused (errno %d)", saved);
	return 0;
}
