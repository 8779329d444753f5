/*
 * scan.c: the scanner of a pool.  It walks a directory and the ones below
 * it, reads each under a shared lock taken without waiting, classifies its
 * files into volumes, and appends what it finds to a struct pool_scan the
 * caller owns: findings (one table of kinds, finding_kinds[]), volumes,
 * the failures that did not stop it.  With repair it removes leftovers
 * under the exclusive lock.  It never prints: pool-check and vol-list do.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* A volume's path, and room for it shell-quoted (see shell_quote). */
#define VOLUME_PATH_MAX (PATH_MAX + NAME_MAX + 16)
#define QUOTED_MAX (4 * VOLUME_PATH_MAX + 5)

const char *const severity_names[] = {"info", "warning", "error"};

#define REMOVES "pool-check --repair removes it"

/* clang-format off */
const struct finding_kind finding_kinds[FINDING_CODES] = {
    [FINDING_DIRTY_DETACHED] = {"dirty-detached", SEVERITY_WARNING,
	REPAIR_NONE,
	{"crash leftover: no VM uses it, and there is no clean image",
	 "crash leftover: no VM uses it",
	 "crash leftover: no VM uses it"},
	{"a volatile volume drops it: vol-discard --volatile {1}; one with "
	 "snapshots disabled keeps it: vol-commit -k -1 {1}",
	 "a snapshot volume drops it: vol-discard -S SRC {1}; an origin "
	 "volume keeps its changes: vol-commit {1}",
	 "keep its changes: vol-commit {1}, or drop them: vol-discard {1}"}},
    [FINDING_DIRTY_ATTACHED] = {"dirty-attached", SEVERITY_INFO, REPAIR_NONE,
	{"a VM is running on it (used by {1})"}, {NULL}},
    [FINDING_CLEAN_MISSING] = {"clean-missing", SEVERITY_ERROR, REPAIR_NONE,
	{"missing, while the dirty image and {2} remain",
	 "missing, while revisions remain",
	 "missing, while a precache remains"},
	{"make the dirty image clean: vol-commit {1}",
	 "make the latest one clean: vol-revert {1}",
	 "make it clean: vol-commit --from {2} {1}"}},
    [FINDING_STALE_PRECACHE] = {"stale-precache", SEVERITY_WARNING,
	REPAIR_UNLINK,
	{"stale precache: not a copy of {1}.img (size or mtime differs)"},
	{REMOVES}},
    [FINDING_IMPORT_LEFTOVER] = {"import-leftover", SEVERITY_WARNING,
	REPAIR_UNLINK, {"import left by an interrupted vol-import"},
	{REMOVES}},
    [FINDING_TEMP_LEFTOVER] = {"temp-leftover", SEVERITY_WARNING,
	REPAIR_UNLINK, {"temp file of an interrupted operation"}, {REMOVES}},
    [FINDING_LEGACY_REVISION] = {"legacy-revision", SEVERITY_WARNING,
	REPAIR_NONE,
	{"legacy revision name (2018): the tools never prune or revert to "
	 "it"},
	{"keep it, or remove it by hand"}},
    [FINDING_MALFORMED_REVISION] = {"malformed-revision", SEVERITY_WARNING,
	REPAIR_NONE,
	{"looks like a revision but is not a valid one: the tools ignore "
	 "it"},
	{"rename or remove it by hand"}},
    [FINDING_ORPHAN_PIN] = {"orphan-pin", SEVERITY_WARNING, REPAIR_UNLINK,
	{"pin marker of a revision that is gone (removed by hand, or by a "
	 "tool that knows no pins): it pins nothing"},
	{REMOVES}},
    [FINDING_UNTRUSTED_PIN] = {"untrusted-pin", SEVERITY_WARNING,
	REPAIR_NONE,
	{"{1} under a pin marker's name, not an empty regular file of root's "
	 "or of the directory's owner: it pins nothing"},
	{"remove it by hand; vol-pin -r ID pins the revision again"}},
    [FINDING_NOT_REGULAR] = {"not-regular", SEVERITY_ERROR, REPAIR_NONE,
	{"{1} where an image belongs: the tools refuse the volume"},
	{"move or remove it by hand"}},
    [FINDING_MISPLACED] = {"misplaced", SEVERITY_WARNING, REPAIR_NONE,
	{"a volume's file where no volume belongs: volumes live in VM "
	 "directories, {1}/appvms/VM/ or {1}/vm-templates/VM/"},
	{"move it into one by hand"}},
    [FINDING_UNREADABLE] = {"unreadable", SEVERITY_ERROR, REPAIR_NONE,
	{"cannot be read ({1}): what it holds is not checked"},
	{"run pool-check as a user who may read it"}},
    [FINDING_UNTRUSTED_DIRECTORY] = {"untrusted-directory", SEVERITY_ERROR,
	REPAIR_NONE,
	{"other users may write it ({1}), and could lead the tools outside "
	 "the pool: make it root's and not writable by others",
	 "{1}, on the way to the pool: other users could lead the tools "
	 "outside it"},
	{"the tools refuse it (77)", "the tools refuse it (77)"}},
    [FINDING_EMPTY_VM_DIRECTORY] = {"empty-vm-directory", SEVERITY_INFO,
	REPAIR_RMDIR,
	{"an empty VM directory, as an interrupted vol-remove leaves it"},
	{REMOVES}},
    [FINDING_NO_REFLINK] = {"no-reflink", SEVERITY_ERROR, REPAIR_NONE,
	{"the filesystem ({1}) cannot reflink: every start and commit "
	 "copies whole images{2}"},
	{NULL}},
    [FINDING_REFLINK_PROBE_SKIPPED] = {"reflink-probe-skipped", SEVERITY_INFO,
	REPAIR_NONE,
	{"the reflink probe could not run ({1}): whether the filesystem can "
	 "clone is not known; the files were checked all the same"},
	{NULL}},
    [FINDING_FRAGMENTED] = {"fragmented", SEVERITY_INFO, REPAIR_NONE,
	{"fragmented: {1}; {2}"},
	{"every commit and revert clones it, and pays that; a copy made with "
	 "reflink-clone --reflink=never and given to vol-import has few "
	 "extents, but shares none with the revisions"}},
};
/* clang-format on */

