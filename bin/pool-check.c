/*
 * pool-check: create a pool, or check one: prove that its filesystem can
 * reflink, walk its VM directories and report each problem on one line,
 * with the command that fixes it; --repair fixes what is safe to fix.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "frame.h"

/* Volumes are looked for this deep below POOL (POOL/appvms/VM is 2). */
#define SCAN_DEPTH 3
/* A volume's path, and room for it shell-quoted (see shell_quote). */
#define VOLUME_PATH_MAX (PATH_MAX + NAME_MAX + 16)
#define QUOTED_MAX (4 * VOLUME_PATH_MAX + 5)

static void usage(FILE *stream)
{
	fprintf(stream, "usage: pool-check [-jnqv] [--init] [--no-reflink-ok] "
	                "[--repair] [-w SECONDS] POOL\n");
}

enum severity { SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR };

static const char *const severity_names[] = {"info", "warning", "error"};

/* What --repair may do about a finding, and what it did. */
enum repair { REPAIR_NONE, REPAIR_UNLINK, REPAIR_RMDIR };
enum fix {
	FIX_NONE,  /* nothing: not repairable, not asked, or not possible */
	FIX_WOULD, /* --repair -n: it would be removed */
	FIX_DONE,  /* removed */
	FIX_MOOT   /* gone meanwhile, or no longer a problem: not shown */
};

struct finding {
	enum severity severity;
	const char *code;
	char *path;
	char *message;
	size_t dirty; /* a dirty image: 1 + its index in dirty_ids */
	enum repair repair;
	enum fix fix;
	/* For a repair: the file's name in its directory's names (valid
	 * while that directory is scanned), and the inode the scan saw. */
	size_t name;
	dev_t dev;
	ino_t ino;
};

static struct {
	struct finding *items;
	size_t count, capacity;
} findings;

/* The dirty images found, for one files_in_use() at the end. */
static struct file_id *dirty_ids;
static size_t dirty_count, dirty_capacity;

static struct {
	size_t volumes, revisions, dirty;
} totals;

static struct {
	int json, repair, dry_run, wait_seconds;
	const char *pool;
} options;

/* The exit status of the first failure that did not stop the check (a
 * lock, a repair, the disk under the probe), or 0. */
static int run_status;
/* A directory on the way to the pool that other users may write. */
static char pool_untrusted[PATH_MAX + 64];

/*
 * A finding left out for want of memory would make the report wrong (a
 * running VM's image called a leftover, say): the run fails instead.
 */
static void memory_fail(void)
{
	log_errc(ENOMEM, "cannot check the pool");
	exit(EX_SOFTWARE);
}

/* Returns items with room for one more than count (of *capacity). */
static void *grow_or_fail(void *items, size_t *capacity, size_t count,
                          size_t size)
{
	size_t grown = *capacity ? 2 * *capacity : 32;

	if (count < *capacity)
		return items;
	if (grown > SIZE_MAX / size ||
	    (items = realloc(items, grown * size)) == NULL)
		memory_fail();
	*capacity = grown;
	return items;
}

/* Reports a failure that does not stop the check: the others are still
 * worth reporting, and the run exits with the first one's status. */
static void failure(int err, const char *path, const char *what)
{
	log_errc(err, "%s: %s", path, what);
	if (run_status == 0)
		run_status = exit_status_for_errno(err);
}

static char *string_copy(const char *text)
{
	char *copy = strdup(text);

	if (copy == NULL)
		memory_fail();
	return copy;
}

static struct finding *finding_add(enum severity severity, const char *path,
                                   const char *code, const char *message)
{
	struct finding *finding;

	findings.items = grow_or_fail(findings.items, &findings.capacity,
	                              findings.count, sizeof(*findings.items));
	finding = &findings.items[findings.count++];
	memset(finding, 0, sizeof(*finding));
	finding->severity = severity;
	finding->code = code;
	finding->path = string_copy(path);
	finding->message = string_copy(message);
	return finding;
}

static int finding_compare(const void *a, const void *b)
{
	const struct finding *x = a, *y = b;
	int order = strcmp(x->path, y->path);

	return order ? order : strcmp(x->code, y->code);
}

/* Where a directory lies in the pool, which says what belongs in it. */
enum place {
	PLACE_POOL,      /* POOL: appvms/ and vm-templates/ */
	PLACE_VM_PARENT, /* POOL/appvms, POOL/vm-templates: VM directories */
	PLACE_VM,        /* POOL/appvms/VM, POOL/vm-templates/VM: volumes */
	PLACE_OTHER      /* any other directory looked at: volumes */
};

