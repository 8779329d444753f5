/*
 * core.h: the core of the file-reflink tools: names, directories, durable
 * changes, clones and copies, volumes, revisions, the scanner of a pool,
 * and the writers of what the tools print for scripts.
 *
 * Nothing in the core prints a diagnostic, exits or knows of options:
 * each function returns -1 (or a small status) with errno set, and a
 * volume function records the file and the reason in its struct volume.
 * What the core does is told to the listener a program registers
 * (core_listen); the tool frame (lib/frame) turns all of it into
 * messages and exit statuses.  The core never calls the frame.
 */
#ifndef CORE_H
#define CORE_H

#include <dirent.h>
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

struct keep_policy;
struct volume;

/* ---- notify.c: what the core tells a listener ---- */

struct core_listener {
	/* A change made to a directory: "renamed A to B". */
	void (*changed)(const char *what);
	/* A copy of total bytes starts (0: not known, e.g. from a pipe),
	 * advances by bytes (holes skipped count too), and ends. */
	void (*copy_start)(uint64_t total);
	void (*copy_advance)(uint64_t bytes);
	void (*copy_end)(void);
};

/* Registers the listener (NULL: none); the core keeps the pointer. */
void core_listen(const struct core_listener *listener);
/* For the core's files: tell the listener a change, a copy's course. */
void core_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void core_copy_start(uint64_t total);
void core_copy_advance(uint64_t bytes);
void core_copy_end(void);

/* ---- array.c: the growable array ---- */

/*
 * Returns items with room for one more than count items of size bytes,
 * doubling *capacity when full; NULL (errno ENOMEM) if that fails, items
 * being left as they were.
 */
void *array_grow(void *items, size_t *capacity, size_t count, size_t size);

/* ---- number.c: decimal numbers ---- */

/* Parses exactly decimal digits, at most max.  -1 with EINVAL if text is
 * not digits only, ERANGE if the value is above max. */
int number_parse(const char *text, uint64_t max, uint64_t *value);
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

struct keep_policy;
struct volume;

/* ---- dir.c: directories, opened once and used by descriptor ---- */

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
/* A stream of dir's entries from the first, on a descriptor of its own
 * (closedir it); NULL with errno on failure. */
DIR *dir_stream(const struct dir *dir);

/*
 * Opens path as a directory, looking up each name on the way itself (from
 * "/", or from the working directory, whose every ancestor is checked
 * too): every directory passed through must be owned by root or the user
 * running the tool, and writable by nobody else unless sticky; a symbolic
 * link on the way is followed only from such a directory, and in a
 * sticky one others may write only if root or the user owns it.  0 with
 * dir open; 1 (errno EPERM) with the first one that is not trusted
 * described in culprit; -1 on error.  dir_trust_unsafe(1) (the
 * --unsafe-dirs option) turns the checks off.
 */
int dir_open_trusted(struct dir *dir, const char *path, char *culprit,
                     size_t length);
/* True if the directory st describes is one dir_open_trusted refuses:
 * another user's, or writable by others and not sticky. */
int dir_stat_untrusted(const struct stat *st);
void dir_trust_unsafe(int accept);
/*
 * Opens name in dir with flags, never following a symlink nor waiting on
 * a FIFO, and checks that it is a regular file (else EINVAL) and, with
 * expect, the very inode expect describes (else EAGAIN: it changed).
 */
int file_open_checked(const struct dir *dir, const char *name, int flags,
                      const struct stat *expect);

/* ---- durable.c: changes to directories that survive a power cut ---- */

/* As dir_open_trusted, making a missing last directory (one level, mode
 * 0755); *made is 1 if it made it, even when a later step failed. */
int dir_open_trusted_making(struct dir *dir, const char *path, char *culprit,
                            size_t length, int *made);
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

/*
 * Calls each() for every extent of fd in logical order, until it returns
 * non-zero (then returned); FIEMAP is asked FIEMAP_BATCH at a time, until
 * the extent marked LAST.  With sync the file's dirty pages are written
 * first (FIEMAP_FLAG_SYNC), so that no extent is still delayed.  -1 with
 * EOPNOTSUPP (or ENOTTY) where the filesystem has no FIEMAP.
 */
int extent_each(int fd, int sync,
                int (*each)(const struct extent *extent, void *context),
                void *context);
/* The number of extents of fd, without reading them (FIEMAP with no room
 * for any: the kernel only counts). */
