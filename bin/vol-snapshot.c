/*
 * vol-snapshot: while the VM runs, make the next revision a clone of its
 * dirty image D as it is at this instant; D and the clean image C stay.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-snapshot [-qv] [-k N] [-w SECONDS] VOLUME\n");
}

/* What the options ask. */
struct snapshot_options {
	struct keep_policy policy;
	int wait_seconds;
};

static void options_parse(int argc, char *argv[], struct snapshot_options *o)
{
	static const struct option long_options[] = {
	    {"keep", required_argument, NULL, 'k'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "k:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'k':
			option_keep(optarg, &o->policy);
			/* The snapshot is the newest revision: keeping none
			 * would remove it at once. */
			if (o->policy.keep < 1)
				usage_error("invalid -k value: %s (a snapshot "
				            "keeps at least 1 revision)",
				            optarg);
			break;
		case 'w':
			o->wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
}

/* The checks before anything changes: 1 if there is nothing to do, else
 * 0 or the exit status. */
static int snapshot_allowed(struct volume *volume, const char *argument)
{
	char path[PATH_MAX];

	switch (volume_absent(volume)) {
	case -1:
		return volume_report_error(volume, errno);
	case 1:
		log_errx("%s: no such volume", argument);
		return EX_NOINPUT;
	}
	/* Stopped: C holds the last commit, and what a crashed run left in
	 * D stays D, for vol-commit. */
	if (!volume->dirty.exists) {
		log_warnx("%s: not running (no %s): nothing to snapshot",
		          argument, volume->dirty.name);
		return 1;
	}
	/* D alone is a volatile volume or one with snapshots disabled
	 * (-k -1): neither keeps revisions. */
	if (!volume->clean.exists) {
		log_errx(
		    "%s: no clean image: a volatile volume, or one with "
		    "snapshots disabled, has no revisions; nothing changed",
		    volume_path(volume, volume->clean.name, path));
		return EX_DATAERR;
	}
	if (volume_remove_temps(volume, 0) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* Snapshots D, prunes with -k, prints the revision's path; returns the
 * exit status. */
static int snapshot(struct volume *volume, const struct snapshot_options *o)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	int rc;

	rc = volume_snapshot(volume, name, sizeof(name));
	if (rc < 0)
		return volume_report_error(volume, errno);
	if (rc == SNAPSHOT_LATEST)
		log_warnx("%s already holds what %s holds: no new revision",
		          volume_path(volume, name, path), volume->dirty.name);
	if (o->policy.given &&
	    volume_prune_to(volume, o->policy.keep, NULL) != 0)
		return volume_report_error(volume, errno);
	text_escape_write(stdout, volume_path(volume, name, path));
	putchar('\n');
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct snapshot_options o = {.wait_seconds = -1};
	struct volume volume;
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &o);
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);

	status = volume_open_locked(&volume, argv[0], 0, o.wait_seconds);
	if (status != 0)
		return status;
	status = snapshot_allowed(&volume, argv[0]);
	if (status == 0)
		status = snapshot(&volume, &o);
	else if (status == 1)
		status = 0;
	if (status != 0)
		return status;
	volume_close(&volume);
	return 0;
}
