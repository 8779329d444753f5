/*
 * pool-check: create a pool, or check one: prove that its filesystem can
 * reflink, scan its VM directories (the scanner of the core) and report
 * each finding on one line, with the command that fixes it; --repair
 * fixes what is safe to fix.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: pool-check [-jnqv] [--fragmented=N] [--init] "
	                "[--no-reflink-ok] [--repair] [-w SECONDS] POOL\n");
}

/* One run of pool-check: its options, and what it found out. */
struct run {
	int init, json, repair, dry_run, wait_seconds, no_reflink_ok, quiet;
	uint64_t fragmented; /* --fragmented */
	const char *pool;
	/* The exit status of the first failure that did not stop the check
	 * (a lock, a repair, the disk under the probe), or 0. */
	int status;
	/* A directory on the way to the pool that other users may write. */
	char untrusted[PATH_MAX + 64];
};

/* Reports a failure that does not stop the check: the others are still
 * worth reporting, and the run exits with the first one's status. */
static void failure(struct run *run, int err, const char *path,
                    const char *what)
{
	log_errc(err, "%s: %s", path, what);
	if (run->status == 0)
		run->status = exit_status_for_errno(err);
}

/* Reports the failures the scan recorded, in their order. */
static void problems_report(struct run *run, const struct pool_scan *scan)
{
	const struct scan_problem *p;
	size_t i;

	for (i = 0; i < scan->problem_count; i++) {
		p = &scan->problems[i];
		if (p->kind == PROBLEM_LOCKED)
			log_warnx("%s: still locked after %d seconds: not "
			          "repaired",
			          p->path, run->wait_seconds);
		else if (p->kind == PROBLEM_UNTRUSTED) {
			log_errx("%s: refused: %s may be written by other "
			         "users than root and you (--unsafe-dirs "
			         "accepts it): not repaired",
			         p->path, p->what);
			run->status = EX_NOPERM;
		} else
			failure(run, p->err, p->path, p->what);
	}
}

static void finding_write(struct record_writer *writer, const char *severity,
                          const struct finding *f, const char *message)
{
	record_begin(writer);
	field_text(writer, "severity", severity);
	field_text(writer, "path", f->path);
	field_text(writer, "code", finding_kinds[f->code].code);
	field_text(writer, "message", message);
	record_end(writer);
}

/* Writes the findings; returns how many warnings and errors remain. */
static size_t findings_write(struct record_writer *writer,
                             const struct pool_scan *scan)
{
	const struct finding *f;
	size_t remaining = 0, i;

	for (i = 0; i < scan->finding_count; i++) {
		f = &scan->findings[i];
		if (f->fix == FIX_DONE)
			finding_write(writer, "fixed", f, "removed");
		else if (f->fix == FIX_WOULD)
			/* Not counted: the repair takes it away. */
			finding_write(writer, "would-fix", f,
			              "would be removed");
		else if (f->fix == FIX_NONE) {
			finding_write(writer, severity_names[f->severity], f,
			              f->message);
			remaining += f->severity != SEVERITY_INFO;
		}
	}
	return remaining;
}

/* The summary on stderr: one line, whatever POOL's name holds. */
static void summary_print(const struct run *run, const struct pool_scan *scan,
                          unsigned long long size, unsigned long long used)
{
	char size_text[32], used_text[32];

	fputs("pool-check: ", stderr);
	text_escape_write(stderr, run->pool);
	fprintf(stderr,
	        ": %zu volumes, %zu revisions, %zu dirty; filesystem %s, %s "
	        "used (%.0f%%)\n",
	        scan->total_volumes, scan->total_revisions, scan->total_dirty,
	        human_size((double)size, size_text, sizeof(size_text)),
	        human_size((double)used, used_text, sizeof(used_text)),
	        size > 0 ? 100.0 * used / size : 0.0);
}

/* Prints the findings (in JSON, inside the pool's object) and the
 * summary; returns whether warnings or errors remain. */