int extent_count(int fd, uint64_t *count);
/*
 * Calls each(offset, length, zero) for the ranges of the first size bytes
 * in which the file of map to differs from the file of map from, as the
 * maps tell without reading a byte: a range both hold on the very same
 * blocks of the disk is unchanged; one that to holds elsewhere is data
 * (zero 0), one that to has as a hole where from has data is zero (1).
 * With from NULL, every range where to has data.  Ranges come in
 * increasing offset, joined where they touch; each() returning non-zero
 * stops it (returned).
 */
int extent_changes(const struct extent_map *to, const struct extent_map *from,
                   uint64_t size,
                   int (*each)(uint64_t offset, uint64_t length, int zero,
                               void *context),
                   void *context);
/* Reads the whole extent map of fd.  -1 with EOPNOTSUPP (or ENOTTY)
 * where the filesystem has no FIEMAP. */
int extent_map_read(int fd, struct extent_map *map);
void extent_map_free(struct extent_map *map);
/* True if both maps name the same blocks at the same offsets, all of them
 * on disk (none delayed): then the two files hold the same bytes. */
int extent_maps_equal(const struct extent_map *a, const struct extent_map *b);
/* 1 if a block of a is also a block of b, 0 if none is, -1 on error. */
int extent_maps_overlap(const struct extent_map *a, const struct extent_map *b);

/* ---- stream.c: the rbd diff v1 stream of Ceph ---- */

/* The longest snapshot name a stream may carry. */
#define DIFF_NAME_MAX 255

/* Each writes one part of a stream to fd: -1 with errno if writing
 * failed.  A stream is the header, 'f' (optional) and 't' names, the
 * size, data and zero records in increasing offset, and the end. */
int diff_write_header(int fd);
int diff_write_name(int fd, char tag, const char *name);
int diff_write_size(int fd, uint64_t size);
int diff_write_data(int fd, uint64_t offset, const void *data, size_t length);
int diff_write_zero(int fd, uint64_t offset, uint64_t length);
int diff_write_end(int fd);

/* A stream being read, and what it said so far. */
struct diff_reader {
	int fd;
	const char *reason; /* why it was refused (errno EINVAL) */
	uint64_t consumed;  /* bytes read */
	/* Read ahead: a stream of small records costs few read(2)s. */
	unsigned char ahead[65536];
	size_t ahead_start, ahead_end;
	int has_from, has_to, has_size, data_seen, ended;
	char from[DIFF_NAME_MAX + 1], to[DIFF_NAME_MAX + 1];
	uint64_t size;
	uint64_t next_offset; /* where the next data record may start */
};

/* One record: its tag, and for 'w' and 'z' the range (the bytes of a
 * 'w' follow: diff_read_data them, all of them, before the next). */
struct diff_record {
	int tag;
	uint64_t offset, length;
};

void diff_reader_init(struct diff_reader *reader, int fd);
/* Reads and checks the header.  -1 with EINVAL and reader->reason for a
 * stream that is not one; with another errno if reading failed. */
int diff_read_header(struct diff_reader *reader);
/* Reads the next record and checks it against those before it (each
 * metadata record at most once and before the data, data records in
 * order, without overlap, within the size); -1 as diff_read_header. */
int diff_read_record(struct diff_reader *reader, struct diff_record *record);
int diff_read_data(struct diff_reader *reader, void *buf, size_t count);
/* After the end record: 0 if nothing follows it. */
int diff_read_trailing(struct diff_reader *reader);

/* ---- state.c: the names of committed states ---- */

/* Where vol-receive keeps the name a stream gave an image. */
#define STATE_XATTR "user.file-reflink.snapshot"
/* Room for a state name. */
#define STATE_NAME_SIZE (DIFF_NAME_MAX + 1)

/* "YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ", UTC, of when. */
int state_name_format(const struct timespec *when, char *buf, size_t size);
/* True if name can name a state (and an RBD snapshot): 1 to 255 bytes,
 * no "/", "@", space or control character. */
int state_name_valid(const char *name);
/* The state name of the open image fd: its STATE_XATTR, else its mtime's
 * (state_name_format). */
int state_name_read(int fd, char *buf, size_t size);
int state_name_write(int fd, const char *name);

/* ---- usage.c: what files cost on a disk they share ---- */

struct usage_range;

