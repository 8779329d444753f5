/*
 * vol-create: make a new, empty, sparse origin volume: C and its precache P.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-create [-fqv] [-k N] [--precache=now|later] "
	        "[-w SECONDS] -s SIZE VOLUME\n");
}

/* What the command line asks for. */
struct options {
	struct keep_policy policy;
	off_t size;
	int force, wait_seconds;
	const char *argument;
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"keep", required_argument, NULL, 'k'},
	    LONG_OPTION_PRECACHE,
	    {"size", required_argument, NULL, 's'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.size = -1, .wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "fk:s:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opts->force = 1;
			break;
		case OPTION_PRECACHE:
			option_precache(optarg, &opts->policy);
			break;
		case 'k':
			option_keep(optarg, &opts->policy);
			break;
		case 's':
			opts->size = option_size(optarg);
			break;
		case 'w':
			opts->wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);
	opts->argument = argv[0];
	if (opts->size < 0)
		usage_error("-s SIZE is required");
}

/*
 * Clears the way for the new volume: what a run killed midway left goes,
 * and with -f every file of an existing volume.  Returns 0 to go on, or
 * an exit status; *done when a run killed midway made this very volume,
 * which is finished instead.
 */
static int volume_clear(struct volume *volume, const struct options *opts,
                        int *done)
{
	int found;

	/* What a run killed midway left: its temp files go, and a C it
	 * made but for its precache is finished. */
	if (volume_remove_temps(volume, 0) != 0)
		return volume_report_error(volume, errno);
	found = volume_remove_all(volume, 1, NULL, NULL);
	if (found < 0)
		return volume_report_error(volume, errno);
	if (found == 1 && volume->clean.exists && !opts->force &&
	    volume->clean.st.st_size == opts->size &&
	    volume->clean.st.st_blocks == 0) {
		*done = 1;
		if (!keep_disables_snapshots(&opts->policy) &&
		    volume_precache_settle(volume,
		                           opts->policy.precache_later) != 0)
			return volume_report_error(volume, errno);
		return 0;
	}
	if (found > 0 && !opts->force) {
		log_errx("%s: the volume exists (use -f to replace it)",
		         opts->argument);
		return EX_CANTCREAT;
	}
	/* No stale revision or precache may survive into the new volume. */
	if (found > 0 && volume_remove_all(volume, 0, NULL, NULL) < 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* Makes C, empty and sparse, and its precache; 0 or an exit status. */
static int volume_make(struct volume *volume, const struct options *opts)
{
	struct temp_file temp;

	if (temp_create(&temp, &volume->dir, volume->clean.name) != 0) {
		log_errc(errno, "%s/%s", volume->dir.path, volume->clean.name);
		return exit_status_for_errno(errno);
	}
	if (ftruncate(temp.fd, opts->size) != 0 || temp_commit(&temp, 0) != 0) {
		int err = errno;

		temp_abort(&temp);
		log_errc(err, "%s/%s", volume->dir.path, volume->clean.name);
		return exit_status_for_errno(err);
	}
	if (volume_stat(volume) != 0 ||
	    (!keep_disables_snapshots(&opts->policy) &&
	     volume_precache_settle(volume, opts->policy.precache_later) != 0))
		return volume_report_error(volume, errno);
	return 0;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume;
	int status, done = 0;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	status =
	    volume_open_locked(&volume, opts.argument, 1, opts.wait_seconds);
	if (status != 0)
		return status;
	status = volume_clear(&volume, &opts, &done);
	if (status != 0 || done)
		return status;
	status = volume_make(&volume, &opts);
	if (status != 0)
		return status;
	volume_close(&volume);
	return 0;
}
