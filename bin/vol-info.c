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
#include <unistd.h>

#include "frame.h"

static void usage(FILE *stream)
{
	fprintf(stream, "usage: vol-info [-jqruv] [-S SRC] "
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
	int with_space;            /* -u: space was read */
	struct volume_space space; /* the extents and exclusive bytes */
};

/* Whether the snapshot volume's C is no longer SRC's C (SRC committed). */
static int outdated(const struct volume *volume, const struct volume *source)
{
	const struct stat *own = &volume->clean.st, *src = &source->clean.st;

	return volume->clean.exists && source->clean.exists &&
	       (own->st_dev != src->st_dev || own->st_ino != src->st_ino);
}

/* Reads the extent maps of the volume's files (-u); returns the exit
 * status. */
static int space_read(struct info *info, const struct volume *source)
{
	if (volume_space_read(&info->volume, &info->list, source,
	                      &info->space) != 0) {
		int status = volume_report_error(&info->volume, errno);

		revisions_free(&info->list);
		volume_close(&info->volume);
		return status;
	}
	info->with_space = 1;
	return 0;
}

/* Gathers the facts about one volume; returns its exit status. */
static int info_read(struct info *info, const char *argument,
                     const struct volume *source, int with_space)
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
	return with_space ? space_read(info, source) : 0;
}