/*
 * A set of members (a volume's images and revisions; a member may be
 * several files, such as C with its precache), and what each costs.
 */
struct usage {
	struct usage_range *ranges; /* every physical range of the set */
	size_t count, capacity;
	size_t members;
	uint64_t *extents;   /* per member: extents of its counted files */
	uint64_t *exclusive; /* per member: bytes removing it alone frees */
	uint64_t freed;      /* bytes removing the subset frees */
	int computed;
};

/* Starts a set of members 0 to members - 1. */
int usage_init(struct usage *usage, size_t members);
void usage_free(struct usage *usage);
/*
 * Adds the extents of the open file fd (read after a sync of its dirty
 * pages) to member; with counted, they count in the member's extents.
 * The same file added twice counts twice: add each inode once.
 */
int usage_add(struct usage *usage, size_t member, int fd, int counted);
/* Adds one physical range to member (what usage_add does per extent). */
int usage_add_range(struct usage *usage, size_t member, uint64_t start,
                    uint64_t length, int shared);
/*
 * Computes, in O(E log E) for E extents, each member's exclusive bytes:
 * those that no other member references, and that the filesystem does
 * not mark shared when the member references them once (they are shared
 * with a file outside the set then, or on btrfs the rest of their extent
 * is).  With subset (a flag per member; NULL: none) also freed: the
 * bytes referenced by members of the subset only, on the same terms.
 */
int usage_compute(struct usage *usage, const unsigned char *subset);

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
 * same size and mtime, and a clone still has the very same blocks, a copy
 * the same bytes (read).  0 if it was written, -1 on error.
 */
int files_unwritten_clone(int original, int copy);

/* ---- names.c: the names of a volume's files ---- */

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
	NAME_TEMP, /* an operation's temp file: one of the above + "~..." */
	NAME_PIN   /* B.img.N@YYYY-MM-DDTHH:MM:SSZ.pin: revision N is pinned */
};

struct revision {
	uint64_t id; /* 0 for a legacy revision */
	time_t time; /* from the name */
	int legacy;
	int pinned; /* it has a trusted pin marker (revisions_list) */
	char name[NAME_MAX + 1];
};

/* What a revision's name ends in to name its pin marker. */
#define PIN_SUFFIX ".pin"

/* Classifies name; fills revision for NAME_REVISION and NAME_LEGACY, and
 * its id and time for NAME_PIN. */
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
/* Writes the name of the pin marker of revision_name into buf. */
int pin_name_format(char *buf, size_t len, const char *revision_name);
/* True (with *reason) if base cannot name a volume: empty, "." or "..",
 * or ending in -dirty, -precache or -import. */
int volume_name_invalid(const char *base, const char **reason);
/* True if name is final + "~" + anything: a temp file of final. */
int temp_name_of(const char *name, const char *final);
/* Writes "<final>~XXXXXX", six random letters and digits, into name. */
int temp_name_make(char *name, size_t size, const char *final);

/* ---- volume.c: a volume's files in its VM directory ---- */

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
	int dir_made;                /* volume_open made the VM directory */
	/* Set by a failing function: the file, and a reason that replaces
	 * strerror(errno) when not NULL. */
	char error_path[PATH_MAX];
	const char *error_reason;
	int error_usage; /* the argument is no volume name at all */
	char error_text[PATH_MAX + 512]; /* a reason made at run time */
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
/* Records that the volume's file name failed (errno kept), with reason
 * replacing strerror(errno) if not NULL; returns -1. */
int volume_fail(struct volume *volume, const char *name, const char *reason);
/* As volume_fail, for a file in another directory. */
int volume_fail_in(struct volume *volume, const struct dir *dir,
                   const char *name);
/* Refreshes one of C, D, P and I (EINVAL if not a regular file). */
int volume_file_stat(struct volume *volume, struct volume_file *file);
/* Removes the volume's temp files, and I with with_import. */
int volume_remove_temps(struct volume *volume, int with_import);
/* Writes who uses D (a loop device, or a process such as QEMU holding it
 * open) into holder: 1 if D is in use, 0 if not (or absent), -1 on error. */
int volume_dirty_in_use(const struct volume *volume, char *holder,
                        size_t length);
/* 1 if the file copy of the volume's directory was never written since it
 * was made from original (see files_unwritten_clone), 0 if it was, -1 on
 * an error, recorded against the file that failed.  A stat given is the
 * inode that file must still be. */
