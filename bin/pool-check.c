/*
 * pool-check: create a pool, or check one: prove that its filesystem can
 * reflink, walk its VM directories and report each problem on one line,
 * with the command that fixes it; --repair fixes what is safe to fix.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "reflink.h"

/* Volumes are looked for this deep below POOL (POOL/appvms/VM is 2). */
#define SCAN_DEPTH 3

static void usage(FILE *stream)
{
	fprintf(stream, "usage: pool-check [-jnqv] [--init] [--no-reflink-ok] "
	                "[--repair] [-w SECONDS] POOL\n");
}

enum severity { SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR };

static const char *const severity_names[] = {"info", "warning", "error"};

struct finding {
	enum severity severity;
	char *path;
	const char *code;
	char *message;
	int repairable; /* --repair may remove path */
	char *dir_path; /* for a repair: the VM directory */
	char *name;     /* and the file's name in it */
	char *base;     /* and the volume's base name */
};

static struct {
	struct finding *items;
	size_t count, capacity;
} findings;

static struct {
	size_t volumes, revisions, dirty;
} totals;

/* Files that something has open or that back a loop device. */
struct open_file {
	dev_t dev;
	ino_t ino;
	char holder[300];
};

static struct {
	struct open_file *items;
	size_t count, capacity;
	int loaded;
} open_files;

static int json;

static char *string_copy(const char *text)
{
	char *copy = strdup(text);

	if (copy == NULL) {
		log_errc(errno, "memory");
		exit(EX_SOFTWARE);
	}
	return copy;
}

static void finding_add(enum severity severity, const char *path,
                        const char *code, const char *message)
{
	struct finding *finding;

	if (findings.count == findings.capacity) {
		size_t grown = findings.capacity ? 2 * findings.capacity : 32;
		struct finding *bigger =
		    realloc(findings.items, grown * sizeof(*findings.items));

		if (bigger == NULL) {
			log_errc(errno, "memory");
			exit(EX_SOFTWARE);
		}
		findings.items = bigger;
		findings.capacity = grown;
	}
	finding = &findings.items[findings.count++];
	memset(finding, 0, sizeof(*finding));
	finding->severity = severity;
	finding->path = string_copy(path);
	finding->code = code;
	finding->message = string_copy(message);
}

/* As finding_add, for a file --repair may remove. */
static void finding_add_repairable(enum severity severity,
                                   const struct dir *dir, const char *name,
                                   const char *base, const char *code,
                                   const char *message)
{
	char path[PATH_MAX];
	struct finding *finding;

	finding_add(severity, dir_join(dir, name, path, sizeof(path)), code,
	            message);
	finding = &findings.items[findings.count - 1];
	finding->repairable = 1;
	finding->dir_path = string_copy(dir->path);
	finding->name = string_copy(name);
	finding->base = string_copy(base);
}

static int finding_compare(const void *a, const void *b)
{
	const struct finding *x = a, *y = b;
	int order = strcmp(x->path, y->path);

	return order ? order : strcmp(x->code, y->code);
}

static void open_file_add(const struct stat *st, const char *holder)
{
	struct open_file *file;

	if (open_files.count == open_files.capacity) {
		size_t grown =
		    open_files.capacity ? 2 * open_files.capacity : 64;
		struct open_file *bigger = realloc(
		    open_files.items, grown * sizeof(*open_files.items));

		if (bigger == NULL)
			return;
		open_files.items = bigger;
		open_files.capacity = grown;
	}
	file = &open_files.items[open_files.count++];
	file->dev = st->st_dev;
	file->ino = st->st_ino;
	snprintf(file->holder, sizeof(file->holder), "%s", holder);
}

static int loop_backing_add(const char *device, const struct file_id *id,
                            void *unused)
{
	struct stat st;

	(void)unused;
	st.st_dev = id->dev;
	st.st_ino = id->ino;
	open_file_add(&st, device);
	return 0;
}

/*
 * Learns, once, which files back a loop device (/sys/block/loopN) and
 * which are open in a process (/proc/PID/fd): a dirty image among them
 * belongs to a running VM, whether it runs on a loop device (Xen) or
 * opens the file itself (QEMU).
 */
