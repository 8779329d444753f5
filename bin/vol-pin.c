/*
 * vol-pin: pin a revision, so that no prune and no -k of any tool removes
 * it, or unpin it (-u).  The pin is an empty file beside the revision, its
 * name + ".pin" (see pin.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-pin [-quv] [-w SECONDS] -r REV VOLUME\n");
}

/* What the command line asks for. */
struct options {
	const char *wanted; /* REV: an id, or "latest" */
	int unpin, wait_seconds;
	const char *argument;
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"revision", required_argument, NULL, 'r'},
	    {"unpin", no_argument, NULL, 'u'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "r:uw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'r':
			opts->wanted = option_revision(optarg);
			break;
		case 'u':
			opts->unpin = 1;
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
	if (opts->wanted == NULL)
		usage_error("missing -r REV: which revision to %s",
		            opts->unpin ? "unpin" : "pin");
	operands_expect(argc, argv, 1, 1);
	opts->argument = argv[0];
}

/* Finds REV in list: an id, or "latest", the highest id. */
static const struct revision *revision_find(const struct revision_list *list,
                                            const char *wanted)
{
	if (strcmp(wanted, "latest") == 0)
		return list->count > 0 ? &list->items[list->count - 1] : NULL;
	return revision_with_id(list, wanted);
}

/* Says why REV is not there; returns the exit status. */
static int revision_missing(struct volume *volume, const struct options *opts)
{
	int absent = volume_absent(volume);

	if (absent < 0)
		return volume_report_error(volume, errno);
	if (absent)
		log_errx("%s: no such volume", opts->argument);
	else
		log_errx("%s: no revision %s", opts->argument, opts->wanted);
	return EX_NOINPUT;
}

/* Pins or unpins REV of the open, locked volume; 0 or an exit status. */
static int pin(struct volume *volume, const struct options *opts)
{
	struct revision_list list;
	const struct revision *revision;
	int status = 0, rc;

	/* Temp files left by a crash go first, a marker's among them. */
	if (volume_remove_temps(volume, 0) != 0 ||
	    revisions_list(volume, &list) != 0)
		return volume_report_error(volume, errno);
	revision = revision_find(&list, opts->wanted);
	if (revision == NULL)
		status = revision_missing(volume, opts);
	else {
		rc = opts->unpin ? volume_unpin(volume, revision)
		                 : volume_pin(volume, revision);
		if (rc < 0)
			status = volume_report_error(volume, errno);
	}
	revisions_free(&list);
	return status;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume;
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	status =
	    volume_open_locked(&volume, opts.argument, 0, opts.wait_seconds);
	if (status != 0)
		return status;
	status = pin(&volume, &opts);
	volume_close(&volume);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return status;
}
