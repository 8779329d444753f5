/*
 * stream.c: the "rbd diff v1" stream of Ceph (doc/dev/rbd-diff.rst), in
 * which one state of an image is told as the changes from another: the
 * header "rbd diff v1\n", then records of a one-byte tag, integers little
 * endian.  'f' and 't' name the state the changes start from and the one
 * they make (le32 length, then the name), 's' gives the image's size
 * (le64); then 'w' (le64 offset, le64 length, the bytes) and 'z' (le64
 * offset, le64 length: zeros) in increasing offset without overlap; 'e'
 * ends it.
 *
 * The reader trusts nothing: every record is checked against the ones
 * before it, and a stream that breaks a rule is EINVAL with the reason,
 * before any of its data would be applied out of order.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core.h"

static const char header[] = "rbd diff v1\n";

static void le64_put(unsigned char *p, uint64_t value)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t le64_get(const unsigned char *p)
{
	uint64_t value = 0;
	int i;

	for (i = 7; i >= 0; i--)
		value = value << 8 | p[i];
	return value;
}

/* Writes all of head (head_count bytes) then of data (count bytes),
 * through short writes and EINTR: one writev(2) where the pipe takes it,
 * so that a record of a few KiB costs one system call, not two. */
static int write_both(int fd, const void *head, size_t head_count,
                      const void *data, size_t count)
{
	struct iovec iov[2] = {{(void *)head, head_count},
	                       {(void *)data, count}};
	struct iovec *v = iov;
	int n_iov = 2;
	ssize_t n;

	while (n_iov > 0) {
		n = writev(fd, v, n_iov);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		while (n_iov > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			n_iov--;
		}
		if (n_iov > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Writes all of count bytes, through short writes and EINTR. */
static int write_all(int fd, const void *data, size_t count)
{
	return write_both(fd, data, count, NULL, 0);
}

int diff_write_header(int fd)
{
	return write_all(fd, header, sizeof(header) - 1);
}

int diff_write_name(int fd, char tag, const char *name)
{
	unsigned char record[5];
	size_t length = strlen(name);

	if (length > DIFF_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	record[0] = (unsigned char)tag;
	record[1] = (unsigned char)length;
	record[2] = (unsigned char)(length >> 8);
	record[3] = record[4] = 0;
	return write_both(fd, record, sizeof(record), name, length);
}

int diff_write_size(int fd, uint64_t size)
{
	unsigned char record[9] = {'s'};

	le64_put(record + 1, size);
	return write_all(fd, record, sizeof(record));
}

/* A 'w' or 'z' record: its head, then for a 'w' the data. */
static int range_write(int fd, char tag, uint64_t offset, uint64_t length,
                       const void *data, size_t count)
{
	unsigned char record[17];

	record[0] = (unsigned char)tag;
	le64_put(record + 1, offset);
	le64_put(record + 9, length);
	return write_both(fd, record, sizeof(record), data, count);
}

int diff_write_data(int fd, uint64_t offset, const void *data, size_t length)
{
	return range_write(fd, 'w', offset, length, data, length);
}

int diff_write_zero(int fd, uint64_t offset, uint64_t length)
{
	return range_write(fd, 'z', offset, length, NULL, 0);
}

int diff_write_end(int fd)
{
	return write_all(fd, "e", 1);
}

/* ---- reading ---- */

/* Reads what the stream holds, up to count bytes, from the bytes read
 * ahead, or from the descriptor: 0 at its end, -1 with errno. */
static ssize_t read_some(struct diff_reader *r, void *buf, size_t count)
{
	size_t n;
	ssize_t got;

	if (r->ahead_start == r->ahead_end) {
		/* A large read goes straight to its destination. */
		if (count >= sizeof(r->ahead)) {
			do
				got = read(r->fd, buf, count);
			while (got < 0 && errno == EINTR);
			return got;
		}
		do
			got = read(r->fd, r->ahead, sizeof(r->ahead));
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			return got;
		r->ahead_start = 0;
		r->ahead_end = (size_t)got;
	}
	n = r->ahead_end - r->ahead_start;
	if (n > count)
		n = count;
	memcpy(buf, r->ahead + r->ahead_start, n);
	r->ahead_start += n;
	return (ssize_t)n;
}

/* Reads exactly count bytes: 0; -1 with EINVAL (reason set) if the
 * stream ends first; -1 with errno if reading fails. */
static int read_exact(struct diff_reader *r, void *buf, size_t count)
{
	char *p = buf;
	ssize_t n;

	while (count > 0) {
		n = read_some(r, p, count);
		if (n < 0) {
			r->reason = NULL;
			return -1;
		}
		if (n == 0) {
			r->reason = "the stream ends before its end record";
			errno = EINVAL;
			return -1;
		}
		p += n;
		count -= (size_t)n;
		r->consumed += (uint64_t)n;
	}
	return 0;
}

static int refuse(struct diff_reader *r, const char *reason)
{
	r->reason = reason;
	errno = EINVAL;
	return -1;
}

void diff_reader_init(struct diff_reader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
}

int diff_read_header(struct diff_reader *r)
{
	char buf[sizeof(header) - 1];

	if (read_exact(r, buf, sizeof(buf)) != 0) {
		if (errno == EINVAL)
			r->reason = "not an rbd diff v1 stream (too short)";
		return -1;
	}
	if (memcmp(buf, header, sizeof(buf)) != 0)
		return refuse(r, "not an rbd diff v1 stream (wrong header)");
	return 0;
}

/* Reads the name of an 'f' or 't' record into name. */
static int name_read(struct diff_reader *r, char *name)
{
	unsigned char length[4];
	uint32_t n;

	if (read_exact(r, length, sizeof(length)) != 0)
		return -1;
	n = (uint32_t)length[0] | (uint32_t)length[1] << 8 |
	    (uint32_t)length[2] << 16 | (uint32_t)length[3] << 24;
	if (n == 0 || n > DIFF_NAME_MAX)
		return refuse(r, "a snapshot name is empty or too long");
	if (read_exact(r, name, n) != 0)
		return -1;
	name[n] = '\0';
	if (memchr(name, '\0', n) != NULL)
		return refuse(r, "a snapshot name holds a NUL byte");
	return 0;
}

/* A metadata record: each at most once, and all before the data. */
static int metadata_read(struct diff_reader *r, int tag)
{
	unsigned char size[8];

	if (r->data_seen)
		return refuse(r, "a metadata record after data records");
	if (tag == 'f') {
		if (r->has_from)
			return refuse(r, "a second from-snapshot record");
		r->has_from = 1;
		return name_read(r, r->from);
	}
	if (tag == 't') {
		if (r->has_to)
			return refuse(r, "a second to-snapshot record");
		r->has_to = 1;
		return name_read(r, r->to);
	}
	if (r->has_size)
		return refuse(r, "a second size record");
	if (read_exact(r, size, sizeof(size)) != 0)
		return -1;
	r->size = le64_get(size);
	if (r->size > (uint64_t)INT64_MAX)
		return refuse(r, "an image size beyond what a file can hold");
	r->has_size = 1;
	return 0;
}

/* A data record: within the size, after the one before, no overlap. */
static int range_read(struct diff_reader *r, int tag, struct diff_record *rec)
{
	unsigned char range[16];

	if (!r->has_size)
		return refuse(r, "a data record before the size record");
	if (read_exact(r, range, sizeof(range)) != 0)
		return -1;
	rec->offset = le64_get(range);
	rec->length = le64_get(range + 8);
	if (rec->length > r->size || rec->offset > r->size - rec->length)
		return refuse(r, "a data record past the image's size");
	if (r->data_seen && rec->offset < r->next_offset)
		return refuse(r, "data records out of order or overlapping");
	r->data_seen = 1;
	r->next_offset = rec->offset + rec->length;
	rec->tag = tag;
	return 0;
}

int diff_read_record(struct diff_reader *r, struct diff_record *rec)
{
	unsigned char tag;

	memset(rec, 0, sizeof(*rec));
	if (r->ended)
		return refuse(r, "a record after the end record");
	if (read_exact(r, &tag, 1) != 0)
		return -1;
	switch (tag) {
	case 'f':
	case 't':
	case 's':
		rec->tag = tag;
		return metadata_read(r, tag);
	case 'w':
	case 'z':
		return range_read(r, tag, rec);
	case 'e':
		rec->tag = tag;
		r->ended = 1;
		return 0;
	default:
		return refuse(r, "an unknown record tag");
	}
}

int diff_read_data(struct diff_reader *r, void *buf, size_t count)
{
	return read_exact(r, buf, count);
}

int diff_read_trailing(struct diff_reader *r)
{
	char byte;
	ssize_t n;

	n = read_some(r, &byte, 1);
	if (n < 0)
		return -1;
	if (n > 0)
		return refuse(r, "bytes after the end record");
	return 0;
}
