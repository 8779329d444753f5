/*
 * vol-resize: change the size of a volume.  A running VM's dirty image D
 * is resized in place and its loop devices are told; a stopped volume's
 * clean image C is replaced by a new inode of the new size.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: vol-resize [-fqv] [-k N] [--precache=now|later] "
	        "[-w SECONDS] -s [+]SIZE VOLUME\n");
}

/* The first failure while telling loop devices their new capacity. */
struct capacity_context {
	int status;
};

static int capacity_update(const char *device, void *context)
{
	struct capacity_context *capacity = context;
	int fd;

	/* One device failing must not keep the others at the old size, so
	 * the failure is recorded and the walk goes on. */
	fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, LOOP_SET_CAPACITY, 0) != 0) {
		log_errc(errno, "%s: cannot update the capacity", device);
		if (capacity->status == 0)
			capacity->status = exit_status_for_errno(errno);
	} else
		log_op("set the capacity of %s", device);
	if (fd >= 0)
		close(fd);
	return 0;
}

/* Computes the new size from the current one; 0 or an exit status. */
static int size_target(off_t current, off_t size, int relative, int force,
                       const char *path, off_t *target)
{
	if (relative) {
		if (size > INT64_MAX - current) {
			log_errx("%s: %jd + %jd bytes is too large", path,
			         (intmax_t)current, (intmax_t)size);
			return EX_USAGE;
		}
		size += current;
	}
	if (size < current && !force) {
		log_errx("%s: shrinking from %jd to %jd bytes needs -f (the "
		         "data past the new end is lost)",
		         path, (intmax_t)current, (intmax_t)size);
		return EX_USAGE;
	}
	*target = size;
	return 0;
}

/* Resizes D in place and tells every loop device it backs. */
static int resize_dirty(struct volume *volume, off_t size, int relative,
                        int force)
{
	struct capacity_context capacity = {0};
	struct stat st;
	char path[PATH_MAX];
	off_t target;
	int fd, status;

	volume_path(volume, volume->dirty.name, path);
	fd = file_open_checked(&volume->dir, volume->dirty.name, O_RDWR,
	                       &volume->dirty.st);
	if (fd < 0 || fstat(fd, &st) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	/* A second name of D may be a file outside the pool that someone
	 * linked in: resizing it in place would change that file. */
	if (st.st_nlink != 1) {
		log_errx("%s: has %ju names, so it may be another file's: not "
		         "resized",
		         path, (uintmax_t)st.st_nlink);
		close(fd);
		return EX_DATAERR;
	}
	status = size_target(st.st_size, size, relative, force, path, &target);
	if (status != 0) {
		close(fd);
		return status;
	}
	/* The same size still tells the loop devices: a run killed between
	 * the truncate and the ioctl is finished by running it again. */
	if (target != st.st_size) {
		if (ftruncate(fd, target) != 0) {
			log_errc(errno, "%s", path);
			return exit_status_for_errno(errno);
		}
		/* The new length must be on disk before a loop device lets
		 * the VM write past the old end. */
		if (fsync(fd) != 0) {
			log_errc(errno, "%s", path);
			return exit_status_for_errno(errno);
		}
		log_op("truncated %s from %jd to %jd bytes", path,
		       (intmax_t)st.st_size, (intmax_t)target);
	}
	close(fd);
	if (loop_devices_of(&st, capacity_update, &capacity) < 0) {
		log_errc(errno, "%s: cannot list its loop devices", path);
		return exit_status_for_errno(errno);
	}
	return capacity.status;
}

/*
 * A relative size ("+1G") is not idempotent: run again after it replaced
 * C, it would grow C once more.  So the new C carries its old size in an
 * extended attribute until the resize is complete; a run that finds it,
 * with old size + SIZE being the size C has, only finishes that resize.
 */
#define RESIZE_JOURNAL "user.file-reflink.resized-from"

/* The size C had before a resize that is not complete, or -1. */
static off_t resize_journal_read(const struct volume *volume)
{
	char value[32];
	ssize_t length;
	int fd;
	off_t from = -1;

	fd = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                       &volume->clean.st);
	if (fd < 0)
		return -1;
	length = fgetxattr(fd, RESIZE_JOURNAL, value, sizeof(value) - 1);
	close(fd);
	if (length <= 0)
		return -1;
	value[length] = '\0';
	if (size_parse(value, &from) != 0)
		return -1;
	return from;
}

/* Marks the resize of C complete, durably: a stale mark would make a
 * later resize by the same amount look done already. */
static int resize_journal_clear(const struct volume *volume)
{
	int fd, rc = 0;

	fd = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                       &volume->clean.st);
	if (fd < 0)
		return -1;
	if (fremovexattr(fd, RESIZE_JOURNAL) == 0)
		rc = fsync(fd);
	else if (errno != ENODATA && errno != EOPNOTSUPP)
		rc = -1;
	close(fd);
	return rc;
}