/* A volume's file (or, as NAME_OTHER, a subdirectory) of a directory:
 * where its name is in the directory's names, and the length of its
 * volume's base name, which the name begins with. */
struct entry {
	size_t name;
	unsigned short base_length;
	unsigned char kind; /* enum name_kind */
};

/*
 * One directory being read.  Only the names of volumes' files and of
 * subdirectories are kept, packed one after the other, not whole
 * directory entries: 300,000 revisions in one directory cost some 20 MiB
 * of memory, not 200.
 */
struct scan {
	const struct dir *dir;
	const struct dir *parent; /* and dir's name in it */
	const char *name;
	enum place place;
	int busy; /* a tool holds the lock: its files are work in progress */
	/* A directory on the way that another user may write, or NULL:
	 * nothing is repaired below it. */
	const char *untrusted;
	int lock_fd;          /* the lock, or -1 */
	size_t first_finding; /* the findings of this directory */
	char *names;
	size_t names_length, names_capacity;
	struct entry *entries;
	size_t count, capacity;
};

/* Everything found in one directory about one volume. */
struct volume_files {
	char base[NAME_MAX + 1];
	struct stat clean, dirty, precache;
	int has_clean, has_dirty, has_precache;
	size_t precache_name; /* in names */
	size_t revisions;
};

/* Keeps name as an entry of the scan. */
static void entry_keep(struct scan *scan, const char *name, size_t base_length,
                       enum name_kind kind)
{
	size_t length = strlen(name) + 1;
	struct entry *entry;

	while (scan->names_capacity - scan->names_length < length)
		scan->names = grow_or_fail(scan->names, &scan->names_capacity,
		                           scan->names_capacity, 1);
	scan->entries = grow_or_fail(scan->entries, &scan->capacity,
	                             scan->count, sizeof(*scan->entries));
	entry = &scan->entries[scan->count++];
	entry->name = scan->names_length;
	entry->base_length = (unsigned short)base_length;
	entry->kind = (unsigned char)kind;
	memcpy(scan->names + scan->names_length, name, length);
	scan->names_length += length;
}

/* Orders entries by volume, subdirectories (no volume) first. */
static int entry_compare(const void *a, const void *b, void *names)
{
	const struct entry *x = a, *y = b;
	size_t length =
	    x->base_length < y->base_length ? x->base_length : y->base_length;
	int order =
	    memcmp((char *)names + x->name, (char *)names + y->name, length);

	return order ? order : x->base_length - y->base_length;
}

static const char *file_kind(mode_t mode)
{
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISBLK(mode) || S_ISCHR(mode))
		return "a device node";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

/* A precache that is not an unwritten copy of C, or C itself. */
static int precache_stale(const struct stat *precache, const struct stat *clean)
{
	return precache->st_ino == clean->st_ino ||
	       precache->st_size != clean->st_size ||
	       precache->st_mtim.tv_sec != clean->st_mtim.tv_sec ||
	       precache->st_mtim.tv_nsec != clean->st_mtim.tv_nsec;
}

/*
 * Takes a shared lock of the directory without waiting, so that no tool
 * changes it while it is read, for a view in which its files agree with
 * each other.  Returns 1 if a tool is at work there (then it is read
 * anyway, and what may be that tool's work in progress is reported as
 * info), 0 if the lock is held.  A lock that cannot be taken at all is
 * a failure of the run, though the directory is still read.
 */
static int dir_read_lock(struct scan *scan)
{
	scan->lock_fd = lock_open(scan->dir);
	if (scan->lock_fd >= 0 && flock(scan->lock_fd, LOCK_SH | LOCK_NB) == 0)
		return 0;
	if (scan->lock_fd >= 0 && errno == EWOULDBLOCK)
		return 1;
	failure(errno, scan->dir->path, "lock");
	return 0;
}

/*
 * Adds a finding about what may be a tool's work in progress: info if a
 * tool holds the directory's lock.  Else, with repair, --repair may
 * remove name (in the scan's names; the directory itself for
 * REPAIR_RMDIR), which the scan saw as the inode st.
 */
