/*
 * progress.c: a single stderr line, rewritten in place, that tells how far a
 * long copy has come.  Clones are instant and never show it; copies show it
 * by default only on a terminal and above 64 MiB, so scripts and logs see
 * nothing unless they ask with --progress.
 *
 * A copy from a pipe has no total (progress_start(0)): its line has the
 * bytes and the rate, no time left, and appears once 64 MiB have passed.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define PROGRESS_THRESHOLD (64ULL * 1024 * 1024)
/* Twice a second is enough for a person and costs nothing. */
#define PROGRESS_INTERVAL 0.5

static enum progress_mode mode = PROGRESS_AUTO;
static int active, shown;
static uint64_t total, done;
static double started, last_shown;
static int last_length;

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

/* Writes seconds as M:SS, or H:MM:SS from an hour on. */
static const char *duration_format(double seconds, char *buf, size_t length)
{
	unsigned long s = seconds < 0 ? 0 : (unsigned long)(seconds + 0.5);

	if (s >= 3600)
		snprintf(buf, length, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
		         s % 60);
	else
		snprintf(buf, length, "%lu:%02lu", s / 60, s % 60);
	return buf;
}

static void progress_print(void)
{
	char done_text[32], total_text[32], rate_text[32], left_text[32];
	double elapsed = now() - started;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	int length;

	human_size((double)done, done_text, sizeof(done_text));
	human_size(rate, rate_text, sizeof(rate_text));
	if (total == 0)
		length = fprintf(stderr, "\r%s: %s, %s/s", program_name,
		                 done_text, rate_text);
	else
		length = fprintf(
		    stderr, "\r%s: %s / %s, %s/s, %s left", program_name,
		    done_text,
		    human_size((double)total, total_text, sizeof(total_text)),
		    rate_text,
		    rate > 0 && done <= total
		        ? duration_format((double)(total - done) / rate,
		                          left_text, sizeof(left_text))
		        : "-:--");
	/* Blank out what is left of a longer previous line. */
	if (length > 0 && length < last_length)
		fprintf(stderr, "%*s", last_length - length, "");
	if (length > last_length)
		last_length = length;
	fflush(stderr);
	shown = 1;
	last_shown = now();
}

void progress_start(uint64_t bytes)
{
	total = bytes;
	done = 0;
	shown = 0;
	last_length = 0;
	started = last_shown = now();
	active = mode == PROGRESS_ALWAYS ||
	         (mode == PROGRESS_AUTO && isatty(STDERR_FILENO));
	if (active && mode == PROGRESS_ALWAYS)
		progress_print();
}

void progress_update(uint64_t done_now)
{
	double t;

	done += done_now;
	if (!active)
		return;
	/* Without --progress the line waits for a copy above 64 MiB: a
	 * known total tells at once, an unknown one once 64 MiB passed. */
	if (!shown && mode == PROGRESS_AUTO &&
	    (total != 0 ? total : done) <= PROGRESS_THRESHOLD)
		return;
	t = now();
	if (!shown || t - last_shown >= PROGRESS_INTERVAL)
		progress_print();
}

void progress_finish(void)
{
	if (shown) {
		progress_print();
		fputc('\n', stderr);
		fflush(stderr);
	}
	active = shown = 0;
}
