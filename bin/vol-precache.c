/*
 * vol-precache: make the precache of stopped volumes, the clone of C that
 * makes the next start a rename.  For after a stop that left it for later
 * (--precache=later), in the background or from a timer.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-precache [-qv] [-w SECONDS] VOLUME ...\n");
}

/* Why a volume gets no precache, or NULL if it should have one. */
static const char *precache_skip(struct volume *volume, int *status)
{
	struct revision_list list;
	size_t revisions;

	*status = 0;
	if (volume->dirty.exists)
		return "the VM runs (there is a dirty image): skipped";
	if (!volume->clean.exists) {
		*status = EX_NOINPUT;
		return "No such file or directory";
	}
	if (volume_precache_valid(volume))
		return NULL;
	if (revisions_list(volume, &list) != 0) {
		*status = volume_report_error(volume, errno);
		return "";
	}
	revisions = list.count + list.legacy_count;
	revisions_free(&list);
	/* The files of a snapshot volume (vol-list(1)): its own C is a
	 * second name of its source's, and vol-start -S refuses a
	 * snapshot volume with a precache. */
	if (volume->clean.st.st_nlink > 1 && revisions == 0 &&
	    !volume->precache.exists)
		return "the clean image has other names (a snapshot volume, "
		       "which has no precache): skipped";
	return NULL;
}

/* Makes one volume's precache; 0 or an exit status. */
static int precache(const char *argument, int wait_seconds)
{
	struct volume volume;
	char path[PATH_MAX];
	const char *skip;
	int status;

	status = volume_open_locked(&volume, argument, 0, wait_seconds);
	if (status != 0)
		return status;
	skip = precache_skip(&volume, &status);
	if (skip != NULL) {
		if (status == EX_NOINPUT)
			log_errx("%s: %s",
			         volume_path(&volume, volume.clean.name, path),
			         skip);
		else if (status == 0)
			log_warnx("%s: %s", argument, skip);
	} else if (volume_precache_valid(&volume))
		log_op("%s: the precache is up to date",
		       volume_path(&volume, volume.precache.name, path));
	else if (volume_remove_temps(&volume, 0) != 0 ||
	         volume_precache_refresh(&volume) != 0)
		status = volume_report_error(&volume, errno);
	volume_close(&volume);
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch, i, status, first = 0, wait_seconds = -1;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		if (ch == 'w')
			wait_seconds = option_wait(optarg);
		else
			option_common(ch);
	}
	operands_expect(argc - optind, argv + optind, 1, -1);
	/* Each volume on its own: one that fails does not keep the others
	 * from their precache, and the first failure is the exit status. */
	for (i = optind; i < argc; i++) {
		status = precache(argv[i], wait_seconds);
		if (first == 0)
			first = status;
	}
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return first != 0 ? first : EX_IOERR;
	}
	return first;
}
