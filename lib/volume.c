/*
 * volume.c: a volume is the set of files "B.img", "B-dirty.img",
 * "B-precache.img", "B-import.img" and the revisions "B.img.N@...Z" in one
 * VM directory.  This file opens and locks that directory and holds the
 * steps that several tools share: listing revisions, saving C as a
 * revision, pruning, the precache, and replacing C.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "reflink.h"

static int fail(struct volume *volume, const char *name, const char *reason)
{
	int saved = errno;

	volume_path(volume, name, volume->error_path);
	volume->error_reason = reason;
	errno = saved;
	return -1;
}

/* As fail(), for a file in another directory. */
static int fail_in(struct volume *volume, const struct dir *dir,
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

int volume_report_error(const struct volume *volume, int err)
{
	if (volume->error_reason != NULL)
		log_errx("%s: %s", volume->error_path, volume->error_reason);
	else
		log_errc(err, "%s", volume->error_path);
	return volume->error_status ? volume->error_status
	                            : exit_status_for_errno(err);
}

int volume_name_invalid(const char *base, const char **reason)
{
	static const char *const taken[] = {"-dirty", "-precache", "-import"};
	size_t length = strlen(base), i;

	if (length == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		*reason = "not a volume name (a volume is a file's base "
		          "name, such as appvms/vm1/private)";
		return 1;
	}
	/* "B.img~..." is a temp file of volume B: a volume named so would
	 * have its files removed as B's leftovers. */
	if (strchr(base, '~') != NULL) {
		*reason = "not a volume name: a '~' in it would make its files "
		          "look like another volume's temp files";
		return 1;
	}
	/* "B.img.N@YYYY-MM-DDTHH:MM:SSZ" with a 20-digit N must still fit
	 * in a file name. */
	if (length > NAME_MAX - 46) {
		*reason = "volume name too long: its revision names would not "
		          "fit in a file name (at most 209 bytes)";
		return 1;
	}
	/* B-dirty.img is the dirty image of B: a volume named "B-dirty"
	 * would have B's dirty image as its clean image. */
	for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		size_t suffix = strlen(taken[i]);

		if (length > suffix &&
		    strcmp(base + length - suffix, taken[i]) == 0) {
			*reason = "not a volume name: it ends like the dirty, "
			          "precache or import image of another volume";
			return 1;
		}
	}
	return 0;
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
		volume->error_status = EX_USAGE;
		errno = EINVAL;
		return -1;
	}
	if (name_set(volume->base, base, "") != 0 ||
	    name_set(volume->clean.name, base, ".img") != 0 ||
	    name_set(volume->dirty.name, base, "-dirty.img") != 0 ||
	    name_set(volume->precache.name, base, "-precache.img") != 0 ||
	    name_set(volume->import.name, base, "-import.img") != 0)
		return -1;
	rc = create_dir ? dir_open_trusted_making(&volume->dir, dir_path,
	                                          culprit, sizeof(culprit))
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
		volume->error_status = EX_NOPERM;
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
			return fail(volume, ".", NULL);
	}
	if (lock_wait(volume->lock_fd, LOCK_EX, wait_seconds) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return fail(volume, ".", NULL);
	snprintf(volume->error_path, sizeof(volume->error_path), "%s",
	         volume->dir.path);
	volume->error_reason = "busy: another tool holds the lock of this "
	                       "directory";
	return -1;
}

static int file_stat(struct volume *volume, struct volume_file *file)
{
	if (fstatat(volume->dir.fd, file->name, &file->st,
	            AT_SYMLINK_NOFOLLOW) != 0) {
		file->exists = 0;
		if (errno == ENOENT)
			return 0;
		return fail(volume, file->name, NULL);
	}
	file->exists = 1;
	if (!S_ISREG(file->st.st_mode)) {
		/* A symlink or a device where an image belongs is never
		 * followed or written: someone else put it there. */
		errno = EINVAL;
		return fail(volume, file->name,
		            S_ISLNK(file->st.st_mode)
		                ? "is a symbolic link, not an image file"
		                : "not a regular file");
	}
	return 0;
}