/* The message of a leftover in a directory a tool holds the lock of. */
static const char busy_message[] = "a tool is working in this directory now: "
                                   "its work in progress, not a leftover";

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
struct walk {
	struct pool_scan *scan;
	const struct dir *dir;
	const struct dir *parent; /* and dir's name in it */
	const char *name;
	enum place place;
	int busy; /* a tool holds the lock: its files are work in progress */
	const char *untrusted; /* see scan_options */
	int lock_fd;           /* the lock, or -1 */
	size_t first_finding;  /* the findings of this directory */
	char *names;
	size_t names_length, names_capacity;
	struct entry *entries;
	size_t count, capacity;
};

/* Everything found in one directory about one volume. */
struct volume_files {
	char base[NAME_MAX + 1];
	struct stat clean, dirty, precache;
	int has_clean, has_dirty, has_precache, odd;
	size_t precache_name; /* in names */
	size_t revisions;
	size_t pinned; /* revisions with a trusted marker */
	uint64_t latest;
};

/* Returns items grown for one more, or NULL with the scan marked short
 * of memory. */
static void *grow(struct pool_scan *scan, void *items, size_t *capacity,
                  size_t count, size_t size)
{
	void *grown = array_grow(items, capacity, count, size);

	if (grown == NULL)
		scan->out_of_memory = 1;
	return grown;
}

static char *copy(struct pool_scan *scan, const char *text)
{
	char *made = strdup(text);

	if (made == NULL)
		scan->out_of_memory = 1;
	return made;
}

/* Appends template to buf (size > 0; at *at), "{1}" and "{2}" replaced by
 * arg1 and arg2; what does not fit is left out. */
static void template_append(char *buf, size_t size, size_t *at,
                            const char *template, const char *arg1,
                            const char *arg2)
{
	const char *p = template, *piece;

	while (*p != '\0') {
		if (p[0] == '{' && (p[1] == '1' || p[1] == '2') &&
		    p[2] == '}') {
			piece = p[1] == '1' ? arg1 : arg2;
			p += 3;
		} else
			piece = NULL;
		while (piece != NULL && *piece != '\0' && *at + 1 < size)
			buf[(*at)++] = *piece++;
		if (piece == NULL && *at + 1 < size)
			buf[(*at)++] = *p;
		if (piece == NULL)
			p++;
	}
	buf[*at] = '\0';
}

