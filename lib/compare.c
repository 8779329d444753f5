/*
 * compare.c: whether two files hold the same data, so that a command
 * run again after it was interrupted can see that its work is done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reflink.h"

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

int files_same_data(int a, int b)
{
	struct stat sa, sb;
	char *buf_a, *buf_b;
	off_t offset = 0;
	int rc = 1;

	if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
		return -1;
	if (sa.st_size != sb.st_size)
		return 0;
	if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
		return 1;
	buf_a = malloc(COMPARE_BUFFER_SIZE);
	buf_b = malloc(COMPARE_BUFFER_SIZE);
	if (buf_a == NULL || buf_b == NULL) {
		free(buf_a);
		free(buf_b);
		return -1;
	}
	while (offset < sa.st_size) {
		size_t length = sa.st_size - offset < COMPARE_BUFFER_SIZE
		                    ? (size_t)(sa.st_size - offset)
		                    : COMPARE_BUFFER_SIZE;

		if (read_exactly(a, buf_a, length, offset) != 0 ||
		    read_exactly(b, buf_b, length, offset) != 0) {
			rc = -1;
			break;
		}
		if (memcmp(buf_a, buf_b, length) != 0) {
			rc = 0;
			break;
		}
		offset += (off_t)length;
	}
	free(buf_a);
	free(buf_b);
	return rc;
}
