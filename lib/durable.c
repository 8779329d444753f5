/*
 * durable.c: directory changes that survive a power cut.  Every change of a
 * directory entry (create by rename, link, unlink, mkdir, rmdir) is followed
 * by an fsync of the directory that holds it: without it the kernel may
 * write the entry change long after the tool reported success.  Every name
 * is relative to an open directory, so no path is resolved twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "reflink.h"

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

	if (strcmp(dir->path, ".") == 0)
		n = snprintf(buf, len, "%s", name);
	else if (strcmp(dir->path, "/") == 0)
		n = snprintf(buf, len, "/%s", name);
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

int durable_unlink(const struct dir *dir, const char *name)
{
	char path[PATH_MAX];

	if (unlinkat(dir->fd, name, 0) != 0)
		return -1;
	log_op("removed %s", dir_join(dir, name, path, sizeof(path)));
	return dir_sync(dir);
}

int durable_link(const struct dir *from_dir, const char *from,
                 const struct dir *to_dir, const char *to)
{
	char path_from[PATH_MAX], path_to[PATH_MAX];

	if (linkat(from_dir->fd, from, to_dir->fd, to, 0) != 0)
		return -1;
	log_op("linked %s to %s", dir_join(from_dir, from, path_from, PATH_MAX),
	       dir_join(to_dir, to, path_to, PATH_MAX));
	/* Only the directory that gained an entry changed. */
	return dir_sync(to_dir);
}

int durable_rename(const struct dir *from_dir, const char *from,
                   const struct dir *to_dir, const char *to, unsigned flags)
{
	char path_from[PATH_MAX], path_to[PATH_MAX];

	if (renameat2(from_dir->fd, from, to_dir->fd, to, flags) != 0)
		return -1;
	log_op("renamed %s to %s",
	       dir_join(from_dir, from, path_from, PATH_MAX),
	       dir_join(to_dir, to, path_to, PATH_MAX));
	if (dir_sync(to_dir) != 0)
		return -1;
	/* A move between directories changes both of them. */
	if (from_dir->fd != to_dir->fd && dir_sync(from_dir) != 0)
		return -1;
	return 0;
}

int durable_mkdir(const struct dir *dir, const char *name, mode_t mode)
{
	char path[PATH_MAX];
	struct stat st;

	if (mkdirat(dir->fd, name, mode) != 0) {
		/* An existing directory is what was asked for; anything else
		 * under that name is not. */
		if (errno == EEXIST &&
		    fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				return 0;
			errno = EEXIST;
		}
		return -1;
	}
	log_op("created directory %s", dir_join(dir, name, path, PATH_MAX));
	return dir_sync(dir) == 0 ? 1 : -1;
}

/* The directory a failing run must take back: see durable_mkdir_run. */
static struct {
	char parent[PATH_MAX];
	char name[NAME_MAX + 1];
} made;

static void made_undo(int status, void *unused)
{
	struct dir parent;

	(void)unused;
	if (status == 0 || made.name[0] == '\0' ||
	    dir_open(&parent, made.parent) != 0)
		return;
	/* Only an empty directory goes: anything put in it meanwhile, by
	 * this run or another, keeps it. */
	durable_rmdir(&parent, made.name);
	dir_close(&parent);
}

int durable_mkdir_run(const struct dir *dir, const char *name, mode_t mode)
{
	char path[PATH_MAX];
	struct stat st;

	if (mkdirat(dir->fd, name, mode) != 0) {
		if (errno == EEXIST &&
		    fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (S_ISDIR(st.st_mode))
				return 0;
			errno = EEXIST;
		}
		return -1;
	}
	log_op("created directory %s", dir_join(dir, name, path, PATH_MAX));
	/* Registered before the fsync, which may fail too. */
	if (made.name[0] == '\0' && strlen(dir->path) < sizeof(made.parent) &&
	    strlen(name) < sizeof(made.name)) {
		strcpy(made.parent, dir->path);
		strcpy(made.name, name);
		on_exit(made_undo, NULL);
	}
	return dir_sync(dir) == 0 ? 1 : -1;
}

