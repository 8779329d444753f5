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
	fprintf(stream, "usage: vol-discard [-qv] [-S SRC | --volatile] "
	                "[-w SECONDS] VOLUME\n");
}

/* Removes one of the volume's files; returns an exit status. */
static int file_remove(struct volume *volume, struct volume_file *file)
{
	char path[PATH_MAX];

	if (durable_unlink(&volume->dir, file->name) != 0 && errno != ENOENT) {
		log_errc(errno, "%s", volume_path(volume, file->name, path));
		return exit_status_for_errno(errno);
	}
	file->exists = 0;
	return 0;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"snapshot", required_argument, NULL, 'S'},
	    {"volatile", no_argument, NULL, 'T'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct volume volume;
	struct revision_list list;
	size_t revisions;
	const char *source = NULL;
	char path[PATH_MAX];
	int volatile_type = 0, wait_seconds = -1, ch, status;

	log_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "S:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'S':
			source = optarg;
			break;
		case 'T':
			volatile_type = 1;
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
	operands_expect(argc, argv, 1, 1, usage);
	if (source != NULL && volatile_type) {
		log_errx("-S and --volatile each name a volume type: give one");
		usage(stderr);
		return EX_USAGE;
	}

	status = volume_open_locked(&volume, argv[0], 0, wait_seconds);
	if (status != 0)
		return status;
	if (volume_remove_temps(&volume, 0) != 0)
		return volume_report_error(&volume, errno);
	if (source != NULL && volume.clean.exists) {
		/* A snapshot volume never has revisions or a precache: if
		 * this one has, -S was given to an origin volume by mistake,
		 * and its C is the only copy of its data. */
		if (revisions_list(&volume, &list) != 0)
			return volume_report_error(&volume, errno);
		revisions = list.count;
		revisions_free(&list);
		if (revisions > 0 || volume.precache.exists) {
			log_errx("%s: has revisions or a precache, so it is "
			         "an origin volume: its clean image is not "
			         "removed",
			         argv[0]);
			return EX_DATAERR;
		}
	}
	if (!volume.dirty.exists) {
		if (source == NULL || !volume.clean.exists)
			log_warnx("%s: nothing to discard", argv[0]);
	} else if (!volume.clean.exists && source == NULL && !volatile_type) {
		/* Without C, D is all there is of an origin volume (one
		 * started with -k -1, or whose C was lost): keep it. */
		log_errx("%s: the only copy of the volume's data (there is no "
		         "%s); keep it with vol-commit, or say --volatile if "
		         "it is a volatile volume",
		         volume_path(&volume, volume.dirty.name, path),
		         volume.clean.name);
		return EX_DATAERR;
	} else if ((status = file_remove(&volume, &volume.dirty)) != 0)
		return status;
	if (source != NULL && volume.clean.exists &&
	    (status = file_remove(&volume, &volume.clean)) != 0)
		return status;
	/* An origin volume's next start should again be a rename. */
	if (source == NULL && !volatile_type && volume.clean.exists &&
	    !volume_precache_valid(&volume) &&
	    volume_precache_refresh(&volume) != 0)
		return volume_report_error(&volume, errno);
	volume_close(&volume);
	return 0;
}