int volume_unwritten_clone(struct volume *volume, const char *original,
                           const struct stat *original_st, const char *copy,
                           const struct stat *copy_st);
/* The same for D made from C; 0 if either is missing. */
int volume_dirty_unwritten(struct volume *volume);

/* ---- check.c: the safety rule ---- */

/*
 * The safety rule (file-reflink(7)): a tool that removes, replaces or
 * hands out an image first checks that the files agree with the type of
 * volume its caller named, and that no VM uses D.  Each check returns 0,
 * or -1 with the reason recorded in the volume and errno EBUSY (in use:
 * exit status 75) or EINVAL (the files do not fit: 65).
 */
/* D is not used by a loop device or a process (else 75). */
int volume_check_unused(struct volume *volume);
/* The whole rule for a tool that hands out or removes D: no VM uses it
 * (volume_check_unused), and with source (-S) or volatile_type
 * (--volatile) the files fit that type. */
int volume_check_type(struct volume *volume, struct volume *source,
                      int volatile_type);

/*
 * Makes the open image fd, about to become a clean image of the volume,
 * the pool's alone: it must have one name only (65: another may be a
 * file outside the pool); its owner becomes the VM directory's, its mode
 * 0600, its POSIX ACL goes; then no other open file of it may exist (75:
 * file_users).  A guest's QEMU user, which owned or could write it while
 * the VM ran, keeps no way to change it, or the revisions it becomes.
 */
int image_seal(struct volume *volume, int fd, const char *name);

/* ---- revisions.c: listing, saving and pruning revisions ---- */

struct revision_list {
	struct revision *items; /* numbered revisions, ascending id */
	size_t count, capacity;
	struct revision *legacy; /* legacy revisions, ascending time */
	size_t legacy_count, legacy_capacity;
};

/* Lists the volume's revisions, each kind in order (revision_compare);
 * EINVAL if one is not a regular file. */
int revisions_list(struct volume *volume, struct revision_list *list);
void revisions_free(struct revision_list *list);
/* Orders revisions by id, then time, then name (for qsort). */
int revision_compare(const void *a, const void *b);
/* The first revision of list whose id is text (decimal digits), or NULL:
 * none has it, or text is no id. */
const struct revision *revision_with_id(const struct revision_list *list,
                                        const char *text);

/*
 * Pins (pin.c).  Revision R is pinned by its marker, the empty file
 * R + PIN_SUFFIX made by root or the VM directory's owner; revisions_list
 * sets pinned from it.  A pinned revision is kept by every prune and does
 * not count towards its N.
 */
enum pin_state { PIN_NONE, PIN_TRUSTED, PIN_UNTRUSTED, PIN_DIRECTORY };
/* True if st is a trusted marker: an empty regular file of root's or of
 * owner's (the VM directory's owner). */
int pin_stat_trusted(const struct stat *st, uid_t owner);
/* What is under the name marker in the VM directory (enum pin_state), or
 * -1 on error. */
int pin_state(struct volume *volume, const char *marker);
/* Sets pinned in list's revisions that the markers[0..count-1] (as
 * volume_name_kind fills them for NAME_PIN) pin. */
void pins_mark(struct volume *volume, struct revision_list *list,
               const struct revision *markers, size_t count);
/* Pins revision: 1 if its marker was made, 0 if it was pinned already;
 * EINVAL if something else is under the marker's name. */
int volume_pin(struct volume *volume, const struct revision *revision);
/* Unpins revision: 1 if its marker was removed, 0 if there was none;
 * EINVAL if a directory is under the marker's name. */
int volume_unpin(struct volume *volume, const struct revision *revision);

/*
 * Retention: which revisions a prune keeps, and why.  Pinned revisions
 * are kept and stand outside the rest: of the others, keep newest ones
 * (by id) are kept, and for each kind of bucket (hour, day, ISO week,
 * month, year) with a count N, the newest revision (by time, then id) of
 * each of the N latest buckets that hold one.
 */
enum retention_bucket {
	BUCKET_HOURLY,
	BUCKET_DAILY,
	BUCKET_WEEKLY,
	BUCKET_MONTHLY,
	BUCKET_YEARLY,
	BUCKETS
};
/* "hourly", "daily", "weekly", "monthly", "yearly" */
extern const char *const bucket_names[BUCKETS];

struct retention {
	int keep;             /* the newest kept whatever their time */
	int buckets[BUCKETS]; /* how many of each; 0: none */
	int local;            /* buckets in local time, not UTC */
};

