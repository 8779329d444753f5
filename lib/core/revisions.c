/*
 * revisions.c: a volume's revisions, listed in id order with their pins,
 * saved from C and pruned by a retention plan (the newest N, time
 * buckets, pins); and the removal of a whole volume, revisions first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
                              struct revision_list *list,
                              struct revision_list *markers)
{
	struct revision revision;
	enum name_kind kind;
	struct stat st;
	int rc;

	memset(&revision, 0, sizeof(revision));
	kind = volume_name_kind(volume->base, entry->d_name, &revision);
	/* Pin markers are matched with their revisions once all are read. */
	if (kind == NAME_PIN)
		return revision_append(&markers->items, &markers->count,
		                       &markers->capacity, &revision) != 0
		           ? volume_fail(volume, ".", NULL)
		           : 0;
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
	struct revision_list markers;
	struct dirent *entry;
	DIR *dir;
	int rc = 0, saved;

	memset(list, 0, sizeof(*list));
	memset(&markers, 0, sizeof(markers));
	dir = dir_stream(&volume->dir);
	if (dir == NULL)
		return volume_fail(volume, ".", NULL);
	while (rc == 0 && (errno = 0, entry = readdir(dir)) != NULL)
		rc = revision_entry_add(volume, entry, list, &markers);
	if (rc == 0 && errno != 0)
		rc = volume_fail(volume, ".", NULL);
	saved = errno;
	closedir(dir);
	if (rc != 0) {
		revisions_free(list);
		revisions_free(&markers);
		errno = saved;
		return -1;
	}
	/* qsort's array may not be NULL, even when empty. */
	if (list->count > 0)
		qsort(list->items, list->count, sizeof(*list->items),
		      revision_compare);
	pins_mark(volume, list, markers.items, markers.count);
	revisions_free(&markers);
	if (list->legacy_count > 0)
		qsort(list->legacy, list->legacy_count, sizeof(*list->legacy),
		      revision_compare);
	return 0;
}

const struct revision *revision_with_id(const struct revision_list *list,
                                        const char *text)
{
	uint64_t id;
	size_t i;

	/* No revision has an id too large for a uint64_t. */
	if (number_parse(text, UINT64_MAX, &id) != 0)
		return NULL;
	for (i = 0; i < list->count; i++)
		if (list->items[i].id == id)
			return &list->items[i];
	return NULL;
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
	size_t wanted = keep < 0 ? 0 : (size_t)keep, unpinned = 0, i;

	for (i = 0; i < list->count; i++)
		unpinned += !list->items[i].pinned;
	return unpinned > wanted ? unpinned - wanted : 0;
}

const char *const bucket_names[BUCKETS] = {"hourly", "daily", "weekly",
                                           "monthly", "yearly"};

/* Appends a reason to decision, after a comma if it has one already. */
static void __attribute__((format(printf, 2, 3)))
reason_add(struct retention_decision *decision, const char *fmt, ...)
{
	size_t at = strlen(decision->reason);
	va_list args;

	if (at > 0 && at + 2 < sizeof(decision->reason)) {
		memcpy(decision->reason + at, ", ", 3);
		at += 2;
	}
	va_start(args, fmt);
	vsnprintf(decision->reason + at, sizeof(decision->reason) - at, fmt,
	          args);
	va_end(args);
}

/*
 * Writes the label of the bucket of kind that holds when into label.  An
 * ISO week is numbered in its ISO year, which is not always the calendar
 * year: 2026-12-31 is in 2026-W53, and so is 2027-01-01.
 */
static void bucket_label(time_t when, enum retention_bucket kind, int local,
                         char *label, size_t size)
{
	struct tm tm;
	size_t length = 0;

	if ((local ? localtime_r(&when, &tm) : gmtime_r(&when, &tm)) != NULL)
		switch (kind) {
		case BUCKET_HOURLY:
			length = strftime(label, size, "%Y-%m-%dT%H", &tm);
			break;
		case BUCKET_DAILY:
			length = strftime(label, size, "%Y-%m-%d", &tm);
			break;
		case BUCKET_WEEKLY:
			length = strftime(label, size, "%G-W%V", &tm);
			break;
		case BUCKET_MONTHLY:
			length = strftime(label, size, "%Y-%m", &tm);
			break;
		default:
			length = strftime(label, size, "%Y", &tm);
		}
	if (length == 0)
		snprintf(label, size, "?");
}

