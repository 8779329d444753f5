/*
 * lock.c: the lock of a VM directory.  Every tool that changes a volume
 * holds it exclusively; readers such as pool-check take it shared.
 *
 * A flock(2) on the directory itself can be taken by anyone who can open
 * the directory for reading, and a local user holding it would make every
 * hook wait for ever.  So root locks a file that only root can open:
 * /run/file-reflink/lock/DEV-INO.lock, named after the directory's device
 * and inode.  Another user (a pool of one's own) locks the directory itself,
 * as no directory outside it is theirs to trust.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* Opens the directory name below parent (-1: path), making it (0700) if
 * missing; refuses one that is not root's or that others may write. */
static int root_directory_open(int parent, const char *name)
{
	struct stat st;
	int fd, made = 0;

	for (;;) {
		fd = openat(parent < 0 ? AT_FDCWD : parent, name,
		            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || made)
			break;
		if (mkdirat(parent < 0 ? AT_FDCWD : parent, name, 0700) != 0 &&
		    errno != EEXIST)
			return -1;
		made = 1;
	}
	if (fd < 0)
		return -1;
	/* Whoever else could write it could put a lock of theirs there. */
	if (fstat(fd, &st) != 0 || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * Opens LOCK_PARENT/LOCK_NAME, where the lock files are, making it if
 * missing.
 * Nobody but root may enter it: another user who could would open a lock
 * file and hold it.  If it was made open to others (0755 by "mkdir -p",
 * say), someone may hold a lock in it already, which making it 0700 now
 * would not take back: it is set aside whole, and a new one made.
 */
static int lock_directory_open(void)
{
	char aside[64];
	struct stat st;
	int parent, fd = -1, tries, saved;

	parent = root_directory_open(-1, LOCK_PARENT);
	if (parent < 0)
		return -1;
	errno = EPERM;
	for (tries = 0; tries < 3; tries++) {
		fd = root_directory_open(parent, LOCK_NAME);
		if (fd < 0)
			break;
		if (fstat(fd, &st) == 0 && (st.st_mode & 077) == 0)
			break;
		close(fd);
		fd = -1;
		snprintf(aside, sizeof(aside), "%s.untrusted-%ld", LOCK_NAME,
		         (long)getpid());
		if (renameat(parent, LOCK_NAME, parent, aside) != 0 &&
		    errno != ENOENT)
			break;
		errno = EPERM;
	}
	saved = errno;
	close(parent);
	errno = saved;
	return fd;
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
