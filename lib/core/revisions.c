/*
 * revisions.c: a volume's revisions, listed in id order, saved from C and
 * pruned; and the removal of a whole volume, revisions first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int revision_compare(const void *a, const void *b)
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
	struct revision *grown =
	    array_grow(*items, capacity, *count, sizeof(**items));

	if (grown == NULL)
		return -1;
	*items = grown;
	grown[(*count)++] = *item;
	return 0;
}

/*
 * Adds the directory entry to list if it is one of the volume's revisions.
 * A revision that is a symlink, directory or device was put there by
 * someone else: EINVAL refuses the volume before any tool prunes, links
 * or reverts around it.
 */
static int revision_entry_add(struct volume *volume, const struct dirent *entry,
                              struct revision_list *list)
{
	struct revision revision;
	enum name_kind kind =
	    volume_name_kind(volume->base, entry->d_name, &revision);
	struct stat st;
	int rc;

	if (kind != NAME_REVISION && kind != NAME_LEGACY)
		return 0;
	if (entry->d_type != DT_REG &&
	    (entry->d_type != DT_UNKNOWN ||
	     fstatat(volume->dir.fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
	         0 ||
	     !S_ISREG(st.st_mode))) {
		errno = EINVAL;
		return volume_fail(volume, revision.name, "not a regular file");
	}
	if (kind == NAME_REVISION)
		rc = revision_append(&list->items, &list->count,
		                     &list->capacity, &revision);
	else
		rc = revision_append(&list->legacy, &list->legacy_count,
		                     &list->legacy_capacity, &revision);
	return rc != 0 ? volume_fail(volume, ".", NULL) : 0;
}

int revisions_list(struct volume *volume, struct revision_list *list)
{
	struct dirent *entry;
	DIR *dir;
	int rc = 0, saved;

	memset(list, 0, sizeof(*list));
	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
	while (rc == 0 && (errno = 0, entry = readdir(dir)) != NULL)
		rc = revision_entry_add(volume, entry, list);
	if (rc == 0 && errno != 0)
		rc = volume_fail(volume, ".", NULL);
	saved = errno;
	closedir(dir);
	if (rc != 0) {
		revisions_free(list);
		errno = saved;
		return -1;
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
			return volume_fail(
			    volume, latest->name,
			    "no revision id is left after this one");
		}
		next = latest->id + 1;
	}
	memset(&revision, 0, sizeof(revision));
	revision.id = next;
	revision.time = volume->clean.st.st_mtim.tv_sec;
	if (revision_name_format(revision.name, sizeof(revision.name),
	                         volume->base, next, revision.time) != 0)
		return volume_fail(volume, volume->clean.name, NULL);
	if (durable_link(&volume->dir, volume->clean.name, &volume->dir,
	                 revision.name) != 0) {
		/* A link whose directory fsync failed was made: take it back,
		 * so that the failed command changed nothing. */
		volume_fail(volume, revision.name, NULL);
		saved = errno;
		unlinkat(volume->dir.fd, revision.name, 0);
		errno = saved;
		return -1;
	}
	if (revision_append(&list->items, &list->count, &list->capacity,
	                    &revision) != 0)
		return volume_fail(volume, revision.name, NULL);
	return 1;
}

size_t prune_count(const struct revision_list *list, int keep)
{
	size_t wanted = keep < 0 ? 0 : (size_t)keep;

	return list->count > wanted ? list->count - wanted : 0;
}

int volume_prune(struct volume *volume, struct revision_list *list, int keep,
                 int dry_run,
                 void (*removed)(const char *path, size_t index, void *context),
                 void *context)
{
	size_t gone, count = prune_count(list, keep), i;
	char path[PATH_MAX];
	int rc = 0;

	/* The lowest ids go first; a dry run names the same ones. */
	for (gone = 0; gone < count; gone++) {
		const char *name = list->items[gone].name;

		if (!dry_run && durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = volume_fail(volume, name, NULL);
			break;
		}
		if (removed != NULL)
			removed(volume_path(volume, name, path), gone, context);
	}
	if (dry_run)
		return 0;
	for (i = gone; i < list->count; i++)
		list->items[i - gone] = list->items[i];
	list->count -= gone;
	return rc;
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
	rc = volume_prune(volume, &list, keep, 0, NULL, NULL);
	revisions_free(&list);
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

/* The volume's files found so far, to remove in order. */
struct named_files {
	struct named_file *items;
	size_t count, capacity;
};

/*
 * Adds the directory entry to files if it is one of the volume's files;
 * first tells each() of a malformed revision name.  A directory or
 * symlink under one of the volume's names was put there by someone else:
 * EINVAL, and nothing at all is removed.
 */
static int named_entry_add(struct volume *volume, const char *name,
                           struct named_files *files,
                           void (*each)(const char *path, enum name_kind kind,
                                        void *context),
                           void *context)
{
	struct named_file file, *grown;
	char path[PATH_MAX];
	struct stat st;

	memset(&file, 0, sizeof(file));
	file.kind = volume_name_kind(volume->base, name, &file.revision);
	file.rank = removal_rank(file.kind);
	if (file.kind == NAME_MALFORMED && each != NULL)
		each(volume_path(volume, name, path), file.kind, context);
	if (file.rank == 0)
		return 0;
	/* Only revisions sort by id and time, the rest by name. */
	if (file.kind != NAME_REVISION && file.kind != NAME_LEGACY)
		memset(&file.revision, 0, sizeof(file.revision));
	snprintf(file.revision.name, sizeof(file.revision.name), "%s", name);
	if (fstatat(volume->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : volume_fail(volume, name, NULL);
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return volume_fail(volume, name,
		                   "not a regular file; nothing removed");
	}
	grown = array_grow(files->items, &files->capacity, files->count,
	                   sizeof(*files->items));
	if (grown == NULL)
		return volume_fail(volume, ".", NULL);
	files->items = grown;
	files->items[files->count++] = file;
	return 0;
}

/* Lists the volume's files into files, in the order of removal. */
static int named_files_list(struct volume *volume, struct named_files *files,
                            void (*each)(const char *path, enum name_kind kind,
                                         void *context),
                            void *context)
{
	struct dirent *entry;
	DIR *dir;
	int rc = 0, saved;

	memset(files, 0, sizeof(*files));
	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
	while (rc == 0 && (errno = 0, entry = readdir(dir)) != NULL)
		rc = named_entry_add(volume, entry->d_name, files, each,
		                     context);
	if (rc == 0 && errno != 0)
		rc = volume_fail(volume, ".", NULL);
	saved = errno;
	closedir(dir);
	errno = saved;
	if (rc == 0 && files->count > 0)
		qsort(files->items, files->count, sizeof(*files->items),
		      named_file_compare);
	return rc;
}

int volume_remove_all(struct volume *volume, int dry_run,
                      void (*each)(const char *path, enum name_kind kind,
                                   void *context),
                      void *context)
{
	struct named_files files;
	char path[PATH_MAX];
	size_t i;
	int rc;

	rc = named_files_list(volume, &files, each, context);
	for (i = 0; rc == 0 && i < files.count; i++) {
		const char *name = files.items[i].revision.name;

		if (!dry_run && durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = volume_fail(volume, name, NULL);
			break;
		}
		if (each != NULL)
			each(volume_path(volume, name, path),
			     files.items[i].kind, context);
	}
	free(files.items);
	if (rc == 0 && !dry_run) {
		volume->clean.exists = volume->dirty.exists = 0;
		volume->precache.exists = volume->import.exists = 0;
	}
	return rc < 0 ? -1 : (int)files.count;
}