int volume_stat(struct volume *volume)
{
	if (file_stat(volume, &volume->clean) != 0 ||
	    file_stat(volume, &volume->dirty) != 0 ||
	    file_stat(volume, &volume->precache) != 0 ||
	    file_stat(volume, &volume->import) != 0)
		return -1;
	return 0;
}

static int revision_compare(const void *a, const void *b)
{
	const struct revision *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int revision_append(struct revision **items, size_t *count,
                           size_t *capacity, const struct revision *item)
{
	if (*count == *capacity) {
		size_t grown = *capacity ? 2 * *capacity : 16;
		struct revision *bigger =
		    realloc(*items, grown * sizeof(**items));

		if (bigger == NULL)
			return -1;
		*items = bigger;
		*capacity = grown;
	}
	(*items)[(*count)++] = *item;
	return 0;
}

int revisions_list(struct volume *volume, struct revision_list *list)
{
	struct dirent *entry;
	struct revision revision;
	DIR *dir;
	int fd, rc = 0;

	memset(list, 0, sizeof(*list));
	fd = openat(volume->dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return fail(volume, ".", NULL);
	}
	while ((errno = 0, entry = readdir(dir)) != NULL) {
		enum name_kind kind =
		    volume_name_kind(volume->base, entry->d_name, &revision);

		if (kind != NAME_REVISION && kind != NAME_LEGACY)
			continue;
		/* A revision that is a symlink, directory or device was put
		 * there by someone else: refuse the volume before any tool
		 * prunes, links or reverts around it. */
		if (entry->d_type != DT_REG) {
			struct stat st;

			if (entry->d_type != DT_UNKNOWN ||
			    fstatat(volume->dir.fd, entry->d_name, &st,
			            AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode)) {
				closedir(dir);
				revisions_free(list);
				errno = EINVAL;
				return fail(volume, revision.name,
				            "not a regular file");
			}
		}
		if (kind == NAME_REVISION)
			rc = revision_append(&list->items, &list->count,
			                     &list->capacity, &revision);
		else
			rc = revision_append(&list->legacy, &list->legacy_count,
			                     &list->legacy_capacity, &revision);
		if (rc != 0)
			break;
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	closedir(dir);
	if (rc != 0) {
		revisions_free(list);
		return fail(volume, ".", NULL);
	}
	/* qsort's array may not be NULL, even when empty. */
	if (list->count > 0)
		qsort(list->items, list->count, sizeof(*list->items),
		      revision_compare);
	if (list->legacy_count > 0)
		qsort(list->legacy, list->legacy_count, sizeof(*list->legacy),
		      revision_compare);
	return 0;
}

void revisions_free(struct revision_list *list)
{
	free(list->items);
	free(list->legacy);
	memset(list, 0, sizeof(*list));
}

int volume_remove_temps(struct volume *volume, int with_import)
{
	struct dirent *entry;
	DIR *dir;
	int fd, rc = 0;

	fd = openat(volume->dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return fail(volume, ".", NULL);
	}
	/* Removing entries while reading the directory is safe: readdir may
	 * or may not return an entry removed meanwhile, nothing worse. */
	while ((entry = readdir(dir)) != NULL) {
		if (volume_name_kind(volume->base, entry->d_name, NULL) !=
		    NAME_TEMP)
			continue;
		if (durable_unlink(&volume->dir, entry->d_name) != 0 &&
		    errno != ENOENT) {
			rc = fail(volume, entry->d_name, NULL);
			break;
		}
	}
	closedir(dir);
	if (rc == 0 && with_import && volume->import.exists) {
		if (durable_unlink(&volume->dir, volume->import.name) != 0 &&
		    errno != ENOENT)
			return fail(volume, volume->import.name, NULL);
		volume->import.exists = 0;
	}
	return rc;
}

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
		return fail(volume, volume->precache.name, NULL);
	volume->precache.exists = 0;
	return 0;
}

int volume_precache_prepare(struct volume *volume, int src_fd,
                            const struct dir *src_dir, const char *src_name,
                            struct temp_file *temp)
{
	struct copy_result result;
	struct timespec times[2];
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat st;

	if (fstat(src_fd, &st) != 0)
		return fail_in(volume, src_dir, src_name);
	if (temp_create(temp, &volume->dir, volume->precache.name) != 0)
		return fail(volume, volume->precache.name, NULL);
	if (copy_data(temp->fd, src_fd, st.st_size, REFLINK_AUTO, &result) !=
	    0) {
		temp_abort(temp);
		return result.source_failed
		           ? fail_in(volume, src_dir, src_name)
		           : fail(volume, volume->precache.name, NULL);
	}
	log_op("%s %s to %s", result.cloned ? "cloned" : "copied",
	       dir_join(src_dir, src_name, src, sizeof(src)),
	       volume_path(volume, temp->name, dst));
	/* The same mtime is what marks P as a copy of this very C; the data
	 * reaches the disk now, so that installing P is a rename only. */
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = st.st_mtim;
	if (futimens(temp->fd, times) != 0 || fsync(temp->fd) != 0 ||
	    close(temp->fd) != 0) {
		temp->fd = -1;
		temp_abort(temp);
		return fail(volume, volume->precache.name, NULL);
	}
	temp->fd = -1;
	return 0;
}

int volume_precache_install(struct volume *volume, struct temp_file *temp)
{
	if (durable_rename(&volume->dir, temp->name, &volume->dir,
	                   volume->precache.name, 0) != 0) {
		temp_abort(temp);
		return fail(volume, volume->precache.name, NULL);
	}
	return file_stat(volume, &volume->precache);
}

int volume_precache_refresh(struct volume *volume)
{
	struct temp_file temp;
	int fd, rc;

	fd = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                       volume->clean.exists ? &volume->clean.st : NULL);
	if (fd < 0)
		return fail(volume, volume->clean.name, NULL);
	rc = volume_precache_prepare(volume, fd, &volume->dir,
	                             volume->clean.name, &temp);
	close(fd);
	if (rc == 0)
		rc = volume_precache_install(volume, &temp);
	return rc;
}

