/*
 * precache.c: P, a clone of C made before it is needed, so that a start is
 * a rename.  P is valid while it has C's size and mtime and another inode.
 * The clone with its source's mtime is made here for D too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

int volume_precache_valid(const struct volume *volume)
{
	const struct stat *c = &volume->clean.st, *p = &volume->precache.st;

	return volume->clean.exists && volume->precache.exists &&
	       p->st_ino != c->st_ino && p->st_size == c->st_size &&
	       p->st_mtim.tv_sec == c->st_mtim.tv_sec &&
	       p->st_mtim.tv_nsec == c->st_mtim.tv_nsec;
}

int volume_precache_remove(struct volume *volume)
{
	if (!volume->precache.exists)
		return 0;
	if (durable_unlink(&volume->dir, volume->precache.name) != 0 &&
	    errno != ENOENT)
		return volume_fail(volume, volume->precache.name, NULL);
	volume->precache.exists = 0;
	return 0;
}

/* volume_clone_prepare, and with state (not NULL) the clone's state name
 * (STATE_XATTR) set to it before the fsync. */
static int clone_prepare(struct volume *volume, int src_fd,
                         const struct dir *src_dir, const char *src_name,
                         const struct volume_file *file, struct temp_file *temp,
                         const char *state)
{
	struct copy_result result;
	struct timespec times[2];
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;
	int rc;

	if (fstat(src_fd, &st) != 0)
		return volume_fail_in(volume, src_dir, src_name);
	if (temp_create(temp, &volume->dir, file->name) != 0)
		return volume_fail(volume, file->name, NULL);
	if (copy_data(temp->fd, src_fd, st.st_size, REFLINK_AUTO, &result) !=
	    0) {
		temp_abort(temp);
		return result.source_failed
		           ? volume_fail_in(volume, src_dir, src_name)
		           : volume_fail(volume, file->name, NULL);
	}
	core_note("%s %s to %s", result.cloned ? "cloned" : "copied",
	          dir_join(src_dir, src_name, src, sizeof(src)),
	          volume_path(volume, temp->name, dst));
	/* The same mtime is what marks P (or D) as an unwritten copy of this
	 * very C; the data reaches the disk now, so that installing it is a
	 * rename only. */
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = st.st_mtim;
	if ((state != NULL && state_name_write(temp->fd, state) != 0) ||
	    futimens(temp->fd, times) != 0 || fsync(temp->fd) != 0) {
		temp_abort(temp);
		return volume_fail(volume, file->name, NULL);
	}
	/* close() releases the descriptor even when it fails. */
	rc = close(temp->fd);
	temp->fd = -1;
	if (rc != 0) {
		temp_abort(temp);
		return volume_fail(volume, file->name, NULL);
	}
	return 0;
}

int volume_clone_prepare(struct volume *volume, int src_fd,
                         const struct dir *src_dir, const char *src_name,
                         const struct volume_file *file, struct temp_file *temp)
{
	return clone_prepare(volume, src_fd, src_dir, src_name, file, temp,
	                     NULL);
}

int volume_revision_clone(struct volume *volume, const char *name,
                          struct temp_file *temp)
{
	char state[STATE_NAME_SIZE];
	int fd, rc;

	fd = file_open_checked(&volume->dir, name, O_RDONLY, NULL);
	if (fd < 0)
		return volume_fail(volume, name, NULL);
	/* The same data is the same state: its name goes with it, or the
	 * clone of a received revision would answer to another. */
	rc = state_name_read(fd, state, sizeof(state));
	if (rc != 0)
		volume_fail(volume, name, NULL);
	else
		rc = clone_prepare(volume, fd, &volume->dir, name,
		                   &volume->import, temp, state);
	close(fd);
	return rc;
}

int volume_clone_install(struct volume *volume, struct temp_file *temp,
                         struct volume_file *file)
{
	if (durable_rename(&volume->dir, temp->name, &volume->dir, file->name,
	                   0) != 0) {
		temp_abort(temp);
		return volume_fail(volume, file->name, NULL);
	}
	return volume_file_stat(volume, file);
}

int volume_clone_of(struct volume *volume, const char *src_name,
                    struct volume_file *file)
{
	struct temp_file temp;
	int fd, rc;

	fd = file_open_checked(&volume->dir, src_name, O_RDONLY,
	                       strcmp(src_name, volume->clean.name) == 0 &&
	                               volume->clean.exists
	                           ? &volume->clean.st
	                           : NULL);
	if (fd < 0)
		return volume_fail(volume, src_name, NULL);
	rc = volume_clone_prepare(volume, fd, &volume->dir, src_name, file,
	                          &temp);
	close(fd);
	if (rc == 0)
		rc = volume_clone_install(volume, &temp, file);
	return rc;
}

int volume_precache_refresh(struct volume *volume)
{
	return volume_clone_of(volume, volume->clean.name, &volume->precache);
}

int volume_precache_settle(struct volume *volume, int later)
{
	if (!volume->clean.exists || volume_precache_valid(volume))
		return 0;
	/* Later, the stop costs no clone; the stale P must go all the
	 * same, or a start would have to tell it from a valid one. */
	if (later)
		return volume_precache_remove(volume);
	return volume_precache_refresh(volume);
}
