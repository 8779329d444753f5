/*
 * vol-revert: make a revision the clean image C again.  The current C
 * first becomes the newest revision, so a revert can itself be reverted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-revert [-qv] [-k N] [-r REV] [--discard] "
	                "[--precache=now|later] [-w SECONDS] VOLUME\n");
}

/* True if revision is the same inode as C (a link made by a crash). */
static int revision_is_clean(const struct volume *volume,
                             const struct revision *revision)
{
	struct stat st;

	return volume->clean.exists &&
	       fstatat(volume->dir.fd, revision->name, &st,
	               AT_SYMLINK_NOFOLLOW) == 0 &&
	       st.st_ino == volume->clean.st.st_ino &&
	       st.st_dev == volume->clean.st.st_dev;
}

/*
 * A revert that saves the old C makes the chosen revision a second name of
 * C before it removes that name, last.  If it was interrupted in between,
 * the revision is still there with C's inode, below the saved one.
 * Returns that revision, or NULL.
 */
static const struct revision *
revert_unfinished(const struct volume *volume, const struct revision_list *list,
                  const char *wanted)
{
	size_t i;
	uint64_t id;

	if (strcmp(wanted, "latest") != 0) {
		/* No revision has an id too large for a uint64_t. */
		if (number_parse(wanted, UINT64_MAX, &id) != 0)
			return NULL;
		for (i = 0; i < list->count; i++)
			if (list->items[i].id == id &&
			    revision_is_clean(volume, &list->items[i]))
				return &list->items[i];
		return NULL;
	}
	/* Below the latest revision, C's inode can only be a revert's (the
	 * latest being C is a commit or revert cut short after saving C). */
	for (i = 0; i + 1 < list->count; i++)
		if (revision_is_clean(volume, &list->items[i]))
			return &list->items[i];
	return NULL;
}

/* Finds REV: an id, or "latest", the highest id that is not C itself. */
static const struct revision *revision_find(const struct volume *volume,
                                            const struct revision_list *list,
                                            const char *wanted)
{
	size_t i;

	if (strcmp(wanted, "latest") != 0)
		return revision_with_id(list, wanted);
	for (i = list->count; i-- > 0;)
		if (!revision_is_clean(volume, &list->items[i]))
			return &list->items[i];
	return NULL;
}

/* Finishes a revert that was interrupted after C became its revision.  A
 * revision pinned meanwhile keeps its name: C stays a second name of it
 * until the next commit replaces C. */
