/*
 * reflink.h: the helper library shared by the file-reflink tools.
 *
 * Library functions never exit and never print diagnostics: they return -1
 * (or a small status) with errno set, and the tool chooses the message and
 * the exit status.  The exceptions are the logging functions, whose job is
 * to print, and option_common(), which implements --help and --version for
 * every tool.
 */
#ifndef REFLINK_H
#define REFLINK_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sysexits.h>
#include <time.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define FILE_REFLINK_VERSION "0.1.0"

/* Exit statuses beyond sysexits.h (DESIGN.md section 5). */
#define EXIT_NOT_IN_STATE 1 /* vol-info -t: no; pool-check: findings */

/* ---- log.c: stderr and syslog ---- */

enum log_verbosity { VERBOSITY_QUIET, VERBOSITY_NORMAL, VERBOSITY_VERBOSE };

extern const char *program_name;

/* Sets the program name used on stderr and as the syslog ident. */
void log_init(const char *name);
void log_set_verbosity(enum log_verbosity verbosity);
/* Records a file operation: syslog LOG_INFO, and stderr with -v. */
void log_op(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warning: stderr unless -q, and syslog LOG_WARNING. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Error: always on stderr as "prog: message", and syslog LOG_ERR. */
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Error with strerror(err) appended as ": reason". */
void log_errc(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct keep_policy;
struct volume;

/* ---- tool.c: option handling, exit statuses, parsing ---- */

/*
 * Handles an option every tool shares: -h/--help (usage on stdout, exit 0),
 * -V/--version (exit 0), -q, -v, --progress, and unknown options ('?' or
 * ':': usage on stderr, exit 64).  usage() prints the tool's usage to the
 * given stream.  Returns only for -q, -v and --progress.
 */
void option_common(int ch, void (*usage)(FILE *));
/* The long options every tool shares; append to a tool's own table. */
/* clang-format off */
#define LONG_OPTIONS_COMMON \
	{"help", no_argument, NULL, 'h'}, \
	{"progress", no_argument, NULL, 'P'}, \
	{"quiet", no_argument, NULL, 'q'}, \
	{"unsafe-dirs", no_argument, NULL, 'U'}, \
	{"version", no_argument, NULL, 'V'}, \
	{"verbose", no_argument, NULL, 'v'}
/* clang-format on */
#define SHORT_OPTIONS_COMMON "hqVv"

/*
 * Option parsers for the tool frame: each parses optarg, and on bad input
 * prints "invalid ...", the usage on stderr, and exits 64.
 */
void option_keep(const char *arg, struct keep_policy *policy,
                 void (*usage)(FILE *));
int option_wait(const char *arg, void (*usage)(FILE *));
off_t option_size(const char *arg, void (*usage)(FILE *));
/* Checks the operand count (max < 0: no limit); else says which is
 * missing or extra, prints the usage on stderr and exits 64. */
void operands_expect(int argc, char *argv[], int min, int max,
                     void (*usage)(FILE *));
/*
 * Opens VOLUME (see volume_open), takes the lock of its VM directory
 * (waiting wait_seconds; < 0: for ever) and re-reads its files.  On
 * failure logs why and returns the exit status; 0 on success.
 */
int volume_open_locked(struct volume *volume, const char *argument,
                       int create_dir, int wait_seconds);

/* Opens the source volume SRC of -S, which must have a clean image (else
 * 66); on failure logs why and returns the exit status; 0 on success. */
int source_open(struct volume *source, const char *argument);

/* The exit status (DESIGN.md section 5) for a failed system call. */
int exit_status_for_errno(int err);
/* Writes bytes as a person reads them ("512.0 MiB") into buf. */
const char *human_size(double bytes, char *buf, size_t length);
/* Flushes and closes stdout; returns -1 if anything written was lost. */
int stdout_close(void);

/*
 * Parses SIZE: decimal bytes, or a number followed by K, M, G or T (also
 * KiB, MiB, GiB, TiB; powers of 1024).  Returns -1 with errno EINVAL for
 * malformed input and ERANGE when the value does not fit an off_t.
 */
int size_parse(const char *text, off_t *size);
/* Parses a -k value: an integer from -1 to INT_MAX.  -1 with EINVAL if not. */
int keep_parse(const char *text, int *keep);
/* Parses a -w value: whole seconds from 0 to 86400 * 365. */
int seconds_parse(const char *text, int *seconds);

/* ---- durable.c: changes to directories that survive a power cut ---- */

/* An open directory and the path it was opened by, for log messages. */
struct dir {
	int fd;
	char path[PATH_MAX];
};

/*
 * Splits path (copied into buf) into its directory and last component:
 * "a/b//c/" gives "a/b" and "c", "c" gives "." and "c", "/c" gives "/"
 * and "c".  The component may be empty ("/" or "").
 */
int path_split(const char *path, char *buf, size_t len, const char **dir,
               const char **name);
/* Opens path as a directory (O_DIRECTORY, following symlinks). */
int dir_open(struct dir *dir, const char *path);
/* Opens name below parent as a directory without following a symlink. */
int dir_openat(struct dir *dir, const struct dir *parent, const char *name);
void dir_close(struct dir *dir);
/* Writes "<dir>/<name>" into buf (for messages); returns buf. */
const char *dir_join(const struct dir *dir, const char *name, char *buf,
                     size_t len);
/* Fsyncs the directory itself, so that entry changes reach the disk. */
int dir_sync(const struct dir *dir);

/*
 * Opens path as a directory, looking up each name on the way itself (from
 * "/", or from the working directory, whose every ancestor is checked
 * too): every directory passed through must be owned by root or the user
 * running the tool, and writable by nobody else unless sticky; a symbolic
 * link on the way is followed only from such a directory, and in a
 * sticky one others may write only if root or the user owns it.  0 with
 * dir open; 1 (errno EPERM) with the first one that is not trusted
 * described in culprit; -1 on error.  The _making variant makes a missing
 * last directory (one level, with durable_mkdir_run, so that a failing
 * run takes it back).  dir_trust_unsafe(1) (the --unsafe-dirs option)
 * turns the checks off.
 */
int dir_open_trusted(struct dir *dir, const char *path, char *culprit,
                     size_t length);
/* True if the directory st describes is one dir_open_trusted refuses:
 * another user's, or writable by others and not sticky. */
int dir_stat_untrusted(const struct stat *st);
int dir_open_trusted_making(struct dir *dir, const char *path, char *culprit,
                            size_t length);
void dir_trust_unsafe(int accept);
/*
 * Opens name in dir with flags, never following a symlink nor waiting on
 * a FIFO, and checks that it is a regular file (else EINVAL) and, with
 * expect, the very inode expect describes (else EAGAIN: it changed).
 */
int file_open_checked(const struct dir *dir, const char *name, int flags,
                      const struct stat *expect);

/* unlinkat + fsync of the directory.  ENOENT is returned as an error. */
int durable_unlink(const struct dir *dir, const char *name);
/* linkat (no symlink following) + fsync of the directory gaining it. */
int durable_link(const struct dir *from_dir, const char *from,
                 const struct dir *to_dir, const char *to);
/* Makes "to" a second name of "from"'s inode, replacing whatever "to"
 * was in one atomic step (link to a temp name, rename), + fsync. */
int durable_link_over(const struct dir *dir, const char *from, const char *to);
/* renameat (flags as renameat2) + fsync of both directories. */
int durable_rename(const struct dir *from_dir, const char *from,
                   const struct dir *to_dir, const char *to, unsigned flags);
/* mkdirat + fsync of the parent.  Returns 1 if made, 0 if it was a dir. */
int durable_mkdir(const struct dir *dir, const char *name, mode_t mode);
/* As durable_mkdir; a directory made here is removed again, if still
 * empty, when the process exits with a status other than 0. */
int durable_mkdir_run(const struct dir *dir, const char *name, mode_t mode);
/* rmdir + fsync of the parent. */
int durable_rmdir(const struct dir *dir, const char *name);

/* A file being written under a temp name next to its final name. */
struct temp_file {
	const struct dir *dir;
	int fd;
	char name[PATH_MAX];  /* "<final>~XXXXXX" */
	char final[PATH_MAX]; /* the name it will get */
};

/* Creates "<final>~XXXXXX" in dir: O_EXCL, no symlink followed, mode 0600. */
int temp_create(struct temp_file *temp, const struct dir *dir,
                const char *final);
/*
 * Fsyncs the temp file, closes it, renames it to its final name (with
 * rename_flags, e.g. RENAME_NOREPLACE) and fsyncs the directory.  On
 * failure the temp file is removed.
 */
int temp_commit(struct temp_file *temp, unsigned rename_flags);
/* Closes and removes the temp file, keeping errno. */
void temp_abort(struct temp_file *temp);
/* True if name is final + "~" + anything: a temp file of final. */
int temp_name_of(const char *name, const char *final);

/* ---- copy.c: clones and sparse copies ---- */

enum reflink_mode { REFLINK_AUTO, REFLINK_ALWAYS, REFLINK_NEVER };

/* True if err from FICLONE means "this filesystem cannot clone this". */
int clone_unsupported(int err);

/* What copy_data did, and where it failed. */
struct copy_result {
	int cloned;        /* 1 if FICLONE made the data, 0 if copied */
	int source_failed; /* on error: 1 if reading the source failed */
};

/*
 * Fills the empty file dst_fd with the first size bytes of src_fd (its
 * length extended with zeros past the source's end).  AUTO clones, falling
 * back to a sparse copy only when clone_unsupported(); ALWAYS fails with
 * EOPNOTSUPP instead of copying; NEVER copies.  size 0 touches nothing.
 */
int copy_data(int dst_fd, int src_fd, off_t size, enum reflink_mode mode,
              struct copy_result *result);
/*
 * Sparse copy: copies the data of src (found with SEEK_DATA/SEEK_HOLE) into
 * the empty file dst, leaving holes for holes and all-zero blocks, then sets
 * dst's length to size.
 */
int copy_sparse(int dst_fd, int src_fd, off_t size, struct copy_result *result);
/*
 * Copies everything src_fd delivers until end of file (a pipe, say) into
 * the empty file dst_fd from offset 0, leaving all-zero blocks as holes,
 * and sets dst's length to the bytes read (*copied).  Returns 0; -1 when
 * reading failed, or with EFBIG when more than limit bytes arrived (limit
 * < 0: no limit); -2 when writing failed.
 */
int copy_stream(int dst_fd, int src_fd, off_t limit, off_t *copied);

/* ---- extent.c: extent maps (FIEMAP) ---- */

/* One extent: a logical range of a file and where it lies on the disk. */
struct extent {
	uint64_t logical;
	uint64_t physical;
	uint64_t length;
	uint32_t flags; /* FIEMAP_EXTENT_* */
};

struct extent_map {
	struct extent *items; /* ascending logical offset */
	size_t count, capacity;
};

/* Reads the whole extent map of fd.  -1 with EOPNOTSUPP (or ENOTTY)
 * where the filesystem has no FIEMAP. */
int extent_map_read(int fd, struct extent_map *map);
void extent_map_free(struct extent_map *map);
/* True if both maps name the same blocks at the same offsets, all of them
 * on disk (none delayed): then the two files hold the same bytes. */
int extent_maps_equal(const struct extent_map *a, const struct extent_map *b);
/* 1 if a block of a is also a block of b, 0 if none is, -1 on error. */
int extent_maps_overlap(const struct extent_map *a, const struct extent_map *b);

/* ---- compare.c ---- */

/*
 * 1 if the two open files hold the same data, 0 if not, -1 on error.
 * Clones are compared by extent map, never read: two clones of which one
 * was written since are taken as different.  Copies have their data
 * regions read, their holes not.
 */
int files_same_data(int a, int b);
/*
 * 1 if copy, made as a clone (or, where the filesystem cannot clone, a
 * copy) of original with original's mtime, was never written since: the
 * same size and mtime, and a clone still has the very same blocks.  0 if
 * it was written, -1 on error.
 */
int files_unwritten_clone(int original, int copy);

/* ---- progress.c: one stderr line for long copies ---- */

/* PROGRESS_AUTO shows it when stderr is a terminal and the copy is large. */
enum progress_mode { PROGRESS_AUTO, PROGRESS_ALWAYS, PROGRESS_NEVER };
void progress_set_mode(enum progress_mode mode);
/*
 * A copy of total bytes starts (0: not known, e.g. from a pipe).  The line
 * shows with PROGRESS_ALWAYS, or with PROGRESS_AUTO when stderr is a
 * terminal and the copy is larger than 64 MiB (known total) or once 64 MiB
 * have passed (unknown total).
 */
void progress_start(uint64_t total);
/* done_now more bytes are done; holes skipped count too. */
void progress_update(uint64_t done_now);
/* Draws the line a last time and ends it with a newline, if it showed. */
void progress_finish(void);

/* ---- revision.c: the names of a volume's files ---- */

/* What a directory entry is to the volume with base name B. */
enum name_kind {
	NAME_OTHER,     /* not this volume's */
	NAME_CLEAN,     /* B.img */
	NAME_DIRTY,     /* B-dirty.img */
	NAME_PRECACHE,  /* B-precache.img */
	NAME_IMPORT,    /* B-import.img */
	NAME_REVISION,  /* B.img.N@YYYY-MM-DDTHH:MM:SSZ */
	NAME_LEGACY,    /* B.img@YYYY-MM-DDTHH:MM:SSZ */
	NAME_MALFORMED, /* looks like a revision, but is not one */
	NAME_TEMP /* an operation's temp file: one of the above + "~..." */
};

struct revision {
	uint64_t id; /* 0 for a legacy revision */
	time_t time; /* from the name */
	int legacy;
	char name[NAME_MAX + 1];
};

/* Classifies name; fills revision for NAME_REVISION and NAME_LEGACY. */
enum name_kind volume_name_kind(const char *base, const char *name,
                                struct revision *revision);
/*
 * Classifies name without knowing its volume: writes the base name B it
 * belongs to into base (NAME_MAX + 1 bytes).  NAME_OTHER if none.
 */
enum name_kind volume_name_split(const char *name, char *base,
                                 struct revision *revision);
/* Parses exactly "YYYY-MM-DDTHH:MM:SSZ" (a real UTC date and time). */
int revision_time_parse(const char *text, time_t *when);
int revision_time_format(time_t when, char *buf, size_t len);
/* Writes "B.img.ID@TIME" into buf. */
int revision_name_format(char *buf, size_t len, const char *base, uint64_t id,
                         time_t when);

/* ---- volume.c: a volume's files, and the steps every tool shares ---- */

struct volume_file {
	char name[NAME_MAX + 1];
	int exists;
	struct stat st;
};

struct volume {
	struct dir dir;              /* the VM directory */
	char base[NAME_MAX + 1];     /* B's last component, without ".img" */
	struct volume_file clean;    /* C */
	struct volume_file dirty;    /* D */
	struct volume_file precache; /* P */
	struct volume_file import;   /* I */
	int lock_fd;                 /* held by volume_lock, or -1 */
	/* Set by a failing function: the file, and a reason that replaces
	 * strerror(errno) when not NULL. */
	char error_path[PATH_MAX];
	const char *error_reason;
	int error_status; /* an exit status that errno cannot tell, or 0 */
	char error_text[PATH_MAX + 512]; /* a reason made at run time */
};

struct revision_list {
	struct revision *items; /* numbered revisions, ascending id */
	size_t count, capacity;
	struct revision *legacy; /* legacy revisions, ascending time */
	size_t legacy_count, legacy_capacity;
};

/*
 * Opens the VM directory of VOLUME (B or B.img).  With create_dir, a
 * missing VM directory is made (one level).  Then volume_stat().
 */
int volume_open(struct volume *volume, const char *argument, int create_dir);
void volume_close(struct volume *volume);
/* Takes the exclusive flock of the VM directory; wait_seconds < 0 waits
 * for ever.  EWOULDBLOCK when the time ran out. */
int volume_lock(struct volume *volume, int wait_seconds);
/* Refreshes C, D, P and I; EINVAL if one is not a regular file. */
int volume_stat(struct volume *volume);
/* Writes the path of one of the volume's files into buf; returns buf. */
const char *volume_path(const struct volume *volume, const char *name,
                        char *buf);
/* Logs the error recorded by a failed volume function (errno = err) and
 * returns the exit status for it. */
int volume_report_error(const struct volume *volume, int err);
/* True (with *reason) if base cannot name a volume: empty, "." or "..",
 * or ending in -dirty, -precache or -import. */
int volume_name_invalid(const char *base, const char **reason);
/* 1 if none of the volume's files exist (a typo, say), 0 if some do,
 * -1 on error. */
int volume_absent(struct volume *volume);
/* Writes who uses D (a loop device, or a process such as QEMU holding it
 * open) into holder: 1 if D is in use, 0 if not (or absent), -1 on error. */
int volume_dirty_in_use(const struct volume *volume, char *holder,
                        size_t length);

/*
 * The safety rule (file-reflink(7)): a tool that removes, replaces or
 * hands out an image first checks that the files agree with the type of
 * volume its caller named, and that no VM uses D.  Each check returns 0,
 * or -1 with the reason and the exit status recorded for
 * volume_report_error().
 */
/* D is not used by a loop device or a process (else 75). */
int volume_check_unused(struct volume *volume);
/* The files fit a snapshot volume of source (else 65): no revisions, no
 * precache, and own C absent or the very inode of source's C or of one
 * of source's revisions (a snapshot of an older source). */
int volume_check_snapshot(struct volume *volume, struct volume *source);
/* The volume has no C, precache or revision: at most a dirty image, as a
 * volatile volume has (else 65). */
int volume_check_volatile(struct volume *volume);
/* The whole rule for a tool that hands out or removes D: no VM uses it
 * (volume_check_unused), and with source (-S) or volatile_type
 * (--volatile) the files fit that type. */
int volume_check_type(struct volume *volume, struct volume *source,
                      int volatile_type);
/* 1 if D was never written since it was made from C (see
 * files_unwritten_clone), 0 if it was or either is missing, -1 on error. */
int volume_dirty_unwritten(struct volume *volume);

int revisions_list(struct volume *volume, struct revision_list *list);
void revisions_free(struct revision_list *list);

/*
 * Removes every file of the volume: revisions, legacy ones, temp files,
 * I, P, D, and C last; nothing at all if one of them is not a regular
 * file.  Calls each() for every file removed (with dry_run: that would
 * be), and first for every malformed revision name, which stays like
 * every other file.  Returns the number of the volume's files, or -1.
 */
int volume_remove_all(struct volume *volume, int dry_run,
                      void (*each)(const char *path, enum name_kind kind,
                                   void *context),
                      void *context);
/* Removes the volume's temp files, and I with with_import. */
int volume_remove_temps(struct volume *volume, int with_import);
/* True if P is a valid precache: another inode with C's size and mtime. */
int volume_precache_valid(const struct volume *volume);
/* Makes P anew: a clone (or copy) of C with C's mtime. */
int volume_precache_refresh(struct volume *volume);
/*
 * Writes a clone (or copy) of src_fd, with its mtime, to a temp file
 * beside P and fsyncs it; volume_precache_install() renames it over P,
 * temp_abort() drops it.
 */
int volume_precache_prepare(struct volume *volume, int src_fd,
                            const struct dir *src_dir, const char *src_name,
                            struct temp_file *temp);
int volume_precache_install(struct volume *volume, struct temp_file *temp);
/* Removes P if it exists. */
int volume_precache_remove(struct volume *volume);
/*
 * Links C to the next revision name, unless the latest revision already
 * is C's inode (a crash between link and rename).  C must exist.
 * Returns 1 if it linked, 0 if not, -1 on error.
 */
int volume_save_clean(struct volume *volume, struct revision_list *list);
/* Removes the lowest ids until keep remain; calls removed() for each. */
int volume_prune(struct volume *volume, struct revision_list *list, int keep,
                 void (*removed)(const char *path));

/* Lists the revisions and removes the lowest ids until keep remain, not
 * counting or removing the revision named except (if not NULL). */
int volume_prune_to(struct volume *volume, int keep, const char *except);

/* How volume_replace_clean treats revisions (the -k option). */
struct keep_policy {
	int given; /* -k was given; without it revisions are kept, all */
	int keep;  /* its value: revisions to keep, or -1 (none, no P) */
};

/* True if the policy lets C become a revision. */
int keep_saves_revisions(const struct keep_policy *policy);
/* True for -k -1: snapshots disabled, no revisions and no P. */
int keep_disables_snapshots(const struct keep_policy *policy);

/* Finishes what a command cut short after replacing C left undone:
 * pruning with -k, and a missing or stale P (removed with -k -1). */
int volume_finish(struct volume *volume, const struct keep_policy *policy);

/* Flags of volume_replace_clean. */
#define REPLACE_SAVE 1      /* save the old C as a revision */
#define REPLACE_KEEP_NAME 2 /* "from" is a revision: a revert */
/* "from" was written by others (a VM, a file given): before it becomes C
 * it is made root's, as described at image_seal(). */
#define REPLACE_SEAL 4

/*
 * Makes the open image fd, about to become a clean image of the volume,
 * the pool's alone: it must have one name only (65: another may be a
 * file outside the pool); its owner becomes the VM directory's, its mode
 * 0600, its POSIX ACL goes; then no other open file of it may exist (75:
 * file_users).  A guest's QEMU user, which owned or could write it while
 * the VM ran, keeps no way to change it, or the revisions it becomes.
 */
int image_seal(struct volume *volume, int fd, const char *name);

/*
 * Makes the complete file "from" (in from_dir, or the VM directory if
 * NULL; on the same filesystem) the new C: fsyncs it, prepares the new P
 * from it, saves the old C as a revision (with REPLACE_SAVE, when C exists
 * and the policy allows), replaces C, then installs P (or with -k -1
 * removes it), prunes (with -k) and, with REPLACE_KEEP_NAME, removes the
 * revision's own name.  A failure before C is replaced leaves the volume
 * as it was; after it, volume_finish() does the rest.
 */
int volume_replace_clean(struct volume *volume, const struct dir *from_dir,
                         const char *from, unsigned flags,
                         const struct keep_policy *policy);

/* ---- loop.c: who uses an image: loop devices and processes ---- */

/* A file by device and inode: the same file whatever path reaches it. */
struct file_id {
	dev_t dev;
	ino_t ino;
};

/* Calls each(device, backing file, context) for every attached loop
 * device, until it returns non-zero (returned then); 0 or -1 on error. */
int loop_devices_each(int (*each)(const char *device, const struct file_id *id,
                                  void *context),
                      void *context);
/*
 * Calls found(device, context) for every loop device backed by the file
 * st describes (by device and inode).  Returns the number found, or -1.
 */
int loop_devices_of(const struct stat *st,
                    int (*found)(const char *device, void *context),
                    void *context);
/*
 * Looks for whatever uses one of the files ids[0..count-1]: a loop device
 * backed by it, or a process (other than this one) holding it open.
 * Calls found(index, holder, context) for each use, holder being
 * "/dev/loop3" or "process 812 (qemu-system-x86)".  Processes of other
 * users are seen only by root.  Returns the number of uses, or -1.
 */
int files_in_use(const struct file_id *ids, size_t count,
                 void (*found)(size_t index, const char *holder, void *context),
                 void *context);
/* As files_in_use for one file: 1 if used (the first user written to
 * holder), 0 if not, -1 on error. */
int file_in_use(const struct stat *st, char *holder, size_t length);
/*
 * 1 if the file open as fd is open anywhere else too: a descriptor of any
 * process (also one in flight in a unix socket), a shared mapping, a loop
 * device; 0 if fd is its only open file description.  Asks the kernel (a
 * write lease), so nothing escapes it; -1 with EOPNOTSUPP where it cannot
 * tell (not root nor the file's owner, leases disabled).
 */
int file_opened_elsewhere(int fd);
/* Whether the file open as fd has users: file_opened_elsewhere, and who
 * they are from files_in_use (into holder); the scan alone where leases
 * cannot tell.  1 if used, 0 if not, -1 on error. */
int file_users(int fd, char *holder, size_t length);

/* ---- lock.c: the lock of a VM directory ---- */

/* Where root keeps the locks of VM directories: LOCK_PARENT/LOCK_NAME,
 * a directory that only root may enter. */
#ifndef LOCK_PARENT
#define LOCK_PARENT "/run/file-reflink"
#endif
#define LOCK_NAME "lock"
/*
 * Opens the lock of the open directory dir, for flock: as root the file
 * LOCK_PARENT/LOCK_NAME/DEV-INO.lock (DEV and INO the directory's, in
 * decimal),
 * which no other user can open, and so none can hold; as another user
 * the directory itself.  Returns a descriptor, or -1.
 */
int lock_open(const struct dir *dir);
/* flock(fd, operation), waiting at most wait_seconds (< 0: for ever);
 * -1 with EWOULDBLOCK when the time ran out. */
int lock_wait(int fd, int operation, int wait_seconds);

/* ---- output.c: names in text, JSON and shell commands ---- */

/*
 * Writes text with C-style escapes, so that it stays one field of one
 * line: a backslash as \\, TAB as \t, newline as \n, and every other
 * control character (C0, DEL, C1) and every byte that is not part of
 * valid UTF-8 as \xHH.  Valid UTF-8 is written as it is.
 */
void text_escape_write(FILE *stream, const char *text);
/* As text_escape_write, into buf (size bytes, ending in NUL; an escape
 * that does not fit is left out whole).  Returns buf. */
const char *text_escape(const char *text, char *buf, size_t size);
/*
 * Writes text as a JSON string, quotes included: valid UTF-8 as it is
 * (", \ and control characters escaped), and each byte that is not part
 * of valid UTF-8 as \udcXX, XX the byte (Python's "surrogateescape",
 * PEP 383), so that any file name can be got back byte for byte.
 */
void json_string_write(FILE *stream, const char *text);
/*
 * Writes word into buf as one word of sh(1): as it is if it holds only
 * letters, digits and _./%+:=@-, else in single quotes, a quote being
 * '\''; "./" goes before a leading "-".  Returns buf, or NULL (buf
 * empty) if it did not fit: 4 * strlen(word) + 5 bytes always fit.
 */
const char *shell_quote(const char *word, char *buf, size_t size);

/* ---- filesystem.c: what the filesystem of a directory can do ---- */

/*
 * Proves with a real clone that dir's filesystem can reflink: a few bytes
 * written and flushed to one anonymous file (O_TMPFILE) are cloned into
 * another and read back.  1 yes, 0 the filesystem cannot, -1 error
 * (errno), such as EACCES or EROFS where nothing may be written.
 */
int reflink_probe(const struct dir *dir);
/* The name of the filesystem type of fd, for messages ("btrfs"). */
const char *filesystem_name(int fd, char *buf, size_t length);

#endif
