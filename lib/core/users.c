/*
 * loop.c: the loop devices that a file backs, and the processes that hold
 * a file open: who uses a VM's image.  Files are compared by device and
 * inode, never by path: a loop device set up through a bind mount, or a
 * process that opened the image by another name, is found all the same.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core.h"

/*
 * The device and inode of the file behind a loop device.  The path in
 * sysfs is the file's current name, as seen through the mount it was
 * opened by, so it is looked up first (also through a bind mount).  Only
 * where that name is gone ("(deleted)") or cannot be reached from here
 * (another mount namespace) is the kernel asked for the device and inode
 * themselves (LOOP_GET_STATUS64), which needs the right to open the
 * device.
 */
static int loop_backing_id(const char *device, const char *backing,
                           struct file_id *id)
{
	struct loop_info64 info;
	struct stat st;
	int fd, rc;

	if (stat(backing, &st) == 0) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		return 0;
	}
	fd = open(device, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = ioctl(fd, LOOP_GET_STATUS64, &info);
	close(fd);
	if (rc != 0)
		return -1;
	id->dev = (dev_t)info.lo_device;
	id->ino = (ino_t)info.lo_inode;
	return 0;
}

/* Calls each(device, backing file, context) for every attached loop
 * device, until it returns non-zero (returned then); 0 or -1 on error. */
static int loop_devices_each(int (*each)(const char *device,
                                         const struct file_id *id,
                                         void *context),
                             void *context)
{
	char backing[PATH_MAX + 2], attribute[PATH_MAX], device[PATH_MAX];
	struct file_id id;
	struct dirent *entry;
	DIR *dir;
	int rc = 0;

	dir = opendir("/sys/block");
	if (dir == NULL)
		return errno == ENOENT ? 0 : -1;
	while (rc == 0 && (entry = readdir(dir)) != NULL) {
		FILE *file;
		size_t length;

		if (strncmp(entry->d_name, "loop", 4) != 0)
			continue;
		snprintf(attribute, sizeof(attribute),
		         "/sys/block/%s/loop/backing_file", entry->d_name);
		/* A detached device has no backing_file attribute. */
		file = fopen(attribute, "re");
		if (file == NULL)
			continue;
		if (fgets(backing, sizeof(backing), file) == NULL) {
			fclose(file);
			continue;
		}
		fclose(file);
		length = strlen(backing);
		if (length > 0 && backing[length - 1] == '\n')
			backing[length - 1] = '\0';
		snprintf(device, sizeof(device), "/dev/%s", entry->d_name);
		/* A device detached meanwhile backs nothing. */
		if (loop_backing_id(device, backing, &id) != 0)
			continue;
		rc = each(device, &id, context);
	}
	closedir(dir);
	return rc;
}

struct loop_match {
	struct file_id wanted;
	int (*found)(const char *device, void *context);
	void *context;
	int count;
};

static int loop_match(const char *device, const struct file_id *id,
                      void *context)
{
	struct loop_match *match = context;

	if (id->dev != match->wanted.dev || id->ino != match->wanted.ino)
		return 0;
	match->count++;
	return match->found != NULL ? match->found(device, match->context) : 0;
}

int loop_devices_of(const struct stat *st,
                    int (*found)(const char *device, void *context),
                    void *context)
{
	struct loop_match match = {{st->st_dev, st->st_ino}, found, context, 0};

	if (loop_devices_each(loop_match, &match) != 0)
		return -1;
	return match.count;
}

struct users {
	const struct file_id *ids;
	size_t count;
	void (*found)(size_t index, const char *holder, void *context);
	void *context;
	int uses;
};

static void users_match(struct users *users, dev_t dev, ino_t ino,
                        const char *holder)
{
	size_t i;

	for (i = 0; i < users->count; i++) {
		if (users->ids[i].dev != dev || users->ids[i].ino != ino)
			continue;
		users->uses++;
		if (users->found != NULL)
			users->found(i, holder, users->context);
	}
}

