/*
 * volume.c: a volume is the set of files "B.img", "B-dirty.img",
 * "B-precache.img", "B-import.img" and the revisions "B.img.N@...Z" in one
 * VM directory.  This file opens and locks that directory, finds the
 * volume's images in it, and records why a volume function failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core.h"

int volume_fail(struct volume *volume, const char *name, const char *reason)
{
	int saved = errno;

	volume_path(volume, name, volume->error_path);
	volume->error_reason = reason;
	errno = saved;
	return -1;
}

/* As volume_fail(), for a file in another directory. */
int volume_fail_in(struct volume *volume, const struct dir *dir,
                   const char *name)
{
	int saved = errno;

	dir_join(dir, name, volume->error_path, sizeof(volume->error_path));
	volume->error_reason = NULL;
	errno = saved;
	return -1;
}

const char *volume_path(const struct volume *volume, const char *name,
                        char *buf)
{
	return dir_join(&volume->dir, name, buf, PATH_MAX);
}

static int name_set(char *buf, const char *base, const char *suffix)
{
	if (strlen(base) + strlen(suffix) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, base);
	strcat(buf, suffix);
	return 0;
}

int volume_open(struct volume *volume, const char *argument, int create_dir)
{
	char buf[PATH_MAX], culprit[PATH_MAX + 64];
	const char *dir_path, *base;
	size_t length;
	int rc;

	memset(volume, 0, sizeof(*volume));
	volume->dir.fd = -1;
	volume->lock_fd = -1;
	snprintf(volume->error_path, sizeof(volume->error_path), "%s",
	         argument);
	if (path_split(argument, buf, sizeof(buf), &dir_path, &base) != 0)
		return -1;
	/* "vm1/private/" names a directory, not a volume. */
	if (*argument != '\0' && argument[strlen(argument) - 1] == '/')
		base = "";
	/* B.img is accepted for B: strip one ".img". */
	length = strlen(base);
	if (length > 4 && strcmp(base + length - 4, ".img") == 0)
		buf[base - buf + length - 4] = '\0';
	if (volume_name_invalid(base, &volume->error_reason)) {
		volume->error_usage = 1;
		errno = EINVAL;
		return -1;
	}
	if (name_set(volume->base, base, "") != 0 ||
	    name_set(volume->clean.name, base, ".img") != 0 ||
	    name_set(volume->dirty.name, base, "-dirty.img") != 0 ||
	    name_set(volume->precache.name, base, "-precache.img") != 0 ||
	    name_set(volume->import.name, base, "-import.img") != 0)
		return -1;
	rc = create_dir
	         ? dir_open_trusted_making(&volume->dir, dir_path, culprit,
	                                   sizeof(culprit), &volume->dir_made)
	         : dir_open_trusted(&volume->dir, dir_path, culprit,
	                            sizeof(culprit));
	if (rc != 0) {
		snprintf(volume->error_path, sizeof(volume->error_path), "%s",
		         dir_path);
		if (rc < 0)
			return -1;
		snprintf(volume->error_text, sizeof(volume->error_text),
		         "refused: %s may be written by other users than root "
		         "and you, who could lead the tools outside the pool "
		         "(--unsafe-dirs accepts it)",
		         culprit);
		volume->error_reason = volume->error_text;
		return -1;
	}
	return volume_stat(volume);
}

void volume_close(struct volume *volume)
{
	if (volume->lock_fd >= 0)
		close(volume->lock_fd);
	volume->lock_fd = -1;
	dir_close(&volume->dir);
}

int volume_lock(struct volume *volume, int wait_seconds)
{
	if (volume->lock_fd < 0) {
		volume->lock_fd = lock_open(&volume->dir);
		if (volume->lock_fd < 0)
			return volume_fail(volume, ".", NULL);
	}
	if (lock_wait(volume->lock_fd, LOCK_EX, wait_seconds) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return volume_fail(volume, ".", NULL);
	snprintf(volume->error_path, sizeof(volume->error_path), "%s",
	         volume->dir.path);
	volume->error_reason = "busy: another tool holds the lock of this "
	                       "directory";
	return -1;
}

int volume_file_stat(struct volume *volume, struct volume_file *file)
{
	if (fstatat(volume->dir.fd, file->name, &file->st,
	            AT_SYMLINK_NOFOLLOW) != 0) {
		file->exists = 0;
		if (errno == ENOENT)
			return 0;
		return volume_fail(volume, file->name, NULL);
	}
	file->exists = 1;
	if (!S_ISREG(file->st.st_mode)) {
		/* A symlink or a device where an image belongs is never
		 * followed or written: someone else put it there. */
		errno = EINVAL;
		return volume_fail(volume, file->name,
		                   S_ISLNK(file->st.st_mode)
		                       ? "is a symbolic link, not an image file"
		                       : "not a regular file");
	}
	return 0;
}

int volume_stat(struct volume *volume)
{
	if (volume_file_stat(volume, &volume->clean) != 0 ||
	    volume_file_stat(volume, &volume->dirty) != 0 ||
	    volume_file_stat(volume, &volume->precache) != 0 ||
	    volume_file_stat(volume, &volume->import) != 0)
		return -1;
	return 0;
}

int volume_remove_temps(struct volume *volume, int with_import)
{
	struct dirent *entry;
	DIR *dir;
	int rc = 0;

	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
	/* Removing entries while reading the directory is safe: readdir may
	 * or may not return an entry removed meanwhile, nothing worse. */
	while ((entry = readdir(dir)) != NULL) {
		if (volume_name_kind(volume->base, entry->d_name, NULL) !=
		    NAME_TEMP)
			continue;
		if (durable_unlink(&volume->dir, entry->d_name) != 0 &&
		    errno != ENOENT) {
			rc = volume_fail(volume, entry->d_name, NULL);
			break;
		}
	}
	closedir(dir);
	if (rc == 0 && with_import && volume->import.exists) {
		if (durable_unlink(&volume->dir, volume->import.name) != 0 &&
		    errno != ENOENT)
			return volume_fail(volume, volume->import.name, NULL);
		volume->import.exists = 0;
	}
	return rc;
}

int volume_dirty_in_use(const struct volume *volume, char *holder,
                        size_t length)
{
	int fd, rc;

	holder[0] = '\0';
	if (!volume->dirty.exists)
		return 0;
	fd = file_open_checked(&volume->dir, volume->dirty.name, O_RDONLY,
	                       &volume->dirty.st);
	if (fd < 0)
		return -1;
	rc = file_users(fd, holder, length);
	close(fd);
	return rc;
}

int volume_unwritten_clone(struct volume *volume, const char *original,
                           const struct stat *original_st, const char *copy,
                           const struct stat *copy_st)
{
	int original_fd, copy_fd, rc;

	original_fd =
	    file_open_checked(&volume->dir, original, O_RDONLY, original_st);
	if (original_fd < 0)
		return volume_fail(volume, original, NULL);
	copy_fd = file_open_checked(&volume->dir, copy, O_RDONLY, copy_st);
	if (copy_fd < 0) {
		close(original_fd);
		return volume_fail(volume, copy, NULL);
	}
	rc = files_unwritten_clone(original_fd, copy_fd);
	if (rc < 0)
		volume_fail(volume, copy, NULL);
	close(copy_fd);
	close(original_fd);
	return rc;
}

int volume_dirty_unwritten(struct volume *volume)
{
	if (!volume->clean.exists || !volume->dirty.exists)
		return 0;
	return volume_unwritten_clone(volume, volume->clean.name,
	                              &volume->clean.st, volume->dirty.name,
	                              &volume->dirty.st);
}
