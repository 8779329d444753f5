/*
 * usage.c: what files cost on a disk they share.  Clones share extents,
 * so a file's size, or its st_blocks, counts again every byte it shares
 * with others.  Here the physical ranges of every file of a set (a
 * volume's images and revisions) are laid on one line: each stretch of
 * the disk is referenced by some members of the set, and a stretch
 * referenced by one member alone is what removing that member frees.
 *
 * The ranges of all members are sorted by their start and swept once,
 * with a heap of the ranges open at the current point ordered by their
 * end: O(E log E) time for E extents, and 16 bytes for each of them
 * (and as much again, for a while, for the sort), plus
 * the heap's 4 for each range open at once.
 *
 * What the kernel tells is the limit of what can be known.  A range
 * referenced once in the set yet marked SHARED is shared with a file
 * outside it (or, on btrfs, another part of its extent is referenced:
 * btrfs frees an extent only when no byte of it is referenced), so it
 * is not counted as freed.  A compressed extent counts its logical
 * length.  Data not yet written has no place on the disk: every map is
 * read after a sync of the file's dirty pages.
 */
#include <errno.h>
#include <linux/fiemap.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* One physical range of a member's file: 16 bytes.  A longer extent
 * than a length holds (4 GiB) is kept as several ranges. */
struct usage_range {
	uint64_t start;
	uint32_t length;
	unsigned member : 31;
	unsigned shared : 1; /* marked SHARED by the filesystem */
};

#define RANGE_LENGTH_MAX (UINT32_C(1) << 31)
#define MEMBERS_MAX (UINT32_C(1) << 31)

int usage_init(struct usage *usage, size_t members)
{
	memset(usage, 0, sizeof(*usage));
	if (members == 0 || members >= MEMBERS_MAX) {
		errno = EINVAL;
		return -1;
	}
	usage->extents = calloc(members, sizeof(*usage->extents));
	usage->exclusive = calloc(members, sizeof(*usage->exclusive));
	if (usage->extents == NULL || usage->exclusive == NULL) {
		usage_free(usage);
		return -1;
	}
	usage->members = members;
	return 0;
}

void usage_free(struct usage *usage)
{
	free(usage->ranges);
	free(usage->extents);
	free(usage->exclusive);
	memset(usage, 0, sizeof(*usage));
}

struct adding {
	struct usage *usage;
	uint32_t member;
	int counted; /* the file's extents count for the member */
};

int usage_add_range(struct usage *usage, size_t member, uint64_t start,
                    uint64_t length, int shared)
{
	struct usage_range *grown;
	uint32_t piece;

	if (member >= usage->members || start + length < start) {
		errno = EINVAL;
		return -1;
	}
	usage->computed = 0;
	for (; length > 0; start += piece, length -= piece) {
		piece = length > RANGE_LENGTH_MAX ? RANGE_LENGTH_MAX
		                                  : (uint32_t)length;
		if (usage->count == UINT32_MAX) {
			errno = EOVERFLOW;
			return -1;
		}
		grown = array_grow(usage->ranges, &usage->capacity,
		                   usage->count, sizeof(*usage->ranges));
		if (grown == NULL)
			return -1;
		usage->ranges = grown;
		grown[usage->count].start = start;
		grown[usage->count].length = piece;
		grown[usage->count].member = (unsigned)member;
		grown[usage->count].shared = shared != 0;
		usage->count++;
	}
	return 0;
}

static int range_add(const struct extent *extent, void *context)
{
	struct adding *adding = context;

	if (adding->counted)
		adding->usage->extents[adding->member]++;
	/* Inline data lives in the metadata; delayed or unknown data has
	 * no place yet: none of them is a range of the disk. */
	if (extent->flags &
	    (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
	     FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED))
		return 0;
	return usage_add_range(adding->usage, adding->member, extent->physical,
	                       extent->length,
	                       (extent->flags & FIEMAP_EXTENT_SHARED) != 0);
}

int usage_add(struct usage *usage, size_t member, int fd, int counted)
{
	struct adding adding = {usage, (uint32_t)member, counted};

	if (member >= usage->members) {
		errno = EINVAL;
		return -1;
	}
	return extent_each(fd, 1, range_add, &adding);
}

