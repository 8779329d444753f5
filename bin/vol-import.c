/*
 * vol-import: replace a volume's content with a file or standard input.
 * The data is staged in B-import.img, then committed like vol-commit
 * commits D: the old C becomes the next revision and P is made anew.
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
	fprintf(stream, "usage: vol-import [-qv] [-k N] [--precache=now|later] "
	                "[-s SIZE] [-w SECONDS] VOLUME [FILE | -]\n");
}

/* Opens FILE for reading; it must be a regular file.  Returns 0 or an exit
 * status. */
static int input_open(const char *path, int *fd, struct stat *st)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer before it
	 * can be refused. */
	*fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	if (fstat(*fd, st) != 0) {
		log_errc(errno, "%s", path);
		return EX_IOERR;
	}
	if (!S_ISREG(st->st_mode)) {
		log_errx("%s: not a regular file (give - and redirect standard "
		         "input to read a pipe or a device)",
		         path);
		return EX_DATAERR;
	}
	if (fcntl(*fd, F_SETFL, 0) != 0) {
		log_errc(errno, "%s", path);
		return EX_IOERR;
	}
	return 0;
}

static void not_enough_data(const char *volume, off_t copied, off_t expected)
{
	log_errx("%s: not enough data (copied %jd bytes, expected %jd bytes)",
	         volume, (intmax_t)copied, (intmax_t)expected);
}

static void too_much_data(const char *volume, off_t expected)
{
	log_errx("%s: too much data (expected %jd bytes)", volume,
	         (intmax_t)expected);
}

/*
 * If the staged I holds the same data as C, removes I, finishes the
 * pruning and the precache, and returns the exit status; else -1.
 */