static void open_files_load(void)
{
	char path[PATH_MAX], holder[300];
	struct dirent *entry, *fd_entry;
	struct stat st;
	DIR *dir, *fds;

	if (open_files.loaded)
		return;
	open_files.loaded = 1;
	loop_devices_each(loop_backing_add, NULL);
	dir = opendir("/proc");
	while (dir != NULL && (entry = readdir(dir)) != NULL) {
		if (entry->d_name[0] < '1' || entry->d_name[0] > '9' ||
		    strcmp(entry->d_name, "self") == 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", entry->d_name);
		fds = opendir(path);
		if (fds == NULL)
			continue;
		snprintf(holder, sizeof(holder), "process %s", entry->d_name);
		while ((fd_entry = readdir(fds)) != NULL) {
			if (fd_entry->d_name[0] == '.')
				continue;
			if (fstatat(dirfd(fds), fd_entry->d_name, &st, 0) ==
			        0 &&
			    S_ISREG(st.st_mode))
				open_file_add(&st, holder);
		}
		closedir(fds);
	}
	if (dir != NULL)
		closedir(dir);
}

/* Who holds the file open, or NULL. */
static const char *open_file_holder(const struct stat *st)
{
	size_t i;

	open_files_load();
	for (i = 0; i < open_files.count; i++)
		if (open_files.items[i].dev == st->st_dev &&
		    open_files.items[i].ino == st->st_ino)
			return open_files.items[i].holder;
	return NULL;
}

/* Everything found in one directory about one volume. */
struct volume_files {
	char base[NAME_MAX + 1];
	struct stat clean, dirty, precache;
	int has_clean, has_dirty, has_precache, has_import;
	size_t revisions;
};

/* A name in a directory that belongs to a volume. */
struct entry {
	char base[NAME_MAX + 1];
	char name[NAME_MAX + 1];
	enum name_kind kind;
	struct stat st;
	int stat_ok;
};

static int entry_compare(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return strcmp(x->base, y->base);
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

/*
 * Takes a shared lock of the directory without waiting, so that no tool
 * changes it while it is read, for a view in which its files agree with
 * each other.  Returns 1 if a tool is at work there (then it is read
 * anyway, and what may be that tool's work in progress is reported as
 * info), 0 if the lock is held.
 */
static int dir_read_lock(const struct dir *dir, int *lock_fd)
{
	*lock_fd = lock_open(dir);
	if (*lock_fd < 0)
		return 0;
	if (flock(*lock_fd, LOCK_SH | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK;
}

static const char busy_message[] = "a tool is working in this directory "
                                   "now: its work in progress, not a leftover";

/*
 * What to do with a dirty image that no VM uses.  Only the caller knows a
 * volume's type; the files suggest it: without C, D is a volatile
 * volume's or one with snapshots disabled; a C linked elsewhere, with no
 * revision or precache, is most likely a snapshot volume's.
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
static void volume_check(const struct dir *dir, const struct volume_files *v,
                         int busy)
{
	char volume[PATH_MAX], path[PATH_MAX + 32], message[3 * PATH_MAX];
	const char *holder;

	dir_join(dir, v->base, volume, sizeof(volume));
	if (v->has_clean || v->has_dirty)
		totals.volumes++;
	totals.revisions += v->revisions;
	if (v->has_dirty) {
		totals.dirty++;
		snprintf(path, sizeof(path), "%s-dirty.img", volume);
		holder = open_file_holder(&v->dirty);
		if (holder != NULL) {
			snprintf(message, sizeof(message),
			         "a VM is running on it (used by %s)", holder);
			finding_add(SEVERITY_INFO, path, "dirty-attached",
			            message);
		} else {
			finding_add(SEVERITY_WARNING, path, "dirty-detached",
			            dirty_detached_message(v, volume, message,
			                                   sizeof(message)));
		}
	}
	if (!v->has_clean && (v->revisions > 0 || v->has_precache)) {
		snprintf(path, sizeof(path), "%s.img", volume);
		if (v->has_dirty)
			snprintf(message, sizeof(message),
			         "missing, while the dirty image and %s "
			         "remain; make the dirty image clean: "
			         "vol-commit %s",
			         v->revisions ? "revisions" : "a precache",
			         volume);
		else if (v->revisions > 0)
			snprintf(message, sizeof(message),
			         "missing, while revisions remain; make the "
			         "latest one clean: vol-revert %s",
			         volume);
		else
			snprintf(message, sizeof(message),
			         "missing, while a precache remains; make it "
			         "clean: vol-commit --from %s-precache.img %s",
			         volume, volume);
		finding_add(busy ? SEVERITY_INFO : SEVERITY_ERROR, path,
		            "clean-missing", busy ? busy_message : message);
	}
	if (v->has_clean && v->has_precache &&
	    (v->precache.st_ino == v->clean.st_ino ||
	     v->precache.st_size != v->clean.st_size ||
	     v->precache.st_mtim.tv_sec != v->clean.st_mtim.tv_sec ||
	     v->precache.st_mtim.tv_nsec != v->clean.st_mtim.tv_nsec)) {
		char name[NAME_MAX + 32];

		snprintf(name, sizeof(name), "%s-precache.img", v->base);
		snprintf(message, sizeof(message),
		         "stale precache: not a copy of %s.img (size or mtime "
		         "differs); pool-check --repair removes it",
		         v->base);
		if (busy)
			finding_add(SEVERITY_INFO,
			            dir_join(dir, name, path, sizeof(path)),
			            "stale-precache", busy_message);
		else
			finding_add_repairable(SEVERITY_WARNING, dir, name,
			                       v->base, "stale-precache",
			                       message);
	}
}

/* Reports one name of a volume that is not about the volume as a whole. */
static void entry_check(const struct dir *dir, const struct entry *e, int busy)
{
	char path[PATH_MAX];

	dir_join(dir, e->name, path, sizeof(path));
	switch (e->kind) {
	case NAME_TEMP:
	case NAME_IMPORT:
		if (busy) {
			finding_add(SEVERITY_INFO, path,
			            e->kind == NAME_TEMP ? "temp-leftover"
			                                 : "import-leftover",
			            "a tool is working in this directory "
			            "now: its file, not a leftover");
			break;
		}
		finding_add_repairable(
		    SEVERITY_WARNING, dir, e->name, e->base,
		    e->kind == NAME_TEMP ? "temp-leftover" : "import-leftover",
		    e->kind == NAME_TEMP
		        ? "temp file of an interrupted operation; "
		          "pool-check --repair removes it"
		        : "import left by an interrupted vol-import; "
		          "pool-check --repair removes it");
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

static void directory_scan(const struct dir *dir, int depth);

/* Collects the volume files of a directory and reports on them. */
static void directory_check(const struct dir *dir, struct entry *entries,
                            size_t count, int busy)
{
	struct volume_files v;
	size_t i, j;

	if (count > 0)
		qsort(entries, count, sizeof(*entries), entry_compare);
	for (i = 0; i < count; i = j) {
		memset(&v, 0, sizeof(v));
		snprintf(v.base, sizeof(v.base), "%s", entries[i].base);
		for (j = i; j < count && strcmp(entries[j].base, v.base) == 0;
		     j++) {
			struct entry *e = &entries[j];
			char path[PATH_MAX], message[PATH_MAX];

			if (!e->stat_ok)
				continue;
			if (!S_ISREG(e->st.st_mode)) {
				snprintf(message, sizeof(message),
				         "%s where an image belongs: the "
				         "tools refuse the volume; move or "
				         "remove it by hand",
				         file_kind(e->st.st_mode));
				finding_add(
				    SEVERITY_ERROR,
				    dir_join(dir, e->name, path, sizeof(path)),
				    "not-regular", message);
				continue;
			}
			switch (e->kind) {
			case NAME_CLEAN:
				v.has_clean = 1;
				v.clean = e->st;
				break;
			case NAME_DIRTY:
				v.has_dirty = 1;
				v.dirty = e->st;
				break;
			case NAME_PRECACHE:
				v.has_precache = 1;
				v.precache = e->st;
				break;
			case NAME_IMPORT:
				v.has_import = 1;
				break;
			case NAME_REVISION:
				v.revisions++;
				break;
			default:
				break;
			}
			entry_check(dir, e, busy);
		}
		volume_check(dir, &v, busy);
	}
}

/* Reads a directory once: its volumes' files, and its subdirectories. */
static void directory_scan(const struct dir *dir, int depth)
{
	struct entry *entries = NULL;
	size_t count = 0, capacity = 0, subdir_count = 0, i;
	char **subdirs = NULL;
	struct dirent *d;
	DIR *stream;
	int fd, busy, lock_fd;

	busy = dir_read_lock(dir, &lock_fd);
	fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (stream = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		log_errc(errno, "%s", dir->path);
		if (lock_fd >= 0)
			close(lock_fd);
		return;
	}
	while ((d = readdir(stream)) != NULL) {
		struct entry e;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		memset(&e, 0, sizeof(e));
		e.kind = volume_name_split(d->d_name, e.base, NULL);
		if (e.kind == NAME_OTHER) {
			int is_dir = d->d_type == DT_DIR;

			/* Symlinked directories are not followed: a pool
			 * is one tree. */
			if (d->d_type == DT_UNKNOWN) {
				struct stat st;

				is_dir = fstatat(dirfd(stream), d->d_name, &st,
				                 AT_SYMLINK_NOFOLLOW) == 0 &&
				         S_ISDIR(st.st_mode);
			}
			if (is_dir && depth < SCAN_DEPTH) {
				char **bigger =
				    realloc(subdirs, (subdir_count + 1) *
				                         sizeof(*subdirs));

				if (bigger != NULL) {
					subdirs = bigger;
					subdirs[subdir_count++] =
					    string_copy(d->d_name);
				}
			}
			continue;
		}
		snprintf(e.name, sizeof(e.name), "%s", d->d_name);
		e.stat_ok = fstatat(dirfd(stream), d->d_name, &e.st,
		                    AT_SYMLINK_NOFOLLOW) == 0;
		if (count == capacity) {
			size_t grown = capacity ? 2 * capacity : 32;
			struct entry *bigger =
			    realloc(entries, grown * sizeof(*entries));

			if (bigger == NULL) {
				log_errc(errno, "memory");
				exit(EX_SOFTWARE);
			}
			entries = bigger;
			capacity = grown;
		}
		entries[count++] = e;
	}
	closedir(stream);
	directory_check(dir, entries, count, busy);
	/* The view is taken: tools may go on. */
	if (lock_fd >= 0)
		close(lock_fd);
	free(entries);
	for (i = 0; i < subdir_count; i++) {
		struct dir sub;

		if (dir_openat(&sub, dir, subdirs[i]) == 0) {
			directory_scan(&sub, depth + 1);
			dir_close(&sub);
		}
		free(subdirs[i]);
	}
	free(subdirs);
}

static void line_print(const char *severity, const char *path, const char *code,
                       const char *message, int *first)
{
	if (json) {
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

/*
 * Removes one repairable file under the VM directory's lock, after checking
 * again that it still is what the scan found.  Returns 1 if removed, 0 if
 * it is no longer there or no longer needs removing, -1 on error.
 */
static int repair(const struct finding *f, int wait_seconds)
{
	char volume_arg[PATH_MAX];
	struct volume volume;
	int rc;

	snprintf(volume_arg, sizeof(volume_arg), "%s/%s", f->dir_path, f->base);
	if (volume_open(&volume, volume_arg, 0) != 0 ||
	    volume_lock(&volume, wait_seconds) != 0 ||
	    volume_stat(&volume) != 0) {
		volume_report_error(&volume, errno);
		volume_close(&volume);
		return -1;
	}
	if (strcmp(f->code, "stale-precache") == 0 &&
	    (!volume.precache.exists || !volume.clean.exists ||
	     volume_precache_valid(&volume)))
		rc = 0;
	else if (durable_unlink(&volume.dir, f->name) == 0)
		rc = 1;
	else if (errno == ENOENT)
		rc = 0;
	else {
		log_errc(errno, "%s", f->path);
		rc = -1;
	}
	volume_close(&volume);
	return rc;
}

static int pool_init(const char *path, int no_reflink_ok)
{
	char type[32];
	struct dir pool;
	struct stat st;
	int probe;

	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		log_errx("%s: not a directory", path);
		return EX_DATAERR;
	}
	if (dir_open_making(&pool, path) != 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	probe = reflink_probe(&pool);
	if (probe < 0) {
		log_errc(errno, "%s: reflink probe", path);
		return EX_IOERR;
	}
	if (probe == 0) {
		const char *fs = filesystem_name(pool.fd, type, sizeof(type));

		if (!no_reflink_ok) {
			/* A POOL made here goes again as this run fails. */
			log_errx(
			    "%s: the filesystem (%s) cannot reflink: every "
			    "start and commit would copy whole images; "
			    "pass --no-reflink-ok to use it anyway",
			    path, fs);
			return EX_UNAVAILABLE;
		}
		log_warnx("%s: the filesystem (%s) cannot reflink: images "
		          "will be copied",
		          path, fs);
	}
	if (durable_mkdir(&pool, "appvms", 0755) < 0 ||
	    durable_mkdir(&pool, "vm-templates", 0755) < 0) {
		log_errc(errno, "%s", path);
		return exit_status_for_errno(errno);
	}
	dir_close(&pool);
	return 0;
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
	int init = 0, no_reflink_ok = 0, do_repair = 0, dry_run = 0;
	int wait_seconds = -1, quiet = 0, ch, probe, remaining = 0, first = 1;
	int status = 0;
	char type[32];
	struct dir pool;
	struct stat st;
	struct statvfs vfs;
	size_t i;

	log_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "jnw:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'I':
			init = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'N':
			no_reflink_ok = 1;
			break;
		case 'n':
			dry_run = 1;
			break;
		case 'R':
			do_repair = 1;
			break;
		case 'w':
			wait_seconds = option_wait(optarg, usage);
			break;
		case 'q':
			quiet = 1;
			option_common(ch, usage);
			break;
		default:
			option_common(ch, usage);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1, usage);
	if (init && (do_repair || dry_run || json)) {
		log_errx("--init goes with --no-reflink-ok only");
		usage(stderr);
		return EX_USAGE;
	}
	if (dry_run && !do_repair) {
		log_errx("-n goes with --repair");
		usage(stderr);
		return EX_USAGE;
	}
	if (init)
		return pool_init(argv[0], no_reflink_ok);

	if (stat(argv[0], &st) == 0 && !S_ISDIR(st.st_mode)) {
		log_errx("%s: not a directory", argv[0]);
		return EX_DATAERR;
	}
	if (dir_open(&pool, argv[0]) != 0) {
		log_errc(errno, "%s", argv[0]);
		return exit_status_for_errno(errno);
	}
	probe = reflink_probe(&pool);
	if (probe < 0) {
		log_errc(errno, "%s: reflink probe", argv[0]);
		return EX_IOERR;
	}
	if (probe == 0) {
		char message[256];

		snprintf(message, sizeof(message),
		         "the filesystem (%s) cannot reflink: every start and "
		         "commit copies whole images%s",
		         filesystem_name(pool.fd, type, sizeof(type)),
		         no_reflink_ok ? "" : " (--no-reflink-ok accepts it)");
		finding_add(no_reflink_ok ? SEVERITY_INFO : SEVERITY_ERROR,
		            argv[0], "no-reflink", message);
		if (!no_reflink_ok)
			status = EX_UNAVAILABLE;
	}
	if (status == 0)
		directory_scan(&pool, 0);
	if (findings.count > 0)
		qsort(findings.items, findings.count, sizeof(*findings.items),
		      finding_compare);

	if (json)
		printf("{\"pool\": ");
	if (json) {
		json_string_write(stdout, argv[0]);
		printf(", \"reflink\": %s, \"findings\": [",
		       probe == 1 ? "true" : "false");
	}
	for (i = 0; i < findings.count; i++) {
		struct finding *f = &findings.items[i];

		if (do_repair && f->repairable) {
			if (dry_run) {
				line_print("would-fix", f->path, f->code,
				           "would be removed", &first);
				remaining++;
				continue;
			}
			switch (repair(f, wait_seconds)) {
			case 1:
				line_print("fixed", f->path, f->code, "removed",
				           &first);
				continue;
			case 0:
				continue;
			default:
				status = status ? status : EX_IOERR;
				break;
			}
		}
		line_print(severity_names[f->severity], f->path, f->code,
		           f->message, &first);
		if (f->severity != SEVERITY_INFO)
			remaining++;
	}
	if (fstatvfs(pool.fd, &vfs) != 0)
		memset(&vfs, 0, sizeof(vfs));
	if (json)
		printf("%s], \"volumes\": %zu, \"revisions\": %zu, "
		       "\"dirty\": %zu, \"size\": %llu, \"used\": %llu}\n",
		       first ? "" : "\n", totals.volumes, totals.revisions,
		       totals.dirty,
		       (unsigned long long)vfs.f_frsize * vfs.f_blocks,
		       (unsigned long long)vfs.f_frsize *
		           (vfs.f_blocks - vfs.f_bfree));
	if (!quiet) {
		char size_text[32], used_text[32];
		double size = (double)vfs.f_frsize * vfs.f_blocks;
		double used =
		    (double)vfs.f_frsize * (vfs.f_blocks - vfs.f_bfree);

		/* The summary is one line, whatever POOL's name holds. */
		fputs("pool-check: ", stderr);
		text_escape_write(stderr, argv[0]);
		fprintf(stderr,
		        ": %zu volumes, %zu revisions, %zu dirty; filesystem "
		        "%s, %s used (%.0f%%)\n",
		        totals.volumes, totals.revisions, totals.dirty,
		        human_size(size, size_text, sizeof(size_text)),
		        human_size(used, used_text, sizeof(used_text)),
		        size > 0 ? 100.0 * used / size : 0.0);
	}
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	if (status != 0)
		return status;
	return remaining > 0 ? EXIT_NOT_IN_STATE : 0;
}