static int range_compare(const void *a, const void *b)
{
	const struct usage_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* A binary min-heap of indexes of open ranges, by their end. */
struct heap {
	const struct usage_range *ranges;
	uint32_t *items;
	size_t count, capacity;
};

static uint64_t heap_end(const struct heap *heap, size_t i)
{
	const struct usage_range *r = &heap->ranges[heap->items[i]];

	return r->start + r->length;
}

static void heap_swap(struct heap *heap, size_t i, size_t j)
{
	uint32_t item = heap->items[i];

	heap->items[i] = heap->items[j];
	heap->items[j] = item;
}

static int heap_push(struct heap *heap, uint32_t index)
{
	uint32_t *grown = array_grow(heap->items, &heap->capacity, heap->count,
	                             sizeof(*heap->items));
	size_t i = heap->count++;

	if (grown == NULL) {
		heap->count--;
		return -1;
	}
	heap->items = grown;
	heap->items[i] = index;
	while (i > 0 && heap_end(heap, (i - 1) / 2) > heap_end(heap, i)) {
		heap_swap(heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

static uint32_t heap_pop(struct heap *heap)
{
	uint32_t top = heap->items[0];
	size_t i = 0, child;

	heap->items[0] = heap->items[--heap->count];
	for (;;) {
		child = 2 * i + 1;
		if (child >= heap->count)
			break;
		if (child + 1 < heap->count &&
		    heap_end(heap, child + 1) < heap_end(heap, child))
			child++;
		if (heap_end(heap, i) <= heap_end(heap, child))
			break;
		heap_swap(heap, i, child);
		i = child;
	}
	return top;
}

/* Who references the stretch of the disk at the sweep's point. */
struct holders {
	uint32_t *refs;      /* per member: its ranges open here */
	size_t distinct;     /* members with a range open here */
	uint64_t member_sum; /* the sum of those members' numbers */
	size_t total;        /* ranges open here */
	size_t outside;      /* of them, ranges of members not in subset */
	size_t shared;       /* of them, ranges marked SHARED */
};

static void holders_change(struct holders *h, const struct usage_range *r,
                           const unsigned char *subset, int delta)
{
	if (delta > 0 && h->refs[r->member]++ == 0) {
		h->distinct++;
		h->member_sum += r->member;
	} else if (delta < 0 && --h->refs[r->member] == 0) {
		h->distinct--;
		h->member_sum -= r->member;
	}
	h->total += (size_t)delta;
	h->shared += r->shared ? (size_t)delta : 0;
	if (subset == NULL || !subset[r->member])
		h->outside += (size_t)delta;
}

/* Counts the stretch of length bytes that h references. */
static void stretch_count(struct usage *usage, const struct holders *h,
                          const unsigned char *subset, uint64_t length)
{
	/* Referenced once here, yet shared: with something outside. */
	if (h->total == 0 || (h->total == 1 && h->shared == 1))
		return;
	if (h->distinct == 1)
		usage->exclusive[h->member_sum] += length;
	if (subset != NULL && h->outside == 0)
		usage->freed += length;
}

int usage_compute(struct usage *usage, const unsigned char *subset)
{
	struct heap heap = {usage->ranges, NULL, 0, 0};
	struct holders h;
	size_t next = 0;
	uint64_t point = 0, until;
	int rc = 0;

	memset(&h, 0, sizeof(h));
	h.refs = calloc(usage->members, sizeof(*h.refs));
	if (h.refs == NULL)
		return -1;
	memset(usage->exclusive, 0, usage->members * sizeof(*usage->exclusive));
	usage->freed = 0;
	if (usage->count > 0)
		qsort(usage->ranges, usage->count, sizeof(*usage->ranges),
		      range_compare);
	while (rc == 0 && (next < usage->count || heap.count > 0)) {
		/* The next point where a range opens or closes. */
		until = heap.count > 0 ? heap_end(&heap, 0) : UINT64_MAX;
		if (next < usage->count && usage->ranges[next].start < until)
			until = usage->ranges[next].start;
		if (until > point)
			stretch_count(usage, &h, subset, until - point);
		point = until;
		while (heap.count > 0 && heap_end(&heap, 0) == point)
			holders_change(&h, &usage->ranges[heap_pop(&heap)],
			               subset, -1);
		while (rc == 0 && next < usage->count &&
		       usage->ranges[next].start == point) {
			holders_change(&h, &usage->ranges[next], subset, 1);
			rc = heap_push(&heap, (uint32_t)next++);
		}
	}
	free(heap.items);
	free(h.refs);
	if (rc == 0)
		usage->computed = 1;
	return rc;
}
