/*
 * extent.c: a file's extent map, as FIEMAP tells it: which physical ranges
 * of the disk hold which logical ranges of the file.  Two files whose maps
 * are equal hold the same bytes by construction (the very same blocks at
 * the same offsets): a clone that nobody wrote, told apart from a written
 * one without reading a byte of either.
 */
#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core.h"

/* Extents asked for per FIEMAP call: 14 KiB of buffer. */
#define FIEMAP_BATCH 256

/* Flags that say where the data is, not how: LAST marks the end of the
 * map, SHARED changes when another file shares or stops sharing it. */
#define EXTENT_FLAGS_COMPARED                                                  \
	(FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |                      \
	 FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED |                \
	 FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |               \
	 FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_UNWRITTEN |                   \
	 FIEMAP_EXTENT_MERGED)

int extent_each(int fd, int sync,
                int (*each)(const struct extent *extent, void *context),
                void *context)
{
	struct fiemap *request;
	struct extent item;
	uint64_t start = 0;
	int last = 0, rc = 0;
	unsigned i;

	request = malloc(sizeof(*request) +
	                 FIEMAP_BATCH * sizeof(struct fiemap_extent));
	if (request == NULL)
		return -1;
	while (!last && rc == 0) {
		memset(request, 0, sizeof(*request));
		request->fm_start = start;
		request->fm_length = FIEMAP_MAX_OFFSET - start;
		request->fm_flags = sync ? FIEMAP_FLAG_SYNC : 0;
		request->fm_extent_count = FIEMAP_BATCH;
		if (ioctl(fd, FS_IOC_FIEMAP, request) != 0) {
			rc = -1;
			break;
		}
		if (request->fm_mapped_extents == 0)
			break;
		for (i = 0; i < request->fm_mapped_extents && rc == 0; i++) {
			const struct fiemap_extent *e = &request->fm_extents[i];

			item.logical = e->fe_logical;
			item.physical = e->fe_physical;
			item.length = e->fe_length;
			item.flags = e->fe_flags;
			start = e->fe_logical + e->fe_length;
			if (e->fe_flags & FIEMAP_EXTENT_LAST)
				last = 1;
			rc = each(&item, context);
		}
	}
	free(request);
	return rc;
}

int extent_count(int fd, uint64_t *count)
{
	struct fiemap request;

	memset(&request, 0, sizeof(request));
	request.fm_length = FIEMAP_MAX_OFFSET;
	request.fm_extent_count = 0;
	if (ioctl(fd, FS_IOC_FIEMAP, &request) != 0)
		return -1;
	*count = request.fm_mapped_extents;
	return 0;
}

static int extent_append(const struct extent *extent, void *context)
{
	struct extent_map *map = context;
	struct extent *grown = array_grow(map->items, &map->capacity,
	                                  map->count, sizeof(*map->items));

	if (grown == NULL)
		return -1;
	map->items = grown;
	map->items[map->count++] = *extent;
	return 0;
}

int extent_map_read(int fd, struct extent_map *map)
{
	memset(map, 0, sizeof(*map));
	if (extent_each(fd, 0, extent_append, map) == 0)
		return 0;
	extent_map_free(map);
	return -1;
}

void extent_map_free(struct extent_map *map)
{
	free(map->items);
	memset(map, 0, sizeof(*map));
}

int extent_maps_equal(const struct extent_map *a, const struct extent_map *b)
{
	size_t i;

	if (a->count != b->count)
		return 0;
	for (i = 0; i < a->count; i++) {
		const struct extent *x = &a->items[i], *y = &b->items[i];

		/* Data not yet on disk has no physical address to compare. */
		if ((x->flags | y->flags) &
		    (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC))
			return 0;
		if (x->logical != y->logical || x->physical != y->physical ||
		    x->length != y->length ||
		    (x->flags & EXTENT_FLAGS_COMPARED) !=
		        (y->flags & EXTENT_FLAGS_COMPARED))
			return 0;
	}
	return 1;
}

static int extent_compare_physical(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	if (x->physical != y->physical)
		return x->physical < y->physical ? -1 : 1;
	return 0;
}