int volume_save_clean(struct volume *volume, struct revision_list *list)
{
	struct revision revision;
	struct stat st;
	uint64_t next = 1;
	int saved;

	if (list->count > 0) {
		const struct revision *latest = &list->items[list->count - 1];

		/* A crash between link and rename left C as the latest
		 * revision already: a second link would only duplicate it. */
		if (fstatat(volume->dir.fd, latest->name, &st,
		            AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_ino == volume->clean.st.st_ino &&
		    st.st_dev == volume->clean.st.st_dev)
			return 0;
		if (latest->id == UINT64_MAX) {
			errno = EOVERFLOW;
			return fail(volume, latest->name,
			            "no revision id is left after this one");
		}
		next = latest->id + 1;
	}
	memset(&revision, 0, sizeof(revision));
	revision.id = next;
	revision.time = volume->clean.st.st_mtim.tv_sec;
	if (revision_name_format(revision.name, sizeof(revision.name),
	                         volume->base, next, revision.time) != 0)
		return fail(volume, volume->clean.name, NULL);
	if (durable_link(&volume->dir, volume->clean.name, &volume->dir,
	                 revision.name) != 0) {
		/* A link whose directory fsync failed was made: take it back,
		 * so that the failed command changed nothing. */
		fail(volume, revision.name, NULL);
		saved = errno;
		unlinkat(volume->dir.fd, revision.name, 0);
		errno = saved;
		return -1;
	}
	if (revision_append(&list->items, &list->count, &list->capacity,
	                    &revision) != 0)
		return fail(volume, revision.name, NULL);
	return 1;
}

int volume_prune(struct volume *volume, struct revision_list *list, int keep,
                 void (*removed)(const char *path))
{
	size_t wanted = keep < 0 ? 0 : (size_t)keep, gone = 0, i;
	char path[PATH_MAX];
	int rc = 0;

	while (list->count - gone > wanted) {
		const char *name = list->items[gone].name;

		if (durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = fail(volume, name, NULL);
			break;
		}
		if (removed != NULL)
			removed(volume_path(volume, name, path));
		gone++;
	}
	for (i = gone; i < list->count; i++)
		list->items[i - gone] = list->items[i];
	list->count -= gone;
	return rc;
}

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
		fail_in(volume, from_dir, from);
		goto out;
	}
	if ((flags & REPLACE_SEAL) && image_seal(volume, fd, from) != 0)
		goto out;
	if (fsync(fd) != 0) {
		fail_in(volume, from_dir, from);
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
		fail_in(volume, from_dir, from);
		/* A rename whose directory fsync failed did happen: then it
		 * stays, and a re-run finishes the rest. */
		if (same_file(volume, from_dir, from))
			linked[0] = '\0';
		errno = saved;
		goto out;
	}
	linked[0] = '\0';
	if (file_stat(volume, &volume->clean) != 0)
		goto out;
	/* The directory is ours to change alone, under the lock: C must
	 * now be the very file that was checked and fsynced. */
	if (fstat(fd, &from_st) != 0 || !volume->clean.exists ||
	    volume->clean.st.st_dev != from_st.st_dev ||
	    volume->clean.st.st_ino != from_st.st_ino) {
		errno = EAGAIN;
		fail(volume, volume->clean.name,
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
		fail(volume, from, NULL);
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

/* The order of removal: revisions and leftovers first, C last, so that
 * an interrupted removal still leaves the file that names the volume. */
static int removal_rank(enum name_kind kind)
{
	switch (kind) {
	case NAME_REVISION:
		return 1;
	case NAME_LEGACY:
		return 2;
	case NAME_TEMP:
		return 3;
	case NAME_IMPORT:
		return 4;
	case NAME_PRECACHE:
		return 5;
	case NAME_DIRTY:
		return 6;
	case NAME_CLEAN:
		return 7;
	default:
		/* Malformed names and foreign files are not the volume's. */
		return 0;
	}
}

struct named_file {
	int rank;
	enum name_kind kind;
	struct revision revision; /* the name, and for revisions id and time */
};

static int named_file_compare(const void *a, const void *b)
{
	const struct named_file *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank - y->rank;
	return revision_compare(&x->revision, &y->revision);
}

int volume_remove_all(struct volume *volume, int dry_run,
                      void (*each)(const char *path, enum name_kind kind,
                                   void *context),
                      void *context)
{
	struct named_file *files = NULL, file;
	size_t count = 0, capacity = 0, i;
	struct dirent *entry;
	char path[PATH_MAX];
	struct stat st;
	DIR *dir;
	int fd, rc = 0;

	fd = openat(volume->dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return fail(volume, ".", NULL);
	}
	while ((errno = 0, entry = readdir(dir)) != NULL) {
		memset(&file, 0, sizeof(file));
		file.kind = volume_name_kind(volume->base, entry->d_name,
		                             &file.revision);
		file.rank = removal_rank(file.kind);
		if (file.kind == NAME_MALFORMED && each != NULL)
			each(volume_path(volume, entry->d_name, path),
			     file.kind, context);
		if (file.rank == 0)
			continue;
		/* Only revisions sort by id and time, the rest by name. */
		if (file.kind != NAME_REVISION && file.kind != NAME_LEGACY)
			memset(&file.revision, 0, sizeof(file.revision));
		snprintf(file.revision.name, sizeof(file.revision.name), "%s",
		         entry->d_name);
		/* A directory or symlink under one of the volume's names was
		 * put there by someone else: remove nothing at all. */
		if (fstatat(volume->dir.fd, entry->d_name, &st,
		            AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			rc = fail(volume, entry->d_name, NULL);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			errno = EINVAL;
			rc = fail(volume, entry->d_name,
			          "not a regular file; nothing removed");
			break;
		}
		if (count == capacity) {
			size_t grown = capacity ? 2 * capacity : 16;
			struct named_file *bigger =
			    realloc(files, grown * sizeof(*files));

			if (bigger == NULL) {
				rc = fail(volume, ".", NULL);
				break;
			}
			files = bigger;
			capacity = grown;
		}
		files[count++] = file;
	}
	if (rc == 0 && errno != 0)
		rc = fail(volume, ".", NULL);
	closedir(dir);
	if (rc == 0 && count > 0)
		qsort(files, count, sizeof(*files), named_file_compare);
	for (i = 0; rc == 0 && i < count; i++) {
		const char *name = files[i].revision.name;

		if (!dry_run && durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = fail(volume, name, NULL);
			break;
		}
		if (each != NULL)
			each(volume_path(volume, name, path), files[i].kind,
			     context);
	}
	free(files);
	if (rc == 0 && !dry_run) {
		volume->clean.exists = volume->dirty.exists = 0;
		volume->precache.exists = volume->import.exists = 0;
	}
	return rc < 0 ? -1 : (int)count;
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

/* Records a refusal: the file, a reason made from fmt, the status. */
static int refuse(struct volume *volume, const char *name, int status,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct volume *volume, const char *name, int status,
                  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(volume->error_text, sizeof(volume->error_text), fmt, ap);
	va_end(ap);
	volume_path(volume, name, volume->error_path);
	volume->error_reason = volume->error_text;
	volume->error_status = status;
	errno = status == EX_TEMPFAIL ? EBUSY : EINVAL;
	return -1;
}

/* Refuses (75) an image that another open file of it could write. */
static int image_users_refuse(struct volume *volume, int fd, const char *name)
{
	char holder[NAME_MAX + 160];

	switch (file_users(fd, holder, sizeof(holder))) {
	case 0:
		return 0;
	case 1:
		return refuse(volume, name, EX_TEMPFAIL,
		              "in use by %s: it could go on writing what "
		              "becomes the clean image; nothing changed",
		              holder);
	default:
		return fail(volume, name, NULL);
	}
}

int image_seal(struct volume *volume, int fd, const char *name)
{
	struct stat st, dir_st;

	if (fstat(fd, &st) != 0 || fstat(volume->dir.fd, &dir_st) != 0)
		return fail(volume, name, NULL);
	/* A second name may be a file outside the pool: sealing and
	 * committing it would take it from its owner. */
	if (st.st_nlink != 1)
		return refuse(volume, name, EX_DATAERR,
		              "has %ju names, so it may also be a file outside "
		              "the pool; nothing changed",
		              (uintmax_t)st.st_nlink);
	/* Used already: refused before anything changes. */
	if (image_users_refuse(volume, fd, name) != 0)
		return -1;
	if ((st.st_uid != dir_st.st_uid || st.st_gid != dir_st.st_gid) &&
	    fchown(fd, dir_st.st_uid, dir_st.st_gid) != 0)
		return fail(volume, name, NULL);
	/* fchown drops set-id bits; the mode is set afterwards anyway. */
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
		return fail(volume, name, NULL);
	/* An ACL entry could grant a user access that the mode no longer
	 * shows; the filesystem may have no ACLs at all. */
	if (fremovexattr(fd, "system.posix_acl_access") != 0 &&
	    errno != ENODATA && errno != EOPNOTSUPP)
		return fail(volume, name, NULL);
	/* Again, now that no one else may open it: whoever opened it in
	 * between could go on writing the clean image. */
	return image_users_refuse(volume, fd, name);
}

int volume_check_unused(struct volume *volume)
{
	char holder[NAME_MAX + 160];

	switch (volume_dirty_in_use(volume, holder, sizeof(holder))) {
	case 0:
		return 0;
	case 1:
		return refuse(volume, volume->dirty.name, EX_TEMPFAIL,
		              "in use by %s (is the VM still running?); "
		              "nothing changed",
		              holder);
	default:
		return fail(volume, volume->dirty.name, NULL);
	}
}

/* 1 if the file st describes is source's C or one of its revisions. */
static int source_holds(struct volume *source, const struct stat *st)
{
	struct revision_list list;
	struct stat revision_st;
	size_t i;
	int found = 0;

	if (source->clean.exists && source->clean.st.st_dev == st->st_dev &&
	    source->clean.st.st_ino == st->st_ino)
		return 1;
	if (revisions_list(source, &list) != 0)
		return -1;
	for (i = 0; i < list.count && !found; i++)
		found = fstatat(source->dir.fd, list.items[i].name,
		                &revision_st, AT_SYMLINK_NOFOLLOW) == 0 &&
		        revision_st.st_dev == st->st_dev &&
		        revision_st.st_ino == st->st_ino;
	revisions_free(&list);
	return found;
}

int volume_check_snapshot(struct volume *volume, struct volume *source)
{
	struct revision_list list;
	size_t revisions;

	if (revisions_list(volume, &list) != 0)
		return -1;
	revisions = list.count + list.legacy_count;
	revisions_free(&list);
	/* A snapshot volume never has revisions or a precache: one that
	 * has is an origin volume, named with -S by mistake. */
	if (revisions > 0 || volume->precache.exists)
		return refuse(volume, volume->clean.name, EX_DATAERR,
		              "an origin volume (it has %s), not a snapshot: "
		              "nothing changed",
		              revisions > 0 ? "revisions" : "a precache");
	/* A running snapshot has its own C beside D; D alone is a volume
	 * with snapshots disabled (-k -1), and all there is of its data. */
	if (!volume->clean.exists && volume->dirty.exists)
		return refuse(volume, volume->dirty.name, EX_DATAERR,
		              "a dirty image without a clean image is the only "
		              "copy of a volume's data, never a snapshot's: "
		              "nothing changed");
	if (!volume->clean.exists)
		return 0;
	switch (source_holds(source, &volume->clean.st)) {
	case 1:
		return 0;
	case 0:
		return refuse(volume, volume->clean.name, EX_DATAERR,
		              "not a snapshot of %s: neither its clean image "
		              "nor one of its revisions, so it may be the only "
		              "copy of this volume's data; nothing changed "
		              "(vol-remove removes a stale snapshot)",
		              source->dir.path);
	default:
		volume_path(source, ".", volume->error_path);
		volume->error_reason = source->error_reason;
		return -1;
	}
}

int volume_check_volatile(struct volume *volume)
{
	struct revision_list list;
	size_t revisions;
	const char *what = NULL;

	if (revisions_list(volume, &list) != 0)
		return -1;
	revisions = list.count + list.legacy_count;
	revisions_free(&list);
	if (volume->clean.exists)
		what = "a clean image";
	else if (revisions > 0)
		what = "revisions";
	else if (volume->precache.exists)
		what = "a precache";
	if (what == NULL)
		return 0;
	return refuse(volume,
	              volume->clean.exists ? volume->clean.name
	                                   : volume->dirty.name,
	              EX_DATAERR,
	              "not a volatile volume (it has %s, which a volatile "
	              "volume never has): nothing changed",
	              what);
}

int volume_check_type(struct volume *volume, struct volume *source,
                      int volatile_type)
{
	/* In use first: a VM runs on it, whatever the type named. */
	if (volume_check_unused(volume) != 0)
		return -1;
	if (source != NULL)
		return volume_check_snapshot(volume, source);
	return volatile_type ? volume_check_volatile(volume) : 0;
}

int volume_dirty_unwritten(struct volume *volume)
{
	int clean, dirty, rc;

	if (!volume->clean.exists || !volume->dirty.exists)
		return 0;
	clean = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                          &volume->clean.st);
	if (clean < 0)
		return fail(volume, volume->clean.name, NULL);
	dirty = file_open_checked(&volume->dir, volume->dirty.name, O_RDONLY,
	                          &volume->dirty.st);
	if (dirty < 0) {
		close(clean);
		return fail(volume, volume->dirty.name, NULL);
	}
	rc = files_unwritten_clone(clean, dirty);
	if (rc < 0)
		fail(volume, volume->dirty.name, NULL);
	close(clean);
	close(dirty);
	return rc;
}

int volume_absent(struct volume *volume)
{
	struct revision_list list;
	int absent;

	if (volume->clean.exists || volume->dirty.exists ||
	    volume->precache.exists || volume->import.exists)
		return 0;
	if (revisions_list(volume, &list) != 0)
		return -1;
	absent = list.count == 0 && list.legacy_count == 0;
	revisions_free(&list);
	return absent;
}

int volume_prune_to(struct volume *volume, int keep, const char *except)
{
	struct revision_list list;
	size_t i, kept = 0;
	int rc;

	if (revisions_list(volume, &list) != 0)
		return -1;
	for (i = 0; i < list.count; i++)
		if (except == NULL || strcmp(list.items[i].name, except) != 0)
			list.items[kept++] = list.items[i];
	list.count = kept;
	rc = volume_prune(volume, &list, keep, NULL);
	revisions_free(&list);
	return rc;
}