int durable_rmdir(const struct dir *dir, const char *name)
{
	char path[PATH_MAX];

	if (unlinkat(dir->fd, name, AT_REMOVEDIR) != 0)
		return -1;
	log_op("removed directory %s", dir_join(dir, name, path, PATH_MAX));
	return dir_sync(dir);
}

static const char temp_alphabet[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* Writes "<final>~XXXXXX" with six random characters into name. */
static int temp_name_make(char *name, size_t size, const char *final)
{
	size_t len = strlen(final), i;
	unsigned char random[6];

	if (len + 8 > size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (getrandom(random, sizeof(random), 0) != sizeof(random))
		return -1;
	memcpy(name, final, len);
	name[len] = '~';
	for (i = 0; i < sizeof(random); i++)
		name[len + 1 + i] =
		    temp_alphabet[random[i] % (sizeof(temp_alphabet) - 1)];
	name[len + 7] = '\0';
	return 0;
}

int temp_create(struct temp_file *temp, const struct dir *dir,
                const char *final)
{
	char path[PATH_MAX];
	int attempt;

	temp->dir = dir;
	temp->fd = -1;
	if (strlen(final) >= sizeof(temp->final)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(temp->final, final);
	for (attempt = 0; attempt < 100; attempt++) {
		if (temp_name_make(temp->name, sizeof(temp->name), final) != 0)
			return -1;
		temp->fd = openat(
		    dir->fd, temp->name,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (temp->fd >= 0) {
			/* The umask must not make the mode differ from 0600. */
			if (fchmod(temp->fd, 0600) != 0) {
				temp_abort(temp);
				return -1;
			}
			log_op("created %s",
			       dir_join(dir, temp->name, path, PATH_MAX));
			return 0;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

int durable_link_over(const struct dir *dir, const char *from, const char *to)
{
	char temp[NAME_MAX + 8], path_from[PATH_MAX], path_to[PATH_MAX];
	int attempt;

	/* link(2) cannot replace a name; rename(2) can, atomically. */
	for (attempt = 0; attempt < 100; attempt++) {
		if (temp_name_make(temp, sizeof(temp), to) != 0)
			return -1;
		if (linkat(dir->fd, from, dir->fd, temp, 0) == 0)
			break;
		if (errno != EEXIST)
			return -1;
	}
	if (attempt == 100) {
		errno = EEXIST;
		return -1;
	}
	if (renameat(dir->fd, temp, dir->fd, to) != 0) {
		int saved = errno;

		unlinkat(dir->fd, temp, 0);
		errno = saved;
		return -1;
	}
	log_op("linked %s to %s", dir_join(dir, from, path_from, PATH_MAX),
	       dir_join(dir, to, path_to, PATH_MAX));
	return dir_sync(dir);
}

int temp_commit(struct temp_file *temp, unsigned rename_flags)
{
	/* The data must be on disk before the name makes it visible, or a
	 * power cut could leave the final name on an empty file. */
	if (fsync(temp->fd) != 0) {
		temp_abort(temp);
		return -1;
	}
	if (close(temp->fd) != 0) {
		temp->fd = -1;
		temp_abort(temp);
		return -1;
	}
	temp->fd = -1;
	if (durable_rename(temp->dir, temp->name, temp->dir, temp->final,
	                   rename_flags) != 0) {
		int saved = errno;

		/* If the rename happened and only the directory fsync failed,
		 * the temp name is gone already and ENOENT is expected. */
		unlinkat(temp->dir->fd, temp->name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

void temp_abort(struct temp_file *temp)
{
	int saved = errno;

	if (temp->fd >= 0)
		close(temp->fd);
	temp->fd = -1;
	unlinkat(temp->dir->fd, temp->name, 0);
	errno = saved;
}

int temp_name_of(const char *name, const char *final)
{
	size_t len = strlen(final);

	return strncmp(name, final, len) == 0 && name[len] == '~' &&
	       strlen(name + len + 1) >= 1;
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

/*
 * Looks path up one name at a time from the directory open as *fd, which
 * it replaces by the directory reached.  Each directory entered must be
 * trusted; a symbolic link is read and followed by hand, from the
 * trusted directory that holds it, and in a directory that others may
 * write (a sticky one) only if root or the user owns it.
 */
static int walk(int *fd, char *where, const char *path, int *links,
                char *culprit, size_t length)
{
	char name[NAME_MAX + 1], target[PATH_MAX];
	struct stat st, here;
	ssize_t n;
	size_t size;
	int next, rc;

	if (*path == '/') {
		next = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
			return -1;
		close(*fd);
		*fd = next;
		strcpy(where, "/");
		if (fstat(*fd, &st) != 0)
			return -1;
		if (dir_stat_untrusted(&st)) {
			culprit_set(culprit, length, where, "", &st);
			return 1;
		}
	}
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
		if (fstatat(*fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return -1;
		if (S_ISLNK(st.st_mode)) {
			if (++*links > 40) {
				errno = ELOOP;
				return -1;
			}
			/* In a sticky directory that others may write, only
			 * a link of root's or the user's is followed, as the
			 * kernel's protected_symlinks does. */
			if (fstat(*fd, &here) != 0)
				return -1;
			if ((here.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
			    st.st_uid != 0 && st.st_uid != geteuid()) {
				where_append(where, name);
				culprit_set(
				    culprit, length, where,
				    "a symbolic link in a directory others "
				    "may write: ",
				    &st);
				return 1;
			}
			n = readlinkat(*fd, name, target, sizeof(target) - 1);
			if (n < 0)
				return -1;
			target[n] = '\0';
			rc = walk(fd, where, target, links, culprit, length);
			if (rc != 0)
				return rc;
			continue;
		}
		next = openat(*fd, name,
		              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return -1;
		if (fstat(next, &here) != 0) {
			close(next);
			return -1;
		}
		close(*fd);
		*fd = next;
		where_append(where, name);
		/* Swapped between the look and the open: someone is at work
		 * on the way; a later run may find it settled. */
		if (here.st_dev != st.st_dev || here.st_ino != st.st_ino) {
			errno = EAGAIN;
			return -1;
		}
		if (dir_stat_untrusted(&here)) {
			culprit_set(culprit, length, where, "", &here);
			return 1;
		}
	}
	return 0;
}

int dir_open_trusted(struct dir *dir, const char *path, char *culprit,
                     size_t length)
{
	char where[PATH_MAX] = "";
	int fd, links = 0, rc, saved;

	dir->fd = -1;
	if (directories_unsafe_ok)
		return dir_open(dir, path);
	if (strlen(path) >= sizeof(dir->path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = *path == '/' ? 0 : ancestry_check(fd, culprit, length);
	if (rc == 0)
		rc = walk(&fd, where, path, &links, culprit, length);
	if (rc != 0) {
		saved = errno;
		close(fd);
		errno = rc > 0 ? EPERM : saved;
		return rc;
	}
	dir->fd = fd;
	strcpy(dir->path, path);
	return 0;
}

int dir_open_trusted_making(struct dir *dir, const char *path, char *culprit,
                            size_t length)
{
	char buf[PATH_MAX];
	const char *parent_path, *name;
	struct dir parent;
	int rc;

	rc = dir_open_trusted(dir, path, culprit, length);
	if (rc != -1 || errno != ENOENT)
		return rc;
	if (path_split(path, buf, sizeof(buf), &parent_path, &name) != 0)
		return -1;
	rc = dir_open_trusted(&parent, parent_path, culprit, length);
	if (rc != 0)
		return rc;
	rc = durable_mkdir_run(&parent, name, 0755) < 0
	         ? -1
	         : dir_openat(dir, &parent, name);
	dir_close(&parent);
	if (rc == 0)
		strcpy(dir->path, path);
	return rc;
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
