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

int revisions_list(struct volume *volume, struct revision_list *list)
{
	struct dirent *entry;
	struct revision revision;
	DIR *dir;
	int rc = 0;

	memset(list, 0, sizeof(*list));
	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
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
				return volume_fail(volume, revision.name,
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
		return volume_fail(volume, ".", NULL);
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
			rc = volume_fail(volume, name, NULL);
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
	struct named_file *files = NULL, *grown, file;
	size_t count = 0, capacity = 0, i;
	struct dirent *entry;
	char path[PATH_MAX];
	struct stat st;
	DIR *dir;
	int rc = 0;

	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
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
			rc = volume_fail(volume, entry->d_name, NULL);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			errno = EINVAL;
			rc = volume_fail(volume, entry->d_name,
			                 "not a regular file; nothing removed");
			break;
		}
		grown = array_grow(files, &capacity, count, sizeof(*files));
		if (grown == NULL) {
			rc = volume_fail(volume, ".", NULL);
			break;
		}
		files = grown;
		files[count++] = file;
	}
	if (rc == 0 && errno != 0)
		rc = volume_fail(volume, ".", NULL);
	closedir(dir);
	if (rc == 0 && count > 0)
		qsort(files, count, sizeof(*files), named_file_compare);
	for (i = 0; rc == 0 && i < count; i++) {
		const char *name = files[i].revision.name;

		if (!dry_run && durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = volume_fail(volume, name, NULL);
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
