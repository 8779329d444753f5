/*
 * progress.c: a single stderr line, rewritten in place, that tells how far a
 * long copy has come.  Clones are instant and never show it; copies show it
 * by default only on a terminal and above 64 MiB, so scripts and logs see
 * nothing unless they ask with --progress.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "reflink.h"

#define PROGRESS_THRESHOLD (64ULL * 1024 * 1024)

static enum progress_mode mode = PROGRESS_AUTO;
static int shown;
static uint64_t total, done;
static double started, last_shown;

void progress_set_mode(enum progress_mode new_mode)
{
	mode = new_mode;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_print(void)
{
	char done_text[32], total_text[32], rate_text[32];
	double elapsed = now() - started;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	long left = rate > 0 ? (long)((double)(total - done) / rate) : 0;

	fprintf(stderr, "\r%s: %s / %s, %s/s, %ld:%02ld left   ", program_name,
	        human_size((double)done, done_text, sizeof(done_text)),
	        human_size((double)total, total_text, sizeof(total_text)),
	        human_size(rate, rate_text, sizeof(rate_text)), left / 60,
	        left % 60);
	fflush(stderr);
	last_shown = now();
}

void progress_start(uint64_t bytes)
{
	total = bytes;
	done = 0;
	started = last_shown = now();
	shown = mode == PROGRESS_ALWAYS ||
	        (mode == PROGRESS_AUTO && total > PROGRESS_THRESHOLD &&
	         isatty(STDERR_FILENO));
	if (shown)
		progress_print();
}

void progress_update(uint64_t done_now)
{
	done += done_now;
	/* Twice a second is enough for a person and costs nothing. */
	if (shown && now() - last_shown >= 0.5)
		progress_print();
}

void progress_finish(void)
{
	if (!shown)
		return;
	done = total;
	progress_print();
	fputc('\n', stderr);
	shown = 0;
}
