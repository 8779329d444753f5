#!/usr/bin/env bats
# lib/systemd: the units make install puts in SYSTEMDUNITDIR, made with the
# BINDIR they run the tools from.  systemd-analyze verify passes on each;
# the check fails while pool-check finds something; the prune and precache
# reach every origin volume of the pool (each-volume).  systemd is not
# PID 1 here, so a service's command line is run as systemd would run it.

load helper

setup_file() {
	# Installed under a prefix of its own, so that each unit names tools
	# that exist, as systemd-analyze verify checks.
	export PREFIX_DIR=$BATS_FILE_TMPDIR/prefix
	# The tools as they were built (with SAN=1 by make check-san): the
	# flags' stamp is not remade, so nothing is compiled again.
	make -s -C "$TOP" -o lib/.build-flags install PREFIX="$PREFIX_DIR" >/dev/null
	export UNITS=$PREFIX_DIR/lib/systemd/system
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
	# The units of the checkout are made again for the default BINDIR.
	make -s -C "$TOP" -o lib/.build-flags all >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
}

# verify UNIT: systemd-analyze verify of an installed unit, the man pages
# of its Documentation= looked up in the installed ones.
verify() {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	MANPATH=$PREFIX_DIR/share/man systemd-analyze verify "$UNITS/$1"
}

# command_of UNIT POOL: the ExecStart= command line of the service UNIT for
# the instance that names POOL, as systemd would run it (%f is POOL, %i
# its escaped name; $VARIABLE is split into words).
command_of() {
	local escaped
	escaped=$(systemd-escape --path "$2")
	sed -n 's/^ExecStart=//p' "$UNITS/$1" |
		sed -e "s|%f|/$(systemd-escape --unescape "$escaped")|g" -e "s|%i|$escaped|g"
}

# A pool in pool/ with an origin volume holding 3 revisions, and a snapshot
# volume of it.
pool_with_revisions() {
	"$TOP/bin/pool-check" --init --no-reflink-ok pool 2>/dev/null
	local volume=pool/appvms/work/private
	mkdir -p pool/appvms/work
	"$TOP/bin/vol-create" -s 1M $volume
	for day in monday tuesday wednesday; do
		"$TOP/bin/vol-start" -k 5 $volume >/dev/null
		echo $day | dd of=$volume-dirty.img conv=notrunc status=none
		"$TOP/bin/vol-commit" -k 5 $volume
	done
	"$TOP/bin/vol-start" -S $volume pool/appvms/work/root >/dev/null
	"$TOP/bin/vol-discard" -S $volume pool/appvms/work/root
}

@test "units: systemd-analyze verify passes on the check service and its timer" {
	run verify file-reflink-check@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run verify file-reflink-check@.timer
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "units: systemd-analyze verify passes on the prune service and its timer" {
	run verify file-reflink-prune@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run verify file-reflink-prune@.timer
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "units: systemd-analyze verify passes on the precache service and its timer" {
	[ -e "$TOP/bin/vol-precache.c" ] || skip "no vol-precache in bin/"
	run verify file-reflink-precache@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	run verify file-reflink-precache@.timer
	[ "$status" -eq 0 ]
}

@test "units: a verify that cannot pass fails (a timer with no time)" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	sed 's/^OnCalendar=daily$/OnCalendar=someday/' "$UNITS/file-reflink-check@.timer" \
		>"file-reflink-check@.timer"
	run systemd-analyze --man=no verify "$PWD/file-reflink-check@.timer"
	[ "$status" -ne 0 ]
}

@test "units: every timer is daily, persistent and randomly delayed, and wanted by timers.target" {
	local timer
	for timer in "$UNITS"/*.timer; do
		grep -qx 'OnCalendar=daily' "$timer"
		grep -qx 'Persistent=true' "$timer"
		grep -q '^RandomizedDelaySec=' "$timer"
		grep -qx 'WantedBy=timers.target' "$timer"
	done
	[ "$(find "$UNITS" -name '*.timer' | wc -l)" -ge 2 ]
}

@test "units: the check service is a oneshot pool-check of the instance's path, from BINDIR" {
	grep -qx 'Type=oneshot' "$UNITS/file-reflink-check@.service"
	[ "$(command_of file-reflink-check@.service /var/lib/qubes)" = "$PREFIX_DIR/bin/pool-check -- /var/lib/qubes" ]
	[ -x "$PREFIX_DIR/bin/pool-check" ]
}

@test "units: the check's command exits 0 on a healthy pool and 1 while findings remain, so the unit fails" {
	fs_dir btrfs
	cd "$DIR" || return 1
	pool_with_revisions
	run sh -c "$(command_of file-reflink-check@.service "$PWD/pool")"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	touch pool/appvms/work/private.img~k3Jd9q
	run sh -c "$(command_of file-reflink-check@.service "$PWD/pool")"
	[ "$status" -eq 1 ]
	[[ "$output" == *"private.img~k3Jd9q	temp-leftover	"* ]]
}

@test "units: the prune service reads PRUNE_OPTIONS from /etc/file-reflink/prune-INSTANCE.conf, which must exist" {
	grep -qx 'EnvironmentFile=/etc/file-reflink/prune-%i.conf' "$UNITS/file-reflink-prune@.service"
	[ "$(command_of file-reflink-prune@.service /var/lib/qubes)" = \
		"$PREFIX_DIR/libexec/file-reflink/each-volume /var/lib/qubes $PREFIX_DIR/bin/vol-prune \$PRUNE_OPTIONS" ]
}

@test "units: the prune's command prunes every origin volume of the pool to PRUNE_OPTIONS" {
	pool_with_revisions
	local PRUNE_OPTIONS="-k 1"
	# shellcheck disable=SC2086 # split into words, as systemd does
	run $(command_of file-reflink-prune@.service "$PWD/pool" | sed "s|\$PRUNE_OPTIONS|$PRUNE_OPTIONS|")
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 2 ]
	[[ "${lines[0]}" == "$PWD/pool/appvms/work/private.img.1@"* ]]
	[ "$("$TOP/bin/vol-info" -r pool/appvms/work/private | cut -f1)" = 3 ]
}

@test "units: each-volume runs the command once with every origin volume, after --" {
	pool_with_revisions
	mkdir -p pool/vm-templates/fedora
	"$TOP/bin/vol-create" -s 1M pool/vm-templates/fedora/root
	printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$BATS_TEST_TMPDIR/show"
	chmod 755 "$BATS_TEST_TMPDIR/show"
	cp "$TOP/bin/vol-list" "$BATS_TEST_TMPDIR/"
	run "$TOP/lib/systemd/each-volume" pool "$BATS_TEST_TMPDIR/show" -k 2
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "-k 2 -- pool/appvms/work/private.img pool/vm-templates/fedora/root.img " ]
}

@test "units: each-volume exits with vol-list's status when the pool is missing, 0 when it has no origin volume" {
	run "$TOP/lib/systemd/each-volume" missing "$TOP/bin/vol-prune"
	[ "$status" -eq 66 ]
	mkdir empty
	run "$TOP/lib/systemd/each-volume" empty "$TOP/bin/vol-prune"
	[ "$status" -eq 0 ]
	[ "$output" = "each-volume: empty: no origin volume" ]
	run "$TOP/lib/systemd/each-volume" empty
	[ "$status" -eq 64 ]
}
