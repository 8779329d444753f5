/*
 * compare.c: whether two files hold the same data, so that a command
 * run again after it was interrupted can see that its work is done, and
 * whether a dirty image was ever written.  Clones are told apart by their
 * extent maps without reading a byte; only copies (a filesystem that
 * cannot clone) have their data regions read, never their holes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define COMPARE_BUFFER_SIZE (1024 * 1024)

/* Reads exactly length bytes at offset, or fails (EIO at end of file). */
static int read_exactly(int fd, char *buf, size_t length, off_t offset)
{
	while (length > 0) {
		ssize_t n = pread(fd, buf, length, offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		length -= (size_t)n;
		offset += n;
	}
	return 0;
}

/* Compares the data regions of two files of one size whose holes are
 * in the same places; 0 also when the holes differ. */
static int data_regions_same(int a, int b, off_t size, char *buf_a, char *buf_b)
{
	off_t offset = 0;

	while (offset < size) {
		off_t data_a = lseek(a, offset, SEEK_DATA);
		off_t data_b = lseek(b, offset, SEEK_DATA);
		off_t hole_a, hole_b;

		if (data_a < 0 || data_b < 0) {
			/* ENXIO: no data past offset, in one or both. */
			if ((data_a < 0 && errno != ENXIO) ||
			    (data_b < 0 && errno != ENXIO))
				return -1;
			return data_a < 0 && data_b < 0;
		}
		if (data_a != data_b)
			return 0;
		hole_a = lseek(a, data_a, SEEK_HOLE);
		hole_b = lseek(b, data_b, SEEK_HOLE);
		if (hole_a < 0 || hole_b < 0)
			return -1;
		if (hole_a != hole_b)
			return 0;
		for (offset = data_a; offset < hole_a;) {
			size_t length = hole_a - offset < COMPARE_BUFFER_SIZE
			                    ? (size_t)(hole_a - offset)
			                    : COMPARE_BUFFER_SIZE;

			if (read_exactly(a, buf_a, length, offset) != 0 ||
			    read_exactly(b, buf_b, length, offset) != 0)
				return -1;
			if (memcmp(buf_a, buf_b, length) != 0)
				return 0;
			offset += (off_t)length;
		}
	}
	return 1;
}

/* What the extent maps of two files of one filesystem say of them. */
enum clone_relation {
	CLONE_SAME,    /* the very same blocks: the same bytes */
	CLONE_WRITTEN, /* blocks shared in part: one was written since */
	CLONE_NONE,    /* no block shared: copies, which must be read */
	CLONE_UNKNOWN  /* no FIEMAP here */
};

/* Compares the extent maps of a and b; -1 on error. */
static int clone_relation(int a, int b)
{
	struct extent_map map_a, map_b;
	int rc, overlap;

	if (extent_map_read(a, &map_a) != 0)
		return errno == EOPNOTSUPP || errno == ENOTTY ? CLONE_UNKNOWN
		                                              : -1;
	if (extent_map_read(b, &map_b) != 0) {
		extent_map_free(&map_a);
		return -1;
	}
	if (extent_maps_equal(&map_a, &map_b))
		rc = CLONE_SAME;
	else {
		overlap = extent_maps_overlap(&map_a, &map_b);
		rc = overlap < 0 ? -1 : overlap ? CLONE_WRITTEN : CLONE_NONE;
	}
	extent_map_free(&map_a);
	extent_map_free(&map_b);
	return rc;
}

/* Reads and compares the data regions of a and b, of one size. */
static int bytes_same(int a, int b, off_t size)
{
	char *buf_a, *buf_b;
	int rc;

	buf_a = malloc(COMPARE_BUFFER_SIZE);
	buf_b = malloc(COMPARE_BUFFER_SIZE);
	if (buf_a == NULL || buf_b == NULL) {
		free(buf_a);
		free(buf_b);
		return -1;
	}
	rc = data_regions_same(a, b, size, buf_a, buf_b);
	free(buf_a);
	free(buf_b);
	return rc;
}

int files_same_data(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
		return -1;
	if (sa.st_size != sb.st_size)
		return 0;
	if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
		return 1;
	/* Two clones, one written since, are taken as different without
	 * reading them; only copies (or no FIEMAP) are read. */
	if (sa.st_dev == sb.st_dev) {
		switch (clone_relation(a, b)) {
		case CLONE_SAME:
			return 1;
		case CLONE_WRITTEN:
			return 0;
		case -1:
			return -1;
		}
	}
	return bytes_same(a, b, sa.st_size);
}

int files_unwritten_clone(int original, int copy)
{
	struct stat sa, sb;

	if (fstat(original, &sa) != 0 || fstat(copy, &sb) != 0)
		return -1;
	/* Every write moves the mtime: a copy made for a VM is given its
	 * original's, which it keeps until the first write. */
	if (sa.st_size != sb.st_size ||
	    sa.st_mtim.tv_sec != sb.st_mtim.tv_sec ||
	    sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
		return 0;
	/* A clone must still be its original's blocks.  A copy (where the
	 * filesystem cannot clone, or a file rewritten whole) shares none,
	 * and its mtime proves nothing: whoever may write it (a guest's QEMU
	 * user owns D) can set it back.  Its bytes decide. */
	switch (clone_relation(original, copy)) {
	case CLONE_SAME:
		return 1;
	case CLONE_WRITTEN:
		return 0;
	case -1:
		return -1;
	default:
		return bytes_same(original, copy, sa.st_size);
	}
}
