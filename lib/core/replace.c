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
	return volume_precache_settle(volume, policy->precache_later);
}

/* One run of volume_replace_clean: what it was asked, and what it has
 * done so far that a failure must take back. */
struct replacing {
	struct volume *volume;
	const struct dir *from_dir;
	const char *from;
	unsigned flags;
	const struct keep_policy *policy;
	struct revision_list list;
	struct temp_file precache;
	int fd;                    /* "from", open */
	int pending;               /* the new P is prepared, not installed */
	char linked[NAME_MAX + 1]; /* the revision saved from the old C */
};

/* True if "from" is the volume's file name. */
static int from_is(const struct replacing *r, const char *name)
{
	return r->from_dir == &r->volume->dir && strcmp(r->from, name) == 0;
}

/* Fsyncs (and with REPLACE_SEAL seals) the new image: it must be on disk
 * before its name is, or a power cut could leave C on unwritten data. */
static int new_image_sync(struct replacing *r)
{
	struct volume *volume = r->volume;

	r->fd = file_open_checked(
	    r->from_dir, r->from, O_RDONLY,
	    from_is(r, volume->dirty.name) ? &volume->dirty.st : NULL);
	if (r->fd < 0)
		return volume_fail_in(volume, r->from_dir, r->from);
	if ((r->flags & REPLACE_SEAL) &&
	    image_seal(volume, r->fd, r->from) != 0)
		return -1;
	if (fsync(r->fd) != 0)
		return volume_fail_in(volume, r->from_dir, r->from);
	return 0;
}

/* The new P, a copy of the new C, is made before anything changes: it is
 * the one step that may fail for want of space (a copy where the
 * filesystem cannot clone), and it is ready to install at once when C is
 * new.  --precache=later leaves it to the next start or vol-precache. */
static int precache_prepare(struct replacing *r)
{
	struct volume *volume = r->volume;

	if (keep_disables_snapshots(r->policy) || r->policy->precache_later ||
	    from_is(r, volume->precache.name))
		return 0;
	if (volume_clone_prepare(volume, r->fd, r->from_dir, r->from,
	                         &volume->precache, &r->precache) != 0)
		return -1;
	r->pending = 1;
	return 0;
}

/* Links the old C to the next revision name (REPLACE_SAVE). */
static int clean_save(struct replacing *r)
{
	struct volume *volume = r->volume;
	int saved;

	if (!(r->flags & REPLACE_SAVE) || !volume->clean.exists ||
	    !keep_saves_revisions(r->policy))
		return 0;
	saved = volume_save_clean(volume, &r->list);
	if (saved < 0)
		return -1;
	if (saved > 0)
		snprintf(r->linked, sizeof(r->linked), "%s",
		         r->list.items[r->list.count - 1].name);
	return 0;
}

/* The directory is ours to change alone, under the lock: C must now be
 * the very file that was checked and fsynced. */
static int clean_is_new(struct replacing *r)
{
	struct volume *volume = r->volume;
	struct stat from_st;

	if (volume_file_stat(volume, &volume->clean) != 0)
		return -1;
	if (fstat(r->fd, &from_st) != 0 || !volume->clean.exists ||
	    volume->clean.st.st_dev != from_st.st_dev ||
	    volume->clean.st.st_ino != from_st.st_ino) {
		errno = EAGAIN;
		return volume_fail(
		    volume, volume->clean.name,
		    "is not the image just committed: the directory changed "
		    "under the lock");
	}
	return 0;
}

/*
 * Replaces C: the point of no return.  Before it a failure takes
 * everything back; after it, what is left (P, pruning, a revert's last
 * unlink) is what a run of the same command finishes.
 */
