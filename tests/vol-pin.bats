#!/usr/bin/env bats
# vol-pin: a pinned revision is kept by every prune, every -k and
# vol-remove without -f; its marker is an empty file beside it that the
# Qubes driver's globs do not match.  Kills and I/O errors in vol-pin,
# vol-pin -u, vol-revert to a pinned revision and vol-remove -f are cases
# of reliability.bash, run by crash.bats and inject.bats.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

teardown() {
	release_lock
}

R1=private.img.1@2021-01-01T00:00:01Z
R2=private.img.2@2021-01-02T00:00:02Z
R3=private.img.3@2021-01-03T00:00:03Z

# pin_setup [KIND]: $VM (on btrfs unless KIND) holds the stopped volume $B
# with C ("CUR"), P and revisions 1, 2 and 3 ("ONE", "TWO", "THREE").
pin_setup() {
	fs_dir "${1:-btrfs}"
	VM=$DIR/vm1
	B=$VM/private
	mkdir "$VM"
	printf CUR >"$B.img"
	touch -d '2021-01-04 00:00:04 UTC' "$B.img"
	cp -p "$B.img" "$B-precache.img"
	printf ONE >"$VM/$R1"
	printf TWO >"$VM/$R2"
	printf THREE >"$VM/$R3"
}

@test "vol-pin: btrfs: -r 2 makes an empty marker of root's, mode 0600, beside the revision" {
	pin_setup btrfs
	run --separate-stderr vol-pin -r 2 "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	[ "$(stat -c '%F %s %a %u' "$VM/$R2.pin")" = "regular empty file 0 600 0" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R2 $R2.pin $R3" ]
	[ "$(cat "$VM/$R2")" = TWO ]
}

@test "vol-pin: xfs: -r latest pins the highest id; -u unpins it" {
	pin_setup xfs
	vol-pin -r latest "$B"
	[ -f "$VM/$R3.pin" ]
	vol-pin -u -r latest "$B"
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R2 $R3" ]
}

@test "vol-pin: pinning twice and unpinning what is not pinned succeed and change nothing" {
	pin_setup
	vol-pin -r 1 "$B"
	before=$(dir_state -r "$VM")
	vol-pin -r 1 "$B"
	[ "$(dir_state -r "$VM")" = "$before" ]
	vol-pin -u -r 1 "$B"
	before=$(dir_state -r "$VM")
	vol-pin -u -r 1 "$B"
	vol-pin -u -r 2 "$B"
	[ "$(dir_state -r "$VM")" = "$before" ]
}

@test "vol-pin: vol-info -r ends each line in pinned yes or no, JSON \"pinned\": true" {
	pin_setup
	vol-pin -r 2 "$B"
	[ "$(vol-info -r "$B" | cut -f1,6 | tr '\t\n' ': ')" = "1:no 2:yes 3:no " ]
	[ "$(vol-info -r "$B" | awk -F '\t' '{ print NF }' | sort -u)" = 6 ]
	[ "$(vol-info -u -r "$B" | awk -F '\t' '{ print $1 ":" NF ":" $8 }' | tr '\n' ' ')" = "1:8:no 2:8:yes 3:8:no " ]
	vol-info -j -r "$B" | python3 -c '
import json, sys
revisions = json.load(sys.stdin)[0]["revision_list"]
assert [r["pinned"] for r in revisions] == [False, True, False], revisions'
}

@test "vol-pin: vol-prune -k 0 keeps the pinned revision; -k 1 keeps one more" {
	pin_setup
	vol-pin -r 1 "$B"
	run --separate-stderr vol-prune -k 1 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R2" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R1.pin $R3" ]
	vol-prune -k 0 "$B"
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R1.pin" ]
	[ "$(cat "$VM/$R1")" = ONE ]
}

@test "vol-pin: vol-commit -k 0, vol-start -k -1 and vol-commit -k -1 keep the pinned revision" {
	pin_setup
	vol-pin -r 2 "$B"
	vol-start "$B" >/dev/null
	printf RUN | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit -k 0 "$B"
	[ "$(revision_ids "$VM" private)" = 2 ]
	vol-start -k -1 "$B" >/dev/null
	vol-commit -k -1 "$B"
	[ "$(revision_ids "$VM" private)" = 2 ]
	[ "$(cat "$VM/$R2")" = TWO ]
	[ -f "$VM/$R2.pin" ]
	[ "$(head_bytes "$B.img" 3)" = RUN ]
}

