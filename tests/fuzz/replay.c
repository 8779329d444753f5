/*
 * replay.c: runs a fuzz target on given files without libFuzzer, so that
 * the checked-in corpus and the crashes found become plain regression
 * tests (tests/parsers.bats) that need no clang.  Prints each file before
 * running it, so the file that fails is the last one named.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char *argv[])
{
	static uint8_t data[1 << 16];
	int i;

	for (i = 1; i < argc; i++) {
		FILE *file = fopen(argv[i], "rb");
		size_t size;

		if (file == NULL) {
			perror(argv[i]);
			return 2;
		}
		size = fread(data, 1, sizeof(data), file);
		fclose(file);
		fprintf(stderr, "replay: %s\n", argv[i]);
		LLVMFuzzerTestOneInput(data, size);
	}
	return 0;
}
