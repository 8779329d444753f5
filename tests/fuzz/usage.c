/*
 * usage.c: libFuzzer target for the extent arithmetic of usage_compute():
 * what each member of a set of files holds alone, and what removing a
 * subset of them frees.
 *
 * The input is read as: one byte, the number of members (1 to 8); one
 * byte, the subset (bit i: member i is in it); then 4 bytes per range:
 * its member, its start (0 to 255), its length (0 to 63) and whether the
 * filesystem marks it shared (bit 0).  The answers of the sweep are
 * compared with a reference that counts each of the 320 byte positions
 * on its own, by the rule usage.c documents: a position that one member
 * alone references is exclusive to it, unless it is referenced once and
 * marked shared; a position referenced by members of the subset only is
 * freed, on the same terms.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core.h"

#define MEMBERS_MAX 8
#define POSITIONS 320

struct reference {
	uint64_t exclusive[MEMBERS_MAX], freed;
};

/* Who references each byte position: counted one by one. */
static unsigned refs[POSITIONS][MEMBERS_MAX], shared[POSITIONS];

static void reference_count(size_t members, unsigned subset,
                            struct reference *ref)
{
	size_t p, m;

	memset(ref, 0, sizeof(*ref));
	for (p = 0; p < POSITIONS; p++) {
		unsigned total = 0, distinct = 0, outside = 0, only = 0;

		for (m = 0; m < members; m++) {
			total += refs[p][m];
			if (refs[p][m] > 0) {
				distinct++;
				only = (unsigned)m;
				if (!(subset >> m & 1))
					outside++;
			}
		}
		if (total == 0 || (total == 1 && shared[p] == 1))
			continue;
		if (distinct == 1)
			ref->exclusive[only]++;
		if (outside == 0)
			ref->freed++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char in_subset[MEMBERS_MAX];
	struct reference ref;
	struct usage usage;
	size_t members, i, p, m;
	unsigned subset;

	if (size < 2)
		return 0;
	members = 1 + data[0] % MEMBERS_MAX;
	subset = data[1];
	memset(refs, 0, sizeof(refs));
	memset(shared, 0, sizeof(shared));
	CHECK(usage_init(&usage, members) == 0, "usage_init");
	for (i = 2; i + 4 <= size; i += 4) {
		size_t member = data[i] % members;
		uint64_t start = data[i + 1], length = data[i + 2] % 64;
		int is_shared = data[i + 3] & 1;

		CHECK(usage_add_range(&usage, member, start, length,
		                      is_shared) == 0,
		      "usage_add_range");
		for (p = start; p < start + length; p++) {
			refs[p][member]++;
			shared[p] += (unsigned)is_shared;
		}
	}
	for (m = 0; m < members; m++)
		in_subset[m] = subset >> m & 1;
	CHECK(usage_compute(&usage, in_subset) == 0, "usage_compute");
	reference_count(members, subset, &ref);
	for (m = 0; m < members; m++)
		CHECK(usage.exclusive[m] == ref.exclusive[m],
		      "member %zu: exclusive %llu, expected %llu", m,
		      (unsigned long long)usage.exclusive[m],
		      (unsigned long long)ref.exclusive[m]);
	CHECK(usage.freed == ref.freed, "freed %llu, expected %llu",
	      (unsigned long long)usage.freed, (unsigned long long)ref.freed);
	/* Computing again, without a subset, gives the same exclusive bytes
	 * and frees nothing. */
	CHECK(usage_compute(&usage, NULL) == 0, "usage_compute");
	for (m = 0; m < members; m++)
		CHECK(usage.exclusive[m] == ref.exclusive[m],
		      "member %zu again: %llu", m,
		      (unsigned long long)usage.exclusive[m]);
	CHECK(usage.freed == 0, "freed without a subset");
	usage_free(&usage);
	return 0;
}
