/*
 * vol-info: show the state, size and revisions of volumes, as TAB-separated
 * lines or JSON, or test a volume's state for a shell script.  A reader: it
 * takes no lock, since every change of a volume is an atomic rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-info [-jqrv] [-S SRC] "
	                "[-t dirty|clean|missing|outdated] VOLUME...\n");
}

/* What vol-info reports about one volume. */
struct info {
	struct volume volume;
	struct revision_list list;
	const char *state;
	off_t size;
	unsigned long long usage;
	int outdated;
};

/* Whether the snapshot volume's C is no longer SRC's C (SRC committed). */
static int outdated(const struct volume *volume, const struct volume *source)
{
	const struct stat *own = &volume->clean.st, *src = &source->clean.st;

	return volume->clean.exists && source->clean.exists &&
	       (own->st_dev != src->st_dev || own->st_ino != src->st_ino);
}

/* Gathers the facts about one volume; returns its exit status. */
static int info_read(struct info *info, const char *argument,
                     const struct volume *source)
{
	const struct volume_file *image = NULL;

	memset(info, 0, sizeof(*info));
	if (volume_open(&info->volume, argument, 0) != 0 ||
	    revisions_list(&info->volume, &info->list) != 0) {
		int status = volume_report_error(&info->volume, errno);

		volume_close(&info->volume);
		return status;
	}
	if (!info->volume.clean.exists && !info->volume.dirty.exists &&
	    !info->volume.precache.exists && !info->volume.import.exists &&
	    info->list.count == 0 && info->list.legacy_count == 0) {
		log_errx("%s: no such volume", argument);
		revisions_free(&info->list);
		volume_close(&info->volume);
		return EX_NOINPUT;
	}
	if (info->volume.dirty.exists) {
		info->state = "dirty";
		image = &info->volume.dirty;
	} else if (info->volume.clean.exists) {
		info->state = "clean";
		image = &info->volume.clean;
	} else
		info->state = "missing";
	if (image != NULL) {
		info->size = image->st.st_size;
		info->usage = (unsigned long long)image->st.st_blocks * 512;
	}
	info->outdated = source != NULL && outdated(&info->volume, source);
	return 0;
}

static void info_free(struct info *info)
{
	revisions_free(&info->list);
	volume_close(&info->volume);
}

static int state_is(const struct info *info, const char *state)
{
	if (strcmp(state, "outdated") == 0)
		return info->outdated;
	return strcmp(info->state, state) == 0;
}

/*
 * The length of a revision, or -1 if it vanished: a reader holds no lock,
 * so vol-prune may remove a revision between the listing and this.
 */
