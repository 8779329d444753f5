/*
 * vol-start: prepare the dirty image D that a VM runs on, and print its
 * path.  Origin volume: D is the precache P renamed (no copy at all), or
 * a clone of C; a D left by a crash is resumed.  Snapshot volume (-S):
 * own C is a hard link of SRC's C and D a clone of it.  Volatile volume:
 * D is a new sparse file.  -k -1 (snapshots disabled): C itself becomes D.
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
	fprintf(stream, "usage: vol-start [-qv] [-w SECONDS] [-k N | -S SRC | "
	                "--volatile -s SIZE] VOLUME\n");
}

/* Makes D a new file holding the data of from (a clone where possible),
 * with from's mtime: the first write moves it, which is how vol-commit
 * tells a D that no VM wrote. */
static int dirty_clone(struct volume *volume, const char *from)
{
	if (volume_clone_of(volume, from, &volume->dirty) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

static int start_origin(struct volume *volume)
{
	char path[PATH_MAX];

	if (volume->dirty.exists) {
		log_warnx("%s exists: resuming its uncommitted state",
		          volume_path(volume, volume->dirty.name, path));
		return 0;
	}
	if (!volume->clean.exists) {
		log_errx("%s: No such file or directory",
		         volume_path(volume, volume->clean.name, path));
		return EX_NOINPUT;
	}
	if (volume->precache.exists) {
		if (volume_precache_valid(volume)) {
			/* The precache is a clone of C made at the last
			 * commit: starting costs one rename. */
			if (durable_rename(&volume->dir, volume->precache.name,
			                   &volume->dir, volume->dirty.name,
			                   0) != 0) {
				log_errc(errno, "%s",
				         volume_path(volume,
				                     volume->precache.name,
				                     path));
				return exit_status_for_errno(errno);
			}
			return 0;
		}
		log_warnx("%s: stale precache (not a copy of the clean "
		          "image): removed",
		          volume_path(volume, volume->precache.name, path));
		if (volume_precache_remove(volume) != 0)
			return volume_report_error(volume, errno);
	}
	return dirty_clone(volume, volume->clean.name);
}

static int start_snapshots_disabled(struct volume *volume)
{
	struct revision_list list;
	char path[PATH_MAX];

	if (volume->dirty.exists) {
		log_warnx("%s exists: resuming its uncommitted state",
		          volume_path(volume, volume->dirty.name, path));
	} else {
		/* C and the revisions are checked before anything changes,
		 * so a missing C costs no revision, and a revision that is
		 * not a file stops the start before C is renamed. */
		if (revisions_list(volume, &list) != 0)
			return volume_report_error(volume, errno);
		revisions_free(&list);
		if (!volume->clean.exists) {
			log_errx("%s: No such file or directory",
			         volume_path(volume, volume->clean.name, path));
			return EX_NOINPUT;
		}
		if (durable_rename(&volume->dir, volume->clean.name,
		                   &volume->dir, volume->dirty.name,
		                   RENAME_NOREPLACE) != 0) {
			log_errc(errno, "%s",
			         volume_path(volume, volume->clean.name, path));
			return exit_status_for_errno(errno);
		}
	}
	if (volume_precache_remove(volume) != 0 ||
	    volume_prune_to(volume, 0, NULL) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

static int start_snapshot(struct volume *volume, struct volume *source)
{
	char path[PATH_MAX];
	int linked = 0, status;

	/* Own C is SRC's C itself, by hard link: free whatever the size. */
	if (volume->clean.exists &&
	    (volume->clean.st.st_ino != source->clean.st.st_ino ||
	     volume->clean.st.st_dev != source->clean.st.st_dev)) {
		if (durable_unlink(&volume->dir, volume->clean.name) != 0 &&
		    errno != ENOENT) {
			log_errc(errno, "%s",
			         volume_path(volume, volume->clean.name, path));
			return exit_status_for_errno(errno);
		}
		volume->clean.exists = 0;
	}
	if (!volume->clean.exists) {
		if (durable_link(&source->dir, source->clean.name, &volume->dir,
		                 volume->clean.name) != 0) {
			int err = errno;

			/* A link whose directory fsync failed was made:
			 * take it back, so that the volume stays stopped. */
			unlinkat(volume->dir.fd, volume->clean.name, 0);
			log_errc(err, "%s",
			         volume_path(volume, volume->clean.name, path));
			return exit_status_for_errno(err);
		}
		linked = 1;
		/* The link is SRC's C itself. */
		volume->clean.st = source->clean.st;
		volume->clean.exists = 1;
	}
	/* A D left by a crash is stale: a snapshot volume starts afresh. */
	status = dirty_clone(volume, volume->clean.name);
	/* A start that failed leaves the volume stopped, as it found it:
	 * without its link, and without a D that its failing rename may
	 * have put in place (a snapshot's D is thrown away at any start),
	 * for a D without C would be taken for a volume's only data. */
	if (status != 0 && linked) {
		unlinkat(volume->dir.fd, volume->dirty.name, 0);
		if (unlinkat(volume->dir.fd, volume->clean.name, 0) == 0)
			dir_sync(&volume->dir);
	}
	return status;
}

static int start_volatile(struct volume *volume, off_t size)
{
	struct temp_file temp;
	char path[PATH_MAX];
	int err;

	volume_path(volume, volume->dirty.name, path);
	if (temp_create(&temp, &volume->dir, volume->dirty.name) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	/* Always a new inode: nothing of an earlier run's data survives. */
	if (ftruncate(temp.fd, size) != 0) {
		err = errno;
		temp_abort(&temp);
		log_errc(err, "%s", path);
		return exit_status_for_errno(err);
	}
	if (temp_commit(&temp, 0) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	return 0;
}

/* The options of vol-start. */
struct start_options {
	struct keep_policy policy;
	const char *source;
	off_t size;
	int volatile_type, wait_seconds;
};

static void options_parse(int argc, char *argv[], struct start_options *o)
{
	static const struct option long_options[] = {
	    {"keep", required_argument, NULL, 'k'},
	    {"size", required_argument, NULL, 's'},
	    {"snapshot", required_argument, NULL, 'S'},
	    {"volatile", no_argument, NULL, 'T'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "k:S:s:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'k':
			option_keep(optarg, &o->policy);
			break;
		case 'S':
			o->source = optarg;
			break;
		case 's':
			o->size = option_size(optarg);
			break;
		case 'T':
			o->volatile_type = 1;
			break;
		case 'w':
			o->wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
}

/* One volume type per call; -s belongs to --volatile only. */
static void options_check(const struct start_options *o)
{
	if (o->volatile_type && o->size < 0)
		usage_error("--volatile needs -s SIZE");
	if (!o->volatile_type && o->size >= 0)
		usage_error("-s SIZE is for --volatile only");
	if (o->policy.given + (o->source != NULL) + o->volatile_type > 1)
		usage_error("-k, -S and --volatile each name a volume type: "
		            "give one");
}

/* Makes D of the volume's type; returns the exit status. */
static int start(struct volume *volume, struct volume *source,
                 const struct start_options *o)
{
	/* No VM may run on the D that this start would hand out again or
	 * make anew, and the files must agree with the type named. */
	if (volume_check_type(volume, source, o->volatile_type) != 0)
		return volume_report_error(volume, errno);
	/* Whatever an earlier run left half-made is removed first; an
	 * import in progress is not trusted either. */
	if (volume_remove_temps(volume, 1) != 0)
		return volume_report_error(volume, errno);
	if (source != NULL)
		return start_snapshot(volume, source);
	if (o->volatile_type)
		return start_volatile(volume, o->size);
	if (keep_disables_snapshots(&o->policy))
		return start_snapshots_disabled(volume);
	return start_origin(volume);
}

int main(int argc, char *argv[])
{
	struct start_options o = {{0}, NULL, -1, 0, -1};
	struct volume volume, source_volume;
	char path[PATH_MAX];
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &o);
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);
	options_check(&o);

	if (o.source != NULL &&
	    (status = source_open(&source_volume, o.source)) != 0)
		return status;
	status = volume_open_locked(&volume, argv[0],
	                            o.source != NULL || o.volatile_type,
	                            o.wait_seconds);
	if (status != 0)
		return status;
	status = start(&volume, o.source ? &source_volume : NULL, &o);
	if (status != 0)
		return status;
	printf("%s\n", volume_path(&volume, volume.dirty.name, path));
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	volume_close(&volume);
	return 0;
}