static void info_free(struct info *info)
{
	if (info->with_space)
		volume_space_free(&info->space);
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

/* The state name of the volume's file name (see vol-export(1)), or "-"
 * if it vanished meanwhile. */
static const char *image_state(const struct volume *volume, const char *name,
                               char *buf)
{
	int fd = file_open_checked(&volume->dir, name, O_RDONLY, NULL);

	if (fd < 0 || state_name_read(fd, buf, STATE_NAME_SIZE) != 0)
		snprintf(buf, STATE_NAME_SIZE, "-");
	if (fd >= 0)
		close(fd);
	return buf;
}

/* The extents and exclusive bytes of an image, as two fields. */
static void space_write(uint64_t extents, uint64_t exclusive,
                        struct record_writer *out)
{
	field_unsigned(out, "extents", extents);
	field_unsigned(
	    out, out->format == RECORD_JSON ? "exclusive_bytes" : "exclusive",
	    exclusive);
}

/* One revision (number i of info->space.revision): a TSV line, or a JSON
 * object of revision_list. */
static void revision_write(const struct info *info,
                           const struct revision *revision, size_t i,
                           struct record_writer *out)
{
	char path[PATH_MAX], when[64], name[STATE_NAME_SIZE];
	off_t size = revision_size(&info->volume, revision->name);

	if (size < 0)
		return;
	volume_path(&info->volume, revision->name, path);
	if (revision_time_format(revision->time, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "-");
	record_begin(out);
	if (revision->legacy)
		field_text(out, "id", "legacy");
	else
		field_unsigned(out, "id", (unsigned long long)revision->id);
	field_text(out, "time", when);
	field_number(out, "size", (long long)size);
	field_text(out, "path", path);
	field_text(out, "snapshot",
	           image_state(&info->volume, revision->name, name));
	if (info->with_space)
		space_write(
		    space_extents(&info->space, info->space.revision[i]),
		    space_revision_frees(&info->space, i), out);
	/* Last, so that the fields before keep their places. */
	field_bool(out, "pinned", revision->pinned);
	record_end(out);
}

/* Every revision: legacy ones first, then numbered ones by id. */
static void revisions_write(const struct info *info, struct record_writer *out)
{
	const struct revision_list *list = &info->list;
	size_t i;

	for (i = 0; i < list->legacy_count; i++)
		revision_write(info, &list->legacy[i], list->count + i, out);
	for (i = 0; i < list->count; i++)
		revision_write(info, &list->items[i], i, out);
}

/* The width of the bars of space_table_write, in characters. */
#define BAR_WIDTH 30

/* One row of the table: a label, the exclusive bytes as a person reads
 * them with a bar scaled to most, the extents, and the path. */
static void space_row_write(const char *id, const char *when, uint64_t bytes,
                            uint64_t most, uint64_t extents, const char *path)
{
	static const char hashes[] = "##############################";
	char human[32];
	int bar = most > 0 ? (int)((bytes * BAR_WIDTH + most - 1) / most) : 0;

	printf("%8s  %-20s  %10s  %-*.*s  %8llu  ", id, when,
	       human_size((double)bytes, human, sizeof(human)), BAR_WIDTH, bar,
	       hashes, (unsigned long long)extents);
	text_escape_write(stdout, path);
	putchar('\n');
}

/*
 * -u -r on a terminal: the current image, then each revision, with what
 * it holds alone in human units and a bar scaled to the largest of the
 * revisions, so that the one worth pruning stands out.
 */
static void space_table_write(const struct info *info)
{
	const struct revision_list *list = &info->list;
	const struct volume *v = &info->volume;
	size_t i, n = list->count + list->legacy_count, current;
	uint64_t most = 0;
	char path[PATH_MAX], when[64], id[32];

	for (i = 0; i < n; i++)
		if (space_revision_frees(&info->space, i) > most)
			most = space_revision_frees(&info->space, i);
	current = v->dirty.exists ? info->space.dirty : info->space.clean;
	printf("%8s  %-20s  %10s  %-*s  %8s  %s\n", "REVISION", "TIME",
	       "EXCLUSIVE", BAR_WIDTH, "", "EXTENTS", "PATH");
	space_row_write(
	    info->state, "-", space_exclusive(&info->space, current), most,
	    space_extents(&info->space, current),
	    volume_path(v, v->dirty.exists ? v->dirty.name : v->clean.name,
	                path));
	for (i = 0; i < n; i++) {
		const struct revision *r =
		    i < list->legacy_count
		        ? &list->legacy[i]
		        : &list->items[i - list->legacy_count];
		size_t index = i < list->legacy_count ? list->count + i
		                                      : i - list->legacy_count;

		if (info->space.revision[index] == SPACE_NONE)
			continue;
		if (r->legacy)
			snprintf(id, sizeof(id), "legacy");
		else
			snprintf(id, sizeof(id), "%llu",
			         (unsigned long long)r->id);
		if (revision_time_format(r->time, when, sizeof(when)) != 0)
			snprintf(when, sizeof(when), "-");
		space_row_write(
		    id, when, space_revision_frees(&info->space, index), most,
		    space_extents(&info->space, info->space.revision[index]),
		    volume_path(v, r->name, path));
	}
}

/* One volume: "key<TAB>value" lines, or a JSON object. */
static void info_write(const struct info *info, struct record_writer *out,
                       int with_source, int with_revisions)
{
	const struct revision_list *list = &info->list;
	struct record_writer items;
	char path[PATH_MAX], name[STATE_NAME_SIZE];

	record_begin(out);
	field_text(out, "path",
	           volume_path(&info->volume, info->volume.clean.name, path));
	field_text(out, "state", info->state);
	field_number(out, "size", (long long)info->size);
	field_unsigned(out, "usage", info->usage);
	field_unsigned(out, "revisions", list->count);
	if (list->count > 0)
		field_unsigned(out, "latest", list->items[list->count - 1].id);
	else
		field_null(out, "latest");
	if (with_source)
		field_bool(out, "outdated", info->outdated);
	/* The facts in text stay as they were; JSON has room for more. */
	if (out->format == RECORD_JSON && info->volume.clean.exists)
		field_text(
		    out, "snapshot",
		    image_state(&info->volume, info->volume.clean.name, name));
	else if (out->format == RECORD_JSON)
		field_null(out, "snapshot");
	if (info->with_space) {
		size_t current = info->volume.dirty.exists ? info->space.dirty
		                                           : info->space.clean;

		space_write(space_extents(&info->space, current),
		            space_exclusive(&info->space, current), out);
	}
	if (with_revisions) {
		field_list_begin(out, "revision_list", &items);
		revisions_write(info, &items);
		field_list_end(out);
	}
	record_end(out);
}

/* What the options ask. */
struct info_options {
	const char *source, *test_state;
	int json, with_revisions, with_space;
};

static void options_parse(int argc, char *argv[], struct info_options *o)
{
	static const struct option long_options[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"revisions", no_argument, NULL, 'r'},
	    {"source", required_argument, NULL, 'S'},
	    {"test", required_argument, NULL, 't'},
	    {"usage", no_argument, NULL, 'u'},
	    LONG_OPTIONS_COMMON,
	    {NULL, 0, NULL, 0}};
	int ch;

	while ((ch = getopt_long(argc, argv, "jrS:t:u" SHORT_OPTIONS_COMMON,
	                         long_options, NULL)) != -1) {
		switch (ch) {
		case 'j':
			o->json = 1;
			break;
		case 'r':
			o->with_revisions = 1;
			break;
		case 'S':
			o->source = optarg;
			break;
		case 't':
			o->test_state = optarg;
			break;
		case 'u':
			o->with_space = 1;
			break;
		default:
			option_common(ch);
		}
	}
}

/* The -t state must be one of the four; outdated needs -S. */
static void test_state_check(const struct info_options *o)
{
	static const char *const states[] = {"dirty", "clean", "missing",
	                                     "outdated"};
	size_t s;

	if (o->test_state == NULL)
		return;
	for (s = 0; s < sizeof(states) / sizeof(states[0]); s++)
		if (strcmp(o->test_state, states[s]) == 0)
			break;
	if (s == sizeof(states) / sizeof(states[0]))
		usage_error("invalid -t state: %s", o->test_state);
	if (strcmp(o->test_state, "outdated") == 0 && o->source == NULL)
		usage_error("-t outdated needs -S SRC");
}

/* Opens SRC of -S; returns the exit status. */
static int source_read(struct volume *source, const char *argument)
{
	if (volume_open(source, argument, 0) != 0)
		return volume_report_error(source, errno);
	/* Without SRC's C no snapshot can be told outdated or not. */
	if (!source->clean.exists) {
		log_errx("%s: no such volume (no %s)", argument,
		         source->clean.name);
		return EX_NOINPUT;
	}
	return 0;
}

/* Shows (or with -t tests) one volume; returns its exit status, or
 * EXIT_NOT_IN_STATE when it is not in the -t state. */
static int info_show(const char *argument, const struct volume *source,
                     const struct info_options *o, struct record_writer *out)
{
	struct info info;
	int status = info_read(&info, argument, source,
	                       o->with_space && o->test_state == NULL);

	if (status != 0)
		return status;
	if (o->test_state != NULL) {
		if (!state_is(&info, o->test_state))
			status = EXIT_NOT_IN_STATE;
	} else if (out->format == RECORD_TSV && info.with_space &&
	           isatty(STDOUT_FILENO))
		space_table_write(&info);
	else if (out->format == RECORD_TSV)
		revisions_write(&info, out);
	else {
		/* A blank line between the volumes of text output. */
		if (out->format == RECORD_PAIRS && out->records > 0)
			putchar('\n');
		info_write(&info, out, source != NULL, o->with_revisions);
	}
	info_free(&info);
	return status;
}

int main(int argc, char *argv[])
{
	struct info_options o = {NULL, NULL, 0, 0, 0};
	struct record_writer out = {stdout, RECORD_PAIRS, ",", "\n", 0, 0};
	struct volume source;
	int i, status, first_failure = 0, all_in_state = 1;

	tool_init(argv[0], usage);
	options_parse(argc, argv, &o);
	argc -= optind;
	argv += optind;
	operands_expect(argc, argv, 1, -1);
	test_state_check(&o);
	if (o.source != NULL && (status = source_read(&source, o.source)) != 0)
		return status;
	if (o.json)
		out.format = RECORD_JSON;
	else if (o.with_revisions)
		out.format = RECORD_TSV;

	if (o.json && o.test_state == NULL)
		printf("[");
	for (i = 0; i < argc; i++) {
		status =
		    info_show(argv[i], o.source ? &source : NULL, &o, &out);
		if (status == EXIT_NOT_IN_STATE)
			all_in_state = 0;
		else if (status != 0 && first_failure == 0)
			first_failure = status;
	}
	if (o.json && o.test_state == NULL)
		printf("\n]\n");
	if (o.source != NULL)
		volume_close(&source);
	if (stdout_close() != 0) {
		log_errc(errno, "standard output");
		return EX_IOERR;
	}
	if (first_failure != 0)
		return first_failure;
	return all_in_state ? 0 : EXIT_NOT_IN_STATE;
}
