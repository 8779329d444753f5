/*
 * reflink-clone: make DST a new file with SRC's data, atomically: by
 * FICLONE where the filesystem can share extents, else by a sparse copy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream,
	        "usage: reflink-clone [-nqtv] [--reflink=auto|always|never] "
	        "[-s SIZE] [-w SECONDS]\n"
	        "                     [--progress] SRC DST\n");
}

/* What the command line asks for. */
struct options {
	enum reflink_mode mode;
	int no_clobber, copy_mtime, size_given, wait_seconds;
	off_t size;
	const char *src, *dst;
};

/* One clone: the source open, the destination's directory, its temp file. */
struct clone {
	const struct options *opts;
	int src_fd;
	dev_t src_dev;
	off_t size;
	char dst_buf[PATH_MAX];
	const char *dst_dir_path, *dst_name;
	struct dir dst_dir;
	struct temp_file temp;
};

static enum reflink_mode reflink_mode_parse(const char *arg)
{
	if (strcmp(arg, "auto") == 0)
		return REFLINK_AUTO;
	if (strcmp(arg, "always") == 0)
		return REFLINK_ALWAYS;
	if (strcmp(arg, "never") == 0)
		return REFLINK_NEVER;
	usage_error("invalid --reflink value: %s", arg);
}

