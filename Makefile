# file-reflink: small tools for VM images on copy-on-write filesystems.
# See README.md and INSTALL.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
LIBEXECDIR ?= $(PREFIX)/libexec
# Where bash-completion loads a command's completion from when it is first
# completed; it searches $(PREFIX)/share too (XDG_DATA_DIRS).
COMPLETIONSDIR ?= $(shell pkg-config --define-variable=datadir=$(PREFIX)/share \
	--variable=completionsdir bash-completion 2>/dev/null || \
	echo $(PREFIX)/share/bash-completion/completions)
# systemd reads units from /usr/local/lib/systemd/system as well.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

CC ?= cc
AR ?= ar
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS)
# The core is compiled without the frame's header in reach.
CORE_CFLAGS = $(BASE_CFLAGS) -Ilib/core
ALL_CFLAGS = $(BASE_CFLAGS) -Ilib/core -Ilib/frame
ALL_LDFLAGS = $(LDFLAGS)
ifeq ($(SAN),1)
SANITIZE = -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
BASE_CFLAGS += $(SANITIZE)
ALL_LDFLAGS += $(SANITIZE)
endif

TOOLS = $(sort $(notdir $(basename $(wildcard bin/*.c))))
PROGRAMS = $(TOOLS:%=bin/%)
MAN1 = $(TOOLS:%=man/%.1)
MAN7 = $(wildcard man/*.7)
# The library in two layers (README.md, "The code"): lib/core never prints,
# exits or calls lib/frame; lib/frame is what the tools' main()s stand on.
LIB = lib/libreflink.a
CORE_OBJECTS = $(patsubst %.c,%.o,$(sort $(wildcard lib/core/*.c)))
FRAME_OBJECTS = $(patsubst %.c,%.o,$(sort $(wildcard lib/frame/*.c)))
LIB_OBJECTS = $(CORE_OBJECTS) $(FRAME_OBJECTS)
HEADERS = lib/core/core.h lib/frame/frame.h
SHELL_FILES = .ci/run tests/run tests/layers $(wildcard tests/*.bash tests/*.bats tests/*.sh \
	tests/demo tests/hooks/* tests/guest/* tests/fuzz/run tests/bench/run tests/bench/*.sh) \
	lib/completion/options lib/completion/file-reflink lib/systemd/each-volume \
	lib/packaging/build-deb lib/packaging/build-rpm

VERSION = $(shell sed -n 's/^\#define FILE_REFLINK_VERSION "\(.*\)"$$/\1/p' lib/frame/frame.h)

# The bash completion of every tool, with the options read from each
# tool's getopt_long table (lib/completion/options).
COMPLETION = lib/completion/file-reflink
# The systemd units (lib/systemd): a check, a prune and, with vol-precache,
# a precache of a pool, each a service and a daily timer.  The services
# are made from their .in templates with the BINDIR they run the tools
# from; each-volume runs a tool on every volume of a pool.
UNIT_NAMES = check prune $(if $(filter vol-precache,$(TOOLS)),precache)
SERVICES = $(UNIT_NAMES:%=lib/systemd/file-reflink-%@.service)
TIMERS = $(UNIT_NAMES:%=lib/systemd/file-reflink-%@.timer)
PKGLIBEXECDIR = $(LIBEXECDIR)/file-reflink
# Packages (make deb, make rpm) are built and left here.
PACKAGE_DIR ?= lib/packaging/build

# Objects are rebuilt when the flags change, e.g. between SAN=1 and not.
FLAGS_STAMP = lib/.build-flags
# And the units when the directories they name change.
PATHS_STAMP = lib/systemd/.paths

all: $(PROGRAMS) $(COMPLETION) $(SERVICES)

$(FLAGS_STAMP): FORCE
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $@ || \
		echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS)' > $@

$(PATHS_STAMP): FORCE
	@echo '$(BINDIR) $(PKGLIBEXECDIR)' | cmp -s - $@ || \
		echo '$(BINDIR) $(PKGLIBEXECDIR)' > $@

$(COMPLETION): lib/completion/file-reflink.bash.in lib/completion/options \
		lib/frame/frame.h $(TOOLS:%=bin/%.c)
	lib/completion/options -t $< lib/frame/frame.h $(TOOLS:%=bin/%.c) > $@.tmp
	mv $@.tmp $@

lib/systemd/%.service: lib/systemd/%.service.in $(PATHS_STAMP)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBEXECDIR@|$(PKGLIBEXECDIR)|g' $< > $@

lib/core/%.o: lib/core/%.c lib/core/core.h $(FLAGS_STAMP)
	$(CC) $(CORE_CFLAGS) -c -o $@ $<

lib/frame/%.o: lib/frame/%.c $(HEADERS) $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJECTS)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJECTS)

bin/%: bin/%.c $(LIB) $(HEADERS) $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDFLAGS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(PROGRAMS) $(DESTDIR)$(BINDIR)
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	if [ -n "$(MAN7)" ]; then \
		install -d $(DESTDIR)$(MANDIR)/man7 && \
		install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7; fi
	install -d $(DESTDIR)$(COMPLETIONSDIR)
	install -m 644 $(COMPLETION) $(DESTDIR)$(COMPLETIONSDIR)/file-reflink
	for t in $(TOOLS); do ln -sf file-reflink $(DESTDIR)$(COMPLETIONSDIR)/$$t; done
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(PKGLIBEXECDIR)
	install -m 644 $(SERVICES) $(TIMERS) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 755 lib/systemd/each-volume $(DESTDIR)$(PKGLIBEXECDIR)

uninstall:
	for t in $(TOOLS); do rm -f $(DESTDIR)$(BINDIR)/$$t \
		$(DESTDIR)$(MANDIR)/man1/$$t.1 $(DESTDIR)$(COMPLETIONSDIR)/$$t; done
	for m in $(MAN7); do rm -f $(DESTDIR)$(MANDIR)/man7/$${m#man/}; done
	rm -f $(DESTDIR)$(COMPLETIONSDIR)/file-reflink
	for u in $(notdir $(SERVICES) $(TIMERS)); do \
		rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/$$u; done
	rm -f $(DESTDIR)$(PKGLIBEXECDIR)/each-volume
	rmdir $(DESTDIR)$(PKGLIBEXECDIR) 2>/dev/null || true

check: all
	@tests/run

# The whole suite once more, built with ASan and UBSan: any report the
# sanitizers write fails the run.
check-san:
	$(MAKE) SAN=1 all
	@SANITIZER_LOGS=tests/.tmp/sanitizers tests/run

# A Debian package, built by dpkg-buildpackage in a copy of the tree with
# lib/packaging/debian as its debian/; and an RPM, by rpmbuild from a
# tarball of the tree.  Both are left in $(PACKAGE_DIR).
deb:
	lib/packaging/build-deb $(PACKAGE_DIR)

rpm:
	lib/packaging/build-rpm $(PACKAGE_DIR)

# A narrated VM life on a scratch pool (README: "make demo").
demo: all
	@tests/demo

# Coverage-guided fuzzing of the parsers, for FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/run $(FUZZ_SECONDS)

# Benchmarks against cp and a two-clone commit; not part of check.
bench: all
	@tests/bench/run $(BENCH_OUT)

lint: $(LIB) $(COMPLETION)
	shellcheck -x $(SHELL_FILES)
	@for page in $(MAN1) $(MAN7); do \
		out=$$(groff -mandoc -ww -z $$page 2>&1); \
		if [ -n "$$out" ]; then echo "$$page: $$out"; exit 1; fi; \
	done; echo "groff: man pages clean"
	clang-format --dry-run --Werror bin/*.c lib/*/*.c lib/*/*.h
	@tests/layers $(CORE_OBJECTS) -- $(FRAME_OBJECTS)
	@echo "lint: clean"

clean:
	rm -f $(PROGRAMS) $(LIB) $(LIB_OBJECTS) $(FLAGS_STAMP) $(COMPLETION) \
		lib/systemd/*.service $(PATHS_STAMP)
	rm -rf lib/packaging/build

FORCE:

.PHONY: all install uninstall check check-san deb rpm demo fuzz bench lint clean FORCE