static int revert_finish(struct volume *volume, const char *name, int pinned,
                         const struct keep_policy *policy)
{
	char path[PATH_MAX];

	if (!pinned && durable_unlink(&volume->dir, name) != 0 &&
	    errno != ENOENT) {
		log_errc(errno, "%s", volume_path(volume, name, path));
		return exit_status_for_errno(errno);
	}
	if (volume_finish(volume, policy) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* What the command line asks for. */
struct options {
	struct keep_policy policy;
	const char *wanted; /* REV: an id, or "latest" */
	int discard, wait_seconds;
	const char *argument;
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"discard", no_argument, NULL, 'D'},
	    {"keep", required_argument, NULL, 'k'},
	    LONG_OPTION_PRECACHE,
	    {"revision", required_argument, NULL, 'r'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.wanted = "latest", .wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "k:r:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'D':
			opts->discard = 1;
			break;
		case OPTION_PRECACHE:
			option_precache(optarg, &opts->policy);
			break;
		case 'k':
			option_keep(optarg, &opts->policy);
			break;
		case 'r':
			opts->wanted = option_revision(optarg);
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
}

/*
 * Chooses the revision REV names (or the one an unfinished revert left)
 * and copies its name into name; *unfinished tells which, *pinned if it
 * is pinned.  Returns 0 or an exit status.
 */
static int revision_choose(struct volume *volume, const struct options *opts,
                           int *unfinished, int *pinned,
                           char name[NAME_MAX + 1])
{
	struct revision_list list;
	const struct revision *chosen;

	if (volume_remove_temps(volume, 0) != 0 ||
	    revisions_list(volume, &list) != 0)
		return volume_report_error(volume, errno);
	*unfinished = revert_unfinished(volume, &list, opts->wanted) != NULL;
	chosen = *unfinished ? revert_unfinished(volume, &list, opts->wanted)
	                     : revision_find(volume, &list, opts->wanted);
	if (chosen == NULL) {
		if (list.count == 0)
			log_errx("%s: no revisions", opts->argument);
		else
			log_errx("%s: no revision %s", opts->argument,
			         opts->wanted);
		revisions_free(&list);
		/* Perhaps a revert consumed it and was cut short after: what
		 * it left undone is finished, and the 66 stands. */
		if (volume->clean.exists && !volume->dirty.exists &&
		    volume_finish(volume, &opts->policy) != 0)
			return volume_report_error(volume, errno);
		return EX_NOINPUT;
	}
	snprintf(name, NAME_MAX + 1, "%s", chosen->name);
	*pinned = chosen->pinned;
	revisions_free(&list);
	return 0;
}

/* 1 if C is an unwritten clone of the revision name, 0 if not, -1 with
 * the error recorded. */
static int pinned_restored(struct volume *volume, const char *name)
{
	if (!volume->clean.exists)
		return 0;
	return volume_unwritten_clone(volume, name, NULL, volume->clean.name,
	                              &volume->clean.st);
}

/*
 * A pinned revision stays where it is, pinned: C becomes a clone of it
 * (its data, mtime and state name), made under a temp name first, and the
 * old C becomes the newest revision as in any revert.  C is replaced last
 * (REPLACE_LAST): a run cut short before leaves the old C, saved as the
 * latest revision, and a re-run starts again; one cut short after has
 * nothing left but what volume_finish() checks.
 */
static int pinned_restore(struct volume *volume, const char *name,
                          const struct keep_policy *policy)
{
	struct temp_file temp;
	unsigned flags = REPLACE_LAST;
	int done;

	/* C an unwritten clone of it: this revert was made. */
	done = pinned_restored(volume, name);
	if (done < 0)
		return volume_report_error(volume, errno);
	if (done)
		return volume_finish(volume, policy) == 0
		           ? 0
		           : volume_report_error(volume, errno);
	if (volume->clean.exists && keep_saves_revisions(policy))
		flags |= REPLACE_SAVE;
	if (volume_revision_clone(volume, name, &temp) != 0)
		return volume_report_error(volume, errno);
	if (volume_replace_clean(volume, NULL, temp.name, flags, policy) != 0) {
		int status = volume_report_error(volume, errno);

		/* Before C was replaced the temp file is still there. */
		if (unlinkat(volume->dir.fd, temp.name, 0) == 0)
			dir_sync(&volume->dir);
		return status;
	}
	return 0;
}

/* Makes the revision name C; returns an exit status. */
static int revision_restore(struct volume *volume, const char *name,
                            int unfinished, int pinned,
                            const struct keep_policy *policy)
{
	if (unfinished)
		return revert_finish(volume, name, pinned, policy);
	if (pinned)
		return pinned_restore(volume, name, policy);
	if (volume->clean.exists && keep_saves_revisions(policy))
		return volume_replace_clean(volume, NULL, name,
		                            REPLACE_SAVE | REPLACE_KEEP_NAME,
		                            policy) == 0
		           ? 0
		           : volume_report_error(volume, errno);
	/* Nothing of the current C is kept (-k 0, or no C): the other
	 * revisions go first, so that renaming the revision over C, which
	 * consumes it, is the last step. */
	if (policy->given && volume_prune_to(volume, policy->keep, name) != 0)
		return volume_report_error(volume, errno);
	return volume_replace_clean(volume, NULL, name, 0, policy) == 0
	           ? 0
	           : volume_report_error(volume, errno);
}

/* Reverts the open, locked volume; 0 or an exit status. */
static int revert(struct volume *volume, const struct options *opts)
{
	char path[PATH_MAX], name[NAME_MAX + 1];
	int unfinished = 0, pinned = 0, status;

	if (volume->dirty.exists && !opts->discard) {
		log_errx("%s: the volume is dirty (a VM runs on it, or it "
		         "was not committed): commit it, or use --discard",
		         volume_path(volume, volume->dirty.name, path));
		return EX_TEMPFAIL;
	}
	/* --discard throws D away: never under a VM still running on it. */
	if (volume_check_unused(volume) != 0)
		return volume_report_error(volume, errno);
	status = revision_choose(volume, opts, &unfinished, &pinned, name);
	if (status != 0)
		return status;
	if (volume->dirty.exists) {
		if (durable_unlink(&volume->dir, volume->dirty.name) != 0 &&
		    errno != ENOENT) {
			log_errc(errno, "%s",
			         volume_path(volume, volume->dirty.name, path));
			return exit_status_for_errno(errno);
		}
		volume->dirty.exists = 0;
	}
	status =
	    revision_restore(volume, name, unfinished, pinned, &opts->policy);
	volume_close(volume);
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
	return revert(&volume, &opts);
}