static void options_parse(int argc, char *argv[], struct options *opts)
{
	static const struct option long_options[] = {
	    {"no-clobber", no_argument, NULL, 'n'},
	    {"reflink", required_argument, NULL, 'R'},
	    {"size", required_argument, NULL, 's'},
	    {"times", no_argument, NULL, 't'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	*opts = (struct options){.mode = REFLINK_AUTO, .wait_seconds = -1};
	while ((ch = getopt_long(argc, argv, "ns:tw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'n':
			opts->no_clobber = 1;
			break;
		case 'R':
			opts->mode = reflink_mode_parse(optarg);
			break;
		case 's':
			opts->size = option_size(optarg);
			opts->size_given = 1;
			break;
		case 't':
			opts->copy_mtime = 1;
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
	operands_expect(argc, argv, 2, 2);
	opts->src = argv[0];
	opts->dst = argv[1];
}

/* Opens SRC, which must be a regular file; 0 or an exit status. */
static int src_open(struct clone *clone)
{
	const char *src = clone->opts->src;
	struct stat st;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer before it
	 * is refused as not a regular file. */
	clone->src_fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (clone->src_fd < 0) {
		log_errc(errno, "%s", src);
		return exit_status_for_errno(errno);
	}
	if (fstat(clone->src_fd, &st) != 0) {
		log_errc(errno, "%s", src);
		return EX_IOERR;
	}
	if (!S_ISREG(st.st_mode)) {
		log_errx("%s: not a regular file", src);
		return EX_DATAERR;
	}
	clone->size = clone->opts->size_given ? clone->opts->size : st.st_size;
	clone->src_dev = st.st_dev;
	return 0;
}

/* Opens the directory DST goes in (made if missing, one level), which
 * must be trusted; 0 or an exit status. */
static int dst_dir_open(struct clone *clone)
{
	const char *dst = clone->opts->dst;
	char culprit[PATH_MAX + 64];
	int made = 0, rc;

	if (path_split(dst, clone->dst_buf, sizeof(clone->dst_buf),
	               &clone->dst_dir_path, &clone->dst_name) != 0) {
		log_errc(errno, "%s", dst);
		return exit_status_for_errno(errno);
	}
	if (*clone->dst_name == '\0' || strcmp(clone->dst_name, ".") == 0 ||
	    strcmp(clone->dst_name, "..") == 0 || dst[strlen(dst) - 1] == '/') {
		log_errx("%s: is a directory", dst);
		return EX_DATAERR;
	}
	rc = dir_open_trusted_making(&clone->dst_dir, clone->dst_dir_path,
	                             culprit, sizeof(culprit), &made);
	if (made)
		made_dir_undo_on_failure(clone->dst_dir_path);
	switch (rc) {
	case 0:
		return 0;
	case 1:
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you, who could lead the clone elsewhere "
		         "(--unsafe-dirs accepts it)",
		         dst, culprit);
		return EX_NOPERM;
	default:
		log_errc(errno, "%s", clone->dst_dir_path);
		return exit_status_for_errno(errno);
	}
}

/*
 * Removes the temp files of DST that an interrupted run left.  The caller
 * holds the directory's lock, which every run that writes there takes,
 * so none of them is a file in use.
 */
static int stale_temps_remove(const struct dir *dir, const char *name)
{
	struct dirent *entry;
	DIR *stream;
	int rc = 0;

	stream = dir_stream(dir);
	if (stream == NULL)
		return -1;
	while ((entry = readdir(stream)) != NULL)
		if (temp_name_of(entry->d_name, name) &&
		    durable_unlink(dir, entry->d_name) != 0 &&
		    errno != ENOENT) {
			rc = -1;
			break;
		}
	closedir(stream);
	return rc;
}

/* Takes the lock of DST's directory (held until exit), removes what an
 * interrupted run left, and checks what DST is now; 0 or an exit status. */
static int dst_dir_prepare(struct clone *clone)
{
	const char *dst = clone->opts->dst, *dir_path = clone->dst_dir_path;
	struct stat st;
	int lock_fd;

	/* The lock of the VM directory tools: one writer at a time. */
	lock_fd = lock_open(&clone->dst_dir);
	if (lock_fd < 0 ||
	    lock_wait(lock_fd, LOCK_EX, clone->opts->wait_seconds) != 0) {
		if (errno == EWOULDBLOCK) {
			log_errx("%s: busy: another tool holds the lock of "
			         "this directory",
			         dir_path);
			return EX_TEMPFAIL;
		}
		log_errc(errno, "%s", dir_path);
		return exit_status_for_errno(errno);
	}
	if (stale_temps_remove(&clone->dst_dir, clone->dst_name) != 0) {
		log_errc(errno, "%s", dir_path);
		return exit_status_for_errno(errno);
	}
	if (fstatat(clone->dst_dir.fd, clone->dst_name, &st,
	            AT_SYMLINK_NOFOLLOW) == 0) {
		if (clone->opts->no_clobber) {
			log_errx("%s: already exists", dst);
			return EX_CANTCREAT;
		}
		if (S_ISDIR(st.st_mode)) {
			log_errx("%s: is a directory", dst);
			return EX_DATAERR;
		}
	}
	return 0;
}

/* Reports a failed copy_data (the temp file gone); returns the status. */
static int copy_failed(const struct clone *clone, int err,
                       const struct copy_result *result)
{
	const char *src = clone->opts->src, *dst = clone->opts->dst;
	struct stat dst_st;

	if (clone->opts->mode == REFLINK_ALWAYS && err == EOPNOTSUPP) {
		/* A clone never crosses filesystems, whatever each of them
		 * can do: say which of the two it is. */
		if (fstat(clone->dst_dir.fd, &dst_st) == 0 &&
		    dst_st.st_dev != clone->src_dev)
			log_errx("%s to %s: on two different filesystems, "
			         "which a reflink cannot cross (use "
			         "--reflink=auto to copy)",
			         src, dst);
		else
			log_errx("%s to %s: the filesystem cannot reflink (use "
			         "--reflink=auto to copy)",
			         src, dst);
		return EX_UNAVAILABLE;
	}
	log_errc(err, "%s", result->source_failed ? src : dst);
	return exit_status_for_errno(err);
}

/* Gives the temp file SRC's mtime; 0 or an exit status (temp gone). */
static int mtime_copy(struct clone *clone)
{
	struct stat src_st;
	struct timespec times[2];

	if (fstat(clone->src_fd, &src_st) != 0) {
		log_errc(errno, "%s", clone->opts->src);
		temp_abort(&clone->temp);
		return EX_IOERR;
	}
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = src_st.st_mtim;
	if (futimens(clone->temp.fd, times) != 0) {
		log_errc(errno, "%s", clone->opts->dst);
		temp_abort(&clone->temp);
		return exit_status_for_errno(errno);
	}
	return 0;
}

/* Writes SRC's data to a temp file beside DST and renames it to DST. */
static int clone_write(struct clone *clone)
{
	const struct options *opts = clone->opts;
	struct copy_result result;
	int status;

	if (temp_create(&clone->temp, &clone->dst_dir, clone->dst_name) != 0) {
		log_errc(errno, "%s: cannot create a temporary file",
		         opts->dst);
		return exit_status_for_errno(errno);
	}
	if (copy_data(clone->temp.fd, clone->src_fd, clone->size, opts->mode,
	              &result) != 0) {
		int err = errno;

		temp_abort(&clone->temp);
		return copy_failed(clone, err, &result);
	}
	if (opts->copy_mtime && (status = mtime_copy(clone)) != 0)
		return status;
	log_op("%s %s to %s", result.cloned ? "cloned" : "copied", opts->src,
	       opts->dst);
	if (temp_commit(&clone->temp,
	                opts->no_clobber ? RENAME_NOREPLACE : 0) != 0) {
		log_errc(errno, "%s", opts->dst);
		return exit_status_for_errno(errno);
	}
	return 0;
}

int main(int argc, char *argv[])
{
	struct options opts;
	struct clone clone = {.opts = &opts};
	int status;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &opts);
	if ((status = src_open(&clone)) != 0 ||
	    (status = dst_dir_open(&clone)) != 0 ||
	    (status = dst_dir_prepare(&clone)) != 0 ||
	    (status = clone_write(&clone)) != 0)
		return status;
	close(clone.src_fd);
	dir_close(&clone.dst_dir);
	return 0;
}
