/*
 * vol-discard: drop the dirty image D of a stopped VM without committing
 * it; with -S, also the snapshot volume's own C (its hard link to SRC's C).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "reflink.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-discard [-qv] [-S SRC] [-w SECONDS] VOLUME\n");
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"snapshot", required_argument, NULL, 'S'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct volume volume;
	struct revision_list list;
	const char *source = NULL;
	int wait_seconds = -1, ch, status;

	log_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "S:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'S':
			source = optarg;
			break;
		case 'w':
			wait_seconds = option_wait(optarg, usage);
			break;
		default:
			option_common(ch, usage);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1) {
		usage(stderr);
		return EX_USAGE;
	}

	status = volume_open_locked(&volume, argv[0], 0, wait_seconds);
	if (status != 0)
		return status;
	if (source != NULL && volume.clean.exists) {
		/* A snapshot volume never has revisions or a precache: if
		 * this one has, -S was given to an origin volume by mistake,
		 * and its C is the only copy of its data. */
		if (revisions_list(&volume, &list) != 0)
			return volume_report_error(&volume, errno);
		if (list.count > 0 || volume.precache.exists) {
			log_errx("%s: has revisions or a precache, so it is "
			         "an origin volume: its clean image is not "
			         "removed",
			         argv[0]);
			return EX_DATAERR;
		}
		revisions_free(&list);
	}
	if (volume.dirty.exists &&
	    durable_unlink(&volume.dir, volume.dirty.name) != 0 &&
	    errno != ENOENT) {
		log_errc(errno, "%s/%s", volume.dir.path, volume.dirty.name);
		return exit_status_for_errno(errno);
	}
	if (source != NULL && volume.clean.exists &&
	    durable_unlink(&volume.dir, volume.clean.name) != 0 &&
	    errno != ENOENT) {
		log_errc(errno, "%s/%s", volume.dir.path, volume.clean.name);
		return exit_status_for_errno(errno);
	}
	volume_close(&volume);
	return 0;
}