/* Orders indexes of revisions newest first: by time, then by id. */
static int newest_first(const void *a, const void *b, void *items)
{
	const struct revision *revisions = items;
	const struct revision *x = &revisions[*(const size_t *)a];
	const struct revision *y = &revisions[*(const size_t *)b];

	if (x->time != y->time)
		return x->time > y->time ? -1 : 1;
	if (x->id != y->id)
		return x->id > y->id ? -1 : 1;
	return 0;
}

/* Keeps the newest revision of each of the latest count buckets of kind
 * that hold one; order: the unpinned revisions, newest first. */
static void buckets_keep(const struct revision_list *list, const size_t *order,
                         size_t unpinned, enum retention_bucket kind,
                         const struct retention *policy,
                         struct retention_decision *decisions)
{
	char last[32] = "", label[32];
	size_t i;
	int seen = 0;

	for (i = 0; i < unpinned && seen < policy->buckets[kind]; i++) {
		bucket_label(list->items[order[i]].time, kind, policy->local,
		             label, sizeof(label));
		/* Newest first, a bucket's revisions come one after another:
		 * the first of them is its newest. */
		if (strcmp(label, last) == 0)
			continue;
		seen++;
		memcpy(last, label, sizeof(last));
		decisions[order[i]].keep = 1;
		reason_add(&decisions[order[i]], "%s %s", bucket_names[kind],
		           label);
	}
}

long retention_plan(const struct revision_list *list,
                    const struct retention *policy,
                    struct retention_decision *decisions)
{
	size_t *order, unpinned = 0, newest = 0, i;
	long removed = 0;
	int kind;

	if (list->count == 0)
		return 0;
	memset(decisions, 0, list->count * sizeof(*decisions));
	order = malloc(list->count * sizeof(*order));
	if (order == NULL)
		return -1;
	/* The newest by id, as a plain prune counts them. */
	for (i = list->count; i-- > 0;) {
		if (list->items[i].pinned) {
			decisions[i].keep = 1;
			reason_add(&decisions[i], "pinned");
		} else if (policy->keep > 0 && newest < (size_t)policy->keep) {
			decisions[i].keep = 1;
			reason_add(&decisions[i], "newest %zu", ++newest);
		}
	}
	for (i = 0; i < list->count; i++)
		if (!list->items[i].pinned)
			order[unpinned++] = i;
	if (unpinned > 0)
		qsort_r(order, unpinned, sizeof(*order), newest_first,
		        list->items);
	for (kind = 0; kind < BUCKETS; kind++)
		buckets_keep(list, order, unpinned, (enum retention_bucket)kind,
		             policy, decisions);
	for (i = 0; i < list->count; i++)
		if (!decisions[i].keep) {
			reason_add(&decisions[i], "no rule keeps it");
			removed++;
		}
	free(order);
	return removed;
}

int volume_prune_planned(struct volume *volume, struct revision_list *list,
                         const struct retention_decision *decisions,
                         int dry_run,
                         void (*removed)(const char *path, size_t index,
                                         void *context),
                         void *context)
{
	char path[PATH_MAX];
	size_t i, kept = 0;
	int rc = 0;

	/* The lowest ids go first; a dry run names the same ones. */
	for (i = 0; i < list->count; i++) {
		const char *name = list->items[i].name;
		int gone = rc == 0 && !decisions[i].keep;

		if (gone && !dry_run &&
		    durable_unlink(&volume->dir, name) != 0 &&
		    errno != ENOENT) {
			rc = volume_fail(volume, name, NULL);
			gone = 0;
		}
		if (gone && removed != NULL)
			removed(volume_path(volume, name, path), i, context);
		if (!gone || dry_run)
			list->items[kept++] = list->items[i];
	}
	list->count = kept;
	return rc;
}

int volume_prune(struct volume *volume, struct revision_list *list, int keep,
                 int dry_run,
                 void (*removed)(const char *path, size_t index, void *context),
                 void *context)
{
	struct retention policy = {.keep = keep};
	struct retention_decision *decisions;
	int rc;

	if (list->count == 0)
		return 0;
	decisions = calloc(list->count, sizeof(*decisions));
	if (decisions == NULL || retention_plan(list, &policy, decisions) < 0) {
		free(decisions);
		errno = ENOMEM;
		return volume_fail(volume, ".", NULL);
	}
	rc = volume_prune_planned(volume, list, decisions, dry_run, removed,
	                          context);
	free(decisions);
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
	case NAME_PIN:
		/* After the revisions: a crash in between leaves a marker
		 * without its revision, never a pinned one without it. */
		return 3;
	case NAME_TEMP:
		return 4;
	case NAME_IMPORT:
		return 5;
	case NAME_PRECACHE:
		return 6;
	case NAME_DIRTY:
		return 7;
	case NAME_CLEAN:
		return 8;
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