static void leftover_add(struct scan *scan, enum severity severity,
                         const char *path, const char *code,
                         const char *message, enum repair repair, size_t name,
                         const struct stat *st)
{
	struct finding *finding;

	if (scan->busy) {
		finding_add(SEVERITY_INFO, path, code,
		            "a tool is working in this directory now: its work "
		            "in progress, not a leftover");
		return;
	}
	finding = finding_add(severity, path, code, message);
	if (!options.repair || repair == REPAIR_NONE)
		return;
	finding->repair = repair;
	finding->fix = options.dry_run ? FIX_WOULD : FIX_NONE;
	finding->name = name;
	finding->dev = st->st_dev;
	finding->ino = st->st_ino;
}

static void unreadable_add(const char *path, int err)
{
	char message[256];

	snprintf(message, sizeof(message),
	         "cannot be read (%s): what it holds is not checked; run "
	         "pool-check as a user who may read it",
	         strerror(err));
	finding_add(SEVERITY_ERROR, path, "unreadable", message);
}

/*
 * What to do with a dirty image that no VM uses.  Only the caller knows a
 * volume's type; the files suggest it: without C, D is a volatile
 * volume's or one with snapshots disabled; a C linked elsewhere, with no
 * revision or precache, is most likely a snapshot volume's.  The volume
 * is shell-quoted, so that the command can be pasted as it is.
 */
static const char *dirty_detached_message(const struct volume_files *v,
                                          const char *volume, char *message,
                                          size_t length)
{
	if (!v->has_clean)
		snprintf(message, length,
		         "crash leftover: no VM uses it, and there is no "
		         "clean image; a volatile volume drops it: "
		         "vol-discard --volatile %s; one with snapshots "
		         "disabled keeps it: vol-commit -k -1 %s",
		         volume, volume);
	else if (v->clean.st_nlink > 1 && v->revisions == 0 && !v->has_precache)
		snprintf(message, length,
		         "crash leftover: no VM uses it; a snapshot volume "
		         "drops it: vol-discard -S SRC %s; an origin volume "
		         "keeps its changes: vol-commit %s",
		         volume, volume);
	else
		snprintf(message, length,
		         "crash leftover: no VM uses it; keep its changes: "
		         "vol-commit %s, or drop them: vol-discard %s",
		         volume, volume);
	return message;
}

/* Reports the findings of one volume of a directory. */
static void volume_check(struct scan *scan, const struct volume_files *v)
{
	char volume[VOLUME_PATH_MAX], path[VOLUME_PATH_MAX + 16];
	char quoted[QUOTED_MAX], message[2 * QUOTED_MAX + 256];
	struct finding *finding;

	dir_join(scan->dir, v->base, volume, sizeof(volume));
	shell_quote(volume, quoted, sizeof(quoted));
	if (v->has_clean || v->has_dirty)
		totals.volumes++;
	totals.revisions += v->revisions;
	if (v->has_dirty) {
		totals.dirty++;
		snprintf(path, sizeof(path), "%s-dirty.img", volume);
		/* Whether a VM uses it is asked for all of them at once. */
		finding = finding_add(SEVERITY_WARNING, path, "dirty-detached",
		                      dirty_detached_message(v, quoted, message,
		                                             sizeof(message)));
		dirty_ids = grow_or_fail(dirty_ids, &dirty_capacity,
		                         dirty_count, sizeof(*dirty_ids));
		dirty_ids[dirty_count].dev = v->dirty.st_dev;
		dirty_ids[dirty_count++].ino = v->dirty.st_ino;
		finding->dirty = dirty_count;
	}
	if (!v->has_clean && (v->revisions > 0 || v->has_precache)) {
		char precache[VOLUME_PATH_MAX + 16], from[QUOTED_MAX];

		snprintf(precache, sizeof(precache), "%s-precache.img", volume);
		shell_quote(precache, from, sizeof(from));
		if (v->has_dirty)
			snprintf(message, sizeof(message),
			         "missing, while the dirty image and %s "
			         "remain; make the dirty image clean: "
			         "vol-commit %s",
			         v->revisions ? "revisions" : "a precache",
			         quoted);
		else if (v->revisions > 0)
			snprintf(message, sizeof(message),
			         "missing, while revisions remain; make the "
			         "latest one clean: vol-revert %s",
			         quoted);
		else
			snprintf(message, sizeof(message),
			         "missing, while a precache remains; make it "
			         "clean: vol-commit --from %s %s",
			         from, quoted);
		snprintf(path, sizeof(path), "%s.img", volume);
		leftover_add(scan, SEVERITY_ERROR, path, "clean-missing",
		             message, REPAIR_NONE, 0, NULL);
	}
	if (v->has_clean && v->has_precache &&
	    precache_stale(&v->precache, &v->clean)) {
		dir_join(scan->dir, scan->names + v->precache_name, path,
		         sizeof(path));
		snprintf(message, sizeof(message),
		         "stale precache: not a copy of %s.img (size or mtime "
		         "differs); pool-check --repair removes it",
		         v->base);
		leftover_add(scan, SEVERITY_WARNING, path, "stale-precache",
		             message, REPAIR_UNLINK, v->precache_name,
		             &v->precache);
	}
}