@test "vol-pin: vol-revert of another revision with -k 0 and -k 1 keeps the pinned one" {
	pin_setup
	vol-pin -r 1 "$B"
	vol-revert -k 0 -r 3 "$B"
	[ "$(cat "$B.img")" = THREE ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	[ -f "$VM/$R1.pin" ]
	vol-start "$B" >/dev/null
	printf NEW | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit -k 1 "$B"
	# Revision 2 is THREE; reverting to it saves NEW as 3.
	vol-revert -k 1 -r latest "$B"
	[ "$(head_bytes "$B.img" 5)" = THREE ]
	[ "$(cat "$VM/$R1")" = ONE ]
	[ -f "$VM/$R1.pin" ]
	[ "$(vol-info -r "$B" | cut -f1,6 | tr '\t\n' ': ')" = "1:yes 3:no " ]
}

@test "vol-pin: vol-revert to the pinned revision makes C a clone of it; the pinned revision stays" {
	pin_setup
	vol-pin -r 2 "$B"
	old_clean=$(inode "$B.img")
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-revert -k 1 -r 2 "$B"
	[ "$status" -eq 0 ]
	[ "$(cat "$B.img")" = TWO ]
	[ "$(cat "$VM/$R2")" = TWO ]
	[ -f "$VM/$R2.pin" ]
	[ "$(inode "$B.img")" != "$(inode "$VM/$R2")" ]
	[ "$(mtime_ns "$B.img")" = "$(mtime_ns "$VM/$R2")" ]
	# One clone for C, one for the precache; the old C is revision 4.
	[ "$(ficlone_count "$DIR/trace")" -eq 2 ]
	[ "$(vol-info -r "$B" | cut -f1,6 | tr '\t\n' ': ')" = "2:yes 4:no " ]
	[ "$(inode "$VM/$(revision_of "$VM" private 4)")" = "$old_clean" ]
	# Both name the same state.
	[ "$(vol-info -r "$B" | awk -F '\t' '$1 == 2 { print $5 }')" = "$(state_of "$B.img")" ]
	run pool-check -q "$DIR"
	[ "$status" -eq 0 ]
	# A re-run has nothing left to do; a commit keeps the pinned one.
	before=$(dir_state "$VM")
	vol-revert -k 1 -r 2 "$B"
	[ "$(dir_state "$VM")" = "$before" ]
	vol-start "$B" >/dev/null
	printf RUN | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit -k 0 "$B"
	[ "$(vol-info -r "$B" | cut -f1,6 | tr '\t\n' ': ')" = "2:yes " ]
	[ "$(cat "$VM/$R2")" = TWO ]
}

@test "vol-pin: vol-revert to a pinned revision is not fooled by a C given its size and mtime" {
	pin_setup
	vol-pin -r 1 "$B"
	# CUR and ONE: the same size; now the same mtime too, other bytes.
	touch -r "$VM/$R1" "$B.img"
	run --separate-stderr vol-revert -k 5 -r 1 "$B"
	[ "$status" -eq 0 ]
	[ "$(cat "$B.img")" = ONE ]
	[ "$(revision_ids "$VM" private)" = "1 2 3 4" ]
	[ "$(cat "$VM/$(revision_of "$VM" private 4)")" = CUR ]
	[ -f "$VM/$R1.pin" ]
}

@test "vol-pin: a pinned revert cut short by its last error is made by a re-run asking for the latest revision" {
	pin_setup
	vol-pin -r 3 "$B"
	# The last of its two renames (the precache, then C) fails.
	run strace -f -o /dev/null -e trace=renameat -e inject=renameat:error=EIO:when=2 \
		vol-revert -k 5 "$B"
	[ "$status" -eq 74 ]
	# The old C is saved; the latest revision is C itself, so the latest
	# to revert to is still the pinned one.
	[ "$(cat "$B.img")" = CUR ]
	[ "$(inode "$VM/$(revision_of "$VM" private 4)")" = "$(inode "$B.img")" ]
	run vol-revert -k 5 "$B"
	[ "$status" -eq 0 ]
	[ "$(cat "$B.img")" = THREE ]
	[ "$(revision_ids "$VM" private)" = "1 2 3 4" ]
	[ "$(cat "$VM/$(revision_of "$VM" private 4)")" = CUR ]
	[ -f "$VM/$R3.pin" ]
	cmp "$B.img" "$B-precache.img"
}

@test "vol-pin: a revert cut short whose revision was pinned meanwhile is finished without losing the pin" {
	pin_setup
	# A revert to 2 cut short after C became a second name of revision 2
	# (the old C saved as 4); then revision 2 is pinned.
	ln "$B.img" "$VM/private.img.4@2021-01-04T00:00:04Z"
	ln -f "$VM/$R2" "$B.img"
	vol-pin -r 2 "$B"
	run vol-revert -k 5 -r 2 "$B"
	[ "$status" -eq 0 ]
	[ "$(cat "$B.img")" = TWO ]
	[ "$(revision_ids "$VM" private)" = "1 2 3 4" ]
	[ "$(cat "$VM/$R2")" = TWO ]
	[ -f "$VM/$R2.pin" ]
}

@test "vol-pin: vol-remove refuses a pinned revision with 65 and removes nothing; -f removes the marker after it" {
	pin_setup
	vol-pin -r 2 "$B"
	before=$(dir_state -r "$VM")
	run --separate-stderr vol-remove "$B"
	[ "$status" -eq 65 ]
	[ -z "$output" ]
	[ "$stderr" = "vol-remove: $VM/$R2: the revision is pinned; nothing removed (vol-pin -u unpins it, -f removes it anyway)" ]
	[ "$(dir_state -r "$VM")" = "$before" ]
	run vol-remove -n "$B"
	[ "$status" -eq 65 ]
	run --separate-stderr vol-remove -f "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1
$VM/$R2
$VM/$R3
$VM/$R2.pin
$VM/private-precache.img
$VM/private.img" ]
	[ ! -e "$VM" ]
}

@test "vol-pin: a marker that is not an empty file of root's pins nothing, and vol-pin refuses it with 65" {
	pin_setup
	echo note >"$VM/$R1.pin"
	ln -s "$VM/$R3" "$VM/$R2.pin"
	mkdir "$VM/$R3.pin"
	for id in 1 2 3; do
		run --separate-stderr vol-pin -r "$id" "$B"
		[ "$status" -eq 65 ]
		[[ "$stderr" == *".pin: in the way of the pin marker"* ]]
	done
	[ "$(vol-info -r "$B" | cut -f6 | tr '\n' ' ')" = "no no no " ]
	run vol-pin -u -r 3 "$B"
	[ "$status" -eq 65 ]
	vol-pin -u -r 2 "$B"
	[ ! -L "$VM/$R2.pin" ]
	[ "$(cat "$VM/$R3")" = THREE ]
	vol-prune -k 0 "$B" >/dev/null
	[ "$(revision_ids "$VM" private)" = "" ]
}

@test "vol-pin: a marker of another user pins nothing; one of the VM directory's owner pins" {
	pin_setup
	touch "$VM/$R1.pin" "$VM/$R2.pin"
	chown 4242 "$VM/$R1.pin"
	chown 4343 "$VM" "$VM/$R2.pin"
	[ "$(vol-info --unsafe-dirs -r "$B" | cut -f6 | tr '\n' ' ')" = "no yes no " ]
}

@test "vol-pin: a marker of a revision with the same id but another time pins nothing" {
	pin_setup
	touch "$VM/private.img.1@2020-01-01T00:00:00Z.pin"
	[ "$(vol-info -r "$B" | cut -f6 | head -1)" = no ]
}

@test "vol-pin: the Qubes driver's revision and temp globs match no marker" {
	pin_setup
	vol-pin -r 1 "$B"
	touch "$VM/$R2.pin~AbC123"
	python3 - "$B" <<'EOF'
import glob, sys
b = sys.argv[1]
revisions = sorted(glob.glob(glob.escape(b + ".img.") + "*?@????-??-??T??:??:??Z"))
temps = sorted(glob.glob(glob.escape(b) + "*.img*~*"))
assert not any(p.endswith(".pin") for p in revisions), revisions
assert len(revisions) == 3, revisions
assert temps == [b + ".img.2@2021-01-02T00:00:02Z.pin~AbC123"], temps
EOF
	# Our own temp cleanup takes the marker's temp file, not the marker.
	vol-pin -r 3 "$B"
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R1.pin $R2 $R3 $R3.pin" ]
}

@test "vol-pin: pins survive the qubes-style hook cycle with REVISIONS_TO_KEEP=1" {
	fs_dir btrfs
	POOL=$DIR/pool
	VM=$POOL/appvms/vm1
	pool-check --init "$POOL"
	truncate -s 1M "$DIR/fedora.raw"
	vol-import "$POOL/vm-templates/fedora/root" "$DIR/fedora.raw"
	vol-create -s 1M "$VM/private"
	export POOL VOLATILE_SIZE=4M REVISIONS_TO_KEEP=1
	unset TEMPLATE KEEP
	for run in 1 2 3 4 5; do
		"$TOP/tests/hooks/qubes-style" vm1 start >/dev/null
		printf "RUN%s" "$run" | dd of="$VM/private-dirty.img" conv=notrunc status=none
		"$TOP/tests/hooks/qubes-style" vm1 stop
		[ "$run" -ne 2 ] || vol-pin -r latest "$VM/private"
	done
	# The last stop prunes in the background.
	precache_awaited "$VM/private"
	# Revision 2 is the state of run 1, pinned; 5 the one -k 1 keeps.
	[ "$(revision_ids "$VM" private)" = "2 5" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 2)")" = RUN1 ]
	[ -f "$VM/$(revision_of "$VM" private 2).pin" ]
	run pool-check "$POOL"
	[ "$status" -eq 0 ]
}