static int report(const struct run *run, const struct pool_scan *scan,
                  const struct dir *pool, int probe)
{
	struct record_writer top = {stdout, RECORD_JSON, NULL, NULL, 0, 0};
	struct record_writer items = {stdout, RECORD_TSV, NULL, NULL, 0, 0};
	unsigned long long size, used;
	struct statvfs vfs;
	size_t remaining;

	if (fstatvfs(pool->fd, &vfs) != 0)
		memset(&vfs, 0, sizeof(vfs));
	size = (unsigned long long)vfs.f_frsize * vfs.f_blocks;
	used = (unsigned long long)vfs.f_frsize * (vfs.f_blocks - vfs.f_bfree);
	if (!run->json) {
		remaining = findings_write(&items, scan);
	} else {
		record_begin(&top);
		field_text(&top, "pool", run->pool);
		if (probe < 0)
			field_null(&top, "reflink");
		else
			field_bool(&top, "reflink", probe);
		field_list_begin(&top, "findings", &items);
		items.separator = ",";
		items.indent = "\n    ";
		remaining = findings_write(&items, scan);
		if (items.records > 0)
			putchar('\n');
		field_list_end(&top);
		field_unsigned(&top, "volumes", scan->total_volumes);
		field_unsigned(&top, "revisions", scan->total_revisions);
		field_unsigned(&top, "dirty", scan->total_dirty);
		field_unsigned(&top, "size", size);
		field_unsigned(&top, "used", used);
		record_end(&top);
		putchar('\n');
	}
	if (!run->quiet)
		summary_print(run, scan, size, used);
	return remaining > 0;
}

/* Opens POOL (with --init: made if missing), a directory on the way that
 * others may write noted in run->untrusted (a scan reports it and goes
 * on; nothing is made or repaired under it).  Returns 0, or the exit
 * status. */
static int pool_open(struct run *run, struct dir *pool)
{
	struct stat st;
	int rc, made = 0;

	if (stat(run->pool, &st) == 0 && !S_ISDIR(st.st_mode)) {
		log_errx("%s: not a directory", run->pool);
		return EX_DATAERR;
	}
	rc = run->init
	         ? dir_open_trusted_making(pool, run->pool, run->untrusted,
	                                   sizeof(run->untrusted), &made)
	         : dir_open_trusted(pool, run->pool, run->untrusted,
	                            sizeof(run->untrusted));
	if (made)
		made_dir_undo_on_failure(run->pool);
	if (rc > 0 && (run->init || (run->repair && !run->dry_run))) {
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you (--unsafe-dirs accepts it)",
		         run->pool, run->untrusted);
		return EX_NOPERM;
	}
	if (rc > 0)
		rc = dir_open(pool, run->pool);
	else
		run->untrusted[0] = '\0';
	if (rc != 0) {
		log_errc(errno, "%s", run->pool);
		return exit_status_for_errno(errno);
	}
	return 0;
}

static int pool_init(struct run *run, struct dir *pool, int probe)
{
	char buf[32];
	const char *type;

	if (probe < 0) {
		log_errc(errno, "%s: reflink probe", run->pool);
		return EX_IOERR;
	}
	type = filesystem_name(pool->fd, buf, sizeof(buf));
	if (probe == 0 && !run->no_reflink_ok) {
		/* A POOL made here goes again as this run fails. */
		log_errx("%s: the filesystem (%s) cannot reflink: every start "
		         "and commit would copy whole images; pass "
		         "--no-reflink-ok to use it anyway",
		         run->pool, type);
		return EX_UNAVAILABLE;
	}
	if (probe == 0)
		log_warnx("%s: the filesystem (%s) cannot reflink: images "
		          "will be copied",
		          run->pool, type);
	if (durable_mkdir(pool, "appvms", 0755) < 0 ||
	    durable_mkdir(pool, "vm-templates", 0755) < 0) {
		log_errc(errno, "%s", run->pool);
		return exit_status_for_errno(errno);
	}
	return 0;
}

/* The findings about the pool itself: a directory on the way that others
 * may write, and what the reflink probe (err its errno) said.  -1 with
 * ENOMEM if one is left out. */
