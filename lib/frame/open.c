/*
 * open.c: opening the volumes a tool works on, with the messages and exit
 * statuses of a failure; and taking back a VM directory that a failing
 * tool made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* The directory a failing run must take back. */
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

void made_dir_undo_on_failure(const char *path)
{
	char buf[PATH_MAX];
	const char *parent, *name;
	int saved = errno;

	if (made.name[0] == '\0' &&
	    path_split(path, buf, sizeof(buf), &parent, &name) == 0 &&
	    strlen(name) < sizeof(made.name)) {
		strcpy(made.parent, parent);
		strcpy(made.name, name);
		on_exit(made_undo, NULL);
	}
	errno = saved;
}

int volume_open_locked(struct volume *volume, const char *argument,
                       int create_dir, int wait_seconds)
{
	int rc = volume_open(volume, argument, create_dir);

	/* Made even if a later step failed: the failure takes it back. */
	if (volume->dir_made)
		made_dir_undo_on_failure(volume->dir.path[0] != '\0'
		                             ? volume->dir.path
		                             : volume->error_path);
	if (rc != 0 || volume_lock(volume, wait_seconds) != 0 ||
	    volume_stat(volume) != 0)
		return volume_report_error(volume, errno);
	return 0;
}

int source_open(struct volume *source, const char *argument)
{
	char path[PATH_MAX];

	if (volume_open(source, argument, 0) != 0)
		return volume_report_error(source, errno);
	if (!source->clean.exists) {
		log_errx("%s: No such file or directory",
		         volume_path(source, source->clean.name, path));
		return EX_NOINPUT;
	}
	return 0;
}