/* C's size is reached: finishes what a resize cut short after it replaced
 * C left undone (the precache, pruning); 0 or an exit status. */
static int resize_finish(struct volume *volume, const char *path,
                         const struct keep_policy *policy)
{
	if (volume_finish(volume, policy) != 0)
		return volume_report_error(volume, errno);
	if (resize_journal_clear(volume) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	return 0;
}

/*
 * Writes C's data, cut or extended to target bytes, to a temp file beside
 * C that carries C's old size current in the journal, and closes it.
 * Returns 0 (temp.name to be renamed or removed) or an exit status.
 */
static int clean_copy(struct volume *volume, off_t target, off_t current,
                      struct temp_file *temp, const char *path)
{
	struct copy_result result;
	char temp_path[PATH_MAX], value[32];
	int fd;

	fd = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                       &volume->clean.st);
	if (fd < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	if (temp_create(temp, &volume->dir, volume->clean.name) != 0) {
		log_errc(errno, "%s: cannot create a temporary file", path);
		close(fd);
		return exit_status_for_errno(errno);
	}
	volume_path(volume, temp->name, temp_path);
	if (copy_data(temp->fd, fd, target, REFLINK_AUTO, &result) != 0) {
		int err = errno;

		temp_abort(temp);
		log_errc(err, "%s", path);
		return exit_status_for_errno(err);
	}
	close(fd);
	log_op("%s %s to %s (%jd bytes)", result.cloned ? "cloned" : "copied",
	       path, temp_path, (intmax_t)target);
	snprintf(value, sizeof(value), "%jd", (intmax_t)current);
	/* Without extended attributes the resize works all the same; only
	 * a relative one run again after a crash may grow twice. */
	if (fsetxattr(temp->fd, RESIZE_JOURNAL, value, strlen(value), 0) != 0 &&
	    errno != EOPNOTSUPP) {
		int err = errno;

		temp_abort(temp);
		log_errc(err, "%s", temp_path);
		return exit_status_for_errno(err);
	}
	/* volume_replace_clean fsyncs the new C before renaming it. */
	if (close(temp->fd) != 0) {
		temp->fd = -1;
		log_errc(errno, "%s", path);
		temp_abort(temp);
		return exit_status_for_errno(errno);
	}
	temp->fd = -1;
	return 0;
}

/* Replaces C by a new inode of the new size; P is made anew. */
static int resize_clean(struct volume *volume, off_t size, int relative,
                        int force, const struct keep_policy *policy)
{
	struct temp_file temp;
	char path[PATH_MAX];
	off_t current = volume->clean.st.st_size, target, from;
	int status;

	volume_path(volume, volume->clean.name, path);
	from = resize_journal_read(volume);
	if (relative && from >= 0 && from <= INT64_MAX - size &&
	    from + size == current) {
		/* This very resize was cut short after it replaced C. */
		size = current;
		relative = 0;
	}
	status = size_target(current, size, relative, force, path, &target);
	if (status != 0)
		return status;
	if (target == current)
		return resize_finish(volume, path, policy);
	status = clean_copy(volume, target, current, &temp, path);
	if (status != 0)
		return status;
	/* A shrink loses data, so the old C is kept as a revision first; a
	 * growth loses nothing and makes none. */
	if (volume_replace_clean(volume, NULL, temp.name, target < current,
	                         policy) != 0) {
		status = volume_report_error(volume, errno);
		temp_abort(&temp);
		return status;
	}
	if (resize_journal_clear(volume) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	return 0;
}

/* What the command line asks for. */
struct options {
	struct keep_policy policy;
	off_t size;   /* -s, or -1 */
	int relative; /* -s +SIZE: grow by SIZE */
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
			opts->relative = optarg[0] == '+';
			if (size_parse(optarg + opts->relative, &opts->size) !=
			    0)
				usage_error("invalid size: %s", optarg);
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

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume;
	char path[PATH_MAX];
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	status =
	    volume_open_locked(&volume, opts.argument, 0, opts.wait_seconds);
	if (status != 0)
		return status;
	if (volume_remove_temps(&volume, 0) != 0)
		return volume_report_error(&volume, errno);
	if (volume.dirty.exists)
		status =
		    resize_dirty(&volume, opts.size, opts.relative, opts.force);
	else if (volume.clean.exists)
		status = resize_clean(&volume, opts.size, opts.relative,
		                      opts.force, &opts.policy);
	else {
		log_errx("%s: no such volume",
		         volume_path(&volume, volume.clean.name, path));
		status = EX_NOINPUT;
	}
	volume_close(&volume);
	return status;
}
