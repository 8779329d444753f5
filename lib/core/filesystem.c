/*
 * filesystem.c: what the filesystem of a directory can do.  Whether it
 * can reflink is proven by a clone, never guessed from its type: XFS
 * made without reflink=1, or a btrfs mounted through an overlay, says
 * "xfs" or "btrfs" all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "core.h"

const char *filesystem_name(int fd, char *buf, size_t length)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} names[] = {{0x9123683e, "btrfs"},
	             {0x58465342, "xfs"},
	             {0xef53, "ext2/ext3/ext4"},
	             {0x01021994, "tmpfs"},
	             {0x6969, "nfs"},
	             {0x794c7630, "overlayfs"},
	             {0x2fc12fc1, "zfs"},
	             {0xf2f52010, "f2fs"},
	             {0xca451a4e, "bcachefs"},
	             {0x4d44, "vfat"}};
	struct statfs st;
	size_t i;

	if (fstatfs(fd, &st) != 0)
		return "unknown";
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((unsigned long)st.f_type == names[i].magic)
			return names[i].name;
	snprintf(buf, length, "type 0x%lx", (unsigned long)st.f_type);
	return buf;
}

/* Opens an anonymous file in dir: O_TMPFILE, else a name removed at once. */
static int probe_file_open(const struct dir *dir)
{
	struct temp_file temp;
	int fd;

	fd = openat(dir->fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	/* Filesystems without O_TMPFILE say so in one of three ways. */
	if (fd >= 0 ||
	    (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	if (temp_create(&temp, dir, ".pool-check-probe") != 0)
		return -1;
	unlinkat(dir->fd, temp.name, 0);
	return temp.fd;
}

int reflink_probe(const struct dir *dir)
{
	static const char probe[] = "file-reflink probe\n";
	const ssize_t length = sizeof(probe) - 1;
	struct copy_result result;
	char back[sizeof(probe)];
	int src, dst, rc = -1;

	src = probe_file_open(dir);
	if (src < 0)
		return -1;
	dst = probe_file_open(dir);
	if (dst < 0) {
		close(src);
		return -1;
	}
	/* An empty or unflushed source proves nothing: some filesystems
	 * accept a clone of nothing. */
	if (write(src, probe, length) != length || fsync(src) != 0)
		goto out;
	if (copy_data(dst, src, length, REFLINK_ALWAYS, &result) != 0) {
		rc = errno == EOPNOTSUPP ? 0 : -1;
		goto out;
	}
	if (pread(dst, back, length, 0) != length ||
	    memcmp(back, probe, length) != 0) {
		errno = EIO;
		goto out;
	}
	rc = 1;
out:
	close(src);
	close(dst);
	return rc;
}
