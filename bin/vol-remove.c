/*
 * vol-remove: remove every file of a volume, then its VM directory if
 * nothing else is left in it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-remove [-fnqv] [-w SECONDS] VOLUME\n");
}

/* Prints a removed file's path; warns of a malformed name that stays. */
static void file_removed(const char *path, enum name_kind kind, void *context)
{
	(void)context;
	if (kind == NAME_MALFORMED)
		log_warnx("%s: not removed: not a valid revision name", path);
	else
		printf("%s\n", path);
}

/*
 * Removes the VM directory if it is empty now.  Its parent is found from
 * the path it was opened by, and only the very directory that was opened
 * (same device and inode) is removed.
 */
static int vm_dir_remove(const struct volume *volume, int *removed)
{
	char buf[PATH_MAX];
	const char *parent_path, *name;
	struct stat opened, named;
	struct dir parent;
	int rc = 0;

	if (path_split(volume->dir.path, buf, sizeof(buf), &parent_path,
	               &name) != 0)
		return 0;
	/* "." or "/" cannot be removed by this name: leave it. */
	if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	if (dir_open(&parent, parent_path) != 0)
		return 0;
	*removed = 0;
	if (fstat(volume->dir.fd, &opened) == 0 &&
	    fstatat(parent.fd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	    opened.st_dev == named.st_dev && opened.st_ino == named.st_ino) {
		if (durable_rmdir(&parent, name) == 0)
			*removed = 1;
		/* Anything else left in the directory keeps it. */
		else if (errno != ENOTEMPTY && errno != EEXIST &&
		         errno != EBUSY) {
			log_errc(errno, "%s", volume->dir.path);
			rc = exit_status_for_errno(errno);
		}
	}
	dir_close(&parent);
	return rc;
}

/* What the command line asks for. */
struct options {
	int force, dry_run, wait_seconds;
	const char *argument;
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"force", no_argument, NULL, 'f'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "fnw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'f':
			opts->force = 1;
			break;
		case 'n':
			opts->dry_run = 1;
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

/* Opens the volume: locked, but for a dry run; 0 or an exit status. */
static int remove_open(struct volume *volume, const struct options *opts)
{
	/* A preview changes nothing, so it takes no lock. */
	if (opts->dry_run)
		return volume_open(volume, opts->argument, 0) == 0
		           ? 0
		           : volume_report_error(volume, errno);
	return volume_open_locked(volume, opts->argument, 0,
	                          opts->wait_seconds);
}

/* Refuses (65) a volume with a pinned revision: only -f removes one. */
static int pins_check(struct volume *volume)
{
	struct revision_list list;
	char path[PATH_MAX];
	size_t i;
	int status = 0;

	if (revisions_list(volume, &list) != 0)
		return volume_report_error(volume, errno);
	for (i = 0; i < list.count && status == 0; i++)
		if (list.items[i].pinned) {
			log_errx("%s: the revision is pinned; nothing removed "
			         "(vol-pin -u unpins it, -f removes it anyway)",
			         volume_path(volume, list.items[i].name, path));
			status = EX_DATAERR;
		}
	revisions_free(&list);
	return status;
}

/* Removes (with -n, lists) the volume's files; 0 or an exit status. */
static int files_remove(struct volume *volume, const struct options *opts)
{
	char path[PATH_MAX];
	int found, status;

	/* Not even -f removes the image a VM runs on. */
	if (volume_check_unused(volume) != 0)
		return volume_report_error(volume, errno);
	if (volume->dirty.exists && !opts->force) {
		log_errx("%s: the volume is dirty (a VM may be running); "
		         "nothing removed (-f removes it anyway)",
		         volume_path(volume, volume->dirty.name, path));
		return EX_TEMPFAIL;
	}
	if (!opts->force && (status = pins_check(volume)) != 0)
		return status;
	found = volume_remove_all(volume, opts->dry_run, file_removed, NULL);
	if (found < 0)
		return volume_report_error(volume, errno);
	/* A name with no file is a typo, not a volume: its directory is
	 * left alone, even when empty (pool-check reports an empty VM
	 * directory that an interrupted remove left). */
	if (found == 0) {
		log_errx("%s: no such volume; nothing removed", opts->argument);
		return EX_NOINPUT;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume;
	int status, removed;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	status = remove_open(&volume, &opts);
	if (status != 0)
		return status;
	status = files_remove(&volume, &opts);
	if (status != 0)
		return status;
	if (!opts.dry_run)
		status = vm_dir_remove(&volume, &removed);
	volume_close(&volume);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	return status;
}