static int import_done_already(struct volume *volume,
                               const struct keep_policy *policy)
{
	char path[PATH_MAX];
	int clean, import, same, err;

	if (!volume->clean.exists || keep_disables_snapshots(policy))
		return -1;
	clean = file_open_checked(&volume->dir, volume->clean.name, O_RDONLY,
	                          &volume->clean.st);
	import = file_open_checked(&volume->dir, volume->import.name, O_RDONLY,
	                           NULL);
	same = clean >= 0 && import >= 0 ? files_same_data(clean, import) : -1;
	err = errno;
	if (clean >= 0)
		close(clean);
	if (import >= 0)
		close(import);
	/* An I/O error telling them apart fails the import: guessing
	 * "different" would make a second revision of the same data. */
	if (same < 0) {
		log_errc(err, "%s",
		         volume_path(volume,
		                     clean < 0 ? volume->clean.name
		                               : volume->import.name,
		                     path));
		/* The staging file of a failed import is of no use. */
		if (durable_unlink(&volume->dir, volume->import.name) != 0 &&
		    errno != ENOENT)
			log_errc(
			    errno, "%s",
			    volume_path(volume, volume->import.name, path));
		return exit_status_for_errno(err);
	}
	if (same == 0)
		return -1;
	log_warnx("%s holds this data already: nothing to import",
	          volume_path(volume, volume->clean.name, path));
	if (durable_unlink(&volume->dir, volume->import.name) != 0) {
		log_errc(errno, "%s",
		         volume_path(volume, volume->import.name, path));
		return exit_status_for_errno(errno);
	}
	if (volume_finish(volume, policy) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

/* What the command line asks for. */
struct options {
	struct keep_policy policy;
	off_t size; /* -s, or -1 */
	int wait_seconds;
	const char *argument;
	const char *input; /* FILE, or NULL for standard input */
};

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"keep", required_argument, NULL, 'k'},
	    LONG_OPTION_PRECACHE,
	    {"size", required_argument, NULL, 's'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.size = -1, .wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "k:s:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
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
	operands_expect(argc, argv, 1, 2);
	opts->argument = argv[0];
	if (argc == 2 && strcmp(argv[1], "-") != 0)
		opts->input = argv[1];
}

/*
 * Opens FILE and checks its size against -s (setting opts->size to it),
 * or checks that standard input is no terminal.  FILE is checked before
 * the VM directory is made, so that a rejected input leaves nothing
 * behind.  Returns 0 or an exit status.
 */
static int input_check(struct options *opts, int *fd)
{
	struct stat st;
	int status;

	if (opts->input == NULL) {
		/* Waiting for an image typed at a terminal, with the lock
		 * held, is never what was meant. */
		if (isatty(STDIN_FILENO))
			usage_error(
			    "standard input is a terminal: give FILE, "
			    "or redirect standard input from the image");
		return 0;
	}
	status = input_open(opts->input, fd, &st);
	if (status != 0)
		return status;
	if (opts->size >= 0 && st.st_size < opts->size) {
		not_enough_data(opts->argument, st.st_size, opts->size);
		return EX_DATAERR;
	}
	if (opts->size >= 0 && st.st_size > opts->size) {
		too_much_data(opts->argument, opts->size);
		return EX_DATAERR;
	}
	opts->size = st.st_size;
	return 0;
}

/* Copies FILE (fd) into the temp file; 0 or an exit status (temp gone). */
static int file_copy(struct temp_file *temp, int fd, const char *input,
                     off_t size, const char *path, const char *temp_path)
{
	struct copy_result result;

	if (copy_data(temp->fd, fd, size, REFLINK_AUTO, &result) != 0) {
		int err = errno;

		temp_abort(temp);
		log_errc(err, "%s", result.source_failed ? input : path);
		return exit_status_for_errno(err);
	}
	log_op("%s %s to %s", result.cloned ? "cloned" : "copied", input,
	       temp_path);
	return 0;
}

/* Copies standard input into the temp file, exactly -s bytes if given;
 * 0 or an exit status (temp gone). */
static int stdin_copy(struct temp_file *temp, const char *argument, off_t size,
                      const char *path, const char *temp_path)
{
	off_t copied;
	int rc;

	rc = copy_stream(temp->fd, 0, size, &copied);
	if (rc == -1 && errno == EFBIG) {
		temp_abort(temp);
		too_much_data(argument, size);
		return EX_DATAERR;
	}
	if (rc != 0) {
		int err = errno;

		temp_abort(temp);
		log_errc(err, "%s", rc == -1 ? "standard input" : path);
		return exit_status_for_errno(err);
	}
	if (size >= 0 && copied < size) {
		temp_abort(temp);
		not_enough_data(argument, copied, size);
		return EX_DATAERR;
	}
	log_op("copied standard input to %s", temp_path);
	return 0;
}

/* Stages the input in I; 0 or an exit status. */
static int import_stage(struct volume *volume, const struct options *opts,
                        int fd)
{
	struct temp_file temp;
	char path[PATH_MAX], temp_path[PATH_MAX];
	int status;

	volume_path(volume, volume->clean.name, path);
	if (temp_create(&temp, &volume->dir, volume->import.name) != 0) {
		log_errc(errno, "%s: cannot create a temporary file",
		         volume_path(volume, volume->import.name, temp_path));
		return exit_status_for_errno(errno);
	}
	volume_path(volume, temp.name, temp_path);
	if (opts->input != NULL)
		status = file_copy(&temp, fd, opts->input, opts->size, path,
		                   temp_path);
	else
		status = stdin_copy(&temp, opts->argument, opts->size, path,
		                    temp_path);
	if (status != 0)
		return status;
	if (temp_commit(&temp, 0) != 0) {
		int err = errno;

		/* The rename may have happened before the fsync failed. */
		if (unlinkat(volume->dir.fd, volume->import.name, 0) == 0)
			dir_sync(&volume->dir);
		log_errc(err, "%s", path);
		return exit_status_for_errno(err);
	}
	return 0;
}

/* Makes the staged I the new C; 0 or an exit status. */
static int import_commit(struct volume *volume,
                         const struct keep_policy *policy)
{
	char path[PATH_MAX];
	int status;

	if (volume_replace_clean(volume, NULL, volume->import.name,
	                         REPLACE_SAVE | REPLACE_SEAL, policy) == 0)
		return 0;
	status = volume_report_error(volume, errno);
	/* A staging file that did not become C is of no use. */
	if (durable_unlink(&volume->dir, volume->import.name) != 0 &&
	    errno != ENOENT)
		log_errc(errno, "%s",
		         volume_path(volume, volume->import.name, path));
	return status;
}

/* Imports into the open, locked volume; 0 or an exit status. */
static int import(struct volume *volume, const struct options *opts, int fd)
{
	char path[PATH_MAX];
	int status;

	if (volume->dirty.exists) {
		log_errx("%s: the volume is dirty; commit or discard it before "
		         "importing",
		         volume_path(volume, volume->dirty.name, path));
		return EX_TEMPFAIL;
	}
	if (volume_remove_temps(volume, 1) != 0)
		return volume_report_error(volume, errno);
	status = import_stage(volume, opts, fd);
	if (status != 0)
		return status;
	/* The same data as C: an import done already, whose run was cut
	 * short after it replaced C.  Only what it left undone is done. */
	status = import_done_already(volume, &opts->policy);
	if (status >= 0) {
		if (opts->input != NULL)
			close(fd);
		return status;
	}
	status = import_commit(volume, &opts->policy);
	if (status != 0)
		return status;
	if (opts->input != NULL)
		close(fd);
	volume_close(volume);
	return 0;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct volume volume;
	int status, fd = 0;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	status = input_check(&opts, &fd);
	if (status != 0)
		return status;
	status =
	    volume_open_locked(&volume, opts.argument, 1, opts.wait_seconds);
	if (status != 0)
		return status;
	return import(&volume, &opts, fd);
}