static int clean_replace(struct replacing *r)
{
	struct volume *volume = r->volume;
	int replaced, saved;

	if (r->flags & REPLACE_KEEP_NAME) {
		/* C becomes a second name of the revision "from", whose own
		 * name goes last: a revert cut short in between shows as a
		 * revision that is C, below the one saved from the old C,
		 * which vol-revert finishes. */
		replaced = durable_link_over(&volume->dir, r->from,
		                             volume->clean.name) == 0;
	} else {
		replaced = durable_rename(r->from_dir, r->from, &volume->dir,
		                          volume->clean.name, 0) == 0;
	}
	if (!replaced) {
		saved = errno;
		volume_fail_in(volume, r->from_dir, r->from);
		/* A rename whose directory fsync failed did happen: then it
		 * stays, and a re-run finishes the rest. */
		if (same_file(volume, r->from_dir, r->from))
			r->linked[0] = '\0';
		errno = saved;
		return -1;
	}
	r->linked[0] = '\0';
	return clean_is_new(r);
}

/* Installs the new P, or with -k -1 or --precache=later removes the
 * old one, a copy of the old C. */
static int precache_settle(struct replacing *r)
{
	if (r->pending) {
		r->pending = 0;
		return volume_clone_install(r->volume, &r->precache,
		                            &r->volume->precache);
	}
	/* With REPLACE_LAST, C is still the old one, which P will not be a
	 * copy of: no new P (-k -1, --precache=later) means none. */
	if (keep_disables_snapshots(r->policy) || (r->flags & REPLACE_LAST))
		return volume_precache_remove(r->volume);
	if (r->policy->precache_later && !from_is(r, r->volume->precache.name))
		return volume_precache_settle(r->volume, 1);
	return 0;
}

/* Prunes to the -k policy; a revision that became C is no revision to
 * count or prune. */
static int revisions_prune(struct replacing *r)
{
	struct revision_list *list = &r->list;
	size_t i, kept = 0;

	if (r->from_dir == &r->volume->dir) {
		for (i = 0; i < list->count; i++)
			if (strcmp(list->items[i].name, r->from) != 0)
				list->items[kept++] = list->items[i];
		list->count = kept;
	}
	if (!r->policy->given)
		return 0;
	return volume_prune(r->volume, list, r->policy->keep, 0, NULL, NULL);
}

/* A revert removes the revision's own name last (REPLACE_KEEP_NAME). */
static int revision_name_remove(struct replacing *r)
{
	if ((r->flags & REPLACE_KEEP_NAME) &&
	    durable_unlink(&r->volume->dir, r->from) != 0)
		return volume_fail(r->volume, r->from, NULL);
	return 0;
}

/* Takes back what a failure before C was replaced left (the new P, the
 * new link), frees the run, and returns rc with errno kept. */
static int replacing_end(struct replacing *r, int rc)
{
	int saved = errno;

	if (r->pending)
		temp_abort(&r->precache);
	if (r->linked[0] != '\0' &&
	    unlinkat(r->volume->dir.fd, r->linked, 0) == 0)
		dir_sync(&r->volume->dir);
	if (r->fd >= 0)
		close(r->fd);
	revisions_free(&r->list);
	errno = saved;
	return rc;
}

int volume_replace_clean(struct volume *volume, const struct dir *from_dir,
                         const char *from, unsigned flags,
                         const struct keep_policy *policy)
{
	struct replacing r;

	memset(&r, 0, sizeof(r));
	r.volume = volume;
	r.from_dir = from_dir != NULL ? from_dir : &volume->dir;
	r.from = from;
	r.flags = flags;
	r.policy = policy;
	r.fd = -1;
	if (revisions_list(volume, &r.list) != 0)
		return -1;
	if (new_image_sync(&r) != 0 || precache_prepare(&r) != 0 ||
	    clean_save(&r) != 0)
		return replacing_end(&r, -1);
	if (flags & REPLACE_LAST) {
		/* The saved C stays a revision whatever fails from here: a
		 * re-run finds it the latest, C itself, and starts again. */
		r.linked[0] = '\0';
		if (revisions_prune(&r) != 0 || precache_settle(&r) != 0 ||
		    clean_replace(&r) != 0)
			return replacing_end(&r, -1);
		return replacing_end(&r, 0);
	}
	/* Up to clean_replace, the point of no return, a failure leaves the
	 * volume as it was; after it, volume_finish() does the rest. */
	if (clean_replace(&r) != 0 || precache_settle(&r) != 0 ||
	    revisions_prune(&r) != 0 || revision_name_remove(&r) != 0)
		return replacing_end(&r, -1);
	return replacing_end(&r, 0);
}
