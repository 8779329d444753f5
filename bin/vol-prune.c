/*
 * vol-prune: remove the oldest numbered revisions of each VOLUME until N
 * remain, printing the path of each one removed; with -u, and the bytes
 * removing it frees.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-prune [-nquv] [-k N] [-w SECONDS] VOLUME...\n");
}

/* What the options ask. */
struct prune_options {
	int keep, dry_run, with_space, quiet, wait_seconds;
};

/* One line per revision removed: its path, and with -u (space not NULL)
 * the bytes removing it alone frees. */
static void removed(const char *path, size_t index, void *context)
{
	const struct volume_space *space = context;

	text_escape_write(stdout, path);
	if (space != NULL)
		printf("\t%llu",
		       (unsigned long long)space_revision_frees(space, index));
	putchar('\n');
}

/* The last line of -u, on stderr: what the whole prune frees, by the set
 * arithmetic (revisions sharing extents with each other free them only
 * together). */
static void total_write(const char *argument, size_t count, uint64_t freed,
                        int dry_run)
{
	char human[32];

	/* After the lines it sums up, also where both go to one file. */
	fflush(stdout);
	fprintf(stderr, "%s: ", program_name);
	text_escape_write(stderr, argument);
	fprintf(stderr, ": %zu revision%s %s, freeing %llu bytes (%s)\n", count,
	        count == 1 ? "" : "s", dry_run ? "would go" : "removed",
	        (unsigned long long)freed,
	        human_size((double)freed, human, sizeof(human)));
}

/* Opens the volume (locked unless a dry run) and lists its revisions;
 * returns the exit status. */
static int prune_open(struct volume *volume, struct revision_list *list,
                      const char *argument, const struct prune_options *o)
{
	int status = 0;

	if (o->dry_run) {
		/* A preview changes nothing, so it takes no lock. */
		if (volume_open(volume, argument, 0) != 0)
			status = volume_report_error(volume, errno);
	} else
		status =
		    volume_open_locked(volume, argument, 0, o->wait_seconds);
	if (status == 0 && revisions_list(volume, list) != 0)
		status = volume_report_error(volume, errno);
	else if (status == 0 && !volume->clean.exists &&
	         !volume->dirty.exists && !volume->precache.exists &&
	         !volume->import.exists && list->count == 0 &&
	         list->legacy_count == 0) {
		log_errx("%s: no such volume", argument);
		revisions_free(list);
		status = EX_NOINPUT;
	}
	if (status != 0)
		volume_close(volume);
	return status;
}

/* Prunes one volume; returns its exit status. */
static int prune(const char *argument, const struct prune_options *o)
{
	struct volume volume;
	struct revision_list list;
	struct volume_space space;
	size_t count;
	uint64_t freed = 0;
	int status = prune_open(&volume, &list, argument, o);

	if (status != 0)
		return status;
	count = prune_count(&list, o->keep);
	/* The figures are taken before anything goes. */
	if (o->with_space &&
	    (volume_space_read(&volume, &list, NULL, &space) != 0 ||
	     volume_space_prune(&space, count, &freed) != 0))
		status = volume_report_error(&volume, errno);
	/* A dry run names what the very same selection would remove. */
	else if (volume_prune(&volume, &list, o->keep, o->dry_run, removed,
	                      o->with_space ? &space : NULL) != 0)
		status = volume_report_error(&volume, errno);
	else if (o->with_space && !o->quiet)
		total_write(argument, count, freed, o->dry_run);
	if (o->with_space && status == 0)
		volume_space_free(&space);
	revisions_free(&list);
	volume_close(&volume);
	return status;
}

static void options_parse(int argc, char *argv[], struct prune_options *o)
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"keep", required_argument, NULL, 'k'},
	    {"usage", no_argument, NULL, 'u'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct keep_policy policy = {1, 1, 0};
	int ch;

	while ((ch = getopt_long(argc, argv, "k:nuw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'k':
			option_keep(optarg, &policy);
			break;
		case 'n':
			o->dry_run = 1;
			break;
		case 'u':
			o->with_space = 1;
			break;
		case 'w':
			o->wait_seconds = option_wait(optarg);
			break;
		case 'q':
			o->quiet = 1;
			option_common(ch);
			break;
		default:
			option_common(ch);
		}
	}
	o->keep = policy.keep;
}

int main(int argc, char *argv[])
{
	struct prune_options o = {1, 0, 0, 0, -1};
	int i, status, first_failure = 0;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &o);
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, -1);
	/* One failing volume does not stop the others: a cron job pruning
	 * a whole pool should not give up at the first odd directory. */
	for (i = 0; i < argc; i++) {
		status = prune(argv[i], &o);
		if (status != 0 && first_failure == 0)
			first_failure = status;
	}
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return first_failure;
}
