/*
 * lock.c: the lock of a VM directory.  Every tool that changes a volume
 * holds it exclusively; readers such as pool-check take it shared.
 *
 * A flock(2) on the directory itself can be taken by anyone who can open
 * the directory for reading, and a local user holding it would make every
 * hook wait for ever.  So root locks a file that only root can open:
 * LOCK_DIRECTORY/DEV-INO.lock, named after the directory's device and
 * inode.  Another user (a pool of one's own) locks the directory itself,
 * as no directory outside it is theirs to trust.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reflink.h"

/* Opens LOCK_DIRECTORY, making it if missing, and checks that it is a
 * directory of root's that nobody else may enter. */
static int lock_directory_open(void)
{
	char aside[sizeof(LOCK_DIRECTORY) + 32];
	struct stat st;
	int fd, tries;

	for (tries = 0; tries < 3; tries++) {
		fd = open(LOCK_DIRECTORY,
		          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			if (mkdir(LOCK_DIRECTORY, 0700) != 0 && errno != EEXIST)
				return -1;
			continue;
		}
		if (fd < 0)
			return -1;
		if (fstat(fd, &st) != 0) {
			close(fd);
			return -1;
		}
		if (st.st_uid == 0 && (st.st_mode & 077) == 0)
			return fd;
		close(fd);
		/*
		 * Another user could enter it (made by "mkdir -p" or a
		 * tmpfiles.d line with 0755, say), and so could already
		 * hold a lock file in it: making it 0700 now would not take
		 * that lock back.  It is set aside whole, and a new one
		 * made that only root may enter.
		 */
		snprintf(aside, sizeof(aside), "%s.untrusted-%ld",
		         LOCK_DIRECTORY, (long)getpid());
		if (rename(LOCK_DIRECTORY, aside) != 0 && errno != ENOENT)
			return -1;
	}
	errno = EPERM;
	return -1;
}

int lock_open(const struct dir *dir)
{
	char name[64];
	struct stat st;
	int directory, fd;

	if (geteuid() != 0)
		return fcntl(dir->fd, F_DUPFD_CLOEXEC, 0);
	if (fstat(dir->fd, &st) != 0)
		return -1;
	directory = lock_directory_open();
	if (directory < 0)
		return -1;
	snprintf(name, sizeof(name), "%ju-%ju.lock", (uintmax_t)st.st_dev,
	         (uintmax_t)st.st_ino);
	/* One call whether it exists or not: a tool makes the same system
	 * calls in every run, which the crash tests count on. */
	fd = openat(directory, name,
	            O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	            0600);
	close(directory);
	return fd;
}

int lock_wait(int fd, int operation, int wait_seconds)
{
	struct timespec start, now, pause = {0, 20 * 1000 * 1000};

	if (wait_seconds < 0) {
		while (flock(fd, operation) != 0)
			if (errno != EINTR)
				return -1;
		return 0;
	}
	/* Polling keeps the bounded wait free of signals and timers. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (flock(fd, operation | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec +
		        (now.tv_nsec - start.tv_nsec) / 1e9 >=
		    wait_seconds) {
			errno = EWOULDBLOCK;
			return -1;
		}
		nanosleep(&pause, NULL);
	}
}
