/*
 * vol-list: list the volumes in directories, or (-r) in a whole pool, one
 * line per volume as TAB-separated fields, or as a JSON array.  A reader
 * on the scanner of the core: it takes no exclusive lock and changes
 * nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-list [-jqrv] [--unsafe-dirs] POOL|DIR...\n");
}

/* Opens the operand path as a directory, trusted as every tool's.
 * Returns 0, or the exit status (logged). */
static int operand_open(struct dir *dir, const char *path)
{
	char culprit[PATH_MAX + 64];
	struct stat st;
	int rc;

	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		log_errx("%s: not a directory", path);
		return EX_DATAERR;
	}
	rc = dir_open_trusted(dir, path, culprit, sizeof(culprit));
	if (rc > 0) {
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you, who could lead the tools outside the "
		         "pool (--unsafe-dirs accepts it)",
		         path, culprit);
		return EX_NOPERM;
	}
	if (rc < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	return 0;
}

static void volume_write(struct record_writer *writer,
                         const struct scan_volume *v)
{
	record_begin(writer);
	field_text(writer, "path", v->path);
	field_text(writer, "type", v->type);
	field_text(writer, "state", v->state);
	field_number(writer, "size", (long long)v->size);
	field_unsigned(writer, "usage", v->usage);
	field_unsigned(writer, "revisions", v->revisions);
	if (v->has_latest)
		field_unsigned(writer, "latest", v->latest);
	else
		field_null(writer, "latest");
	record_end(writer);
}

/* Logs what kept the scan from seeing everything: a directory it could
 * not read, a lock it could not take.  Returns the first one's status. */
static int scan_failures(const struct pool_scan *scan)
{
	const struct finding *f;
	size_t i;
	int status = 0, err;

	for (i = 0; i < scan->problem_count; i++) {
		err = scan->problems[i].err;
		log_errc(err, "%s: %s", scan->problems[i].path,
		         scan->problems[i].what);
		if (status == 0)
			status = exit_status_for_errno(err);
	}
	for (i = 0; i < scan->finding_count; i++) {
		f = &scan->findings[i];
		if (f->code != FINDING_UNREADABLE)
			continue;
		log_errc(f->err, "%s", f->path);
		if (status == 0)
			status = exit_status_for_errno(f->err);
	}
	return status;
}

static int volume_compare(const void *a, const void *b)
{
	const struct scan_volume *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* Lists the volumes of the directory path (with recursive, those below
 * it too) with writer.  Returns 0, or the exit status. */
static int operand_list(struct record_writer *writer, const char *path,
                        int recursive)
{
	struct scan_options options = {.max_depth = recursive ? SCAN_DEPTH : 0,
	                               .volumes = 1,
	                               .pool = path};
	struct pool_scan scan;
	struct dir dir;
	size_t i;
	int status = operand_open(&dir, path);

	if (status != 0)
		return status;
	pool_scan_init(&scan, &options);
	if (pool_scan_run(&scan, &dir) != 0) {
		log_errc(errno, "%s", path);
		status = exit_status_for_errno(errno);
	} else {
		status = scan_failures(&scan);
		if (scan.volume_count > 0)
			qsort(scan.volumes, scan.volume_count,
			      sizeof(*scan.volumes), volume_compare);
		for (i = 0; i < scan.volume_count; i++)
			volume_write(writer, &scan.volumes[i]);
	}
	pool_scan_free(&scan);
	dir_close(&dir);
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"recursive", no_argument, NULL, 'r'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct record_writer writer = {stdout, RECORD_TSV, ",", "\n", 0, 0};
	int recursive = 0, status = 0, rc, ch, i;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "jr" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		if (ch == 'j')
			writer.format = RECORD_JSON;
		else if (ch == 'r')
			recursive = 1;
		else
			option_common(ch);
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, -1);
	if (writer.format == RECORD_JSON)
		putchar('[');
	for (i = 0; i < argc; i++) {
		rc = operand_list(&writer, argv[i], recursive);
		if (status == 0)
			status = rc;
	}
	if (writer.format == RECORD_JSON)
		fputs("\n]\n", stdout);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return status;
}
