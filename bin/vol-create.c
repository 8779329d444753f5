/*
 * vol-create: make a new, empty, sparse origin volume: C and its precache P.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-create [-fqv] [-k N] [-w SECONDS] -s SIZE "
	                "VOLUME\n");
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"keep", required_argument, NULL, 'k'},
	    {"size", required_argument, NULL, 's'},
	    {"wait", required_argument, NULL, 'w'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	struct keep_policy policy = {0, 0};
	struct volume volume;
	struct temp_file temp;
	off_t size = -1;
	int force = 0, wait_seconds = -1, ch, status, found;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "fk:s:w:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'f':
			force = 1;
			break;
		case 'k':
			option_keep(optarg, &policy);
			break;
		case 's':
			size = option_size(optarg);
			break;
		case 'w':
			wait_seconds = option_wait(optarg);
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, 1);
	if (size < 0) {
		log_errx("-s SIZE is required");
		usage(stderr);
		return EX_USAGE;
	}

	status = volume_open_locked(&volume, argv[0], 1, wait_seconds);
	if (status != 0)
		return status;
	/* What a run killed midway left: its temp files go, and a C it
	 * made but for its precache is finished. */
	if (volume_remove_temps(&volume, 0) != 0)
		return volume_report_error(&volume, errno);
	found = volume_remove_all(&volume, 1, NULL, NULL);
	if (found < 0)
		return volume_report_error(&volume, errno);
	if (found == 1 && volume.clean.exists && !force &&
	    volume.clean.st.st_size == size && volume.clean.st.st_blocks == 0) {
		if (!keep_disables_snapshots(&policy) &&
		    volume_precache_refresh(&volume) != 0)
			return volume_report_error(&volume, errno);
		return 0;
	}
	if (found > 0 && !force) {
		log_errx("%s: the volume exists (use -f to replace it)",
		         argv[0]);
		return EX_CANTCREAT;
	}
	/* No stale revision or precache may survive into the new volume. */
	if (found > 0 && volume_remove_all(&volume, 0, NULL, NULL) < 0)
		return volume_report_error(&volume, errno);

	if (temp_create(&temp, &volume.dir, volume.clean.name) != 0) {
		log_errc(errno, "%s/%s", volume.dir.path, volume.clean.name);
		return exit_status_for_errno(errno);
	}
	if (ftruncate(temp.fd, size) != 0 || temp_commit(&temp, 0) != 0) {
		int err = errno;

		temp_abort(&temp);
		log_errc(err, "%s/%s", volume.dir.path, volume.clean.name);
		return exit_status_for_errno(err);
	}
	if (volume_stat(&volume) != 0 ||
	    (!keep_disables_snapshots(&policy) &&
	     volume_precache_refresh(&volume) != 0))
		return volume_report_error(&volume, errno);
	volume_close(&volume);
	return 0;
}
