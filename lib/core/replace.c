/*
 * replace.c: a new clean image, in one order that a power cut or a failure
 * anywhere cannot turn into data lost (file-reflink(7), Durability).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int keep_saves_revisions(const struct keep_policy *policy)
{
	return !policy->given || policy->keep > 0;
}

int keep_disables_snapshots(const struct keep_policy *policy)
{
	return policy->given && policy->keep == -1;
}

/* True if C now is the file that "from" named (its replacing happened):
 * "from" is gone, or is a second name of C. */
static int same_file(const struct volume *volume, const struct dir *from_dir,
                     const char *from)
{
	struct stat from_st, clean_st;

	if (fstatat(from_dir->fd, from, &from_st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT;
	return fstatat(volume->dir.fd, volume->clean.name, &clean_st,
	               AT_SYMLINK_NOFOLLOW) == 0 &&
	       clean_st.st_ino == from_st.st_ino &&
	       clean_st.st_dev == from_st.st_dev;
}

int volume_finish(struct volume *volume, const struct keep_policy *policy)
{
	if (policy->given && volume_prune_to(volume, policy->keep, NULL) != 0)
		return -1;
	if (keep_disables_snapshots(policy))
		return volume_precache_remove(volume);
	if (volume->clean.exists && !volume_precache_valid(volume))
		return volume_precache_refresh(volume);
	return 0;
}

int volume_replace_clean(struct volume *volume, const struct dir *from_dir,
                         const char *from, unsigned flags,
                         const struct keep_policy *policy)
{
	struct revision_list list;
	struct temp_file precache;
	struct stat from_st;
	char linked[NAME_MAX + 1] = "";
	int fd = -1, rc = -1, pending = 0, saved, replaced;

	if (from_dir == NULL)
		from_dir = &volume->dir;
	if (revisions_list(volume, &list) != 0)
		return -1;
	/* The new C must be on disk before its name is: a power cut must
	 * not leave C pointing at unwritten data. */
	fd = file_open_checked(from_dir, from, O_RDONLY,
	                       from_dir == &volume->dir &&
	                               strcmp(from, volume->dirty.name) == 0
	                           ? &volume->dirty.st
	                           : NULL);
	if (fd < 0) {
		volume_fail_in(volume, from_dir, from);
		goto out;
	}
	if ((flags & REPLACE_SEAL) && image_seal(volume, fd, from) != 0)
		goto out;
	if (fsync(fd) != 0) {
		volume_fail_in(volume, from_dir, from);
		goto out;
	}
	/* The new P, a copy of the new C, is made before anything changes:
	 * it is the one step that may fail for want of space (a copy where
	 * the filesystem cannot clone), and it is ready to install at once
	 * when C is new. */
	if (!keep_disables_snapshots(policy) &&
	    !(from_dir == &volume->dir &&
	      strcmp(from, volume->precache.name) == 0)) {
		if (volume_precache_prepare(volume, fd, from_dir, from,
		                            &precache) != 0)
			goto out;
		pending = 1;
	}
	if ((flags & REPLACE_SAVE) && volume->clean.exists &&
	    keep_saves_revisions(policy)) {
		saved = volume_save_clean(volume, &list);
		if (saved < 0)
			goto out;
		if (saved > 0)
			snprintf(linked, sizeof(linked), "%s",
			         list.items[list.count - 1].name);
	}
	/*
	 * Replacing C is the point of no return: before it a failure takes
	 * everything back; after it, what is left (P, pruning, a revert's
	 * last unlink) is what a run of the same command finishes.
	 */
	if (flags & REPLACE_KEEP_NAME) {
		/* C becomes a second name of the revision "from", whose own
		 * name goes last: a revert cut short in between shows as a
		 * revision that is C, below the one saved from the old C,
		 * which vol-revert finishes. */
		replaced = durable_link_over(&volume->dir, from,
		                             volume->clean.name) == 0;
	} else {
		replaced = durable_rename(from_dir, from, &volume->dir,
		                          volume->clean.name, 0) == 0;
	}
	if (!replaced) {
		saved = errno;
		volume_fail_in(volume, from_dir, from);
		/* A rename whose directory fsync failed did happen: then it
		 * stays, and a re-run finishes the rest. */
		if (same_file(volume, from_dir, from))
			linked[0] = '\0';
		errno = saved;
		goto out;
	}
	linked[0] = '\0';
	if (volume_file_stat(volume, &volume->clean) != 0)
		goto out;
	/* The directory is ours to change alone, under the lock: C must
	 * now be the very file that was checked and fsynced. */
	if (fstat(fd, &from_st) != 0 || !volume->clean.exists ||
	    volume->clean.st.st_dev != from_st.st_dev ||
	    volume->clean.st.st_ino != from_st.st_ino) {
		errno = EAGAIN;
		volume_fail(
		    volume, volume->clean.name,
		    "is not the image just committed: the directory changed "
		    "under the lock");
		goto out;
	}
	if (pending) {
		pending = 0;
		if (volume_precache_install(volume, &precache) != 0)
			goto out;
	} else if (keep_disables_snapshots(policy) &&
	           volume_precache_remove(volume) != 0)
		goto out;
	/* A revision that became C is no revision to count or prune. */
	if (from_dir == &volume->dir) {
		size_t i, kept = 0;

		for (i = 0; i < list.count; i++)
			if (strcmp(list.items[i].name, from) != 0)
				list.items[kept++] = list.items[i];
		list.count = kept;
	}
	if (policy->given &&
	    volume_prune(volume, &list, policy->keep, NULL) != 0)
		goto out;
	if ((flags & REPLACE_KEEP_NAME) &&
	    durable_unlink(&volume->dir, from) != 0) {
		volume_fail(volume, from, NULL);
		goto out;
	}
	rc = 0;
out:
	saved = errno;
	if (pending)
		temp_abort(&precache);
	/* A failure before C was replaced takes the new link back. */
	if (linked[0] != '\0' && unlinkat(volume->dir.fd, linked, 0) == 0)
		dir_sync(&volume->dir);
	if (fd >= 0)
		close(fd);
	revisions_free(&list);
	errno = saved;
	return rc;
}
