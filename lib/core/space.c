/*
 * space.c: what a volume's images and revisions take on the disk, by the
 * extent arithmetic of usage.c.  The members of the set are the dirty
 * image, the clean image with its precache (a clone of it, which goes
 * when C goes), each revision, and with a source (a snapshot volume's
 * SRC) SRC's clean image, which holds what it shares but is not shown.
 * A file that is another's second name (a revision that still is C's
 * inode) is one member with it, counted once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

/* The inodes already in the set, and their members. */
struct seen {
	dev_t dev;
	ino_t ino;
	size_t member;
};

struct space_build {
	struct volume_space *space;
	struct volume *volume;
	struct seen *seen;
	size_t seen_count, seen_capacity;
};

/* The member that already holds the inode st describes, or SPACE_NONE. */
static size_t seen_member(const struct space_build *b, const struct stat *st)
{
	size_t i;

	for (i = 0; i < b->seen_count; i++)
		if (b->seen[i].dev == st->st_dev &&
		    b->seen[i].ino == st->st_ino)
			return b->seen[i].member;
	return SPACE_NONE;
}

/*
 * Adds the file name of dir to member (counted: its extents are the
 * member's), unless its inode is in the set already: then returns the
 * member that has it.  A file gone meanwhile (a revision a prune took:
 * a reader holds no lock) adds nothing.  Returns the member, or
 * SPACE_NONE with errno on error (0: gone).
 */
static size_t file_add(struct space_build *b, const struct dir *dir,
                       const char *name, size_t member, int counted)
{
	struct seen *grown;
	struct stat st;
	size_t holder;
	int fd, rc;

	fd = file_open_checked(dir, name, O_RDONLY, NULL);
	if (fd < 0) {
		if (errno == ENOENT)
			errno = 0;
		return SPACE_NONE;
	}
	if (fstat(fd, &st) != 0)
		goto fail;
	holder = seen_member(b, &st);
	if (holder != SPACE_NONE) {
		close(fd);
		return holder;
	}
	grown = array_grow(b->seen, &b->seen_capacity, b->seen_count,
	                   sizeof(*grown));
	if (grown == NULL)
		goto fail;
	b->seen = grown;
	b->seen[b->seen_count].dev = st.st_dev;
	b->seen[b->seen_count].ino = st.st_ino;
	b->seen[b->seen_count++].member = member;
	rc = usage_add(&b->space->usage, member, fd, counted);
	if (rc != 0)
		goto fail;
	close(fd);
	return member;
fail:
	rc = errno;
	close(fd);
	errno = rc;
	return SPACE_NONE;
}

/* As file_add, for a file of the volume; a failure is recorded in it. */
static int volume_file_add(struct space_build *b, const char *name,
                           size_t member, int counted, size_t *got)
{
	*got = file_add(b, &b->volume->dir, name, member, counted);
	if (*got == SPACE_NONE && (errno == EOPNOTSUPP || errno == ENOTTY)) {
		errno = EOPNOTSUPP;
		return volume_fail(
		    b->volume, name,
		    "its filesystem tells no extent map (FIEMAP), "
		    "so what it holds cannot be counted");
	}
	if (*got == SPACE_NONE && errno != 0)
		return volume_fail(b->volume, name, NULL);
	return 0;
}

/* Adds D, then C with P, then the revisions, then SRC's C. */
static int members_add(struct space_build *b, const struct revision_list *list,
                       const struct volume *source)
{
	struct volume_space *s = b->space;
	struct volume *v = b->volume;
	size_t next = 0, i, got;

	if (v->dirty.exists) {
		if (volume_file_add(b, v->dirty.name, next, 1, &s->dirty) != 0)
			return -1;
		next += s->dirty == next;
	}
	if (v->clean.exists || v->precache.exists) {
		if (volume_file_add(b, v->clean.name, next, 1, &s->clean) !=
		        0 ||
		    volume_file_add(b, v->precache.name, next, 0, &got) != 0)
			return -1;
		if (s->clean == SPACE_NONE && got == next)
			s->clean = next;
		next += s->clean == next;
	}
	for (i = 0; i < list->count + list->legacy_count; i++) {
		const struct revision *r = i < list->count
		                               ? &list->items[i]
		                               : &list->legacy[i - list->count];

		if (volume_file_add(b, r->name, next, 1, &s->revision[i]) != 0)
			return -1;
		next += s->revision[i] == next;
	}
	if (source != NULL && source->clean.exists) {
		s->source =
		    file_add(b, &source->dir, source->clean.name, next, 0);
		if (s->source == SPACE_NONE && errno != 0) {
			dir_join(&source->dir, source->clean.name,
			         v->error_path, sizeof(v->error_path));
			v->error_reason = NULL;
			return -1;
		}
		next += s->source == next;
	}
	s->members = next;
	return 0;
}

int volume_space_read(struct volume *volume, const struct revision_list *list,
                      const struct volume *source, struct volume_space *space)
{
	size_t revisions = list->count + list->legacy_count, i;
	struct space_build b = {space, volume, NULL, 0, 0};
	int rc;

	memset(space, 0, sizeof(*space));
	space->dirty = space->clean = space->source = SPACE_NONE;
	/* At most one member per file: D, C (with P), revisions, SRC's C. */
	if (usage_init(&space->usage, revisions + 3) != 0)
		return volume_fail(volume, ".", NULL);
	space->revision = malloc((revisions + 1) * sizeof(*space->revision));
	if (space->revision == NULL) {
		volume_space_free(space);
		return volume_fail(volume, ".", NULL);
	}
	for (i = 0; i < revisions; i++)
		space->revision[i] = SPACE_NONE;
	rc = members_add(&b, list, source);
	free(b.seen);
	if (rc == 0)
		rc = usage_compute(&space->usage, NULL);
	if (rc != 0) {
		rc = errno;
		volume_space_free(space);
		errno = rc;
		return -1;
	}
	return 0;
}

void volume_space_free(struct volume_space *space)
{
	usage_free(&space->usage);
	free(space->revision);
	space->revision = NULL;
}

uint64_t space_exclusive(const struct volume_space *space, size_t member)
{
	return member == SPACE_NONE ? 0 : space->usage.exclusive[member];
}

uint64_t space_revision_frees(const struct volume_space *space, size_t i)
{
	size_t member = space->revision[i];

	/* A revision that is C's (or D's) inode frees nothing: its name
	 * goes, its data stays. */
	if (member == space->clean || member == space->dirty)
		return 0;
	return space_exclusive(space, member);
}

uint64_t space_extents(const struct volume_space *space, size_t member)
{
	return member == SPACE_NONE ? 0 : space->usage.extents[member];
}

int volume_space_prune(struct volume_space *space, size_t count,
                       uint64_t *freed)
{
	unsigned char *subset = calloc(space->usage.members, 1);
	size_t i;
	int rc;

	if (subset == NULL)
		return -1;
	/* A revision that is C's inode frees nothing when its name goes. */
	for (i = 0; i < count; i++)
		if (space->revision[i] != SPACE_NONE &&
		    space->revision[i] != space->clean &&
		    space->revision[i] != space->dirty)
			subset[space->revision[i]] = 1;
	rc = usage_compute(&space->usage, subset);
	*freed = space->usage.freed;
	free(subset);
	return rc;
}