static int loop_user(const char *device, const struct file_id *id,
                     void *context)
{
	users_match(context, id->dev, id->ino, device);
	return 0;
}

/* "process 812 (qemu-system-x86)", from /proc/PID/comm. */
static void process_describe(int proc_fd, const char *pid, char *buf,
                             size_t length)
{
	char path[NAME_MAX + 16], comm[64] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/comm", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
	}
	if (comm[0] != '\0')
		snprintf(buf, length, "process %s (%s)", pid, comm);
	else
		snprintf(buf, length, "process %s", pid);
}

/* The entry of ids that dev and ino name, or count if none. */
static size_t users_find(const struct users *users, dev_t dev, ino_t ino)
{
	size_t i;

	for (i = 0; i < users->count; i++)
		if (users->ids[i].dev == dev && users->ids[i].ino == ino)
			break;
	return i;
}

/*
 * Looks at the mappings of one process (/proc/PID/maps): a shared mapping
 * of a file stays after its descriptor is closed.  Each line is "start-
 * end perms offset major:minor inode path", device numbers in hex.
 */
static int process_mappings(struct users *users, int proc_fd, const char *pid,
                            char *holder, size_t length, int *described)
{
	char path[NAME_MAX + 16], line[PATH_MAX + 128];
	unsigned major, minor;
	unsigned long long inode;
	FILE *maps;
	int fd;

	snprintf(path, sizeof(path), "%s/maps", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	maps = fdopen(fd, "r");
	if (maps == NULL) {
		close(fd);
		return -1;
	}
	while (fgets(line, sizeof(line), maps) != NULL) {
		dev_t dev;

		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &major, &minor,
		           &inode) != 3 ||
		    inode == 0)
			continue;
		dev = makedev(major, minor);
		if (users_find(users, dev, (ino_t)inode) == users->count)
			continue;
		if (!*described) {
			process_describe(proc_fd, pid, holder, length);
			*described = 1;
		}
		users_match(users, dev, (ino_t)inode, holder);
	}
	fclose(maps);
	return 0;
}

/*
 * Looks at every open file and mapping of one process.  Only what matches
 * is kept, so a process with a hundred thousand descriptors costs no
 * memory.  A process that ended meanwhile, or that this user may not look
 * into, has nothing to say; running out of memory is an error, which
 * must not pass for "no user".
 */
static int process_users(struct users *users, int proc_fd, const char *pid)
{
	char path[NAME_MAX + 16], holder[NAME_MAX + 96];
	struct dirent *entry;
	struct stat st;
	DIR *fds;
	int fd, described = 0, err;

	snprintf(path, sizeof(path), "%s/fd", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	fds = fdopendir(fd);
	if (fds == NULL) {
		err = errno;
		close(fd);
		/* The process ended since the open: fdopendir's fstat of its
		 * directory finds it gone. */
		if (err == ENOENT || err == ESRCH)
			return 0;
		errno = err;
		return -1;
	}
	for (errno = 0; (entry = readdir(fds)) != NULL; errno = 0) {
		if (entry->d_name[0] == '.')
			continue;
		/* /proc/PID/fd/N is a link to the open file: stat follows
		 * it to that file's device and inode. */
		if (fstatat(dirfd(fds), entry->d_name, &st, 0) != 0 ||
		    !S_ISREG(st.st_mode) ||
		    users_find(users, st.st_dev, st.st_ino) == users->count)
			continue;
		if (!described) {
			process_describe(proc_fd, pid, holder, sizeof(holder));
			described = 1;
		}
		users_match(users, st.st_dev, st.st_ino, holder);
	}
	err = errno;
	closedir(fds);
	/* The process ended while it was read. */
	if (err != 0 && err != ENOENT && err != ESRCH) {
		errno = err;
		return -1;
	}
	return process_mappings(users, proc_fd, pid, holder, sizeof(holder),
	                        &described);
}

int files_in_use(const struct file_id *ids, size_t count,
                 void (*found)(size_t index, const char *holder, void *context),
                 void *context)
{
	struct users users = {ids, count, found, context, 0};
	char self[32];
	struct dirent *entry;
	DIR *proc;
	int proc_fd;

	if (count == 0)
		return 0;
	if (loop_devices_each(loop_user, &users) != 0)
		return -1;
	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0)
		return -1;
	proc = fdopendir(proc_fd);
	if (proc == NULL) {
		close(proc_fd);
		return -1;
	}
	/* This process's own descriptors are the tool's, not a VM's. */
	snprintf(self, sizeof(self), "%ld", (long)getpid());
	while ((entry = readdir(proc)) != NULL) {
		if (entry->d_name[0] < '1' || entry->d_name[0] > '9' ||
		    strcmp(entry->d_name, self) == 0)
			continue;
		if (process_users(&users, dirfd(proc), entry->d_name) != 0) {
			int err = errno;

			closedir(proc);
			errno = err;
			return -1;
		}
	}
	closedir(proc);
	return users.uses;
}