/* What becomes of one revision, and why ("newest 2, daily 2026-11-30",
 * "pinned"; for one removed, why not). */
struct retention_decision {
	int keep;
	char reason[160];
};

/* Decides for each of list->items (decisions has list->count room).
 * Returns the number to remove, or -1 (ENOMEM). */
long retention_plan(const struct revision_list *list,
                    const struct retention *policy,
                    struct retention_decision *decisions);
/* Removes (dry_run: names) the revisions decisions do not keep, lowest id
 * first, and drops them from list; calls removed() as volume_prune does. */
int volume_prune_planned(struct volume *volume, struct revision_list *list,
                         const struct retention_decision *decisions,
                         int dry_run,
                         void (*removed)(const char *path, size_t index,
                                         void *context),
                         void *context);
/* 1 if none of the volume's files exist (a typo, say), 0 if some do,
 * -1 on error. */
int volume_absent(struct volume *volume);
/*
 * Links C to the next revision name, unless the latest revision already
 * is C's inode (a crash between link and rename).  C must exist.
 * Returns 1 if it linked, 0 if not, -1 on error.
 */
int volume_save_clean(struct volume *volume, struct revision_list *list);
/*
 * Removes the lowest ids until keep remain (keep < 0: as 0), pinned ones
 * neither removed nor counted, dropping them from list; calls removed()
 * for each, with its path and its index in list->items.  With dry_run it
 * removes nothing and leaves list as it is, calling removed() for each that
 * would go.
 */
int volume_prune(struct volume *volume, struct revision_list *list, int keep,
                 int dry_run,
                 void (*removed)(const char *path, size_t index, void *context),
                 void *context);
/* How many of list's revisions volume_prune would remove to keep keep
 * (pinned ones not counted). */
size_t prune_count(const struct revision_list *list, int keep);

/* Lists the revisions and removes the lowest ids until keep remain, not
 * counting or removing the revision named except (if not NULL). */
int volume_prune_to(struct volume *volume, int keep, const char *except);
/*
 * Removes every file of the volume: revisions, legacy ones, pin markers
 * (after their revisions), temp files, I, P, D, and C last; nothing at all if
 * one of them is not a regular file.  Calls each() for every file removed (with
 * dry_run: that would be), and first for every malformed revision name, which
 * stays like every other file.  Returns the number of the volume's files, or
 * -1.
 */
int volume_remove_all(struct volume *volume, int dry_run,
                      void (*each)(const char *path, enum name_kind kind,
                                   void *context),
                      void *context);

/* ---- snapshot.c: a revision of a running volume's dirty image ---- */

/* What volume_snapshot did. */
enum snapshot_result {
	SNAPSHOT_MADE,  /* a new revision holds D's bytes */
	SNAPSHOT_LATEST /* the latest revision holds them already */
};

/*
 * Makes the next revision (one more than the highest id) a clone of D as
 * it is now, named after D's mtime in UTC seconds, with D's mtime to the
 * nanosecond, sealed (image_seal) and fsynced under a temp name, then
 * renamed to its name and the directory fsynced; D and C stay as they
 * are.  If the latest revision already holds D's bytes (the same size
 * and mtime, and still D's very blocks), nothing is made.  Writes the
 * name of the revision holding D's bytes into name; returns a
 * snapshot_result, or -1: EOPNOTSUPP where the filesystem cannot clone.
 */
int volume_snapshot(struct volume *volume, char *name, size_t size);

/* ---- space.c: what a volume's images and revisions take on the disk ---- */

#define SPACE_NONE SIZE_MAX

/* A volume's files as members of a usage set (see usage.c). */
struct volume_space {
	struct usage usage;
	size_t members;              /* members in use */
	size_t dirty, clean, source; /* D; C with P; SRC's C: or SPACE_NONE */
	size_t *revision; /* of list->items[i], then of list->legacy[j] */
};

/*
 * Reads the extent maps of the volume's D, C and P, its revisions (list)
 * and, for a snapshot volume, SRC's C (source, or NULL), and computes each
 * member's extents and exclusive bytes.  A revision gone meanwhile is
 * SPACE_NONE.  -1 on error, recorded in the volume.
 */
int volume_space_read(struct volume *volume, const struct revision_list *list,
                      const struct volume *source, struct volume_space *space);