@test "vol-pin: unknown revision or volume 66; missing or bad -r, extra operand 64" {
	pin_setup
	before=$(dir_state -r "$VM")
	run --separate-stderr vol-pin -r 9 "$B"
	[ "$status" -eq 66 ]
	[ "$stderr" = "vol-pin: $B: no revision 9" ]
	run --separate-stderr vol-pin -r 1 "$VM/other"
	[ "$status" -eq 66 ]
	[ "$stderr" = "vol-pin: $VM/other: no such volume" ]
	run --separate-stderr vol-pin -r 1 "$DIR/nodir/private"
	[ "$status" -eq 66 ]
	run --separate-stderr vol-pin "$B"
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"missing -r REV"*"usage: vol-pin"* ]]
	run vol-pin -r x "$B"
	[ "$status" -eq 64 ]
	run vol-pin -r 1 "$B" "$B"
	[ "$status" -eq 64 ]
	[ "$(dir_state -r "$VM")" = "$before" ]
}

@test "vol-pin: a lock held past -w exits 75 and changes nothing" {
	pin_setup
	hold_lock "$VM"
	run --separate-stderr vol-pin -w 0 -r 1 "$B"
	[ "$status" -eq 75 ]
	[ ! -e "$VM/$R1.pin" ]
}

@test "vol-pin: --help prints the usage on stdout, -V the version, -v each file operation" {
	run --separate-stderr vol-pin --help
	[ "$status" -eq 0 ]
	[ "$output" = "usage: vol-pin [-quv] [-w SECONDS] -r REV VOLUME" ]
	run vol-pin -V
	[ "$status" -eq 0 ]
	[[ "$output" == *[0-9].[0-9]* ]]
	pin_setup
	run --separate-stderr vol-pin -v -r 1 "$B"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"renamed $VM/$R1.pin~"*" to $VM/$R1.pin"* ]]
}

@test "vol-pin: the EXAMPLES of the man page work" {
	pin_setup
	cd "$DIR"
	run_man_examples vol-pin.1
	# The last example unpinned it: only the prune's survivor is left.
	[ "$(revision_ids "$VM" private)" = 3 ]
	[ ! -e "$VM/$R3.pin" ]
}
