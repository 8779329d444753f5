#!/usr/bin/env bats
# Kill at every step: each tool that changes files is run once per system
# call that changes a file, killed by SIGKILL just before that call.  The
# directory left must hold C's old or new image, every revision unchanged,
# at most the revisions the command drops gone, D unchanged or become C and
# nothing half-written under a final name; running the same command again
# must give the files of an uninterrupted run, with no temp file left.
# The cases and the checks are in reliability.bash.

load helper
load reliability

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

@test "crash: reflink-clone (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "reflink-clone" btrfs
}

@test "crash: vol-create (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-create" btrfs
}

@test "crash: vol-import FILE (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-import FILE" btrfs
}

@test "crash: vol-import - (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-import -" btrfs
}

@test "crash: vol-receive full (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-receive full" btrfs
}

@test "crash: vol-receive -k 1 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-receive -k 1" btrfs
}

@test "crash: vol-snapshot -k 2 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-snapshot -k 2" btrfs
}

@test "crash: vol-snapshot (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-snapshot" xfs
}

@test "crash: vol-start (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-start" btrfs
}

@test "crash: vol-start -S (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-start -S" btrfs
}

@test "crash: vol-start --volatile (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-start --volatile" btrfs
}

@test "crash: vol-start -k -1 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-start -k -1" btrfs
}

@test "crash: vol-commit -k 1 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit -k 1" btrfs
}

@test "crash: vol-commit -k 0 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit -k 0" btrfs
}

@test "crash: vol-commit -k -1 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit -k -1" btrfs
}

@test "crash: vol-commit --precache=later (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit --precache=later" btrfs
}

@test "crash: vol-precache (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-precache" btrfs
}

@test "crash: vol-discard (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-discard" btrfs
}

@test "crash: vol-discard -S (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-discard -S" btrfs
}

@test "crash: vol-revert (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-revert" btrfs
}

@test "crash: vol-revert -k 0 (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-revert -k 0" btrfs
}

@test "crash: vol-prune (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-prune" btrfs
}

@test "crash: vol-resize (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-resize" btrfs
}

@test "crash: vol-resize running (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-resize running" btrfs
}

@test "crash: vol-remove (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-remove" btrfs
}

@test "crash: vol-pin (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-pin" btrfs
}

@test "crash: vol-pin -u (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-pin -u" btrfs
}

@test "crash: vol-revert pinned (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-revert pinned" btrfs
}

@test "crash: vol-prune buckets (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-prune buckets" btrfs
}

@test "crash: pool-check --repair (btrfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "pool-check --repair" btrfs
}

@test "crash: reflink-clone (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "reflink-clone" xfs
}

@test "crash: vol-commit -k 1 (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit -k 1" xfs
}

@test "crash: vol-commit --precache=later (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit --precache=later" xfs
}

@test "crash: vol-precache (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-precache" xfs
}

@test "crash: vol-revert -r 1 (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-revert -r 1" xfs
}

@test "crash: vol-prune -u (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-prune -u" xfs
}

@test "crash: vol-remove -f pinned (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-remove -f pinned" xfs
}

@test "crash: vol-resize -f shrink (xfs): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-resize -f shrink" xfs
}

@test "crash: reflink-clone copy (ext4): every kill leaves a consistent state, a re-run finishes" {
	crash_case "reflink-clone copy" ext4
}

@test "crash: vol-import FILE (ext4): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-import FILE" ext4
}

@test "crash: vol-start copy (ext4): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-start copy" ext4
}

@test "crash: vol-commit -k 1 (ext4): every kill leaves a consistent state, a re-run finishes" {
	crash_case "vol-commit -k 1" ext4
}

# A state line: "path type md5 inode".
# check LINE...: the problems of the state LINE... after a run from the
# states in $BATS_TEST_TMPDIR/before and final.
check() {
	printf '%s\n' "$@" >"$BATS_TEST_TMPDIR/after"
	state_problems "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/final" \
		"$BATS_TEST_TMPDIR/after"
}

@test "crash: the checks catch a half-written C, a changed revision, lost data" {
	case_load "vol-commit -k 1" btrfs
	rev1=vm/private.img.1@2024-02-01T10:00:00Z
	rev2=vm/private.img.2@2024-03-01T10:00:00Z
	printf '%s\n' "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		"$rev1 f R1 4" >"$BATS_TEST_TMPDIR/before"
	printf '%s\n' "vm d - 1" "vm/private-precache.img f D0 5" "vm/private.img f D0 3" \
		"$rev1 f R1 4" "$rev2 f C0 2" >"$BATS_TEST_TMPDIR/final"
	# Killed between link and rename: consistent.
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		"$rev1 f R1 4" "$rev2 f C0 2" "vm/private.img~x f XX 9"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f XX 2" "$rev1 f R1 4"
	[[ "$output" == *"vm/private.img holds neither its old nor its new content"* ]]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" "$rev1 f XX 4"
	[[ "$output" == *"$rev1: a revision whose content changed"* ]]
	run check "vm d - 1" "vm/private.img f C0 2" "$rev1 f R1 4" "$rev2 f C0 2"
	[[ "$output" == *"vm/private-dirty.img: its data, kept by the command, is lost"* ]]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2"
	[[ "$output" == *"$rev1: a revision the command keeps is gone"* ]]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		"$rev1 f R1 4" "$rev2 f R1 4" "vm/private-precache.img f XX 7"
	[[ "$output" == *"$rev2: a new revision that is not the old C"* ]]
	[[ "$output" == *"vm/private-precache.img: neither an old nor a new file"* ]]
}

@test "crash: the checks catch a pinned revision left without its marker" {
	case_load "vol-remove -f pinned" xfs
	rev1=vm/private.img.1@2024-02-01T10:00:00Z
	printf '%s\n' "vm d - 1" "vm/private.img f C0 2" "$rev1 f R1 4" \
		"$rev1.pin f E0 5" >"$BATS_TEST_TMPDIR/before"
	# vol-remove -f: the revision goes before its marker.
	: >"$BATS_TEST_TMPDIR/final"
	run check "vm d - 1" "$rev1.pin f E0 5"
	[ -z "$output" ]
	run check "vm d - 1" "$rev1 f R1 4"
	[ "$output" = "$rev1: a pinned revision without its marker" ]
	# A command that keeps the pin (vol-commit) may not lose the marker.
	printf '%s\n' "vm d - 1" "vm/private.img f D0 3" "$rev1 f R1 4" \
		"$rev1.pin f E0 5" >"$BATS_TEST_TMPDIR/final"
	run check "vm d - 1" "vm/private.img f C0 2" "$rev1 f R1 4"
	[[ "$output" == *"$rev1: a pinned revision without its marker"* ]]
	# vol-pin -u: its final state has the revision alone.
	printf '%s\n' "vm d - 1" "vm/private.img f C0 2" "$rev1 f R1 4" \
		>"$BATS_TEST_TMPDIR/final"
	run check "vm d - 1" "vm/private.img f C0 2" "$rev1 f R1 4"
	[ -z "$output" ]
}

@test "crash: every case reported its kill points" {
	coverage_summary
}
