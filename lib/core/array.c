/*
 * array.c: the one growable array of the tools.  An array is a pointer,
 * a count and a capacity kept by its owner; array_grow makes room for one
 * more item, doubling the capacity, and refuses a size that would
 * overflow.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "core.h"

void *array_grow(void *items, size_t *capacity, size_t count, size_t size)
{
	size_t grown = *capacity ? 2 * *capacity : 16;
	void *bigger;

	if (count < *capacity)
		return items;
	if (grown < *capacity || grown > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	bigger = realloc(items, grown * size);
	if (bigger == NULL)
		return NULL;
	*capacity = grown;
	return bigger;
}