struct first_user {
	char *holder;
	size_t length;
};

static void first_user_keep(size_t index, const char *holder, void *context)
{
	struct first_user *first = context;

	(void)index;
	if (first->holder[0] == '\0')
		snprintf(first->holder, first->length, "%s", holder);
}

/* As files_in_use for one file: 1 if used (the first user written to
 * holder), 0 if not, -1 on error. */
static int file_in_use(const struct stat *st, char *holder, size_t length)
{
	struct file_id id = {st->st_dev, st->st_ino};
	struct first_user first = {holder, length};
	int uses;

	holder[0] = '\0';
	uses = files_in_use(&id, 1, first_user_keep, &first);
	return uses < 0 ? -1 : uses > 0;
}

/*
 * 1 if the file open as fd is open anywhere else too: a descriptor of any
 * process (also one in flight in a unix socket), a shared mapping, a loop
 * device; 0 if fd is its only open file description.  Asks the kernel (a
 * write lease), so nothing escapes it; -1 with EOPNOTSUPP where it cannot
 * tell (not root nor the file's owner, leases disabled).
 */
static int file_opened_elsewhere(int fd)
{
	/*
	 * The kernel grants a write lease only to the one open file
	 * description of a file: any other (a process's descriptor, one in
	 * flight in a unix socket, a shared mapping whose descriptor was
	 * closed, a loop device) refuses it.  It is taken and given back at
	 * once: only the answer is wanted.
	 */
	/* Someone opening the file in the instant the lease is held breaks
	 * it, which the kernel tells with a signal: one whose default is to
	 * be ignored, rather than SIGIO, which would end the tool. */
	if (fcntl(fd, F_SETSIG, SIGURG) == 0 &&
	    fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		fcntl(fd, F_SETLEASE, F_UNLCK);
		return 0;
	}
	if (errno == EAGAIN || errno == EBUSY)
		return 1;
	/* Not the file's owner without CAP_LEASE, leases turned off
	 * (fs.leases-enable), or a filesystem without them. */
	errno = EOPNOTSUPP;
	return -1;
}

int file_users(int fd, char *holder, size_t length)
{
	struct stat st;
	int rc;

	holder[0] = '\0';
	if (fstat(fd, &st) != 0)
		return -1;
	rc = file_opened_elsewhere(fd);
	if (rc < 0)
		return file_in_use(&st, holder, length);
	if (rc == 0)
		return 0;
	/* Who it is, where /proc and /sys can tell. */
	if (file_in_use(&st, holder, length) <= 0)
		snprintf(holder, length,
		         "an open file out of sight (a descriptor passed in a "
		         "socket, a mapping, or another namespace's process)");
	return 1;
}
