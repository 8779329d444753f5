/*
 * check.h: the one assertion of the fuzz targets.  CHECK stops the run
 * with a message when an invariant is broken: libFuzzer saves the input
 * as a crash, and the replay (tests/parsers.bats) fails on it.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(condition, ...)                                                  \
	do {                                                                   \
		if (!(condition)) {                                            \
			fprintf(stderr, "invariant broken: %s: ", #condition); \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
