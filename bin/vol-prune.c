/*
 * vol-prune: remove the oldest numbered revisions of each VOLUME until N
 * remain, printing the path of each one removed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-prune [-nqv] [-k N] [-w SECONDS] VOLUME...\n");
}

static void removed(const char *path)
{
	printf("%s\n", path);
}

/* Prunes one volume; returns its exit status. */
static int prune(const char *argument, int keep, int dry_run, int wait_seconds)
{
	struct volume volume;
	struct revision_list list;
	int status = 0;

	if (dry_run) {
		/* A preview changes nothing, so it takes no lock. */
		if (volume_open(&volume, argument, 0) != 0)
			status = volume_report_error(&volume, errno);
	} else
		status = volume_open_locked(&volume, argument, 0, wait_seconds);
	if (status != 0) {
		volume_close(&volume);
		return status;
	}
	if (revisions_list(&volume, &list) != 0) {
		status = volume_report_error(&volume, errno);
		volume_close(&volume);
		return status;
	}
	if (!volume.clean.exists && !volume.dirty.exists &&
	    !volume.precache.exists && !volume.import.exists &&
	    list.count == 0 && list.legacy_count == 0) {
		log_errx("%s: no such volume", argument);
		revisions_free(&list);
		volume_close(&volume);
		return EX_NOINPUT;
	}
	/* A dry run names what the very same selection would remove. */
	if (volume_prune(&volume, &list, keep, dry_run, removed) != 0)
		status = volume_report_error(&volume, errno);
	revisions_free(&list);
	volume_close(&volume);
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"keep", required_argument, NULL, 'k'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct keep_policy policy = {1, 1};
	int dry_run = 0, wait_seconds = -1, ch, i, status, first_failure = 0;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "k:nw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'k':
			option_keep(optarg, &policy);
			break;
		case 'n':
			dry_run = 1;
			break;
		case 'w':
			wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, -1);

	/* One failing volume does not stop the others: a cron job pruning
	 * a whole pool should not give up at the first odd directory. */
	for (i = 0; i < argc; i++) {
		status = prune(argv[i], policy.keep, dry_run, wait_seconds);
		if (status != 0 && first_failure == 0)
			first_failure = status;
	}
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return first_failure;
}
