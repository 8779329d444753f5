/*
 * loop.c: finding the loop devices that a file backs.  The kernel shows
 * each device's backing file in /sys/block/loopN/loop/backing_file as an
 * absolute path, so both sides are compared after realpath().
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reflink.h"

int loop_devices_each(int (*each)(const char *device, const char *backing,
                                  void *context),
                      void *context)
{
	char backing[PATH_MAX + 2], attribute[PATH_MAX], device[PATH_MAX];
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
		rc = each(device, backing, context);
	}
	closedir(dir);
	return rc;
}

struct loop_match {
	const char *wanted;
	int (*found)(const char *device, void *context);
	void *context;
	int count;
};

static int loop_match(const char *device, const char *backing, void *context)
{
	struct loop_match *match = context;

	if (strcmp(backing, match->wanted) != 0)
		return 0;
	match->count++;
	return match->found != NULL ? match->found(device, match->context) : 0;
}

int loop_devices_of(const char *path,
                    int (*found)(const char *device, void *context),
                    void *context)
{
	char wanted[PATH_MAX];
	struct loop_match match = {wanted, found, context, 0};

	if (realpath(path, wanted) == NULL)
		return -1;
	if (loop_devices_each(loop_match, &match) != 0)
		return -1;
	return match.count;
}