struct finding *pool_scan_add(struct pool_scan *scan, enum finding_code code,
                              int variant, const char *path, const char *arg1,
                              const char *arg2)
{
	const struct finding_kind *kind = &finding_kinds[code];
	char message[2 * QUOTED_MAX + 512];
	struct finding *f;
	size_t at = 0;

	template_append(message, sizeof(message), &at, kind->text[variant],
	                arg1 ? arg1 : "", arg2 ? arg2 : "");
	if (kind->fix[variant] != NULL) {
		template_append(message, sizeof(message), &at, "; ", "", "");
		template_append(message, sizeof(message), &at,
		                kind->fix[variant], arg1 ? arg1 : "",
		                arg2 ? arg2 : "");
	}
	scan->findings = grow(scan, scan->findings, &scan->finding_capacity,
	                      scan->finding_count, sizeof(*scan->findings));
	if (scan->findings == NULL)
		return NULL;
	f = &scan->findings[scan->finding_count];
	memset(f, 0, sizeof(*f));
	f->code = code;
	f->severity = kind->severity;
	f->path = copy(scan, path);
	f->message = copy(scan, message);
	if (f->path == NULL || f->message == NULL) {
		free(f->path);
		free(f->message);
		errno = ENOMEM;
		return NULL;
	}
	scan->finding_count++;
	return f;
}

static void problem_add(struct pool_scan *scan, enum scan_problem_kind kind,
                        int err, const char *path, const char *what)
{
	struct scan_problem *p;

	scan->problems = grow(scan, scan->problems, &scan->problem_capacity,
	                      scan->problem_count, sizeof(*scan->problems));
	if (scan->problems == NULL)
		return;
	p = &scan->problems[scan->problem_count];
	p->kind = kind;
	p->err = err;
	p->path = copy(scan, path);
	p->what = copy(scan, what);
	if (p->path == NULL || p->what == NULL) {
		free(p->path);
		free(p->what);
		return;
	}
	scan->problem_count++;
}

void pool_scan_init(struct pool_scan *scan, const struct scan_options *options)
{
	memset(scan, 0, sizeof(*scan));
	scan->options = *options;
}

void pool_scan_free(struct pool_scan *scan)
{
	size_t i;

	for (i = 0; i < scan->finding_count; i++) {
		free(scan->findings[i].path);
		free(scan->findings[i].message);
	}
	for (i = 0; i < scan->problem_count; i++) {
		free(scan->problems[i].path);
		free(scan->problems[i].what);
	}
	for (i = 0; i < scan->volume_count; i++)
		free(scan->volumes[i].path);
	free(scan->findings);
	free(scan->problems);
	free(scan->volumes);
	free(scan->dirty_ids);
	memset(scan, 0, sizeof(*scan));
}

/* Keeps name as an entry of the walk. */
static void entry_keep(struct walk *walk, const char *name, size_t base_length,
                       enum name_kind kind)
{
	size_t length = strlen(name) + 1;
	struct entry *entry;
	char *names;

