/*
 * dir.c: directories opened once and used by descriptor.  A path is looked
 * up one name at a time, each directory on the way checked (the pool may
 * hold files of other users, who could swap a directory for a symbolic
 * link), and every later name is relative to the open directory, so no
 * path is resolved twice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

int path_split(const char *path, char *buf, size_t len, const char **dir,
               const char **name)
{
	char *end, *slash;

	if (strlen(path) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, path);
	end = buf + strlen(buf);
	while (end > buf + 1 && end[-1] == '/')
		*--end = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL) {
		*dir = ".";
		*name = buf;
		return 0;
	}
	*name = slash + 1;
	/* "a//c": the directory is "a", not "a/". */
	while (slash > buf && slash[-1] == '/')
		slash--;
	*slash = '\0';
	*dir = slash == buf ? "/" : buf;
	return 0;
}

int dir_open(struct dir *dir, const char *path)
{
	dir->fd = -1;
	if (strlen(path) >= sizeof(dir->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dir->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir->fd < 0)
		return -1;
	strcpy(dir->path, path);
	return 0;
}

int dir_openat(struct dir *dir, const struct dir *parent, const char *name)
{
	char path[PATH_MAX];

	dir->fd = -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", parent->path, name) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dir->fd = openat(parent->fd, name,
	                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir->fd < 0)
		return -1;
	strcpy(dir->path, path);
	return 0;
}

void dir_close(struct dir *dir)
{
	if (dir->fd >= 0)
		close(dir->fd);
	dir->fd = -1;
}

const char *dir_join(const struct dir *dir, const char *name, char *buf,
                     size_t len)
{
	int n;

	size_t end = strlen(dir->path);

	if (strcmp(dir->path, ".") == 0)
		n = snprintf(buf, len, "%s", name);
	else if (end > 0 && dir->path[end - 1] == '/')
		/* "/" or a directory given as "pool/": no second slash. */
		n = snprintf(buf, len, "%s%s", dir->path, name);
	else
		n = snprintf(buf, len, "%s/%s", dir->path, name);
	/* A name too long to show is cut with "..." rather than dropped. */
	if (n < 0 || (size_t)n >= len)
		strcpy(buf + len - 4, "...");
	return buf;
}

int dir_sync(const struct dir *dir)
{
	return fsync(dir->fd);
}

static int directories_unsafe_ok;

void dir_trust_unsafe(int accept)
{
	directories_unsafe_ok = accept;
}

int dir_stat_untrusted(const struct stat *st)
{
	if (directories_unsafe_ok)
		return 0;
	return (st->st_uid != 0 && st->st_uid != geteuid()) ||
	       ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
	        (st->st_mode & S_ISVTX) == 0);
}

static void culprit_set(char *culprit, size_t length, const char *where,
                        const char *what, const struct stat *st)
{
	snprintf(culprit, length, "%s%s (%smode %04o, owner uid %ju)", where,
	         *where != '\0' ? "" : ".", what,
	         (unsigned)(st->st_mode & 07777), (uintmax_t)st->st_uid);
}

/* Appends "/name" to the path walked so far, for messages. */
static void where_append(char *where, const char *name)
{
	size_t used = strlen(where);

	snprintf(where + used, PATH_MAX - used, "%s%s",
	         used > 0 && where[used - 1] != '/' ? "/" : "", name);
}

/* Checks the directory open as fd and every one above it, by "..": the
 * working directory, where a relative path starts. */
