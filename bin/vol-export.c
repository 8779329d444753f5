/*
 * vol-export: write a state of a volume (its clean image, or a revision)
 * as an rbd diff v1 stream on standard output: in full, or as the changes
 * from an older state, found from the two images' extent maps without
 * reading what they share.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

/* Data is read and written this much at a time. */
#define CHUNK (1024 * 1024)

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-export [-qv] [-i FROM] [-r REV] VOLUME > STREAM\n");
}

/* One state of the volume, opened. */
struct state {
	int fd;
	struct stat st;
	char name[STATE_NAME_SIZE];
	char file[NAME_MAX + 1];
};

/* What is being written, and where it stands. */
struct export
{
	struct state to, from;
	int incremental;
	char *buf;
	uint64_t total, done; /* bytes to read, read */
	int write_failed;     /* errno was standard output's */
};

/* Opens the volume's file name as a state; 0, or -1 (errno). */
static int state_open(struct volume *volume, const char *name, struct state *s)
{
	s->fd = file_open_checked(&volume->dir, name, O_RDONLY, NULL);
	if (s->fd < 0)
		return -1;
	if (fstat(s->fd, &s->st) != 0 ||
	    state_name_read(s->fd, s->name, sizeof(s->name)) != 0) {
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	snprintf(s->file, sizeof(s->file), "%s", name);
	return 0;
}

/* True if the volume's file name is the state wanted (by name, or with
 * by_name 0 any); then s holds it open. */
static int state_is(struct volume *volume, const char *name, const char *wanted,
                    int by_name, struct state *s)
{
	if (state_open(volume, name, s) != 0)
		return 0;
	if (!by_name || strcmp(s->name, wanted) == 0)
		return 1;
	close(s->fd);
	s->fd = -1;
	return 0;
}

/* Finds the state WANTED names: "clean" for C, a revision id, or a state
 * name of C or of a revision.  Returns the exit status. */
static int state_find(struct volume *volume, const struct revision_list *list,
                      const char *wanted, struct state *s)
{
	const char *clean = volume->clean.exists ? volume->clean.name : NULL;
	uint64_t id;
	size_t i;
	int by_id = number_parse(wanted, UINT64_MAX, &id) == 0;

	s->fd = -1;
	if (clean != NULL && strcmp(wanted, "clean") == 0 &&
	    state_is(volume, clean, wanted, 0, s))
		return 0;
	if (clean != NULL && !by_id && state_is(volume, clean, wanted, 1, s))
		return 0;
	for (i = 0; i < list->count; i++)
		if ((!by_id || list->items[i].id == id) &&
		    state_is(volume, list->items[i].name, wanted, !by_id, s))
			return 0;
	log_errx("%s: no such state: %s (a revision id, a state name, or "
	         "clean)",
	         volume->dir.path, wanted);
	return EX_NOINPUT;
}

/* Writes the range of the file being exported: zeros as 'z' records
 * (or, in a full stream, left out), the rest as 'w'. */
static int range_write(uint64_t offset, uint64_t length, int zero,
                       void *context)
{
	struct export *x = context;
	size_t n, k;
	ssize_t got;

	if (zero)
		return x->incremental
		           ? diff_write_zero(STDOUT_FILENO, offset, length)
		           : 0;
	while (length > 0) {
		n = length < CHUNK ? (size_t)length : CHUNK;
		got = pread(x->to.fd, x->buf, n, (off_t)offset);
		if (got <= 0) {
			if (got == 0)
				errno = EIO; /* shorter than its size */
			return -1;
		}
		n = (size_t)got;
		for (k = 0; k < n && x->buf[k] == 0; k++)
			;
		x->write_failed = 1;
		if (k < n &&
		    diff_write_data(STDOUT_FILENO, offset, x->buf, n) != 0)
			return -1;
		if (k == n && x->incremental &&
		    diff_write_zero(STDOUT_FILENO, offset, n) != 0)
			return -1;
		x->write_failed = 0;
		progress_update(n);
		offset += n;
		length -= n;
	}
	return 0;
}

/* Adds the bytes a range makes to read, for the progress line. */
static int range_count(uint64_t offset, uint64_t length, int zero,
                       void *context)
{
	struct export *x = context;

	(void)offset;
	if (!zero)
		x->total += length;
	return 0;
}

/* Writes the stream; 0, or -1 with errno (x->write_failed: of stdout). */
static int stream_write(struct export *x)
{
	struct extent_map to, from;
	uint64_t size = (uint64_t)x->to.st.st_size;
	int rc = -1;

	memset(&from, 0, sizeof(from));
	if (extent_map_read(x->to.fd, &to) != 0)
		return -1;
	if (x->incremental && extent_map_read(x->from.fd, &from) != 0)
		goto out;
	x->write_failed = 1;
	if (diff_write_header(STDOUT_FILENO) != 0 ||
	    (x->incremental &&
	     diff_write_name(STDOUT_FILENO, 'f', x->from.name) != 0) ||
	    diff_write_name(STDOUT_FILENO, 't', x->to.name) != 0 ||
	    diff_write_size(STDOUT_FILENO, size) != 0)
		goto out;
	x->write_failed = 0;
	extent_changes(&to, x->incremental ? &from : NULL, size, range_count,
	               x);
	progress_start(x->total);
	if (extent_changes(&to, x->incremental ? &from : NULL, size,
	                   range_write, x) != 0)
		goto out;
	progress_finish();
	x->write_failed = 1;
	if (diff_write_end(STDOUT_FILENO) != 0)
		goto out;
	x->write_failed = 0;
	rc = 0;
out:
	extent_map_free(&to);
	extent_map_free(&from);
	return rc;
}

/* Finds REV and FROM in the volume; returns the exit status. */
static int states_find(struct volume *volume, struct export *x, const char *rev,
                       const char *from)
{
	struct revision_list list;
	int status;

	if (revisions_list(volume, &list) != 0)
		return volume_report_error(volume, errno);
	status = state_find(volume, &list, rev, &x->to);
	if (status == 0 && from != NULL)
		status = state_find(volume, &list, from, &x->from);
	revisions_free(&list);
	if (status == 0 && from != NULL &&
	    strcmp(x->from.name, x->to.name) == 0) {
		log_errx("%s: -i %s and -r %s are the same state",
		         volume->dir.path, from, rev);
		status = EX_USAGE;
	}
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"incremental", required_argument, NULL, 'i'},
	    {"revision", required_argument, NULL, 'r'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct export x = {
	    {-1, {0}, "", ""}, {-1, {0}, "", ""}, 0, NULL, 0, 0, 0};
	struct volume volume;
	const char *rev = "clean", *from = NULL, *what;
	int ch, status;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "i:r:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		if (ch == 'i')
			from = optarg;
		else if (ch == 'r')
			rev = optarg;
		else
			option_common(ch);
	}
	operands_expect(argc - optind, argv + optind, 1, 1);
	/* Binary data on a terminal is never what was meant. */
	if (isatty(STDOUT_FILENO))
		usage_error("standard output is a terminal: redirect it to a "
		            "file or a pipe");
	if (volume_open(&volume, argv[optind], 0) != 0)
		return volume_report_error(&volume, errno);
	status = states_find(&volume, &x, rev, from);
	if (status != 0)
		return status;
	x.incremental = from != NULL;
	x.buf = malloc(CHUNK);
	if (x.buf == NULL) {
		log_errc(errno, "cannot export");
		return EX_SOFTWARE;
	}
	status = 0;
	if (stream_write(&x) != 0) {
		what = x.write_failed ? "standard output" : x.to.file;
		log_errc(errno, "%s%s%s", x.write_failed ? "" : volume.dir.path,
		         x.write_failed ? "" : "/", what);
		status =
		    x.write_failed ? EX_IOERR : exit_status_for_errno(errno);
	} else
		log_op("exported %s/%s (%s)%s%s", volume.dir.path, x.to.file,
		       x.to.name, x.incremental ? " from " : "",
		       x.incremental ? x.from.name : "");
	free(x.buf);
	volume_close(&volume);
	return status;
}