void volume_space_free(struct volume_space *space);
/* Exclusive bytes and extents of a member (0 for SPACE_NONE). */
uint64_t space_exclusive(const struct volume_space *space, size_t member);
uint64_t space_extents(const struct volume_space *space, size_t member);
/* The bytes removing revision i (as numbered in revision) alone frees. */
uint64_t space_revision_frees(const struct volume_space *space, size_t i);
/* The bytes removing the first count numbered revisions frees: the set
 * arithmetic, not the sum. */
int volume_space_prune(struct volume_space *space, size_t count,
                       uint64_t *freed);

/* ---- precache.c: the precache P, and clones of C with its mtime ---- */

/* True if P is a valid precache: another inode with C's size and mtime. */
int volume_precache_valid(const struct volume *volume);
/* Makes P anew: a clone (or copy) of C with C's mtime. */
int volume_precache_refresh(struct volume *volume);
/*
 * Writes a clone (or copy) of src_fd (src_name in src_dir, for messages),
 * with its mtime, to a temp file beside file (one of the volume's own,
 * such as P or D) and fsyncs it; volume_clone_install() renames it over
 * file, temp_abort() drops it.
 */
int volume_clone_prepare(struct volume *volume, int src_fd,
                         const struct dir *src_dir, const char *src_name,
                         const struct volume_file *file,
                         struct temp_file *temp);
/*
 * Writes a clone (or copy) of the revision name, with its mtime and state
 * name, to a temp file beside I, fsynced, for volume_replace_clean to make
 * C: a revert that leaves the revision (a pinned one) where it is.
 */
int volume_revision_clone(struct volume *volume, const char *name,
                          struct temp_file *temp);
/* Renames the temp file over file and refreshes file; on failure the
 * temp file is removed. */
int volume_clone_install(struct volume *volume, struct temp_file *temp,
                         struct volume_file *file);
/* Makes file anew as a clone (or copy) of the volume's file src_name (C
 * checked to be the very C volume_stat() saw) with its mtime. */
int volume_clone_of(struct volume *volume, const char *src_name,
                    struct volume_file *file);
/* Removes P if it exists. */
int volume_precache_remove(struct volume *volume);
/*
 * After C changed: keeps a valid P; a missing or stale one is made anew,
 * or with later only a stale one is removed (--precache=later: the next
 * start, or vol-precache(1), makes it).  Nothing without C.
 */
int volume_precache_settle(struct volume *volume, int later);

/* ---- replace.c: a new clean image ---- */

/* What a change keeps: revisions (the -k option) and P (--precache). */
struct keep_policy {
	int given; /* -k was given; without it revisions are kept, all */
	int keep;  /* its value: revisions to keep, or -1 (none, no P) */
	int precache_later; /* --precache=later: no new P, a stale one goes */
};

/* True if the policy lets C become a revision. */
int keep_saves_revisions(const struct keep_policy *policy);
/* True for -k -1: snapshots disabled, no revisions and no P. */
int keep_disables_snapshots(const struct keep_policy *policy);

/* Finishes what a command cut short after replacing C left undone:
 * pruning with -k, and a missing or stale P (removed with -k -1, and a
 * stale one with --precache=later). */
int volume_finish(struct volume *volume, const struct keep_policy *policy);

/* Flags of volume_replace_clean. */
#define REPLACE_SAVE 1      /* save the old C as a revision */
#define REPLACE_KEEP_NAME 2 /* "from" is a revision: a revert */
/* "from" was written by others (a VM, a file given): before it becomes C
 * it is made root's, as described at image_seal(). */
#define REPLACE_SEAL 4
/* C is replaced last, after the pruning and the new P (vol-revert to a
 * pinned revision, which keeps its name: nothing would show a replaced C
 * as a revert to finish, and a re-run asking for the latest revision
 * would take the saved old C).  Once the old C is saved a failure leaves
 * it saved; a re-run of the same command does the rest. */
#define REPLACE_LAST 8

/*
 * Makes the complete file "from" (in from_dir, or the VM directory if
 * NULL; on the same filesystem) the new C: fsyncs it, prepares the new P
 * from it, saves the old C as a revision (with REPLACE_SAVE, when C exists
 * and the policy allows), replaces C, then installs P (or with -k -1 or
 * --precache=later removes the old one), prunes (with -k) and, with
 * REPLACE_KEEP_NAME, removes the revision's own name.  A failure before C
 * is replaced leaves the volume as it was; after it, volume_finish() does
 * the rest.  With REPLACE_LAST, see above.
 */