static off_t revision_size(const struct volume *volume, const char *name)
{
	struct stat st;

	if (fstatat(volume->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	return st.st_size;
}

/* One revision: as a TAB-separated line, or as a JSON object. */
static void revision_print(const struct info *info,
                           const struct revision *revision, int json,
                           int *first)
{
	char path[PATH_MAX], when[64];
	off_t size = revision_size(&info->volume, revision->name);

	if (size < 0)
		return;
	volume_path(&info->volume, revision->name, path);
	if (revision_time_format(revision->time, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "-");
	if (!json) {
		if (revision->legacy)
			printf("legacy");
		else
			printf("%llu", (unsigned long long)revision->id);
		printf("\t%s\t%lld\t", when, (long long)size);
		text_escape_write(stdout, path);
		putchar('\n');
		return;
	}
	printf("%s{\"id\": ", *first ? "" : ", ");
	*first = 0;
	if (revision->legacy)
		printf("\"legacy\"");
	else
		printf("%llu", (unsigned long long)revision->id);
	printf(", \"time\": ");
	json_string_write(stdout, when);
	printf(", \"size\": %lld, \"path\": ", (long long)size);
	json_string_write(stdout, path);
	putchar('}');
}

/* Every revision: legacy ones first, then numbered ones by id. */
static void revisions_print(const struct info *info, int json)
{
	int first = 1;
	size_t i;

	for (i = 0; i < info->list.legacy_count; i++)
		revision_print(info, &info->list.legacy[i], json, &first);
	for (i = 0; i < info->list.count; i++)
		revision_print(info, &info->list.items[i], json, &first);
}

static void text_print(const struct info *info, int with_source)
{
	char path[PATH_MAX];
	const struct revision_list *list = &info->list;

	printf("path\t");
	text_escape_write(
	    stdout, volume_path(&info->volume, info->volume.clean.name, path));
	putchar('\n');
	printf("state\t%s\n", info->state);
	printf("size\t%lld\n", (long long)info->size);
	printf("usage\t%llu\n", info->usage);
	printf("revisions\t%zu\n", list->count);
	if (list->count > 0)
		printf("latest\t%llu\n",
		       (unsigned long long)list->items[list->count - 1].id);
	else
		printf("latest\t-\n");
	if (with_source)
		printf("outdated\t%s\n", info->outdated ? "yes" : "no");
}

static void json_print(const struct info *info, int with_source,
                       int with_revisions)
{
	char path[PATH_MAX];
	const struct revision_list *list = &info->list;

	printf("{\"path\": ");
	json_string_write(
	    stdout, volume_path(&info->volume, info->volume.clean.name, path));
	printf(", \"state\": \"%s\", \"size\": %lld, \"usage\": %llu, "
	       "\"revisions\": %zu, \"latest\": ",
	       info->state, (long long)info->size, info->usage, list->count);
	if (list->count > 0)
		printf("%llu",
		       (unsigned long long)list->items[list->count - 1].id);
	else
		printf("null");
	if (with_source)
		printf(", \"outdated\": %s", info->outdated ? "true" : "false");
	if (with_revisions) {
		printf(", \"revision_list\": [");
		revisions_print(info, 1);
		putchar(']');
	}
	putchar('}');
}

int main(int argc, char *argv[])
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"revisions", no_argument, NULL, 'r'},
	    {"source", required_argument, NULL, 'S'},
	    {"test", required_argument, NULL, 't'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	static const char *const states[] = {"dirty", "clean", "missing",
	                                     "outdated"};
	struct volume source;
	struct info info;
	const char *source_argument = NULL, *test_state = NULL;
	int json = 0, with_revisions = 0, printed = 0, all_in_state = 1;
	int ch, i, status, first_failure = 0;
	size_t s;

	tool_init(argv[0], usage);
	while ((ch = getopt_long(argc, argv, "jrS:t:" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'r':
			with_revisions = 1;
			break;
		case 'S':
			source_argument = optarg;
			break;
		case 't':
			test_state = optarg;
			break;
		default:
			option_common(ch);
		}
	}
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, -1);
	if (test_state != NULL) {
		for (s = 0; s < sizeof(states) / sizeof(states[0]); s++)
			if (strcmp(test_state, states[s]) == 0)
				break;
		if (s == sizeof(states) / sizeof(states[0])) {
			log_errx("invalid -t state: %s", test_state);
			usage(stderr);
			return EX_USAGE;
		}
		if (strcmp(test_state, "outdated") == 0 &&
		    source_argument == NULL) {
			log_errx("-t outdated needs -S SRC");
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (source_argument != NULL) {
		if (volume_open(&source, source_argument, 0) != 0)
			return volume_report_error(&source, errno);
		/* Without SRC's C no snapshot can be told outdated or not. */
		if (!source.clean.exists) {
			log_errx("%s: no such volume (no %s)", source_argument,
			         source.clean.name);
			return EX_NOINPUT;
		}
	}

	if (json && test_state == NULL)
		printf("[");
	for (i = 0; i < argc; i++) {
		status =
		    info_read(&info, argv[i], source_argument ? &source : NULL);
		if (status != 0) {
			if (first_failure == 0)
				first_failure = status;
			continue;
		}
		if (test_state != NULL) {
			if (!state_is(&info, test_state))
				all_in_state = 0;
		} else if (json) {
			printf("%s\n", printed ? "," : "");
			json_print(&info, source_argument != NULL,
			           with_revisions);
		} else if (with_revisions)
			revisions_print(&info, 0);
		else {
			if (printed)
				putchar('\n');
			text_print(&info, source_argument != NULL);
		}
		printed = 1;
		info_free(&info);
	}
	if (json && test_state == NULL)
		printf("\n]\n");
	if (source_argument != NULL)
		volume_close(&source);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	if (first_failure != 0)
		return first_failure;
	return all_in_state ? 0 : EXIT_NOT_IN_STATE;
}
