/*
 * vol-commit: commit a stopped VM's dirty image D (or a finished image
 * FILE) into the clean image C; the old C becomes the next revision.
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
	fprintf(stream, "usage: vol-commit [-qv] [-k N] [--precache=now|later] "
	                "[-w SECONDS] [--from FILE] VOLUME\n");
}

/* Opens FILE's directory and checks FILE is a regular file there. */
static int from_open(struct dir *dir, const char *path, const char **name,
                     char *buf, const struct volume *volume)
{
	char culprit[PATH_MAX + 64];
	struct stat st, dir_st;
	const char *dir_path;
	int rc;

	if (path_split(path, buf, PATH_MAX, &dir_path, name) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	/* FILE is renamed by its name: whoever may write its directory
	 * could put another file under that name in between. */
	rc = dir_open_trusted(dir, dir_path, culprit, sizeof(culprit));
	if (rc > 0) {
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you (--unsafe-dirs accepts it)",
		         path, culprit);
		return EX_NOPERM;
	}
	if (rc < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	if (fstatat(dir->fd, *name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	if (!S_ISREG(st.st_mode)) {
		log_errx("%s: not a regular file", path);
		return EX_DATAERR;
	}
	if (fstat(volume->dir.fd, &dir_st) != 0 || dir_st.st_dev != st.st_dev) {
		/* --from consumes FILE by rename: a copy would be slow and
		 * would leave two images behind. */
		log_errx("%s: not on the filesystem of %s (--from renames, "
		         "never copies)",
		         path, volume->dir.path);
		return EX_DATAERR;
	}
	return 0;
}

/*
 * D was never written since the start made it from C (a VM that failed to
 * start, say): a revision of it would only push a real one out.  D is
 * dropped, or kept as the precache it still is, and C stays.
 */
static int unwritten_discard(struct volume *volume,
                             const struct keep_policy *policy)
{
	char path[PATH_MAX];
	int rc;

	log_warnx("%s: never written since the start made it from %s: "
	          "discarded, no revision made",
	          volume_path(volume, volume->dirty.name, path),
	          volume->clean.name);
	if (volume_precache_valid(volume) || keep_disables_snapshots(policy))
		rc = durable_unlink(&volume->dir, volume->dirty.name);
	else {
		/* As the next start's D it must first be made the pool's
		 * again, like any image a VM had. */
		int fd = file_open_checked(&volume->dir, volume->dirty.name,
		                           O_RDONLY, &volume->dirty.st);

		if (fd < 0) {
			log_errc(errno, "%s", path);
			return exit_status_for_errno(errno);
		}
		rc = image_seal(volume, fd, volume->dirty.name);
		close(fd);
		if (rc != 0)
			return volume_report_error(volume, errno);
		rc = durable_rename(&volume->dir, volume->dirty.name,
		                    &volume->dir, volume->precache.name, 0);
	}
	if (rc != 0 && errno != ENOENT) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	if (volume_stat(volume) != 0 || volume_finish(volume, policy) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* What the options ask. */
struct commit_options {
	struct keep_policy policy;
	const char *from;
	int wait_seconds;
};

static void options_parse(int argc, char *argv[], struct commit_options *o)
{
	static const struct option long_options[] = {
	    {"from", required_argument, NULL, 'F'},
	    {"keep", required_argument, NULL, 'k'},
	    LONG_OPTION_PRECACHE,
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "k:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'F':
			o->from = optarg;
			break;
		case OPTION_PRECACHE:
			option_precache(optarg, &o->policy);
			break;
		case 'k':
			option_keep(optarg, &o->policy);
			break;
		case 'w':
			o->wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
}

/* The checks before anything changes; returns the exit status. */
static int commit_allowed(struct volume *volume, const char *argument)
{
	switch (volume_absent(volume)) {
	case -1:
		return volume_report_error(volume, errno);
	case 1:
		log_errx("%s: no such volume", argument);
		return EX_NOINPUT;
	}
	/* A VM still running on D would go on writing C in place. */
	if (volume_check_unused(volume) != 0)
		return volume_report_error(volume, errno);
	if (volume_remove_temps(volume, 0) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* Opens --from FILE of a volume that is not dirty; returns the exit
 * status. */
static int from_prepare(struct volume *volume, const char *from,
                        struct dir *from_dir, const char **from_name,
                        char *from_buf, const struct keep_policy *policy)
{
	char path[PATH_MAX];
	int status;

	if (volume->dirty.exists) {
		log_errx("%s: the volume is dirty; commit or discard it before "
		         "committing %s",
		         volume_path(volume, volume->dirty.name, path), from);
		return EX_TEMPFAIL;
	}
	status = from_open(from_dir, from, from_name, from_buf, volume);
	/* FILE gone may be a commit of it cut short after its rename: what
	 * that left undone is finished, and the 66 stands. */
	if (status == EX_NOINPUT && volume_finish(volume, policy) != 0)
		return volume_report_error(volume, errno);
	return status;
}

/* Commits D, or FILE, into C; returns the exit status. */
static int commit(struct volume *volume, const struct commit_options *o)
{
	const char *from_name = NULL;
	char from_buf[PATH_MAX], path[PATH_MAX];
	struct dir from_dir;
	int status;

	if (o->from != NULL) {
		status = from_prepare(volume, o->from, &from_dir, &from_name,
		                      from_buf, &o->policy);
		if (status != 0)
			return status;
	} else if (!volume->dirty.exists) {
		/* Nothing to commit.  What a commit killed after its rename
		 * left undone (pruning, the precache) is finished here. */
		if (volume_finish(volume, &o->policy) != 0)
			return volume_report_error(volume, errno);
		return 0;
	} else {
		switch (volume_dirty_unwritten(volume)) {
		case -1:
			return volume_report_error(volume, errno);
		case 1:
			return unwritten_discard(volume, &o->policy);
		}
	}
	/* With snapshots disabled, C is D while the VM runs: no C is what
	 * such a volume always has at its commit. */
	if (!volume->clean.exists && !keep_disables_snapshots(&o->policy))
		log_warnx("%s is missing: %s becomes it, no revision is made",
		          volume_path(volume, volume->clean.name, path),
		          o->from ? o->from : volume->dirty.name);
	if (volume_replace_clean(volume, o->from ? &from_dir : NULL,
	                         o->from ? from_name : volume->dirty.name,
	                         REPLACE_SAVE | REPLACE_SEAL, &o->policy) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

int main(int argc, char *argv[])
{
	struct commit_options o = {{0}, NULL, -1};
	struct volume volume;
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &o);
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);

	status = volume_open_locked(&volume, argv[0], 0, o.wait_seconds);
	if (status != 0)
		return status;
	status = commit_allowed(&volume, argv[0]);
	if (status == 0)
		status = commit(&volume, &o);
	if (status != 0)
		return status;
	volume_close(&volume);
	return 0;
}
