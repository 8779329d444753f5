/*
 * vol-discard: drop the dirty image D of a stopped VM without committing
 * it; with -S, also the snapshot volume's own C (its hard link to SRC's C).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-discard [-qv] [-S SRC | --volatile] "
	                "[--precache=now|later] [-w SECONDS] VOLUME\n");
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

/* What the command line asks for. */
struct options {
	const char *source; /* -S SRC, or NULL */
	int volatile_type, wait_seconds;
	struct keep_policy policy; /* --precache */
	const char *argument;
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    LONG_OPTION_PRECACHE,
	    {"snapshot", required_argument, NULL, 'S'},
	    {"volatile", no_argument, NULL, 'T'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "S:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case OPTION_PRECACHE:
			option_precache(optarg, &opts->policy);
			break;
		case 'S':
			opts->source = optarg;
			break;
		case 'T':
			opts->volatile_type = 1;
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
	if (opts->source != NULL && opts->volatile_type)
		usage_error("-S and --volatile each name a volume type: give "
		            "one");
}

/* Checks the volume is one to discard: it exists, no VM runs on its D,
 * and its files fit the type named; 0 or an exit status. */
static int discard_check(struct volume *volume, struct volume *source,
                         const struct options *opts)
{
	/* A stopped snapshot or volatile volume has no file at all; an
	 * origin volume always has one, so none means a mistyped name. */
	switch (source == NULL && !opts->volatile_type ? volume_absent(volume)
	                                               : 0) {
	case -1:
		return volume_report_error(volume, errno);
	case 1:
		log_errx("%s: no such volume", opts->argument);
		return EX_NOINPUT;
	}
	/* No VM may still run on the D about to be removed, and the files
	 * must agree with the type named. */
	if (volume_check_type(volume, source, opts->volatile_type) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* Removes D (and with -S, C); 0 or an exit status. */
static int discard(struct volume *volume, struct volume *source,
                   const struct options *opts)
{
	int origin = source == NULL && !opts->volatile_type, status;
	char path[PATH_MAX];

	if (volume_remove_temps(volume, 0) != 0)
		return volume_report_error(volume, errno);
	if (!volume->dirty.exists) {
		if (source == NULL || !volume->clean.exists)
			log_warnx("%s: nothing to discard", opts->argument);
	} else if (!volume->clean.exists && origin) {
		/* Without C, D is all there is of an origin volume (one
		 * started with -k -1, or whose C was lost): keep it. */
		log_errx("%s: the only copy of the volume's data (there is no "
		         "%s); keep it with vol-commit, or say --volatile if "
		         "it is a volatile volume",
		         volume_path(volume, volume->dirty.name, path),
		         volume->clean.name);
		return EX_DATAERR;
	} else {
		/* An origin volume's next start should again be a rename.
		 * The precache is made before D goes, so that removing D is
		 * the last step, and a run without D has nothing to do. */
		if (origin && volume_precache_settle(
		                  volume, opts->policy.precache_later) != 0)
			return volume_report_error(volume, errno);
		if ((status = file_remove(volume, &volume->dirty)) != 0)
			return status;
	}
	if (source != NULL && volume->clean.exists &&
	    (status = file_remove(volume, &volume->clean)) != 0)
		return status;
	return 0;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume, source_volume, *source = NULL;
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	if (opts.source != NULL) {
		status = source_open(&source_volume, opts.source);
		if (status != 0)
			return status;
		source = &source_volume;
	}
	status =
	    volume_open_locked(&volume, opts.argument, 0, opts.wait_seconds);
	if (status != 0)
		return status;
	status = discard_check(&volume, source, &opts);
	if (status == 0)
		status = discard(&volume, source, &opts);
	if (status != 0)
		return status;
	volume_close(&volume);
	return 0;
}
