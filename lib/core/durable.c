/*
 * durable.c: directory changes that survive a power cut.  Every change of a
 * directory entry (create by rename, link, unlink, mkdir, rmdir) is followed
 * by an fsync of the directory that holds it: without it the kernel may
 * write the entry change long after the tool reported success.  Each change
 * is told to the listener (notify.c), which the tools log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int durable_unlink(const struct dir *dir, const char *name)
{
	char path[PATH_MAX];

	if (unlinkat(dir->fd, name, 0) != 0)
		return -1;
	core_note("removed %s", dir_join(dir, name, path, sizeof(path)));
	return dir_sync(dir);
}

int durable_link(const struct dir *from_dir, const char *from,
                 const struct dir *to_dir, const char *to)
{
	char path_from[PATH_MAX], path_to[PATH_MAX];

	if (linkat(from_dir->fd, from, to_dir->fd, to, 0) != 0)
		return -1;
	core_note("linked %s to %s",
	          dir_join(from_dir, from, path_from, PATH_MAX),
	          dir_join(to_dir, to, path_to, PATH_MAX));
	/* Only the directory that gained an entry changed. */
	return dir_sync(to_dir);
}

int durable_rename(const struct dir *from_dir, const char *from,
                   const struct dir *to_dir, const char *to, unsigned flags)
{
	char path_from[PATH_MAX], path_to[PATH_MAX];

	if (renameat2(from_dir->fd, from, to_dir->fd, to, flags) != 0)
		return -1;
	core_note("renamed %s to %s",
	          dir_join(from_dir, from, path_from, PATH_MAX),
	          dir_join(to_dir, to, path_to, PATH_MAX));
	if (dir_sync(to_dir) != 0)
		return -1;
	/* A move between directories changes both of them. */
	if (from_dir->fd != to_dir->fd && dir_sync(from_dir) != 0)
		return -1;
	return 0;
}

/* As durable_mkdir; *made is 1 once the directory is made, even when its
 * fsync then fails. */
static int durable_mkdir_made(const struct dir *dir, const char *name,
                              mode_t mode, int *made)
{
	char path[PATH_MAX];
	struct stat st;

	*made = 0;
	if (mkdirat(dir->fd, name, mode) != 0) {
		/* An existing directory is what was asked for; anything else
		 * under that name is not. */
		if (errno == EEXIST &&
		    fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				return 0;
			errno = EEXIST;
		}
		return -1;
	}
	/* Set before the fsync, which may fail too: the directory is made
	 * all the same, and a caller may take it back. */
	*made = 1;
	core_note("created directory %s", dir_join(dir, name, path, PATH_MAX));
	return dir_sync(dir) == 0 ? 1 : -1;
}

int durable_mkdir(const struct dir *dir, const char *name, mode_t mode)
{
	int made;

	return durable_mkdir_made(dir, name, mode, &made);
}

int durable_rmdir(const struct dir *dir, const char *name)
{
	char path[PATH_MAX];

	if (unlinkat(dir->fd, name, AT_REMOVEDIR) != 0)
		return -1;
	core_note("removed directory %s", dir_join(dir, name, path, PATH_MAX));
	return dir_sync(dir);
}

int temp_create(struct temp_file *temp, const struct dir *dir,
                const char *final)
{
	char path[PATH_MAX];
	int attempt;

	temp->dir = dir;
	temp->fd = -1;
	if (strlen(final) >= sizeof(temp->final)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(temp->final, final);
	for (attempt = 0; attempt < 100; attempt++) {
		if (temp_name_make(temp->name, sizeof(temp->name), final) != 0)
			return -1;
		temp->fd = openat(
		    dir->fd, temp->name,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (temp->fd >= 0) {
			/* The umask must not make the mode differ from 0600. */
			if (fchmod(temp->fd, 0600) != 0) {
				temp_abort(temp);
				return -1;
			}
			core_note("created %s",
			          dir_join(dir, temp->name, path, PATH_MAX));
			return 0;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

int durable_link_over(const struct dir *dir, const char *from, const char *to)
{
	char temp[NAME_MAX + 8], path_from[PATH_MAX], path_to[PATH_MAX];
	int attempt;

	/* link(2) cannot replace a name; rename(2) can, atomically. */
	for (attempt = 0; attempt < 100; attempt++) {
		if (temp_name_make(temp, sizeof(temp), to) != 0)
			return -1;
		if (linkat(dir->fd, from, dir->fd, temp, 0) == 0)
			break;
		if (errno != EEXIST)
			return -1;
	}
	if (attempt == 100) {
		errno = EEXIST;
		return -1;
	}
	if (renameat(dir->fd, temp, dir->fd, to) != 0) {
		int saved = errno;

		unlinkat(dir->fd, temp, 0);
		errno = saved;
		return -1;
	}
	core_note("linked %s to %s", dir_join(dir, from, path_from, PATH_MAX),
	          dir_join(dir, to, path_to, PATH_MAX));
	return dir_sync(dir);
}

int temp_commit(struct temp_file *temp, unsigned rename_flags)
{
	/* The data must be on disk before the name makes it visible, or a
	 * power cut could leave the final name on an empty file. */
	if (fsync(temp->fd) != 0) {
		temp_abort(temp);
		return -1;
	}
	if (close(temp->fd) != 0) {
		temp->fd = -1;
		temp_abort(temp);
		return -1;
	}
	temp->fd = -1;
	if (durable_rename(temp->dir, temp->name, temp->dir, temp->final,
	                   rename_flags) != 0) {
		int saved = errno;

		/* If the rename happened and only the directory fsync failed,
		 * the temp name is gone already and ENOENT is expected. */
		unlinkat(temp->dir->fd, temp->name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

void temp_abort(struct temp_file *temp)
{
	int saved = errno;

	if (temp->fd >= 0)
		close(temp->fd);
	temp->fd = -1;
	unlinkat(temp->dir->fd, temp->name, 0);
	errno = saved;
}

int dir_open_trusted_making(struct dir *dir, const char *path, char *culprit,
                            size_t length, int *made)
{
	char buf[PATH_MAX];
	const char *parent_path, *name;
	struct dir parent;
	int rc;

	rc = dir_open_trusted(dir, path, culprit, length);
	if (rc != -1 || errno != ENOENT)
		return rc;
	if (path_split(path, buf, sizeof(buf), &parent_path, &name) != 0)
		return -1;
	rc = dir_open_trusted(&parent, parent_path, culprit, length);
	if (rc != 0)
		return rc;
	rc = durable_mkdir_made(&parent, name, 0755, made) < 0
	         ? -1
	         : dir_openat(dir, &parent, name);
	dir_close(&parent);
	if (rc == 0)
		strcpy(dir->path, path);
	return rc;
}
