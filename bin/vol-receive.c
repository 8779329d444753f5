/*
 * vol-receive: apply an rbd diff v1 stream (from vol-export, or from
 * "rbd export-diff") read on standard input to a volume.  A full stream
 * makes the volume's data anew; an incremental one applies to a clone of
 * C when C is the state it starts from, so that what did not change stays
 * shared.  The result is committed like vol-commit commits D: the old C
 * becomes a revision, and the new C carries the stream's snapshot name.
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
	        "usage: vol-receive [-qv] [-k N] [--precache=now|later] "
	        "[-w SECONDS] VOLUME < STREAM\n");
}

/* A stream being received. */
struct receive {
	struct diff_reader reader;
	struct volume *volume;
	struct temp_file temp;
	char *buf;
	int temp_open;
};

/* Reports a stream that breaks the format; 65. */
static int stream_refused(const struct receive *r)
{
	if (r->reader.reason == NULL) {
		log_errc(errno, "standard input");
		return exit_status_for_errno(errno);
	}
	log_errx("standard input: %s (at byte %llu): nothing changed",
	         r->reader.reason, (unsigned long long)r->reader.consumed);
	return EX_DATAERR;
}

/* Reads the header and the metadata records, up to the first data
 * record (kept in *first) or the end.  Returns the exit status. */
static int metadata_read(struct receive *r, struct diff_record *first)
{
	if (diff_read_header(&r->reader) != 0)
		return stream_refused(r);
	do {
		if (diff_read_record(&r->reader, first) != 0)
			return stream_refused(r);
	} while (first->tag == 'f' || first->tag == 't' || first->tag == 's');
	if (!r->reader.has_size) {
		r->reader.reason = "no size record";
		errno = EINVAL;
		return stream_refused(r);
	}
	if (r->reader.has_to && !state_name_valid(r->reader.to)) {
		r->reader.reason = "a snapshot name with \"/\", \"@\", a space "
		                   "or a control character";
		errno = EINVAL;
		return stream_refused(r);
	}
	return 0;
}

