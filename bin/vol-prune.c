/*
 * vol-prune: remove the numbered revisions of each VOLUME that its
 * retention does not keep (pinned ones, the newest N, the newest of each
 * of the latest hours, days, weeks, months and years asked for), printing
 * the path of each one removed; with -u, and the bytes removing it frees;
 * with -n and a --keep-* option, every revision's fate and its reason.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-prune [-nquv] [-k N] [--keep-hourly N] "
	                "[--keep-daily N]\n"
	                "                 [--keep-weekly N] [--keep-monthly N] "
	                "[--keep-yearly N] [--local]\n"
	                "                 [-w SECONDS] VOLUME...\n");
}

/* What the options ask. */
struct prune_options {
	struct retention retention;
	int dry_run, with_space, quiet, wait_seconds;
	int buckets_given; /* a --keep-* option: -n prints the schedule */
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

/*
 * The bytes that removing the revisions the plan drops frees, by the set
 * arithmetic of volume_space_prune, for a set that need not be the lowest
 * ids.  A revision that is C's or D's inode frees nothing when its name
 * goes.
 */
static int planned_frees(struct volume_space *space, size_t count,
                         const struct retention_decision *decisions,
                         uint64_t *freed)
{
	unsigned char *subset = calloc(space->usage.members, 1);
	size_t i;
	int rc;

	if (subset == NULL)
		return -1;
	for (i = 0; i < count; i++)
		if (!decisions[i].keep && space->revision[i] != SPACE_NONE &&
		    space->revision[i] != space->clean &&
		    space->revision[i] != space->dirty)
			subset[space->revision[i]] = 1;
	rc = usage_compute(&space->usage, subset);
	*freed = space->usage.freed;
	free(subset);
	return rc;
}

/* -n with a --keep-* option: every revision, what the plan does with it
 * and why, one line each; with -u (space not NULL) what it alone frees. */
static void schedule_write(const struct revision_list *list,
                           const struct retention_decision *decisions,
                           const struct volume_space *space)
{
	char when[64];
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (revision_time_format(list->items[i].time, when,
		                         sizeof(when)) != 0)
			snprintf(when, sizeof(when), "-");
		printf("%llu\t%s\t%s\t%s",
		       (unsigned long long)list->items[i].id, when,
		       decisions[i].keep ? "keep" : "remove",
		       decisions[i].reason);
		if (space != NULL)
			printf(
			    "\t%llu",
			    (unsigned long long)space_revision_frees(space, i));
		putchar('\n');
	}
}

/* Carries out the plan on the open volume; returns the exit status. */
static int plan_run(struct volume *volume, struct revision_list *list,
                    const struct retention_decision *decisions, long count,
                    const char *argument, const struct prune_options *o)
{
	struct volume_space space;
	uint64_t freed = 0;
	int status = 0;

	/* The figures are taken before anything goes. */
	if (o->with_space && volume_space_read(volume, list, NULL, &space) != 0)
		return volume_report_error(volume, errno);
	if (o->with_space &&
	    planned_frees(&space, list->count, decisions, &freed) != 0)
		status = volume_report_error(volume, errno);
	else if (o->dry_run && o->buckets_given)
		schedule_write(list, decisions, o->with_space ? &space : NULL);
	/* A dry run names what the very same plan would remove. */
	else if (volume_prune_planned(volume, list, decisions, o->dry_run,
	                              removed,
	                              o->with_space ? &space : NULL) != 0)
		status = volume_report_error(volume, errno);
	if (status == 0 && o->with_space && !o->quiet)
		total_write(argument, (size_t)count, freed, o->dry_run);
	if (o->with_space)
		volume_space_free(&space);
	return status;
}

/* Prunes one volume; returns its exit status. */
static int prune(const char *argument, const struct prune_options *o)
{
	struct volume volume;
	struct revision_list list;
	struct retention_decision *decisions;
	long count = -1;
	int status = prune_open(&volume, &list, argument, o);

	if (status != 0)
		return status;
	decisions = calloc(list.count + 1, sizeof(*decisions));
	if (decisions != NULL)
		count = retention_plan(&list, &o->retention, decisions);
	if (count < 0) {
		log_errc(ENOMEM, "%s", argument);
		status = EX_SOFTWARE;
	} else
		status =
		    plan_run(&volume, &list, decisions, count, argument, o);
	free(decisions);
	revisions_free(&list);
	volume_close(&volume);
	return status;
}

/* The long options without a short one: --keep-hourly and the others
 * are BUCKET_OPTION + the bucket. */
enum { BUCKET_OPTION = 256, LOCAL_OPTION = BUCKET_OPTION + BUCKETS };

static void options_parse(int argc, char *argv[], struct prune_options *o)
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"keep", required_argument, NULL, 'k'},
	    {"keep-daily", required_argument, NULL,
	     BUCKET_OPTION + BUCKET_DAILY},
	    {"keep-hourly", required_argument, NULL,
	     BUCKET_OPTION + BUCKET_HOURLY},
	    {"keep-monthly", required_argument, NULL,
	     BUCKET_OPTION + BUCKET_MONTHLY},
	    {"keep-weekly", required_argument, NULL,
	     BUCKET_OPTION + BUCKET_WEEKLY},
	    {"keep-yearly", required_argument, NULL,
	     BUCKET_OPTION + BUCKET_YEARLY},
	    {"local", no_argument, NULL, LOCAL_OPTION},
	    {"usage", no_argument, NULL, 'u'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct keep_policy policy = {1, 1, 0};
	char what[32];
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
		case LOCAL_OPTION:
			o->retention.local = 1;
			break;
		default:
			/* option_common returns for -q, -v, --progress and
			 * --unsafe-dirs: only a bucket's code is one here. */
			if (ch < BUCKET_OPTION || ch >= LOCAL_OPTION) {
				option_common(ch);
				break;
			}
			snprintf(what, sizeof(what), "--keep-%s value",
			         bucket_names[ch - BUCKET_OPTION]);
			o->retention.buckets[ch - BUCKET_OPTION] =
			    (int)option_number(optarg, INT_MAX, what);
			o->buckets_given = 1;
		}
	}
	o->retention.keep = policy.keep;
}

int main(int argc, char *argv[])
{
	struct prune_options o = {.wait_seconds = -1};
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
