/*
 * state.c: the name of a committed state of a volume, as replication
 * (vol-export, vol-receive) and Ceph RBD snapshots know it.  An image
 * made here is named by its mtime, to the nanosecond, in UTC:
 * "2026-12-02T03:55:34.542970133Z", which no two commits of one volume
 * share, and which its revisions keep (a revision is a second name of
 * the same inode).  An image made by vol-receive carries the name the
 * stream gave it in the extended attribute user.file-reflink.snapshot,
 * which wins: the same state has the same name on every pool.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>

#include "core.h"

int state_name_format(const struct timespec *when, char *buf, size_t size)
{
	char seconds[32];
	int n;

	if (revision_time_format(when->tv_sec, seconds, sizeof(seconds)) != 0)
		return -1;
	/* "...:SSZ" becomes "...:SS.NNNNNNNNNZ". */
	seconds[strlen(seconds) - 1] = '\0';
	n = snprintf(buf, size, "%s.%09ldZ", seconds, (long)when->tv_nsec);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int state_name_valid(const char *name)
{
	size_t length = strlen(name);

	/* What an RBD snapshot name may be, and a shell word with no
	 * surprise: no "/", "@", control character or space. */
	if (length == 0 || length > DIFF_NAME_MAX)
		return 0;
	for (; *name != '\0'; name++)
		if (*name == '/' || *name == '@' ||
		    (unsigned char)*name <= ' ' || *name == 0x7f)
			return 0;
	return 1;
}

int state_name_read(int fd, char *buf, size_t size)
{
	struct stat st;
	ssize_t n;

	n = fgetxattr(fd, STATE_XATTR, buf, size - 1);
	if (n > 0) {
		buf[n] = '\0';
		if (strlen(buf) == (size_t)n && state_name_valid(buf))
			return 0;
	} else if (n < 0 && errno != ENODATA && errno != EOPNOTSUPP &&
	           errno != ERANGE)
		return -1;
	/* No name given, or one that is not a name: the mtime's. */
	if (fstat(fd, &st) != 0)
		return -1;
	return state_name_format(&st.st_mtim, buf, size);
}

int state_name_write(int fd, const char *name)
{
	return fsetxattr(fd, STATE_XATTR, name, strlen(name), 0);
}