/* Reports one file of a volume, and notes in v what the volume's
 * findings need to know of it. */
static void entry_check(struct scan *scan, const struct entry *e,
                        struct volume_files *v)
{
	const char *name = scan->names + e->name;
	char path[PATH_MAX], message[256];
	struct stat st;

	dir_join(scan->dir, name, path, sizeof(path));
	if (fstatat(scan->dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		/* A file removed since the directory was read is no more. */
		if (errno != ENOENT)
			unreadable_add(path, errno);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(message, sizeof(message),
		         "%s where an image belongs: the tools refuse the "
		         "volume; move or remove it by hand",
		         file_kind(st.st_mode));
		finding_add(SEVERITY_ERROR, path, "not-regular", message);
		return;
	}
	switch (e->kind) {
	case NAME_CLEAN:
		v->has_clean = 1;
		v->clean = st;
		break;
	case NAME_DIRTY:
		v->has_dirty = 1;
		v->dirty = st;
		break;
	case NAME_PRECACHE:
		v->has_precache = 1;
		v->precache = st;
		v->precache_name = e->name;
		break;
	case NAME_REVISION:
		v->revisions++;
		break;
	case NAME_IMPORT:
		leftover_add(scan, SEVERITY_WARNING, path, "import-leftover",
		             "import left by an interrupted vol-import; "
		             "pool-check --repair removes it",
		             REPAIR_UNLINK, e->name, &st);
		break;
	case NAME_TEMP:
		leftover_add(scan, SEVERITY_WARNING, path, "temp-leftover",
		             "temp file of an interrupted operation; "
		             "pool-check --repair removes it",
		             REPAIR_UNLINK, e->name, &st);
		break;
	case NAME_LEGACY:
		finding_add(SEVERITY_WARNING, path, "legacy-revision",
		            "legacy revision name (2018): the tools never "
		            "prune or revert to it; keep it, or remove it by "
		            "hand");
		break;
	case NAME_MALFORMED:
		finding_add(SEVERITY_WARNING, path, "malformed-revision",
		            "looks like a revision but is not a valid one: "
		            "the tools ignore it; rename or remove it by hand");
		break;
	default:
		break;
	}
}

/* Groups the volume files of a directory by volume and reports them. */
static void directory_check(struct scan *scan)
{
	struct volume_files v;
	size_t i, j;

	if (scan->count > 0)
		qsort_r(scan->entries, scan->count, sizeof(*scan->entries),
		        entry_compare, scan->names);
	for (i = 0; i < scan->count; i = j) {
		const struct entry *first = &scan->entries[i];

		memset(&v, 0, sizeof(v));
		memcpy(v.base, scan->names + first->name, first->base_length);
		for (j = i;
		     j < scan->count &&
		     entry_compare(first, &scan->entries[j], scan->names) == 0;
		     j++)
			if (scan->entries[j].kind != NAME_OTHER)
				entry_check(scan, &scan->entries[j], &v);
		if (first->kind != NAME_OTHER)
			volume_check(scan, &v);
	}
}

/*
 * Removes the file or directory of a finding if it still is the inode
 * the scan judged: its name may have been given to another file since.
 * The tools replace a file by renaming another over it, never by writing
 * it, so the same inode is still what was found.  1 removed, 0 nothing
 * to do, -1 error.
 */
static int repair_one(const struct scan *scan, const struct finding *f)
{
	const struct dir *dir =
	    f->repair == REPAIR_RMDIR ? scan->parent : scan->dir;
	const char *name =
	    f->repair == REPAIR_RMDIR ? scan->name : scan->names + f->name;
	struct stat st;
	int rc;

	if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -1;
	if (st.st_dev != f->dev || st.st_ino != f->ino)
		return 0;
	/* Only an empty directory goes: a tool may have filled it since. */
	rc = f->repair == REPAIR_RMDIR ? durable_rmdir(dir, name)
	                               : durable_unlink(dir, name);
	if (rc == 0)
		return 1;
	return errno == ENOENT || errno == ENOTEMPTY || errno == EEXIST ? 0
	                                                                : -1;
}

/*
 * Makes the repairs of a directory's findings under its lock, held
 * exclusively.  They act on the very directory the scan read, through
 * its descriptor, never through a path, which the directory's owner may
 * have made a symbolic link since.
 */
static void repairs_run(struct scan *scan)
{
	struct finding *f;
	size_t i = scan->first_finding;
	int rc;

	while (i < findings.count && findings.items[i].repair == REPAIR_NONE)
		i++;
	/* Without the lock (reported by the scan) nothing is repaired. */
	if (i == findings.count || options.dry_run || scan->lock_fd < 0)
		return;
	/* Its owner or another user could swap what is repaired. */
	if (scan->untrusted != NULL) {
		log_errx(
		    "%s: refused: %s may be written by other users than "
		    "root and you (--unsafe-dirs accepts it): not repaired",
		    scan->dir->path, scan->untrusted);
		run_status = EX_NOPERM;
		return;
	}
	/* Converting the shared lock lets a tool in between: each file is
	 * checked again once the lock is held. */
	if (lock_wait(scan->lock_fd, LOCK_EX, options.wait_seconds) != 0) {
		if (errno == EWOULDBLOCK)
			log_warnx("%s: still locked after %d seconds: not "
			          "repaired",
			          scan->dir->path, options.wait_seconds);
		else
			failure(errno, scan->dir->path, "lock");
		return;
	}
	for (i = scan->first_finding; i < findings.count; i++) {
		f = &findings.items[i];
		if (f->repair == REPAIR_NONE)
			continue;
		rc = repair_one(scan, f);
		if (rc < 0)
			failure(errno, f->path, "cannot remove");
		else
			f->fix = rc ? FIX_DONE : FIX_MOOT;
	}
}

/* Reads the directory: volumes' files are reported where no volume
 * belongs, else kept, as are subdirectories.  Returns the number of
 * entries, or -1 (errno). */
static long directory_read(struct scan *scan, int depth)
{
	char path[PATH_MAX], message[PATH_MAX + 256], base[NAME_MAX + 1];
	enum name_kind kind;
	struct dirent *d;
	struct stat st;
	DIR *stream;
	long count = 0;
	int fd, err;

	fd = openat(scan->dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (stream = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(message, sizeof(message),
	         "a volume's file where no volume belongs: volumes live in "
	         "VM directories, %s/appvms/VM/ or %s/vm-templates/VM/; move "
	         "it into one by hand",
	         options.pool, options.pool);
	for (errno = 0; (d = readdir(stream)) != NULL; errno = 0) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		count++;
		kind = volume_name_split(d->d_name, base, NULL);
		if (kind != NAME_OTHER && (scan->place == PLACE_POOL ||
		                           scan->place == PLACE_VM_PARENT))
			finding_add(
			    SEVERITY_WARNING,
			    dir_join(scan->dir, d->d_name, path, sizeof(path)),
			    "misplaced", message);
		else if (kind != NAME_OTHER)
			entry_keep(scan, d->d_name, strlen(base), kind);
		/* Symlinked directories are not followed: a pool is one
		 * tree. */
		else if (depth < SCAN_DEPTH &&
		         (d->d_type == DT_DIR ||
		          (d->d_type == DT_UNKNOWN &&
		           fstatat(dirfd(stream), d->d_name, &st,
		                   AT_SYMLINK_NOFOLLOW) == 0 &&
		           S_ISDIR(st.st_mode))))
			entry_keep(scan, d->d_name, 0, NAME_OTHER);
	}
	err = errno;
	closedir(stream);
	errno = err;
	return err != 0 ? -1 : count;
}

static enum place place_below(enum place place, const char *name)
{
	if (place == PLACE_POOL)
		return strcmp(name, "appvms") == 0 ||
		               strcmp(name, "vm-templates") == 0
		           ? PLACE_VM_PARENT
		           : PLACE_OTHER;
	return place == PLACE_VM_PARENT ? PLACE_VM : PLACE_OTHER;
}

/* Checks a directory (dir, the entry name of parent; the pool: NULL),
 * repairs it with --repair, then checks its subdirectories. */
static void directory_scan(const struct dir *dir, const struct dir *parent,
                           const char *name, enum place place, int depth,
                           const char *untrusted)
{
	char culprit[PATH_MAX + 64], message[PATH_MAX + 256];
	struct scan scan;
	struct stat st;
	long count;
	size_t i;

	memset(&scan, 0, sizeof(scan));
	scan.dir = dir;
	scan.parent = parent;
	scan.name = name;
	scan.place = place;
	scan.first_finding = findings.count;
	scan.untrusted = untrusted;
	if (fstat(dir->fd, &st) == 0 && dir_stat_untrusted(&st)) {
		snprintf(culprit, sizeof(culprit),
		         "%s (mode %04o, owner uid %ju)", dir->path,
		         (unsigned)(st.st_mode & 07777), (uintmax_t)st.st_uid);
		snprintf(message, sizeof(message),
		         "other users may write it (mode %04o, owner uid %ju), "
		         "and could lead the tools outside the pool: make it "
		         "root's and not writable by others; the tools refuse "
		         "it (77)",
		         (unsigned)(st.st_mode & 07777), (uintmax_t)st.st_uid);
		finding_add(SEVERITY_ERROR, dir->path, "untrusted-directory",
		            message);
		if (scan.untrusted == NULL)
			scan.untrusted = culprit;
	}
	scan.busy = dir_read_lock(&scan);
	count = directory_read(&scan, depth);
	if (count < 0)
		unreadable_add(dir->path, errno);
	else
		directory_check(&scan);
	if (count == 0 && place == PLACE_VM && fstat(dir->fd, &st) == 0)
		leftover_add(&scan, SEVERITY_INFO, dir->path,
		             "empty-vm-directory",
		             "an empty VM directory, as an interrupted "
		             "vol-remove leaves it; pool-check --repair "
		             "removes it",
		             REPAIR_RMDIR, 0, &st);
	repairs_run(&scan);
	/* The view is taken: tools may go on. */
	if (scan.lock_fd >= 0)
		close(scan.lock_fd);
	for (i = 0; i < scan.count; i++) {
		const char *sub_name = scan.names + scan.entries[i].name;
		char path[PATH_MAX];
		struct dir sub;

		if (scan.entries[i].kind != NAME_OTHER)
			continue;
		if (dir_openat(&sub, dir, sub_name) == 0) {
			directory_scan(&sub, dir, sub_name,
			               place_below(place, sub_name), depth + 1,
			               scan.untrusted);
			dir_close(&sub);
		} else if (errno != ENOENT && errno != ENOTDIR &&
		           errno != ELOOP) {
			/* Gone, or made a symbolic link since: nothing to
			 * read; anything else keeps what it holds unseen. */
			unreadable_add(
			    dir_join(dir, sub_name, path, sizeof(path)), errno);
		}
	}
	free(scan.entries);
	free(scan.names);
}

static void dirty_image_used(size_t index, const char *holder, void *unused)
{
	char message[PATH_MAX + 64];
	struct finding *f;
	size_t i;

	(void)unused;
	for (i = 0; i < findings.count; i++) {
		f = &findings.items[i];
		/* The first user found is named. */
		if (f->dirty != index + 1 || f->severity == SEVERITY_INFO)
			continue;
		snprintf(message, sizeof(message),
		         "a VM is running on it (used by %s)", holder);
		free(f->message);
		f->message = string_copy(message);
		f->severity = SEVERITY_INFO;
		f->code = "dirty-attached";
	}
}

static void line_print(const char *severity, const char *path, const char *code,
                       const char *message, int *first)
{
	if (options.json) {
		printf("%s\n    {\"severity\": \"%s\", \"path\": ",
		       *first ? "" : ",", severity);
		json_string_write(stdout, path);
		printf(", \"code\": \"%s\", \"message\": ", code);
		json_string_write(stdout, message);
		putchar('}');
	} else {
		printf("%s\t", severity);
		text_escape_write(stdout, path);
		printf("\t%s\t", code);
		text_escape_write(stdout, message);
		putchar('\n');
	}
	*first = 0;
}

/* Prints the findings, the JSON members around them, and the summary;
 * returns how many warnings and errors remain. */
static int report(const struct dir *pool, int probe, int quiet)
{
	char size_text[32], used_text[32];
	unsigned long long size, used;
	size_t remaining = 0, i;
	struct statvfs vfs;
	int first = 1;

	if (findings.count > 0)
		qsort(findings.items, findings.count, sizeof(*findings.items),
		      finding_compare);
	if (options.json) {
		printf("{\"pool\": ");
		json_string_write(stdout, options.pool);
		printf(", \"reflink\": %s, \"findings\": [", probe < 0 ? "null"
		                                             : probe   ? "true"
		                                                     : "false");
	}
	for (i = 0; i < findings.count; i++) {
		struct finding *f = &findings.items[i];

		if (f->fix == FIX_DONE)
			line_print("fixed", f->path, f->code, "removed",
			           &first);
		else if (f->fix == FIX_WOULD)
			/* Not counted: the repair takes it away. */
			line_print("would-fix", f->path, f->code,
			           "would be removed", &first);
		else if (f->fix == FIX_NONE) {
			line_print(severity_names[f->severity], f->path,
			           f->code, f->message, &first);
			remaining += f->severity != SEVERITY_INFO;
		}
	}
	if (fstatvfs(pool->fd, &vfs) != 0)
		memset(&vfs, 0, sizeof(vfs));
	size = (unsigned long long)vfs.f_frsize * vfs.f_blocks;
	used = (unsigned long long)vfs.f_frsize * (vfs.f_blocks - vfs.f_bfree);
	if (options.json)
		printf("%s], \"volumes\": %zu, \"revisions\": %zu, "
		       "\"dirty\": %zu, \"size\": %llu, \"used\": %llu}\n",
		       first ? "" : "\n", totals.volumes, totals.revisions,
		       totals.dirty, size, used);
	if (!quiet) {
		/* The summary is one line, whatever POOL's name holds. */
		fputs("pool-check: ", stderr);
		text_escape_write(stderr, options.pool);
		fprintf(stderr,
		        ": %zu volumes, %zu revisions, %zu dirty; filesystem "
		        "%s, %s used (%.0f%%)\n",
		        totals.volumes, totals.revisions, totals.dirty,
		        human_size((double)size, size_text, sizeof(size_text)),
		        human_size((double)used, used_text, sizeof(used_text)),
		        size > 0 ? 100.0 * used / size : 0.0);
	}
	return remaining > 0;
}

/* Opens POOL (with making: made if missing) and probes whether it can
 * reflink (see reflink_probe).  Returns 0, or the exit status. */
static int pool_open(struct dir *pool, const char *path, int making, int *probe)
{
	char message[PATH_MAX + 256];
	struct stat st;
	int rc, made = 0;

	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		log_errx("%s: not a directory", path);
		return EX_DATAERR;
	}
	rc = making ? dir_open_trusted_making(pool, path, pool_untrusted,
	                                      sizeof(pool_untrusted), &made)
	            : dir_open_trusted(pool, path, pool_untrusted,
	                               sizeof(pool_untrusted));
	if (made)
		made_dir_undo_on_failure(path);
	/* A directory on the way that others may write: a scan reports it
	 * and goes on; nothing is made or repaired under it. */
	if (rc > 0 && (making || (options.repair && !options.dry_run))) {
		log_errx("%s: refused: %s may be written by other users than "
		         "root and you (--unsafe-dirs accepts it)",
		         path, pool_untrusted);
		return EX_NOPERM;
	}
	if (rc > 0) {
		rc = dir_open(pool, path);
		if (rc == 0 && fstat(pool->fd, &st) == 0 &&
		    !dir_stat_untrusted(&st)) {
			snprintf(
			    message, sizeof(message),
			    "%s, on the way to the pool: other users could "
			    "lead the tools outside it; the tools refuse it "
			    "(77)",
			    pool_untrusted);
			finding_add(SEVERITY_ERROR, path, "untrusted-directory",
			            message);
		}
	} else
		pool_untrusted[0] = '\0';
	if (rc != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	*probe = reflink_probe(pool);
	return 0;
}

static int pool_init(const char *path, int no_reflink_ok)
{
	char type[32];
	struct dir pool;
	int probe, status = pool_open(&pool, path, 1, &probe);

	if (status != 0)
		return status;
	if (probe < 0) {
		log_errc(errno, "%s: reflink probe", path);
		return EX_IOERR;
	}
	if (probe == 0 && !no_reflink_ok) {
		/* A POOL made here goes again as this run fails. */
		log_errx("%s: the filesystem (%s) cannot reflink: every start "
		         "and commit would copy whole images; pass "
		         "--no-reflink-ok to use it anyway",
		         path, filesystem_name(pool.fd, type, sizeof(type)));
		return EX_UNAVAILABLE;
	}
	if (probe == 0)
		log_warnx("%s: the filesystem (%s) cannot reflink: images "
		          "will be copied",
		          path, filesystem_name(pool.fd, type, sizeof(type)));
	if (durable_mkdir(&pool, "appvms", 0755) < 0 ||
	    durable_mkdir(&pool, "vm-templates", 0755) < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	dir_close(&pool);
	return 0;
}

/*
 * Checks the pool: the reflink probe, the scan (with its repairs), then
 * one look for what uses the dirty images, then the report.
 */
static int pool_check(int no_reflink_ok, int quiet)
{
	char type[32], message[512];
	struct dir pool;
	int probe, status = pool_open(&pool, options.pool, 0, &probe);

	if (status != 0)
		return status;
	if (probe < 0) {
		int err = errno;

		/* A pool this user may not write, on a read-only or full
		 * filesystem, can still be checked. */
		snprintf(message, sizeof(message),
		         "the reflink probe could not run (%s): whether the "
		         "filesystem can clone is not known; the files were "
		         "checked all the same",
		         strerror(err));
		finding_add(SEVERITY_INFO, options.pool,
		            "reflink-probe-skipped", message);
		/* Any other error is the disk's, and fails the run. */
		if (err != EACCES && err != EPERM && err != EROFS &&
		    err != ENOSPC && err != EDQUOT)
			failure(err, options.pool, "reflink probe");
	} else if (probe == 0) {
		snprintf(message, sizeof(message),
		         "the filesystem (%s) cannot reflink: every start and "
		         "commit copies whole images%s",
		         filesystem_name(pool.fd, type, sizeof(type)),
		         no_reflink_ok ? "" : " (--no-reflink-ok accepts it)");
		finding_add(no_reflink_ok ? SEVERITY_INFO : SEVERITY_ERROR,
		            options.pool, "no-reflink", message);
	}
	if (probe != 0 || no_reflink_ok)
		directory_scan(&pool, NULL, NULL, PLACE_POOL, 0,
		               pool_untrusted[0] != '\0' ? pool_untrusted
		                                         : NULL);
	if (files_in_use(dirty_ids, dirty_count, dirty_image_used, NULL) < 0) {
		/* Without it a running VM's image would be called a crash
		 * leftover, with advice to discard it. */
		log_errc(errno, "cannot tell which dirty images are in use");
		status = exit_status_for_errno(errno);
		return status == EX_SOFTWARE ? status : EX_IOERR;
	}
	status = report(&pool, probe, quiet) ? EXIT_NOT_IN_STATE : 0;
	dir_close(&pool);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	if (probe == 0 && !no_reflink_ok)
		return EX_UNAVAILABLE;
	return run_status ? run_status : status;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"dry-run", no_argument, NULL, 'n'},
	    {"init", no_argument, NULL, 'I'},
	    {"json", no_argument, NULL, 'j'},
	    {"no-reflink-ok", no_argument, NULL, 'N'},
	    {"repair", no_argument, NULL, 'R'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int init = 0, no_reflink_ok = 0, quiet = 0, ch;

	tool_init(argv[0], usage);
	options.wait_seconds = -1;
	while ((ch = getopt_long(argc, argv, "jnw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'I':
			init = 1;
			break;
		case 'j':
			options.json = 1;
			break;
		case 'N':
			no_reflink_ok = 1;
			break;
		case 'n':
			options.dry_run = 1;
			break;
		case 'R':
			options.repair = 1;
			break;
		case 'w':
			options.wait_seconds = option_wait(optarg);
			break;
		case 'q':
			quiet = 1;
			option_common(ch);
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);
	if (init && (options.repair || options.dry_run || options.json)) {
		log_errx("--init goes with --no-reflink-ok only");
		usage(stderr);
		return EX_USAGE;
	}
	if (options.dry_run && !options.repair) {
		log_errx("-n goes with --repair");
		usage(stderr);
		return EX_USAGE;
	}
	if (init)
		return pool_init(argv[0], no_reflink_ok);
	options.pool = argv[0];
	return pool_check(no_reflink_ok, quiet);
}
