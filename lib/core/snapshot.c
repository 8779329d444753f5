/*
 * snapshot.c: a revision of a running volume: one clone of D as it is at
 * this instant, made the next revision beside the ones that commits make.
 * What it holds is what the guest would find after a power cut: a
 * crash-consistent image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

/* The next revision id after the highest one of list. */
static int revision_next(struct volume *volume,
                         const struct revision_list *list, uint64_t *next)
{
	const struct revision *latest;

	*next = 1;
	if (list->count == 0)
		return 0;
	latest = &list->items[list->count - 1];
	if (latest->id == UINT64_MAX) {
		errno = EOVERFLOW;
		return volume_fail(volume, latest->name,
		                   "no revision id is left after this one");
	}
	*next = latest->id + 1;
	return 0;
}

/* 1 if the files a and b lie on the very same blocks, all of them: a
 * clone that neither was written since.  Sharing no block is no proof
 * here: both may have been written after the clone. */
static int same_blocks(int a, int b)
{
	struct extent_map map_a, map_b;
	int same;

	if (extent_map_read(a, &map_a) != 0)
		return -1;
	if (extent_map_read(b, &map_b) != 0) {
		extent_map_free(&map_a);
		return -1;
	}
	same = extent_maps_equal(&map_a, &map_b);
	extent_map_free(&map_a);
	extent_map_free(&map_b);
	return same;
}

/*
 * 1 if the latest revision of list already holds the bytes of D (open as
 * dirty_fd, its stat in dirty_st): a snapshot of it that was cut short
 * after its rename, or one taken while the guest wrote nothing since.
 */
static int latest_holds(struct volume *volume, const struct revision_list *list,
                        int dirty_fd, const struct stat *dirty_st)
{
	const struct revision *latest;
	struct stat st;
	int fd, rc;

	if (list->count == 0)
		return 0;
	latest = &list->items[list->count - 1];
	/* The cheap test first: every snapshot gets D's size and mtime. */
	if (fstatat(volume->dir.fd, latest->name, &st, AT_SYMLINK_NOFOLLOW) !=
	        0 ||
	    st.st_size != dirty_st->st_size ||
	    st.st_mtim.tv_sec != dirty_st->st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != dirty_st->st_mtim.tv_nsec)
		return 0;
	/* A write within the same clock tick leaves the mtime as it was:
	 * D's pages must reach the disk, so that the extent maps show the
	 * blocks such a write moved. */
	if (fsync(dirty_fd) != 0)
		return volume_fail(volume, volume->dirty.name, NULL);
	fd = file_open_checked(&volume->dir, latest->name, O_RDONLY, &st);
	if (fd < 0)
		return volume_fail(volume, latest->name, NULL);
	rc = same_blocks(fd, dirty_fd);
	close(fd);
	if (rc < 0)
		return volume_fail(volume, latest->name, NULL);
	return rc;
}

/*
 * Clones D (dirty_fd, whose mtime is when) into a temp file of the
 * revision name, gives it D's mtime, makes it the pool's (image_seal),
 * fsyncs it and renames it to its name.  A filesystem that cannot clone
 * fails with EOPNOTSUPP: a copy would take as long as reading the image,
 * while the guest goes on writing it, and hold no single instant.
 */
static int revision_clone(struct volume *volume, int dirty_fd,
                          const struct stat *dirty_st, const char *name)
{
	struct copy_result result;
	struct timespec times[2];
	struct temp_file temp;
	char src[PATH_MAX], dst[PATH_MAX];

	if (temp_create(&temp, &volume->dir, name) != 0)
		return volume_fail(volume, name, NULL);
	if (copy_data(temp.fd, dirty_fd, dirty_st->st_size, REFLINK_ALWAYS,
	              &result) != 0) {
		temp_abort(&temp);
		if (errno == EOPNOTSUPP)
			return volume_fail(
			    volume, volume->dirty.name,
			    "the filesystem cannot clone it, and a copy of an "
			    "image a VM is writing is no snapshot; nothing "
			    "changed");
		return volume_fail(volume,
		                   result.source_failed ? volume->dirty.name
		                                        : temp.name,
		                   NULL);
	}
	core_note("cloned %s to %s",
	          volume_path(volume, volume->dirty.name, src),
	          volume_path(volume, temp.name, dst));
	/* The mtime is the revision's state name, and what tells a re-run
	 * that this revision already holds D's bytes. */
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = dirty_st->st_mtim;
	if (futimens(temp.fd, times) != 0) {
		temp_abort(&temp);
		return volume_fail(volume, temp.name, NULL);
	}
	/* The clone shares D's blocks, not its owner: the guest's QEMU
	 * user, who may own D, must not be able to write a revision. */
	if (image_seal(volume, temp.fd, temp.name) != 0) {
		temp_abort(&temp);
		return -1;
	}
	/* A name already taken is someone else's file: never replaced. */
	if (temp_commit(&temp, RENAME_NOREPLACE) != 0)
		return volume_fail(volume, name, NULL);
	return 0;
}

int volume_snapshot(struct volume *volume, char *name, size_t size)
{
	struct revision_list list;
	struct stat dirty_st;
	uint64_t next;
	int fd, rc;

	if (revisions_list(volume, &list) != 0)
		return -1;
	fd = file_open_checked(&volume->dir, volume->dirty.name, O_RDONLY,
	                       &volume->dirty.st);
	if (fd < 0) {
		revisions_free(&list);
		return volume_fail(volume, volume->dirty.name, NULL);
	}
	/* D's mtime before the clone: a write racing the clone moves it on,
	 * so no later state of D can bear the name this revision gets. */
	if (fstat(fd, &dirty_st) != 0)
		rc = volume_fail(volume, volume->dirty.name, NULL);
	else
		rc = latest_holds(volume, &list, fd, &dirty_st);
	if (rc == 1) {
		snprintf(name, size, "%s", list.items[list.count - 1].name);
		rc = SNAPSHOT_LATEST;
	} else if (rc == 0 && revision_next(volume, &list, &next) == 0) {
		if (revision_name_format(name, size, volume->base, next,
		                         dirty_st.st_mtim.tv_sec) != 0)
			rc = volume_fail(volume, volume->dirty.name, NULL);
		else
			rc = revision_clone(volume, fd, &dirty_st, name) == 0
			         ? SNAPSHOT_MADE
			         : -1;
	} else
		rc = -1;
	close(fd);
	revisions_free(&list);
	return rc;
}
