/*
 * copy.c: making a file's data appear in another file, by FICLONE when the
 * filesystem can share extents, else by a sparse copy that keeps holes and
 * turns all-zero blocks into holes (what "cp --sparse=always" does).
 *
 * The copy is pread into one buffer, a scan for zero blocks, and pwrite of
 * the rest.  Measured copying a 2 GiB image with holes and zero blocks:
 * every buffer size from 32 KiB to 8 MiB costs the same CPU time once the
 * buffer is page aligned, while a misaligned one (what malloc returns for
 * large sizes) doubles the time the kernel spends copying into and out of
 * it.  copy_file_range cannot see zero blocks, so its copy would allocate
 * them (31% more blocks on that image); it is not used.  Starting
 * writeback early with sync_file_range made no measurable difference.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core.h"

/* On the flat part of the measured curve, and small enough that the zero
 * scan and the write find the buffer still in the CPU's cache. */
#define COPY_BUFFER_SIZE (256 * 1024)
/* The unit of hole detection: the page and usual filesystem block size. */
#define ZERO_BLOCK_SIZE 4096
/* The alignment of the buffer: a page, like the page cache it meets. */
#define COPY_BUFFER_ALIGN 4096

int clone_unsupported(int err)
{
	switch (err) {
	case EOPNOTSUPP: /* ext4, tmpfs: no reflink at all; == ENOTSUP */
	case EXDEV:      /* the two files are on different filesystems */
	case EINVAL:     /* e.g. XFS without reflink=1, unaligned sizes */
	case EBADF:      /* e.g. a file system that refuses the fd kind */
	case ENOTTY:     /* the ioctl is unknown to this file system */
	case ENOSYS:
		return 1;
	default:
		/* EIO, ENOSPC, EDQUOT, EPERM...: a real failure, which a
		 * fallback copy would only hide. */
		return 0;
	}
}

static char *buffer_new(void)
{
	void *buf;
	int err = posix_memalign(&buf, COPY_BUFFER_ALIGN, COPY_BUFFER_SIZE);

	if (err != 0) {
		errno = err;
		return NULL;
	}
	return buf;
}

static int all_zero(const char *buf, size_t len)
{
	return buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0;
}

static size_t block_length(size_t at, size_t len)
{
	return len - at < ZERO_BLOCK_SIZE ? len - at : ZERO_BLOCK_SIZE;
}

/* Writes buf[0..len) at offset, skipping blocks that are all zeros. */
static int write_sparse(int fd, const char *buf, size_t len, off_t offset)
{
	size_t start = 0;

	while (start < len) {
		size_t end;

		/* Skip zero blocks; the destination is empty, so skipped
		 * ranges stay holes. */
		while (start < len &&
		       all_zero(buf + start, block_length(start, len)))
			start += ZERO_BLOCK_SIZE;
		if (start >= len)
			break;
		end = start + ZERO_BLOCK_SIZE;
		while (end < len &&
		       !all_zero(buf + end, block_length(end, len)))
			end += ZERO_BLOCK_SIZE;
		if (end > len)
			end = len;
		while (start < end) {
			ssize_t n = pwrite(fd, buf + start, end - start,
			                   offset + (off_t)start);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			start += (size_t)n;
		}
	}
	return 0;
}

/* Copies [from, to) of src into dst at the same offsets. */
static int copy_range(int dst_fd, int src_fd, char *buf, off_t from, off_t to,
                      struct copy_result *result)
{
	while (from < to) {
		size_t want = to - from < COPY_BUFFER_SIZE ? (size_t)(to - from)
		                                           : COPY_BUFFER_SIZE;
		ssize_t n = pread(src_fd, buf, want, from);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The source shrank under us: a short read. */
			if (n == 0)
				errno = EIO;
			result->source_failed = 1;
			return -1;
		}
		if (write_sparse(dst_fd, buf, (size_t)n, from) != 0)
			return -1;
		from += n;
		core_copy_advance((uint64_t)n);
	}
	return 0;
}

/*
 * Finds the data region at or after *data: [*data, *hole).  1 if there is
 * one, 0 if only a hole remains, -1 on error.  Without SEEK_DATA the
 * whole file is data.
 */
static int region_next(int src_fd, off_t *data, off_t *hole, off_t end,
                       struct copy_result *result)
{
	*data = lseek(src_fd, *data, SEEK_DATA);
	if (*data < 0) {
		if (errno == ENXIO)
			return 0;
		if (errno != EINVAL) {
			result->source_failed = 1;
			return -1;
		}
		*data = 0;
		*hole = end;
		return 1;
	}
	*hole = lseek(src_fd, *data, SEEK_HOLE);
	if (*hole < 0) {
		result->source_failed = 1;
		return -1;
	}
	return 1;
}