/* Applies one data record to the temp file. */
static int record_apply(struct receive *r, const struct diff_record *rec)
{
	uint64_t offset = rec->offset, left = rec->length;
	size_t n;

	if (rec->tag == 'z') {
		if (fallocate(r->temp.fd,
		              FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		              (off_t)offset, (off_t)left) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -2;
		memset(r->buf, 0, CHUNK);
	}
	while (left > 0) {
		n = left < CHUNK ? (size_t)left : CHUNK;
		if (rec->tag == 'w' &&
		    diff_read_data(&r->reader, r->buf, n) != 0)
			return -1;
		if (pwrite(r->temp.fd, r->buf, n, (off_t)offset) != (ssize_t)n)
			return -2;
		progress_update(n);
		offset += n;
		left -= n;
	}
	return 0;
}

/* Applies the data records from first to the end; 0, -1 (the stream:
 * r->reader.reason, or errno), -2 (the temp file: errno). */
static int records_apply(struct receive *r, struct diff_record *rec)
{
	int rc;

	progress_start(0);
	while (rec->tag != 'e') {
		rc = record_apply(r, rec);
		if (rc != 0)
			return rc;
		if (diff_read_record(&r->reader, rec) != 0)
			return -1;
	}
	progress_finish();
	return diff_read_trailing(&r->reader) == 0 ? 0 : -1;
}

/* The base of the new C: an empty file for a full stream, a clone of C
 * for an incremental one; then the stream's size. */
static int base_make(struct receive *r)
{
	struct volume *v = r->volume;
	struct copy_result result;
	int fd, rc = 0;

	if (temp_create(&r->temp, &v->dir, v->import.name) != 0)
		return -1;
	r->temp_open = 1;
	if (r->reader.has_from) {
		fd = file_open_checked(&v->dir, v->clean.name, O_RDONLY,
		                       &v->clean.st);
		if (fd < 0)
			return -1;
		rc = copy_data(r->temp.fd, fd, v->clean.st.st_size,
		               REFLINK_AUTO, &result);
		close(fd);
	}
	if (rc == 0)
		rc = ftruncate(r->temp.fd, (off_t)r->reader.size);
	return rc;
}

/* The state name of C, or "" if there is no C. */
static int clean_name(struct volume *v, char *name, size_t size)
{
	int fd, rc;

	name[0] = '\0';
	if (!v->clean.exists)
		return 0;
	fd = file_open_checked(&v->dir, v->clean.name, O_RDONLY, &v->clean.st);
	if (fd < 0)
		return volume_fail(v, v->clean.name, NULL);
	rc = state_name_read(fd, name, size);
	close(fd);
	return rc == 0 ? 0 : volume_fail(v, v->clean.name, NULL);
}

/* Reads the rest of a stream that changes nothing: the volume has its
 * state already.  Returns the exit status. */
static int stream_drain(struct receive *r, struct diff_record *rec)
{
	while (rec->tag != 'e') {
		if (rec->tag == 'w' && rec->length > 0) {
			uint64_t left = rec->length;

			while (left > 0) {
				size_t n = left < CHUNK ? (size_t)left : CHUNK;

				if (diff_read_data(&r->reader, r->buf, n) != 0)
					return stream_refused(r);
				left -= n;
			}
		}
		if (diff_read_record(&r->reader, rec) != 0)
			return stream_refused(r);
	}
	return diff_read_trailing(&r->reader) == 0 ? 0 : stream_refused(r);
}

/* Checks that C is the state the stream starts from (*done: it is the
 * state the stream makes already).  Returns the exit status. */
static int base_check(struct receive *r, int *done)
{
	char name[STATE_NAME_SIZE], path[PATH_MAX];
	struct volume *v = r->volume;

	if (clean_name(v, name, sizeof(name)) != 0)
		return volume_report_error(v, errno);
	*done = r->reader.has_to && strcmp(name, r->reader.to) == 0;
	if (*done || !r->reader.has_from || strcmp(name, r->reader.from) == 0)
		return 0;
	log_errx("%s: base is %s, stream starts from %s: nothing changed",
	         volume_path(v, v->clean.name, path),
	         name[0] != '\0' ? name : "nothing (no clean image)",
	         r->reader.from);
	return EX_DATAERR;
}

/* Writes the stream's data onto the base, names it, and stages it as I;
 * returns the exit status. */
static int stage(struct receive *r, struct diff_record *rec)
{
	struct volume *v = r->volume;
	char path[PATH_MAX];
	int rc, err;

	volume_path(v, v->import.name, path);
	if (base_make(r) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	rc = records_apply(r, rec);
	if (rc == -1)
		return stream_refused(r);
	if (rc == 0 && r->reader.has_to &&
	    state_name_write(r->temp.fd, r->reader.to) != 0)
		rc = -2;
	if (rc == 0 && temp_commit(&r->temp, 0) == 0) {
		r->temp_open = 0;
		return 0;
	}
	err = errno;
	/* temp_commit may have renamed before its fsync failed: a staging
	 * file that does not become C goes. */
	if (rc == 0 && unlinkat(v->dir.fd, v->import.name, 0) == 0)
		dir_sync(&v->dir);
	r->temp_open = rc != 0;
	log_errc(err, "%s", path);
	return exit_status_for_errno(err);
}

/* Makes the staged I the new C; returns the exit status. */
static int stage_commit(struct receive *r, const struct keep_policy *policy)
{
	struct volume *v = r->volume;
	char path[PATH_MAX];
	int status;

	if (volume_replace_clean(v, NULL, v->import.name,
	                         REPLACE_SAVE | REPLACE_SEAL, policy) != 0) {
		status = volume_report_error(v, errno);
		/* A staging file that did not become C is of no use. */
		if (durable_unlink(&v->dir, v->import.name) != 0 &&
		    errno != ENOENT)
			log_errc(errno, "%s",
			         volume_path(v, v->import.name, path));
		return status;
	}
	log_op("received %s into %s",
	       r->reader.has_to ? r->reader.to : "a stream",
	       volume_path(v, v->clean.name, path));
	return 0;
}

/* Receives into the open, locked volume; returns the exit status. */
static int receive(struct receive *r, struct diff_record *rec,
                   const struct keep_policy *policy)
{
	struct volume *v = r->volume;
	char path[PATH_MAX];
	int status, done = 0;

	if (v->dirty.exists) {
		log_errx("%s: the volume is dirty; commit or discard it before "
		         "receiving",
		         volume_path(v, v->dirty.name, path));
		return EX_TEMPFAIL;
	}
	if (volume_remove_temps(v, 1) != 0)
		return volume_report_error(v, errno);
	status = base_check(r, &done);
	if (status != 0)
		return status;
	if (done) {
		/* A receive cut short after it replaced C: only what it
		 * left undone is done. */
		log_warnx("%s is %s already: nothing to receive",
		          volume_path(v, v->clean.name, path), r->reader.to);
		status = stream_drain(r, rec);
		if (status == 0 && volume_finish(v, policy) != 0)
			status = volume_report_error(v, errno);
		return status;
	}
	status = stage(r, rec);
	return status != 0 ? status : stage_commit(r, policy);
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"keep", required_argument, NULL, 'k'},
	    LONG_OPTION_PRECACHE,
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct keep_policy policy = {0};
	struct diff_record first;
	struct receive r;
	struct volume volume;
	int ch, status, wait_seconds = -1;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "k:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		if (ch == 'k')
			option_keep(optarg, &policy);
		else if (ch == OPTION_PRECACHE)
			option_precache(optarg, &policy);
		else if (ch == 'w')
			wait_seconds = option_wait(optarg);
		else
			option_common(ch);
	}
	operands_expect(argc - optind, argv + optind, 1, 1);
	if (isatty(STDIN_FILENO))
		usage_error("standard input is a terminal: redirect it from a "
		            "stream");
	memset(&r, 0, sizeof(r));
	diff_reader_init(&r.reader, STDIN_FILENO);
	r.buf = malloc(CHUNK);
	if (r.buf == NULL) {
		log_errc(errno, "cannot receive");
		return EX_SOFTWARE;
	}
	/* A stream that is no stream is refused before anything is made. */
	status = metadata_read(&r, &first);
	if (status == 0)
		status =
		    volume_open_locked(&volume, argv[optind], 1, wait_seconds);
	if (status == 0) {
		r.volume = &volume;
		status = receive(&r, &first, &policy);
		if (r.temp_open)
			temp_abort(&r.temp);
		volume_close(&volume);
	}
	free(r.buf);
	return status;
}