	while (walk->names_capacity - walk->names_length < length) {
		names = grow(walk->scan, walk->names, &walk->names_capacity,
		             walk->names_capacity, 1);
		if (names == NULL)
			return;
		walk->names = names;
	}
	entry = grow(walk->scan, walk->entries, &walk->capacity, walk->count,
	             sizeof(*walk->entries));
	if (entry == NULL)
		return;
	walk->entries = entry;
	entry = &walk->entries[walk->count++];
	entry->name = walk->names_length;
	entry->base_length = (unsigned short)base_length;
	entry->kind = (unsigned char)kind;
	memcpy(walk->names + walk->names_length, name, length);
	walk->names_length += length;
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
 * a problem of the run, though the directory is still read.
 */
static int walk_lock(struct walk *walk)
{
	walk->lock_fd = lock_open(walk->dir);
	if (walk->lock_fd >= 0 && lock_wait(walk->lock_fd, LOCK_SH, 0) == 0)
		return 0;
	if (walk->lock_fd >= 0 && errno == EWOULDBLOCK)
		return 1;
	problem_add(walk->scan, PROBLEM_FAILED, errno, walk->dir->path, "lock");
	return 0;
}

/*
 * Adds a finding about what may be a tool's work in progress: info if a
 * tool holds the directory's lock.  Else, if the kind is repairable and
 * the run repairs, --repair may remove name (in the walk's names; the
 * directory itself for REPAIR_RMDIR), which the scan saw as the inode st.
 */
static void leftover_add(struct walk *walk, enum finding_code code, int variant,
                         const char *path, const char *arg1, const char *arg2,
                         size_t name, const struct stat *st)
{
	const struct scan_options *options = &walk->scan->options;
	struct finding *f;

	if (walk->busy) {
		f = pool_scan_add(walk->scan, code, 0, path, NULL, NULL);
		if (f != NULL) {
			f->severity = SEVERITY_INFO;
			free(f->message);
			f->message = copy(walk->scan, busy_message);
		}
		return;
	}
	f = pool_scan_add(walk->scan, code, variant, path, arg1, arg2);
	if (f == NULL || !options->repair ||
	    finding_kinds[code].repair == REPAIR_NONE)
		return;
	f->repair = finding_kinds[code].repair;
	f->fix = options->dry_run ? FIX_WOULD : FIX_NONE;
	f->name = name;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
}

static void unreadable_add(struct pool_scan *scan, const char *path, int err)
{
	struct finding *f = pool_scan_add(scan, FINDING_UNREADABLE, 0, path,
	                                  strerror(err), NULL);

	if (f != NULL)
		f->err = err;
}

/*
 * The message variant for a dirty image that no VM uses.  Only the
 * caller knows a volume's type; the files suggest it: without C, D is a
 * volatile volume's or one with snapshots disabled; a C linked elsewhere,
 * with no revision or precache, is most likely a snapshot volume's.
 */
static int dirty_variant(const struct volume_files *v)
{
	if (!v->has_clean)
		return 0;
	if (v->clean.st_nlink > 1 && v->revisions == 0 && !v->has_precache)
		return 1;
	return 2;
}

/* What type of volume the files suggest (vol-list(1)). */
static const char *volume_type(const struct volume_files *v)
{
	if (v->odd)
		return "unknown";
	if (v->revisions > 0 || v->has_precache)
		return "origin";
	if (v->has_clean && v->clean.st_nlink > 1)
		return "snapshot";
	if (v->has_clean)
		return "origin";
	return v->has_dirty ? "volatile" : "unknown";
}

/* Appends the volume to the scan's list of volumes. */
static void volume_list(struct walk *walk, const struct volume_files *v,
                        const char *volume)
{
	struct pool_scan *scan = walk->scan;
	char path[VOLUME_PATH_MAX + 8];
	const struct stat *image = NULL;
	struct scan_volume *item;

	item = grow(scan, scan->volumes, &scan->volume_capacity,
	            scan->volume_count, sizeof(*scan->volumes));
	if (item == NULL)
		return;
	scan->volumes = item;
	item = &scan->volumes[scan->volume_count];
	memset(item, 0, sizeof(*item));
	snprintf(path, sizeof(path), "%s.img", volume);
	if ((item->path = copy(scan, path)) == NULL)
		return;
	scan->volume_count++;
	item->type = volume_type(v);
	item->state = v->has_dirty   ? "dirty"
	              : v->has_clean ? "clean"
	                             : "missing";
	image = v->has_dirty ? &v->dirty : v->has_clean ? &v->clean : NULL;
	if (image != NULL) {
		item->size = image->st_size;
		item->usage = (unsigned long long)image->st_blocks * 512;
	}
	item->revisions = v->revisions;
	item->has_latest = v->revisions > 0;
	item->latest = v->latest;
}

/* Notes a dirty image, whose users are asked for all at once. */
static void dirty_note(struct walk *walk, const struct volume_files *v,
                       const char *volume, const char *quoted)
{
	struct pool_scan *scan = walk->scan;
	char path[VOLUME_PATH_MAX + 16];
	struct finding *f;
	struct file_id *ids;

	scan->total_dirty++;
	snprintf(path, sizeof(path), "%s-dirty.img", volume);
	f = pool_scan_add(scan, FINDING_DIRTY_DETACHED, dirty_variant(v), path,
	                  quoted, NULL);
	ids = grow(scan, scan->dirty_ids, &scan->dirty_capacity,
	           scan->dirty_count, sizeof(*scan->dirty_ids));
	if (f == NULL || ids == NULL)
		return;
	scan->dirty_ids = ids;
	ids[scan->dirty_count].dev = v->dirty.st_dev;
	ids[scan->dirty_count++].ino = v->dirty.st_ino;
	f->dirty = scan->dirty_count;
}

#define GIB (UINT64_C(1) << 30)

/* Times one clone of fd into an anonymous file of the walk's directory:
 * 0 and the time in *ms, or -1 (errno) where none can be made. */
static int clone_time(const struct walk *walk, int fd, double *ms)
{
	struct timespec start, end;
	int copy, rc, saved;

	copy = openat(walk->dir->fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (copy < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = ioctl(copy, FICLONE, fd);
	clock_gettime(CLOCK_MONOTONIC, &end);
	saved = errno;
	close(copy);
	errno = saved;
	*ms = (double)(end.tv_sec - start.tv_sec) * 1e3 +
	      (double)(end.tv_nsec - start.tv_nsec) / 1e6;
	return rc;
}

/* Reports the image name (st) if it has more extents than the threshold
 * allows for its data, with what one clone of it costs here. */
static void fragmented_check(struct walk *walk, const char *name,
                             const struct stat *st)
{
	char path[VOLUME_PATH_MAX], extents[128], data[32], cost[128];
	uint64_t count, bytes = (uint64_t)st->st_blocks * 512, gib;
	double ms;
	int fd;

	gib = bytes > GIB ? (bytes + GIB - 1) / GIB : 1;
	/* Gone or replaced since, or no extent map: nothing to judge. */
	fd = file_open_checked(walk->dir, name, O_RDONLY, st);
	if (fd < 0)
		return;
	dir_join(walk->dir, name, path, sizeof(path));
	if (extent_count(fd, &count) != 0) {
		/* No extent map is nothing to judge; an I/O error is one. */
		if (errno != EOPNOTSUPP && errno != ENOTTY)
			problem_add(walk->scan, PROBLEM_FAILED, errno, path,
			            "extent map");
		close(fd);
		return;
	}
	if (count <= walk->scan->options.fragmented * gib) {
		close(fd);
		return;
	}
	if (clone_time(walk, fd, &ms) == 0)
		snprintf(cost, sizeof(cost),
		         "one clone of it took %.0f ms here", ms);
	else {
		snprintf(cost, sizeof(cost),
		         "a clone of it could not be timed here (%s)",
		         strerror(errno));
		/* A pool this user may not write, or a full or read-only
		 * one, is still checked; the disk's error fails the run. */
		if (errno == EIO)
			problem_add(walk->scan, PROBLEM_FAILED, errno, path,
			            "clone");
	}
	close(fd);
	snprintf(extents, sizeof(extents),
	         "%llu extents in %s of data (%llu per GiB)",
	         (unsigned long long)count,
	         human_size((double)bytes, data, sizeof(data)),
	         (unsigned long long)(count / gib));
	pool_scan_add(walk->scan, FINDING_FRAGMENTED, 0, path, extents, cost);
}

/* Reports the findings of one volume of a directory. */
static void volume_check(struct walk *walk, const struct volume_files *v)
{
	char volume[VOLUME_PATH_MAX], path[VOLUME_PATH_MAX + 16];
	char quoted[QUOTED_MAX], from[QUOTED_MAX];

	dir_join(walk->dir, v->base, volume, sizeof(volume));
	shell_quote(volume, quoted, sizeof(quoted));
	if (v->has_clean || v->has_dirty)
		walk->scan->total_volumes++;
	walk->scan->total_revisions += v->revisions;
	if (walk->scan->options.volumes &&
	    (v->has_clean || v->has_dirty || v->has_precache || v->revisions ||
	     v->odd))
		volume_list(walk, v, volume);
	if (v->has_dirty)
		dirty_note(walk, v, volume, quoted);
	/* vol-start -k -1 renames C to D and keeps only pinned revisions:
	 * those beside D are no sign of a missing C. */
	if (!v->has_clean && (v->revisions > (v->has_dirty ? v->pinned : 0) ||
	                      v->has_precache)) {
		snprintf(path, sizeof(path), "%s-precache.img", volume);
		shell_quote(path, from, sizeof(from));
		snprintf(path, sizeof(path), "%s.img", volume);
		leftover_add(walk, FINDING_CLEAN_MISSING,
		             v->has_dirty       ? 0
		             : v->revisions > 0 ? 1
		                                : 2,
		             path, quoted,
		             v->has_dirty
		                 ? (v->revisions ? "revisions" : "a precache")
		                 : from,
		             0, NULL);
	}
	if (walk->scan->options.fragmented > 0 && v->has_clean) {
		snprintf(path, sizeof(path), "%s.img", v->base);
		fragmented_check(walk, path, &v->clean);
	}
	if (walk->scan->options.fragmented > 0 && v->has_dirty) {
		snprintf(path, sizeof(path), "%s-dirty.img", v->base);
		fragmented_check(walk, path, &v->dirty);
	}
	if (v->has_clean && v->has_precache &&
	    precache_stale(&v->precache, &v->clean)) {
		dir_join(walk->dir, walk->names + v->precache_name, path,
		         sizeof(path));
		leftover_add(walk, FINDING_STALE_PRECACHE, 0, path, v->base,
		             NULL, v->precache_name, &v->precache);
	}
}

/* Notes in v what a volume's findings need to know of one of its files,
 * and reports the file itself if it is a finding. */
static void entry_note(struct walk *walk, const struct entry *e,
                       const struct stat *st, const char *path,
                       struct volume_files *v)
{
	const char *name = walk->names + e->name;
	struct revision revision;
	char base[NAME_MAX + 1];

	switch (e->kind) {
	case NAME_CLEAN:
		v->has_clean = 1;
		v->clean = *st;
		break;
	case NAME_DIRTY:
		v->has_dirty = 1;
		v->dirty = *st;
		break;
	case NAME_PRECACHE:
		v->has_precache = 1;
		v->precache = *st;
		v->precache_name = e->name;
		break;
	case NAME_REVISION:
		v->revisions++;
		if (volume_name_split(name, base, &revision) == NAME_REVISION &&
		    revision.id > v->latest)
			v->latest = revision.id;
		break;
	case NAME_IMPORT:
	case NAME_TEMP:
		leftover_add(walk,
		             e->kind == NAME_IMPORT ? FINDING_IMPORT_LEFTOVER
		                                    : FINDING_TEMP_LEFTOVER,
		             0, path, NULL, NULL, e->name, st);
		break;
	case NAME_LEGACY:
	case NAME_MALFORMED:
		pool_scan_add(walk->scan,
		              e->kind == NAME_LEGACY
		                  ? FINDING_LEGACY_REVISION
		                  : FINDING_MALFORMED_REVISION,
		              0, path, NULL, NULL);
		break;
	default:
		break;
	}
}

/*
 * Looks at a pin marker (st): one that vol-pin did not make pins nothing
 * and is reported as it is; a trusted one whose revision is gone is an
 * orphan, which --repair removes.
 */
static void pin_check(struct walk *walk, const struct entry *e,
                      const struct stat *st, const char *path,
                      struct volume_files *v)
{
	const char *name = walk->names + e->name;
	size_t length = strlen(name) - strlen(PIN_SUFFIX);
	char revision[NAME_MAX + 1], owner[64];
	struct stat dir, rev;

	if (fstat(walk->dir->fd, &dir) != 0) {
		unreadable_add(walk->scan, walk->dir->path, errno);
		return;
	}
	if (!pin_stat_trusted(st, dir.st_uid)) {
		if (S_ISREG(st->st_mode))
			snprintf(owner, sizeof(owner),
			         "a file of %jd bytes of uid %ju",
			         (intmax_t)st->st_size, (uintmax_t)st->st_uid);
		pool_scan_add(walk->scan, FINDING_UNTRUSTED_PIN, 0, path,
		              S_ISREG(st->st_mode) ? owner
		                                   : file_kind(st->st_mode),
		              NULL);
		return;
	}
	memcpy(revision, name, length);
	revision[length] = '\0';
	if (fstatat(walk->dir->fd, revision, &rev, AT_SYMLINK_NOFOLLOW) == 0) {
		v->pinned++;
		return;
	}
	if (errno == ENOENT)
		leftover_add(walk, FINDING_ORPHAN_PIN, 0, path, NULL, NULL,
		             e->name, st);
	else
		unreadable_add(walk->scan, path, errno);
}

/* Looks at one file of a volume. */
static void entry_check(struct walk *walk, const struct entry *e,
                        struct volume_files *v)
{
	const char *name = walk->names + e->name;
	char path[PATH_MAX];
	struct stat st;

	dir_join(walk->dir, name, path, sizeof(path));
	if (fstatat(walk->dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		/* A file removed since the directory was read is no more. */
		if (errno != ENOENT)
			unreadable_add(walk->scan, path, errno);
		return;
	}
	if (e->kind == NAME_PIN) {
		pin_check(walk, e, &st, path, v);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		pool_scan_add(walk->scan, FINDING_NOT_REGULAR, 0, path,
		              file_kind(st.st_mode), NULL);
		if (e->kind == NAME_CLEAN || e->kind == NAME_DIRTY ||
		    e->kind == NAME_PRECACHE)
			v->odd = 1;
		return;
	}
	entry_note(walk, e, &st, path, v);
}

/* Groups the volume files of a directory by volume and reports them. */
static void directory_check(struct walk *walk)
{
	struct volume_files v;
	size_t i, j;

	if (walk->count > 0)
		qsort_r(walk->entries, walk->count, sizeof(*walk->entries),
		        entry_compare, walk->names);
	for (i = 0; i < walk->count; i = j) {
		const struct entry *first = &walk->entries[i];

		memset(&v, 0, sizeof(v));
		memcpy(v.base, walk->names + first->name, first->base_length);
		for (j = i;
		     j < walk->count &&
		     entry_compare(first, &walk->entries[j], walk->names) == 0;
		     j++)
			if (walk->entries[j].kind != NAME_OTHER)
				entry_check(walk, &walk->entries[j], &v);
		if (first->kind != NAME_OTHER)
			volume_check(walk, &v);
	}
}

/*
 * Removes the file or directory of a finding if it still is the inode
 * the scan judged: its name may have been given to another file since.
 * The tools replace a file by renaming another over it, never by writing
 * it, so the same inode is still what was found.  1 removed, 0 nothing
 * to do, -1 error.
 */
static int repair_one(const struct walk *walk, const struct finding *f)
{
	const struct dir *dir =
	    f->repair == REPAIR_RMDIR ? walk->parent : walk->dir;
	const char *name =
	    f->repair == REPAIR_RMDIR ? walk->name : walk->names + f->name;
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
 * exclusively, and records in each what it did.  They act on the very
 * directory the scan read, through its descriptor, never through a path,
 * which the directory's owner may have made a symbolic link since.
 */
static void repairs_run(struct walk *walk)
{
	struct pool_scan *scan = walk->scan;
	struct finding *f;
	size_t i = walk->first_finding;
	int rc;

	while (i < scan->finding_count &&
	       scan->findings[i].repair == REPAIR_NONE)
		i++;
	/* Without the lock (a problem of the scan) nothing is repaired. */
	if (i == scan->finding_count || scan->options.dry_run ||
	    walk->lock_fd < 0)
		return;
	/* Its owner or another user could swap what is repaired. */
	if (walk->untrusted != NULL) {
		problem_add(scan, PROBLEM_UNTRUSTED, EPERM, walk->dir->path,
		            walk->untrusted);
		return;
	}
	/* Converting the shared lock lets a tool in between: each file is
	 * checked again once the lock is held. */
	if (lock_wait(walk->lock_fd, LOCK_EX, scan->options.wait_seconds)) {
		problem_add(scan,
		            errno == EWOULDBLOCK ? PROBLEM_LOCKED
		                                 : PROBLEM_FAILED,
		            errno, walk->dir->path, "lock");
		return;
	}
	for (; i < scan->finding_count; i++) {
		f = &scan->findings[i];
		if (f->repair == REPAIR_NONE)
			continue;
		rc = repair_one(walk, f);
		if (rc < 0)
			problem_add(scan, PROBLEM_FAILED, errno, f->path,
			            "cannot remove");
		else
			f->fix = rc ? FIX_DONE : FIX_MOOT;
	}
}

/* Keeps one entry of the directory being read: a volume's file, or a
 * subdirectory to look into; a volume's file where none belongs is a
 * finding. */
static void directory_entry(struct walk *walk, DIR *stream,
                            const struct dirent *d, int depth)
{
	const struct scan_options *options = &walk->scan->options;
	char path[PATH_MAX], base[NAME_MAX + 1];
	enum name_kind kind = volume_name_split(d->d_name, base, NULL);
	struct stat st;

	if (kind != NAME_OTHER &&
	    (walk->place == PLACE_POOL || walk->place == PLACE_VM_PARENT))
		pool_scan_add(
		    walk->scan, FINDING_MISPLACED, 0,
		    dir_join(walk->dir, d->d_name, path, sizeof(path)),
		    options->pool, NULL);
	else if (kind != NAME_OTHER)
		entry_keep(walk, d->d_name, strlen(base), kind);
	/* Symlinked directories are not followed: a pool is one tree. */
	else if (depth < options->max_depth &&
	         (d->d_type == DT_DIR || (d->d_type == DT_UNKNOWN &&
	                                  fstatat(dirfd(stream), d->d_name, &st,
	                                          AT_SYMLINK_NOFOLLOW) == 0 &&
	                                  S_ISDIR(st.st_mode))))
		entry_keep(walk, d->d_name, 0, NAME_OTHER);
}

/* Reads the directory (see directory_entry).  Returns the number of
 * entries, or -1 (errno). */
static long directory_read(struct walk *walk, int depth)
{
	struct dirent *d;
	DIR *stream = dir_stream(walk->dir);
	long count = 0;
	int err;

	if (stream == NULL)
		return -1;
	for (errno = 0; (d = readdir(stream)) != NULL; errno = 0) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		count++;
		directory_entry(walk, stream, d, depth);
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

/* A directory that others may write is a finding, and nothing below it
 * is repaired (culprit: its description, for the walk). */
static void directory_trust(struct walk *walk, char *culprit, size_t length)
{
	char owner[48];
	struct stat st;

	if (fstat(walk->dir->fd, &st) != 0 || !dir_stat_untrusted(&st))
		return;
	snprintf(owner, sizeof(owner), "mode %04o, owner uid %ju",
	         (unsigned)(st.st_mode & 07777), (uintmax_t)st.st_uid);
	snprintf(culprit, length, "%s (%s)", walk->dir->path, owner);
	pool_scan_add(walk->scan, FINDING_UNTRUSTED_DIRECTORY, 0,
	              walk->dir->path, owner, NULL);
	if (walk->untrusted == NULL)
		walk->untrusted = culprit;
}

static void directory_scan(struct pool_scan *scan, const struct dir *dir,
                           const struct dir *parent, const char *name,
                           enum place place, int depth, const char *untrusted);

/* Scans the subdirectories the walk kept. */
static void subdirectories_scan(struct walk *walk, int depth)
{
	const char *name;
	char path[PATH_MAX];
	struct dir sub;
	size_t i;

	for (i = 0; i < walk->count && !walk->scan->out_of_memory; i++) {
		if (walk->entries[i].kind != NAME_OTHER)
			continue;
		name = walk->names + walk->entries[i].name;
		if (dir_openat(&sub, walk->dir, name) == 0) {
			directory_scan(walk->scan, &sub, walk->dir, name,
			               place_below(walk->place, name),
			               depth + 1, walk->untrusted);
			dir_close(&sub);
		} else if (errno != ENOENT && errno != ENOTDIR &&
		           errno != ELOOP) {
			/* Gone, or made a symbolic link since: nothing to
			 * read; anything else keeps what it holds unseen. */
			unreadable_add(
			    walk->scan,
			    dir_join(walk->dir, name, path, sizeof(path)),
			    errno);
		}
	}
}

/* Checks a directory (dir, the entry name of parent; the top: NULL),
 * repairs it with repair, then checks its subdirectories. */
static void directory_scan(struct pool_scan *scan, const struct dir *dir,
                           const struct dir *parent, const char *name,
                           enum place place, int depth, const char *untrusted)
{
	char culprit[PATH_MAX + 128];
	struct walk walk;
	struct stat st;
	long count;

	memset(&walk, 0, sizeof(walk));
	walk.scan = scan;
	walk.dir = dir;
	walk.parent = parent;
	walk.name = name;
	walk.place = place;
	walk.first_finding = scan->finding_count;
	walk.untrusted = untrusted;
	directory_trust(&walk, culprit, sizeof(culprit));
	walk.busy = walk_lock(&walk);
	count = directory_read(&walk, depth);
	if (count < 0)
		unreadable_add(scan, dir->path, errno);
	else
		directory_check(&walk);
	if (count == 0 && place == PLACE_VM && fstat(dir->fd, &st) == 0)
		leftover_add(&walk, FINDING_EMPTY_VM_DIRECTORY, 0, dir->path,
		             NULL, NULL, 0, &st);
	repairs_run(&walk);
	/* The view is taken: tools may go on. */
	if (walk.lock_fd >= 0)
		close(walk.lock_fd);
	subdirectories_scan(&walk, depth);
	free(walk.entries);
	free(walk.names);
}

int pool_scan_run(struct pool_scan *scan, const struct dir *top)
{
	directory_scan(scan, top, NULL, NULL,
	               scan->options.layout ? PLACE_POOL : PLACE_OTHER, 0,
	               scan->options.untrusted);
	if (scan->out_of_memory) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

static void dirty_image_used(size_t index, const char *holder, void *context)
{
	struct pool_scan *scan = context;
	char message[PATH_MAX + 64];
	struct finding *f;
	char *text;
	size_t i;

	for (i = 0; i < scan->finding_count; i++) {
		f = &scan->findings[i];
		/* The first user found is named. */
		if (f->dirty != index + 1 || f->severity == SEVERITY_INFO)
			continue;
		snprintf(message, sizeof(message),
		         "a VM is running on it (used by %s)", holder);
		if ((text = copy(scan, message)) == NULL)
			return;
		free(f->message);
		f->message = text;
		f->severity = finding_kinds[FINDING_DIRTY_ATTACHED].severity;
		f->code = FINDING_DIRTY_ATTACHED;
	}
}

static int finding_compare(const void *a, const void *b)
{
	const struct finding *x = a, *y = b;
	int order = strcmp(x->path, y->path);

	return order ? order
	             : strcmp(finding_kinds[x->code].code,
	                      finding_kinds[y->code].code);
}

static int volume_compare(const void *a, const void *b)
{
	const struct scan_volume *x = a, *y = b;

	return strcmp(x->path, y->path);
}

int pool_scan_finish(struct pool_scan *scan)
{
	if (files_in_use(scan->dirty_ids, scan->dirty_count, dirty_image_used,
	                 scan) < 0)
		return -1;
	if (scan->out_of_memory) {
		errno = ENOMEM;
		return -1;
	}
	if (scan->finding_count > 0)
		qsort(scan->findings, scan->finding_count,
		      sizeof(*scan->findings), finding_compare);
	if (scan->volume_count > 0)
		qsort(scan->volumes, scan->volume_count, sizeof(*scan->volumes),
		      volume_compare);
	return 0;
}