/* Copies the data regions of src below end into dst; holes cost nothing
 * to copy, but count as done. */
static int copy_regions(int dst_fd, int src_fd, char *buf, off_t end,
                        struct copy_result *result)
{
	off_t data = 0, done = 0, hole = 0;
	int found;

	while (data < end) {
		found = region_next(src_fd, &data, &hole, end, result);
		if (found < 0)
			return -1;
		if (found == 0 || data >= end)
			break;
		if (hole > end)
			hole = end;
		core_copy_advance((uint64_t)(data - done));
		if (copy_range(dst_fd, src_fd, buf, data, hole, result) != 0)
			return -1;
		data = done = hole;
	}
	core_copy_advance((uint64_t)(end - done));
	return 0;
}

static int copy_sparse(int dst_fd, int src_fd, off_t size,
                       struct copy_result *result)
{
	struct stat st;
	off_t end;
	char *buf;
	int rc, err;

	result->cloned = 0;
	result->source_failed = 0;
	if (fstat(src_fd, &st) != 0) {
		result->source_failed = 1;
		return -1;
	}
	end = st.st_size < size ? st.st_size : size;
	buf = buffer_new();
	if (buf == NULL)
		return -1;
	/* The kernel may read ahead further for a sequential reader. */
	posix_fadvise(src_fd, 0, end, POSIX_FADV_SEQUENTIAL);
	core_copy_start((uint64_t)end);
	rc = copy_regions(dst_fd, src_fd, buf, end, result);
	err = errno;
	free(buf);
	core_copy_end();
	errno = err;
	/* One ftruncate sets the length, so a trailing hole stays a hole. */
	if (rc == 0 && ftruncate(dst_fd, size) != 0)
		rc = -1;
	return rc;
}

int copy_stream(int dst_fd, int src_fd, off_t limit, off_t *copied)
{
	char *buf = buffer_new();
	off_t offset = 0;
	int rc = 0, err;

	*copied = 0;
	if (buf == NULL)
		return -1;
	/* With a limit, exactly that much must arrive: it is the total. */
	core_copy_start(limit > 0 ? (uint64_t)limit : 0);
	for (;;) {
		size_t filled = 0;
		ssize_t n = 0;

		/* Fill the whole buffer: a pipe delivers data in small
		 * pieces, and zero detection wants whole blocks. */
		while (filled < COPY_BUFFER_SIZE) {
			n = read(src_fd, buf + filled,
			         COPY_BUFFER_SIZE - filled);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			filled += (size_t)n;
		}
		if (n < 0) {
			rc = -1;
			break;
		}
		if (limit >= 0 && offset + (off_t)filled > limit) {
			*copied = offset + (off_t)filled;
			errno = EFBIG;
			rc = -1;
			break;
		}
		if (filled > 0 &&
		    write_sparse(dst_fd, buf, filled, offset) != 0) {
			rc = -2;
			break;
		}
		offset += (off_t)filled;
		*copied = offset;
		core_copy_advance((uint64_t)filled);
		if (n == 0)
			break;
	}
	err = errno;
	free(buf);
	core_copy_end();
	errno = err;
	if (rc == 0 && ftruncate(dst_fd, offset) != 0)
		rc = -2;
	return rc;
}

int copy_data(int dst_fd, int src_fd, off_t size, enum reflink_mode mode,
              struct copy_result *result)
{
	struct stat st;

	result->cloned = 0;
	result->source_failed = 0;
	if (size == 0)
		return 0;
	if (mode != REFLINK_NEVER) {
		if (fstat(src_fd, &st) != 0) {
			result->source_failed = 1;
			return -1;
		}
		if (ioctl(dst_fd, FICLONE, src_fd) == 0) {
			result->cloned = 1;
			/* A clone has the source's length; adjust it. */
			if (st.st_size != size && ftruncate(dst_fd, size) != 0)
				return -1;
			return 0;
		}
		if (!clone_unsupported(errno))
			return -1;
		if (mode == REFLINK_ALWAYS) {
			errno = EOPNOTSUPP;
			return -1;
		}
		/* Whatever a refused clone left behind must not survive
		 * into the copy. */
		if (ftruncate(dst_fd, 0) != 0)
			return -1;
	}
	return copy_sparse(dst_fd, src_fd, size, result);
}