int volume_replace_clean(struct volume *volume, const struct dir *from_dir,
                         const char *from, unsigned flags,
                         const struct keep_policy *policy);

/* ---- users.c: who uses an image: loop devices and processes ---- */

/* A file by device and inode: the same file whatever path reaches it. */
struct file_id {
	dev_t dev;
	ino_t ino;
};

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
/* Writes bytes as a person reads them ("512.0 MiB") into buf. */
const char *human_size(double bytes, char *buf, size_t length);
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

/* The forms of a record (see record_begin). */
enum record_format {
	RECORD_TSV,   /* a record is a line, its fields TAB-separated */
	RECORD_PAIRS, /* a field is a line, "key<TAB>value" */
	RECORD_JSON   /* a record is an object */
};

/* Where records go, and how.  separator and indent go before every JSON
 * record but the first (separator) and before each (indent). */
struct record_writer {
	FILE *stream;
	enum record_format format;
	const char *separator, *indent;
	size_t records; /* written so far */
	int fields;     /* written so far in the open record */
};

/* Opens and closes a record; fields go in between, in order. */
void record_begin(struct record_writer *writer);
void record_end(struct record_writer *writer);
/* A string, escaped as text_escape_write or json_string_write; NULL is
 * field_null. */
void field_text(struct record_writer *writer, const char *key,
                const char *value);
void field_number(struct record_writer *writer, const char *key,
                  long long value);
void field_unsigned(struct record_writer *writer, const char *key,
                    unsigned long long value);
/* JSON true or false; yes or no in text. */
void field_bool(struct record_writer *writer, const char *key, int value);
/* JSON null; "-" in text. */
void field_null(struct record_writer *writer, const char *key);
/* A JSON array of records as the value of key, written with items
 * (records separated by ", ") until field_list_end. */
void field_list_begin(struct record_writer *writer, const char *key,
                      struct record_writer *items);
void field_list_end(struct record_writer *writer);

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

/* ---- scan.c: the scanner of a pool ---- */

/* Volumes are looked for this deep below POOL (POOL/appvms/VM is 2). */
#define SCAN_DEPTH 3

/*
 * The default of scan_options.fragmented, in extents per GiB of data.  A
 * clone costs about 25 us per extent on btrfs and XFS (12 to 30 measured
 * cloning a 2 GiB image of 50,000 extents): at 2,000 per GiB a clone
 * costs some 50 ms per GiB, as long as reading a twentieth of the data.
 */
#define SCAN_FRAGMENTED_DEFAULT 2000

enum finding_severity { SEVERITY_INFO, SEVERITY_WARNING, SEVERITY_ERROR };
extern const char *const severity_names[]; /* "info", "warning", "error" */

/* What --repair may do about a finding. */
enum finding_repair { REPAIR_NONE, REPAIR_UNLINK, REPAIR_RMDIR };

/* The findings of a scan, in the order of finding_kinds[]. */
enum finding_code {
	FINDING_DIRTY_DETACHED,
	FINDING_DIRTY_ATTACHED,
	FINDING_CLEAN_MISSING,
	FINDING_STALE_PRECACHE,
	FINDING_IMPORT_LEFTOVER,
	FINDING_TEMP_LEFTOVER,
	FINDING_LEGACY_REVISION,
	FINDING_MALFORMED_REVISION,
	FINDING_ORPHAN_PIN,
	FINDING_UNTRUSTED_PIN,
	FINDING_NOT_REGULAR,
	FINDING_MISPLACED,
	FINDING_UNREADABLE,
	FINDING_UNTRUSTED_DIRECTORY,
	FINDING_EMPTY_VM_DIRECTORY,
	FINDING_NO_REFLINK,
	FINDING_REFLINK_PROBE_SKIPPED,
	FINDING_FRAGMENTED,
	FINDING_CODES
};

/* Variants of one finding's message: the fix fits what the files
 * suggest.  A kind has at most FINDING_VARIANTS. */
#define FINDING_VARIANTS 3

/*
 * What a finding is: its code, its severity, what --repair does about
 * it, and its message as text + "; " + fix (the fix NULL: none), "{1}"
 * and "{2}" in them standing for the finding's arguments.
 */
