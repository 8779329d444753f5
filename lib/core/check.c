/*
 * check.c: the safety rule (file-reflink(7), Safety): before a tool
 * removes, replaces or hands out an image, the files must agree with the
 * type of volume named, and no VM may use D; an image about to become C
 * is sealed, so that no one but the pool may change it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core.h"

/* Records a refusal: the file, a reason made from fmt, and err: EBUSY
 * for an image in use, EINVAL for files that do not fit. */
static int refuse(struct volume *volume, const char *name, int err,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct volume *volume, const char *name, int err,
                  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(volume->error_text, sizeof(volume->error_text), fmt, ap);
	va_end(ap);
	volume_path(volume, name, volume->error_path);
	volume->error_reason = volume->error_text;
	errno = err;
	return -1;
}

/* Refuses (75) an image that another open file of it could write. */
static int image_users_refuse(struct volume *volume, int fd, const char *name)
{
	char holder[NAME_MAX + 160];

	switch (file_users(fd, holder, sizeof(holder))) {
	case 0:
		return 0;
	case 1:
		return refuse(volume, name, EBUSY,
		              "in use by %s: it could go on writing what "
		              "becomes the clean image; nothing changed",
		              holder);
	default:
		return volume_fail(volume, name, NULL);
	}
}

int image_seal(struct volume *volume, int fd, const char *name)
{
	struct stat st, dir_st;

	if (fstat(fd, &st) != 0 || fstat(volume->dir.fd, &dir_st) != 0)
		return volume_fail(volume, name, NULL);
	/* A second name may be a file outside the pool: sealing and
	 * committing it would take it from its owner. */
	if (st.st_nlink != 1)
		return refuse(volume, name, EINVAL,
		              "has %ju names, so it may also be a file outside "
		              "the pool; nothing changed",
		              (uintmax_t)st.st_nlink);
	/* Used already: refused before anything changes. */
	if (image_users_refuse(volume, fd, name) != 0)
		return -1;
	if ((st.st_uid != dir_st.st_uid || st.st_gid != dir_st.st_gid) &&
	    fchown(fd, dir_st.st_uid, dir_st.st_gid) != 0)
		return volume_fail(volume, name, NULL);
	/* fchown drops set-id bits; the mode is set afterwards anyway. */
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0)
		return volume_fail(volume, name, NULL);
	/* An ACL entry could grant a user access that the mode no longer
	 * shows; the filesystem may have no ACLs at all. */
	if (fremovexattr(fd, "system.posix_acl_access") != 0 &&
	    errno != ENODATA && errno != EOPNOTSUPP)
		return volume_fail(volume, name, NULL);
	/* Again, now that no one else may open it: whoever opened it in
	 * between could go on writing the clean image. */
	return image_users_refuse(volume, fd, name);
}

int volume_check_unused(struct volume *volume)
{
	char holder[NAME_MAX + 160];

	switch (volume_dirty_in_use(volume, holder, sizeof(holder))) {
	case 0:
		return 0;
	case 1:
		return refuse(volume, volume->dirty.name, EBUSY,
		              "in use by %s (is the VM still running?); "
		              "nothing changed",
		              holder);
	default:
		return volume_fail(volume, volume->dirty.name, NULL);
	}
}

/* 1 if the file st describes is source's C or one of its revisions. */
static int source_holds(struct volume *source, const struct stat *st)
{
	struct revision_list list;
	struct stat revision_st;
	size_t i;
	int found = 0;

	if (source->clean.exists && source->clean.st.st_dev == st->st_dev &&
	    source->clean.st.st_ino == st->st_ino)
		return 1;
	if (revisions_list(source, &list) != 0)
		return -1;
	for (i = 0; i < list.count && !found; i++)
		found = fstatat(source->dir.fd, list.items[i].name,
		                &revision_st, AT_SYMLINK_NOFOLLOW) == 0 &&
		        revision_st.st_dev == st->st_dev &&
		        revision_st.st_ino == st->st_ino;
	revisions_free(&list);
	return found;
}

/* The files fit a snapshot volume of source (else 65): no revisions, no
 * precache, and own C absent or the very inode of source's C or of one
 * of source's revisions (a snapshot of an older source). */
static int volume_check_snapshot(struct volume *volume, struct volume *source)
{
	struct revision_list list;
	size_t revisions;

	if (revisions_list(volume, &list) != 0)
		return -1;
	revisions = list.count + list.legacy_count;
	revisions_free(&list);
	/* A snapshot volume never has revisions or a precache: one that
	 * has is an origin volume, named with -S by mistake. */
	if (revisions > 0 || volume->precache.exists)
		return refuse(volume, volume->clean.name, EINVAL,
		              "an origin volume (it has %s), not a snapshot: "
		              "nothing changed",
		              revisions > 0 ? "revisions" : "a precache");
	/* A running snapshot has its own C beside D; D alone is a volume
	 * with snapshots disabled (-k -1), and all there is of its data. */
	if (!volume->clean.exists && volume->dirty.exists)
		return refuse(volume, volume->dirty.name, EINVAL,
		              "a dirty image without a clean image is the only "
		              "copy of a volume's data, never a snapshot's: "
		              "nothing changed");
	if (!volume->clean.exists)
		return 0;
	switch (source_holds(source, &volume->clean.st)) {
	case 1:
		return 0;
	case 0:
		return refuse(volume, volume->clean.name, EINVAL,
		              "not a snapshot of %s: neither its clean image "
		              "nor one of its revisions, so it may be the only "
		              "copy of this volume's data; nothing changed "
		              "(vol-remove removes a stale snapshot)",
		              source->dir.path);
	default:
		volume_path(source, ".", volume->error_path);
		volume->error_reason = source->error_reason;
		return -1;
	}
}

/* The volume has no C, precache or revision: at most a dirty image, as a
 * volatile volume has (else 65). */
static int volume_check_volatile(struct volume *volume)
{
	struct revision_list list;
	size_t revisions;
	const char *what = NULL;

	if (revisions_list(volume, &list) != 0)
		return -1;
	revisions = list.count + list.legacy_count;
	revisions_free(&list);
	if (volume->clean.exists)
		what = "a clean image";
	else if (revisions > 0)
		what = "revisions";
	else if (volume->precache.exists)
		what = "a precache";
	if (what == NULL)
		return 0;
	return refuse(volume,
	              volume->clean.exists ? volume->clean.name
	                                   : volume->dirty.name,
	              EINVAL,
	              "not a volatile volume (it has %s, which a volatile "
	              "volume never has): nothing changed",
	              what);
}

int volume_check_type(struct volume *volume, struct volume *source,
                      int volatile_type)
{
	/* In use first: a VM runs on it, whatever the type named. */
	if (volume_check_unused(volume) != 0)
		return -1;
	if (source != NULL)
		return volume_check_snapshot(volume, source);
	return volatile_type ? volume_check_volatile(volume) : 0;
}