int extent_maps_overlap(const struct extent_map *a, const struct extent_map *b)
{
	struct extent *ranges;
	size_t i, n = 0;
	int overlap = 0;

	if (a->count == 0 || b->count == 0)
		return 0;
	ranges = malloc(b->count * sizeof(*ranges));
	if (ranges == NULL)
		return -1;
	for (i = 0; i < b->count; i++)
		if (!(b->items[i].flags &
		      (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC)))
			ranges[n++] = b->items[i];
	qsort(ranges, n, sizeof(*ranges), extent_compare_physical);
	/* The union of b's physical ranges, as disjoint sorted intervals:
	 * a file may reference one extent more than once. */
	if (n > 0) {
		size_t merged = 0;

		for (i = 1; i < n; i++) {
			struct extent *last = &ranges[merged];

			if (ranges[i].physical <=
			    last->physical + last->length) {
				uint64_t end =
				    ranges[i].physical + ranges[i].length;

				if (end > last->physical + last->length)
					last->length = end - last->physical;
			} else
				ranges[++merged] = ranges[i];
		}
		n = merged + 1;
	}
	for (i = 0; i < a->count && !overlap; i++) {
		const struct extent *x = &a->items[i];
		size_t low = 0, high = n;

		if (x->flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC))
			continue;
		/* The first interval that ends after x starts. */
		while (low < high) {
			size_t mid = low + (high - low) / 2;

			if (ranges[mid].physical + ranges[mid].length <=
			    x->physical)
				low = mid + 1;
			else
				high = mid;
		}
		overlap =
		    low < n && ranges[low].physical < x->physical + x->length;
	}
	free(ranges);
	return overlap;
}

/* Flags that leave an extent's place on the disk unknown, or not the
 * place of these very bytes (a compressed extent is named by its start
 * whatever part of it a file uses): such a range is read, never taken
 * for unchanged. */
#define EXTENT_PLACE_UNSURE                                                    \
	(FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |                      \
	 FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_ENCRYPTED |                \
	 FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_DATA_INLINE |               \
	 FIEMAP_EXTENT_DATA_TAIL)

/* The extent of map that covers offset, or the next one after it: its
 * index, from *i on (maps are in logical order). */
static size_t extent_at(const struct extent_map *map, size_t i, uint64_t offset)
{
	while (i < map->count &&
	       map->items[i].logical + map->items[i].length <= offset)
		i++;
	return i;
}

/* Whether the extent e holds data at offset (not a hole, not unwritten
 * space, which reads as zeros), and where the next change of that is. */
static int extent_data(const struct extent_map *map, size_t i, uint64_t offset,
                       uint64_t *next)
{
	const struct extent *e = i < map->count ? &map->items[i] : NULL;

	if (e == NULL) {
		*next = UINT64_MAX;
		return 0;
	}
	if (e->logical > offset) {
		*next = e->logical;
		return 0;
	}
	*next = e->logical + e->length;
	return !(e->flags & FIEMAP_EXTENT_UNWRITTEN);
}

/* True if offset lies on the same block of the disk in both extents. */
static int same_place(const struct extent *a, const struct extent *b,
                      uint64_t offset)
{
	if ((a->flags | b->flags) & EXTENT_PLACE_UNSURE)
		return 0;
	return a->physical + (offset - a->logical) ==
	       b->physical + (offset - b->logical);
}

/* Calls each() for a range, joined with the one before when they touch
 * and are of one kind. */
struct change_run {
	int (*each)(uint64_t offset, uint64_t length, int zero, void *context);
	void *context;
	uint64_t offset, length;
	int zero;
};

static int change_add(struct change_run *run, uint64_t offset, uint64_t length,
                      int zero)
{
	int rc;

	if (run->length > 0 && run->zero == zero &&
	    run->offset + run->length == offset) {
		run->length += length;
		return 0;
	}
	if (run->length > 0 && (rc = run->each(run->offset, run->length,
	                                       run->zero, run->context)) != 0)
		return rc;
	run->offset = offset;
	run->length = length;
	run->zero = zero;
	return 0;
}

int extent_changes(const struct extent_map *to, const struct extent_map *from,
                   uint64_t size,
                   int (*each)(uint64_t offset, uint64_t length, int zero,
                               void *context),
                   void *context)
{
	struct change_run run = {each, context, 0, 0, 0};
	uint64_t offset = 0, to_next, from_next, end;
	size_t i = 0, j = 0;
	int to_data, from_data, rc;

	while (offset < size) {
		i = extent_at(to, i, offset);
		j = from != NULL ? extent_at(from, j, offset) : 0;
		to_data = extent_data(to, i, offset, &to_next);
		from_data =
		    from != NULL && extent_data(from, j, offset, &from_next);
		if (from == NULL)
			from_next = UINT64_MAX;
		end = to_next < from_next ? to_next : from_next;
		if (end > size)
			end = size;
		rc = 0;
		if (to_data &&
		    !(from_data &&
		      same_place(&to->items[i], &from->items[j], offset)))
			rc = change_add(&run, offset, end - offset, 0);
		else if (!to_data && from_data)
			rc = change_add(&run, offset, end - offset, 1);
		if (rc != 0)
			return rc;
		offset = end;
	}
	return run.length > 0 ? each(run.offset, run.length, run.zero, context)
	                      : 0;
}