static int pool_findings(struct run *run, struct pool_scan *scan,
                         const struct dir *pool, int probe, int err)
{
	struct finding *f;
	struct stat st;
	char type[32];

	if (run->untrusted[0] != '\0' && fstat(pool->fd, &st) == 0 &&
	    !dir_stat_untrusted(&st) &&
	    pool_scan_add(scan, FINDING_UNTRUSTED_DIRECTORY, 1, run->pool,
	                  run->untrusted, NULL) == NULL)
		return -1;
	if (probe < 0) {
		/* A pool this user may not write, on a read-only or full
		 * filesystem, can still be checked. */
		if (pool_scan_add(scan, FINDING_REFLINK_PROBE_SKIPPED, 0,
		                  run->pool, strerror(err), NULL) == NULL)
			return -1;
		/* Any other error is the disk's, and fails the run. */
		if (err != EACCES && err != EPERM && err != EROFS &&
		    err != ENOSPC && err != EDQUOT)
			failure(run, err, run->pool, "reflink probe");
	} else if (probe == 0) {
		f = pool_scan_add(
		    scan, FINDING_NO_REFLINK, 0, run->pool,
		    filesystem_name(pool->fd, type, sizeof(type)),
		    run->no_reflink_ok ? "" : " (--no-reflink-ok accepts it)");
		if (f == NULL)
			return -1;
		if (run->no_reflink_ok)
			f->severity = SEVERITY_INFO;
	}
	return 0;
}

/* Scans the pool (with its repairs) and asks once what uses the dirty
 * images.  Returns 0, or the exit status. */
static int pool_scan(struct run *run, struct pool_scan *scan,
                     const struct dir *pool, int probe, int err)
{
	struct scan_options options = {
	    .repair = run->repair,
	    .dry_run = run->dry_run,
	    .wait_seconds = run->wait_seconds,
	    .max_depth = SCAN_DEPTH,
	    .layout = 1,
	    .pool = run->pool,
	    .untrusted = run->untrusted[0] ? run->untrusted : NULL,
	    .fragmented = run->fragmented};

	pool_scan_init(scan, &options);
	if (pool_findings(run, scan, pool, probe, err) != 0 ||
	    ((probe != 0 || run->no_reflink_ok) &&
	     pool_scan_run(scan, pool) != 0)) {
		/* A finding left out would make the report wrong (a running
		 * VM's image called a leftover, say): the run fails. */
		log_errc(ENOMEM, "cannot check the pool");
		return EX_SOFTWARE;
	}
	problems_report(run, scan);
	if (pool_scan_finish(scan) != 0) {
		/* Without it a running VM's image would be called a crash
		 * leftover, with advice to discard it. */
		log_errc(errno, "cannot tell which dirty images are in use");
		err = exit_status_for_errno(errno);
		return err == EX_SOFTWARE ? err : EX_IOERR;
	}
	return 0;
}

/* --init makes the pool; else the probe, the scan, then the report. */
static int pool_run(struct run *run)
{
	struct pool_scan scan;
	struct dir pool;
	int probe, status = pool_open(run, &pool), found;

	if (status != 0)
		return status;
	probe = reflink_probe(&pool);
	if (run->init) {
		status = pool_init(run, &pool, probe);
		dir_close(&pool);
		return status;
	}
	status = pool_scan(run, &scan, &pool, probe, errno);
	if (status != 0)
		return status;
	found = report(run, &scan, &pool, probe);
	pool_scan_free(&scan);
	dir_close(&pool);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	if (probe == 0 && !run->no_reflink_ok)
		return EX_UNAVAILABLE;
	return run->status ? run->status : found ? EXIT_NOT_IN_STATE : 0;
}

static void options_check(const struct run *run)
{
	if (run->init && (run->repair || run->dry_run || run->json))
		usage_error("--init goes with --no-reflink-ok only");
	if (run->dry_run && !run->repair)
		usage_error("-n goes with --repair");
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"fragmented", required_argument, NULL, 'F'},
	    {"init", no_argument, NULL, 'I'},
	    {"json", no_argument, NULL, 'j'},
	    {"no-reflink-ok", no_argument, NULL, 'N'},
	    {"repair", no_argument, NULL, 'R'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct run run = {.wait_seconds = -1,
	                  .fragmented = SCAN_FRAGMENTED_DEFAULT};
	int ch;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "jnw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		if (ch == 'I')
			run.init = 1;
		else if (ch == 'j')
			run.json = 1;
		else if (ch == 'N')
			run.no_reflink_ok = 1;
		else if (ch == 'n')
			run.dry_run = 1;
		else if (ch == 'R')
			run.repair = 1;
		else if (ch == 'w')
			run.wait_seconds = option_wait(optarg);
		else if (ch == 'F')
			run.fragmented = option_number(optarg, UINT32_MAX,
			                               "--fragmented value");
		else {
			run.quiet |= ch == 'q';
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);
	options_check(&run);
	run.pool = argv[0];
	return pool_run(&run);
}