struct finding_kind {
	const char *code;
	enum finding_severity severity;
	enum finding_repair repair;
	const char *text[FINDING_VARIANTS];
	const char *fix[FINDING_VARIANTS];
};
extern const struct finding_kind finding_kinds[FINDING_CODES];

/* What became of a repairable finding. */
enum finding_fix {
	FIX_NONE,  /* nothing: not repairable, not asked, or not possible */
	FIX_WOULD, /* --repair -n: it would be removed */
	FIX_DONE,  /* removed */
	FIX_MOOT   /* gone meanwhile, or no longer a problem: not shown */
};

struct finding {
	enum finding_code code;
	enum finding_severity severity; /* the kind's, or info */
	char *path;
	char *message;
	int err;      /* FINDING_UNREADABLE: why */
	size_t dirty; /* a dirty image: 1 + its index in dirty_ids */
	enum finding_repair repair; /* asked for in this run */
	enum finding_fix fix;
	/* For a repair: the name in its directory's names (valid while
	 * that directory is scanned), and the inode the scan saw. */
	size_t name;
	dev_t dev;
	ino_t ino;
};

/* A failure that did not stop the scan, for the caller to report. */
enum scan_problem_kind {
	PROBLEM_FAILED,   /* err at path while doing what */
	PROBLEM_LOCKED,   /* path still locked after wait_seconds */
	PROBLEM_UNTRUSTED /* path not repaired: what may be written by others */
};

struct scan_problem {
	enum scan_problem_kind kind;
	int err;
	char *path;
	char *what;
};

/* A volume the scan found (scan_options.volumes). */
struct scan_volume {
	char *path;               /* DIR/B.img */
	const char *type;         /* origin, snapshot, volatile or unknown */
	const char *state;        /* dirty, clean or missing */
	off_t size;               /* of D if dirty, else of C */
	unsigned long long usage; /* its st_blocks * 512 */
	size_t revisions;         /* numbered ones */
	int has_latest;
	uint64_t latest; /* the highest revision id */
};

struct scan_options {
	int repair, dry_run;
	int wait_seconds; /* for the exclusive lock of a repair */
	int max_depth;    /* levels of subdirectories looked into */
	int layout;       /* 1: the top is a POOL (misplaced files) */
	int volumes;      /* 1: list the volumes in the result */
	const char *pool; /* the top's path, for messages */
	/* A directory on the way that others may write, or NULL: nothing
	 * is repaired below it. */
	const char *untrusted;
	/* Extents per GiB of data above which a clean or dirty image is
	 * reported fragmented (an image of less data counts as 1 GiB), and
	 * one clone of it timed; 0: not looked at. */
	uint64_t fragmented;
};

/* What a scan found; the caller owns it (pool_scan_free). */
struct pool_scan {
	struct scan_options options;
	struct finding *findings;
	size_t finding_count, finding_capacity;
	struct scan_problem *problems;
	size_t problem_count, problem_capacity;
	struct scan_volume *volumes;
	size_t volume_count, volume_capacity;
	struct file_id *dirty_ids; /* the dirty images, for files_in_use */
	size_t dirty_count, dirty_capacity;
	size_t total_volumes, total_revisions, total_dirty;
	int out_of_memory;
};

void pool_scan_init(struct pool_scan *scan, const struct scan_options *options);
void pool_scan_free(struct pool_scan *scan);
/*
 * Scans the directory top and the ones below it (options.max_depth
 * levels, symbolic links not followed): each directory read under a
 * shared lock taken without waiting (a tool at work there makes its
 * leftovers info), its files classified into volumes, the findings and
 * volumes appended to scan, and with options.repair the repairable ones
 * removed under the exclusive lock, each inode checked again.  Returns
 * 0, or -1 with ENOMEM: then the result is incomplete.
 */
int pool_scan_run(struct pool_scan *scan, const struct dir *top);
/* Appends a finding of kind code (its message variant, "{1}" and "{2}"
 * replaced by arg1 and arg2); NULL with ENOMEM. */
struct finding *pool_scan_add(struct pool_scan *scan, enum finding_code code,
                              int variant, const char *path, const char *arg1,
                              const char *arg2);
/*
 * Asks once which dirty images are in use (files_in_use): their
 * findings become dirty-attached; then orders the findings by path and
 * code and the volumes by path.  -1 with errno if it cannot tell.
 */
int pool_scan_finish(struct pool_scan *scan);

#endif