static int ancestry_check(int fd, char *culprit, size_t length)
{
	struct stat st, parent_st;
	int parent;

	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	for (;;) {
		if (dir_stat_untrusted(&st)) {
			culprit_set(
			    culprit, length, "",
			    "the working directory or one above it: ", &st);
			close(fd);
			errno = EPERM;
			return 1;
		}
		parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = parent;
		if (fd < 0 || fstat(fd, &parent_st) != 0)
			goto fail;
		/* "/" is its own parent. */
		if (parent_st.st_dev == st.st_dev &&
		    parent_st.st_ino == st.st_ino)
			break;
		st = parent_st;
	}
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The state of one walk: the directory reached (fd) and its path so far
 * (where, for messages), the symbolic links followed, and where to
 * describe the directory that is not trusted. */
struct walk {
	int fd;
	char where[PATH_MAX];
	int links;
	char *culprit;
	size_t length;
};

static int walk(struct walk *w, const char *path);

/* Starts over from "/" for an absolute path, which must be trusted. */
static int walk_root(struct walk *w)
{
	struct stat st;
	int next = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (next < 0)
		return -1;
	close(w->fd);
	w->fd = next;
	strcpy(w->where, "/");
	if (fstat(w->fd, &st) != 0)
		return -1;
	if (dir_stat_untrusted(&st)) {
		culprit_set(w->culprit, w->length, w->where, "", &st);
		return 1;
	}
	return 0;
}

/*
 * Follows the symbolic link name (st) of the directory reached: in a
 * sticky directory that others may write, only a link of root's or the
 * user's, as the kernel's protected_symlinks does.
 */
static int walk_link(struct walk *w, const char *name, const struct stat *st)
{
	char target[PATH_MAX];
	struct stat here;
	ssize_t n;

	if (++w->links > 40) {
		errno = ELOOP;
		return -1;
	}
	if (fstat(w->fd, &here) != 0)
		return -1;
	if ((here.st_mode & (S_IWGRP | S_IWOTH)) != 0 && st->st_uid != 0 &&
	    st->st_uid != geteuid()) {
		where_append(w->where, name);
		culprit_set(
		    w->culprit, w->length, w->where,
		    "a symbolic link in a directory others may write: ", st);
		return 1;
	}
	n = readlinkat(w->fd, name, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	return walk(w, target);
}

/* Enters the directory name (st, as looked at) of the one reached. */
static int walk_enter(struct walk *w, const char *name, const struct stat *st)
{
	struct stat here;
	int next;

	next = openat(w->fd, name,
	              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (next < 0)
		return -1;
	if (fstat(next, &here) != 0) {
		close(next);
		return -1;
	}
	close(w->fd);
	w->fd = next;
	where_append(w->where, name);
	/* Swapped between the look and the open: someone is at work on the
	 * way; a later run may find it settled. */
	if (here.st_dev != st->st_dev || here.st_ino != st->st_ino) {
		errno = EAGAIN;
		return -1;
	}
	if (dir_stat_untrusted(&here)) {
		culprit_set(w->culprit, w->length, w->where, "", &here);
		return 1;
	}
	return 0;
}

/*
 * Looks path up one name at a time from the directory w->fd, which it
 * replaces by the directory reached.  Each directory entered must be
 * trusted; a symbolic link is read and followed by hand, from the
 * trusted directory that holds it.
 */
static int walk(struct walk *w, const char *path)
{
	char name[NAME_MAX + 1];
	struct stat st;
	size_t size;
	int rc;

	if (*path == '/' && (rc = walk_root(w)) != 0)
		return rc;
	while (*path != '\0') {
		while (*path == '/')
			path++;
		size = strcspn(path, "/");
		if (size == 0)
			break;
		if (size > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, path, size);
		name[size] = '\0';
		path += size;
		if (strcmp(name, ".") == 0)
			continue;
		if (fstatat(w->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return -1;
		rc = S_ISLNK(st.st_mode) ? walk_link(w, name, &st)
		                         : walk_enter(w, name, &st);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int dir_open_trusted(struct dir *dir, const char *path, char *culprit,
                     size_t length)
{
	struct walk w = {.culprit = culprit, .length = length};
	int rc, saved;

	dir->fd = -1;
	if (directories_unsafe_ok)
		return dir_open(dir, path);
	if (strlen(path) >= sizeof(dir->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	w.fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.fd < 0)
		return -1;
	rc = *path == '/' ? 0 : ancestry_check(w.fd, culprit, length);
	if (rc == 0)
		rc = walk(&w, path);
	if (rc != 0) {
		saved = errno;
		close(w.fd);
		errno = rc > 0 ? EPERM : saved;
		return rc;
	}
	dir->fd = w.fd;
	strcpy(dir->path, path);
	return 0;
}

int file_open_checked(const struct dir *dir, const char *name, int flags,
                      const struct stat *expect)
{
	struct stat st;
	int fd, saved;

	/* O_NONBLOCK: a FIFO swapped in must not stall the tool, which
	 * holds the lock, until someone writes to it. */
	fd = openat(dir->fd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	/* Another file under the name than the one looked at: someone is
	 * changing the directory; a later run may find it settled. */
	if (expect != NULL &&
	    (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino)) {
		errno = EAGAIN;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

DIR *dir_stream(const struct dir *dir)
{
	DIR *stream;
	int fd, saved;

	/* A descriptor of its own: readdir moves it, and closedir closes
	 * it, while dir stays as it was. */
	fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	stream = fdopendir(fd);
	if (stream == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return stream;
}
