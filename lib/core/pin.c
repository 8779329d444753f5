/*
 * pin.c: pinned revisions.  A revision "B.img.N@TIME" is pinned by an
 * empty file beside it, "B.img.N@TIME.pin" (its marker), that root or the
 * VM directory's owner made: no prune, no -k of any tool and no vol-remove
 * without -f removes a pinned revision.  The marker is made like every
 * other file (temp file, fsync, rename, fsync of the directory), so that
 * a crash leaves it whole or not at all; it is removed after its revision
 * (vol-remove -f), so that a crash never leaves a pinned revision without
 * its marker, only a marker without its revision (an orphan, which
 * pool-check --repair removes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int pin_stat_trusted(const struct stat *st, uid_t owner)
{
	return S_ISREG(st->st_mode) && st->st_size == 0 &&
	       (st->st_uid == 0 || st->st_uid == owner);
}

/* The owner of the volume's VM directory, or root's uid if unknown. */
static uid_t directory_owner(const struct volume *volume)
{
	struct stat st;

	return fstat(volume->dir.fd, &st) == 0 ? st.st_uid : 0;
}

int pin_state(struct volume *volume, const char *marker)
{
	struct stat st;

	if (fstatat(volume->dir.fd, marker, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return PIN_NONE;
		return volume_fail(volume, marker, NULL);
	}
	if (S_ISDIR(st.st_mode))
		return PIN_DIRECTORY;
	return pin_stat_trusted(&st, directory_owner(volume)) ? PIN_TRUSTED
	                                                      : PIN_UNTRUSTED;
}

/* Finds the revision with id in list (ascending ids), or NULL. */
static struct revision *revision_by_id(struct revision_list *list, uint64_t id)
{
	size_t low = 0, high = list->count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (list->items[middle].id == id)
			return &list->items[middle];
		if (list->items[middle].id < id)
			low = middle + 1;
		else
			high = middle;
	}
	return NULL;
}

void pins_mark(struct volume *volume, struct revision_list *list,
               const struct revision *markers, size_t count)
{
	uid_t owner;
	struct revision *revision;
	struct stat st;
	size_t i;

	if (count == 0)
		return;
	owner = directory_owner(volume);
	for (i = 0; i < count; i++) {
		revision = revision_by_id(list, markers[i].id);
		/* A marker names its revision's time too: one left by an
		 * earlier revision of the same id pins nothing. */
		if (revision == NULL || revision->time != markers[i].time)
			continue;
		/* A marker that is not an empty file of root's or of the
		 * directory's owner was not made by vol-pin: it pins nothing,
		 * and pool-check reports it. */
		if (fstatat(volume->dir.fd, markers[i].name, &st,
		            AT_SYMLINK_NOFOLLOW) == 0 &&
		    pin_stat_trusted(&st, owner))
			revision->pinned = 1;
	}
}

int volume_pin(struct volume *volume, const struct revision *revision)
{
	char marker[NAME_MAX + 1];
	struct temp_file temp;
	int state;

	/* Room for the marker's temp name too. */
	if (pin_name_format(marker, sizeof(marker) - 7, revision->name) != 0)
		return volume_fail(volume, revision->name,
		                   "its pin marker's name would be too long");
	state = pin_state(volume, marker);
	if (state < 0 || state == PIN_TRUSTED)
		return state < 0 ? -1 : 0;
	if (state != PIN_NONE) {
		errno = EINVAL;
		return volume_fail(volume, marker,
		                   "in the way of the pin marker: not an empty "
		                   "regular file of root's or of the VM "
		                   "directory's owner; remove it by hand");
	}
	if (temp_create(&temp, &volume->dir, marker) != 0)
		return volume_fail(volume, marker, NULL);
	/* The marker holds nothing: the fsync of temp_commit is cheap, and
	 * the rename makes it appear whole or not at all. */
	if (temp_commit(&temp, RENAME_NOREPLACE) != 0)
		return volume_fail(volume, marker, NULL);
	return 1;
}

int volume_unpin(struct volume *volume, const struct revision *revision)
{
	char marker[NAME_MAX + 1];
	int state;

	if (pin_name_format(marker, sizeof(marker), revision->name) != 0)
		return 0; /* no such name can exist */
	state = pin_state(volume, marker);
	if (state < 0 || state == PIN_NONE)
		return state < 0 ? -1 : 0;
	if (state == PIN_DIRECTORY) {
		errno = EINVAL;
		return volume_fail(volume, marker,
		                   "a directory, not a pin marker; remove it "
		                   "by hand");
	}
	/* Whatever else is under the marker's name goes, as asked; a
	 * symbolic link is removed itself, never followed. */
	if (durable_unlink(&volume->dir, marker) != 0)
		return volume_fail(volume, marker, NULL);
	return 1;
}
