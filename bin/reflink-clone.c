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

/*
 * Removes the temp files of DST that an interrupted run left.  The caller
 * holds the directory's lock, which every run that writes there takes,
 * so none of them is a file in use.
 */
static int stale_temps_remove(const struct dir *dir, const char *name)
{
	struct dirent *entry;
	DIR *stream;
	int fd, rc = 0;

	fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (stream = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
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

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"no-clobber", no_argument, NULL, 'n'},
	    {"reflink", required_argument, NULL, 'R'},
	    {"size", required_argument, NULL, 's'},
	    {"times", no_argument, NULL, 't'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	enum reflink_mode mode = REFLINK_AUTO;
	int no_clobber = 0, copy_mtime = 0, size_given = 0, made = 0, ch, rc;
	int src_fd;
	int wait_seconds = -1, lock_fd;
	off_t size = 0;
	const char *src, *dst, *dst_dir_path, *dst_name;
	char dst_buf[PATH_MAX], culprit[PATH_MAX + 64];
	struct dir dst_dir;
	struct temp_file temp;
	struct copy_result result;
	struct stat st;
	dev_t src_dev;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "ns:tw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'n':
			no_clobber = 1;
			break;
		case 'R':
			if (strcmp(optarg, "auto") == 0)
				mode = REFLINK_AUTO;
			else if (strcmp(optarg, "always") == 0)
				mode = REFLINK_ALWAYS;
			else if (strcmp(optarg, "never") == 0)
				mode = REFLINK_NEVER;
			else {
				log_errx("invalid --reflink value: %s", optarg);
				usage(stderr);
				return EX_USAGE;
			}
			break;
		case 's':
			if (size_parse(optarg, &size) != 0) {
				log_errx("invalid size: %s", optarg);
				usage(stderr);
				return EX_USAGE;
			}
			size_given = 1;
			break;
		case 't':
			copy_mtime = 1;
			break;
		case 'w':
			wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 2, 2);
	src = argv[0];
	dst = argv[1];

	/* O_NONBLOCK: opening a FIFO must not wait for a writer before it
	 * is refused as not a regular file. */
	src_fd = open(src, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (src_fd < 0) {
		log_errc(errno, "%s", src);
		return exit_status_for_errno(errno);
	}
	if (fstat(src_fd, &st) != 0) {
		log_errc(errno, "%s", src);
		return EX_IOERR;
	}
	if (!S_ISREG(st.st_mode)) {
		log_errx("%s: not a regular file", src);
		return EX_DATAERR;
	}
	if (!size_given)
		size = st.st_size;
	src_dev = st.st_dev;

	if (path_split(dst, dst_buf, sizeof(dst_buf), &dst_dir_path,
	               &dst_name) != 0) {
		log_errc(errno, "%s", dst);
		return exit_status_for_errno(errno);
	}
	if (*dst_name == '\0' || strcmp(dst_name, ".") == 0 ||
	    strcmp(dst_name, "..") == 0 || dst[strlen(dst) - 1] == '/') {
		log_errx("%s: is a directory", dst);
		return EX_DATAERR;
	}
	rc = dir_open_trusted_making(&dst_dir, dst_dir_path, culprit,
	                             sizeof(culprit), &made);
	if (made)
		made_dir_undo_on_failure(dst_dir_path);
	switch (rc) {
	case 0:
		break;
	case 1:
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you, who could lead the clone elsewhere "
		         "(--unsafe-dirs accepts it)",
		         dst, culprit);
		return EX_NOPERM;
	default:
		log_errc(errno, "%s", dst_dir_path);
		return exit_status_for_errno(errno);
	}
	/* The lock of the VM directory tools: one writer at a time. */
	lock_fd = lock_open(&dst_dir);
	if (lock_fd < 0 || lock_wait(lock_fd, LOCK_EX, wait_seconds) != 0) {
		if (errno == EWOULDBLOCK) {
			log_errx("%s: busy: another tool holds the lock of "
			         "this directory",
			         dst_dir_path);
			return EX_TEMPFAIL;
		}
		log_errc(errno, "%s", dst_dir_path);
		return exit_status_for_errno(errno);
	}
	if (stale_temps_remove(&dst_dir, dst_name) != 0) {
		log_errc(errno, "%s", dst_dir_path);
		return exit_status_for_errno(errno);
	}
	if (fstatat(dst_dir.fd, dst_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (no_clobber) {
			log_errx("%s: already exists", dst);
			return EX_CANTCREAT;
		}
		if (S_ISDIR(st.st_mode)) {
			log_errx("%s: is a directory", dst);
			return EX_DATAERR;
		}
	}

	if (temp_create(&temp, &dst_dir, dst_name) != 0) {
		log_errc(errno, "%s: cannot create a temporary file", dst);
		return exit_status_for_errno(errno);
	}
	if (copy_data(temp.fd, src_fd, size, mode, &result) != 0) {
		int err = errno;

		temp_abort(&temp);
		if (mode == REFLINK_ALWAYS && err == EOPNOTSUPP) {
			struct stat dst_st;

			/* A clone never crosses filesystems, whatever each
			 * of them can do: say which of the two it is. */
			if (fstat(dst_dir.fd, &dst_st) == 0 &&
			    dst_st.st_dev != src_dev)
				log_errx("%s to %s: on two different "
				         "filesystems, which a reflink cannot "
				         "cross (use --reflink=auto to copy)",
				         src, dst);
			else
				log_errx("%s to %s: the filesystem cannot "
				         "reflink (use --reflink=auto to copy)",
				         src, dst);
			return EX_UNAVAILABLE;
		}
		log_errc(err, "%s", result.source_failed ? src : dst);
		return exit_status_for_errno(err);
	}
	if (copy_mtime) {
		struct stat src_st;
		struct timespec times[2];

		if (fstat(src_fd, &src_st) != 0) {
			log_errc(errno, "%s", src);
			temp_abort(&temp);
			return EX_IOERR;
		}
		times[0].tv_nsec = UTIME_OMIT;
		times[1] = src_st.st_mtim;
		if (futimens(temp.fd, times) != 0) {
			log_errc(errno, "%s", dst);
			temp_abort(&temp);
			return exit_status_for_errno(errno);
		}
	}
	log_op("%s %s to %s", result.cloned ? "cloned" : "copied", src, dst);
	if (temp_commit(&temp, no_clobber ? RENAME_NOREPLACE : 0) != 0) {
		log_errc(errno, "%s", dst);
		return exit_status_for_errno(errno);
	}
	close(src_fd);
	dir_close(&dst_dir);
	return 0;
}
