#!/usr/bin/env bats
# Injected errors: each tool that changes files is run once per system
# call that changes a file, with that call failing with EIO, and again
# with ENOSPC where the call may need space.  The tool must exit 74 with a
# message naming the file and the reason, and leave no temp file.  Up to
# its point of no return it must leave the directory exactly as it was
# (names, checksums, inodes); past it, in a consistent state that running
# the command again completes.  The cases and the checks are in
# reliability.bash.

load helper
load reliability

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

@test "inject: reflink-clone (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "reflink-clone" btrfs
}

@test "inject: vol-create (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-create" btrfs
}

@test "inject: vol-import FILE (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-import FILE" btrfs
}

@test "inject: vol-import - (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-import -" btrfs
}

@test "inject: vol-receive full (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-receive full" btrfs
}

@test "inject: vol-receive -k 1 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-receive -k 1" btrfs
}

@test "inject: vol-snapshot -k 2 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-snapshot -k 2" btrfs
}

@test "inject: vol-snapshot (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-snapshot" xfs
}

@test "inject: vol-start (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-start" btrfs
}

@test "inject: vol-start -S (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-start -S" btrfs
}

@test "inject: vol-start --volatile (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-start --volatile" btrfs
}

@test "inject: vol-start -k -1 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-start -k -1" btrfs
}

@test "inject: vol-commit -k 1 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit -k 1" btrfs
}

@test "inject: vol-commit -k 0 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit -k 0" btrfs
}

@test "inject: vol-commit -k -1 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit -k -1" btrfs
}

@test "inject: vol-commit --precache=later (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit --precache=later" btrfs
}

@test "inject: vol-precache (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-precache" btrfs
}

@test "inject: vol-discard (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-discard" btrfs
}

@test "inject: vol-discard -S (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-discard -S" btrfs
}

@test "inject: vol-revert (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-revert" btrfs
}

@test "inject: vol-revert -k 0 (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-revert -k 0" btrfs
}

@test "inject: vol-prune (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-prune" btrfs
}

@test "inject: vol-resize (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-resize" btrfs
}

@test "inject: vol-resize running (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-resize running" btrfs
}

@test "inject: vol-remove (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-remove" btrfs
}

@test "inject: vol-pin (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-pin" btrfs
}

@test "inject: vol-pin -u (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-pin -u" btrfs
}

@test "inject: vol-revert pinned (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-revert pinned" btrfs
}

@test "inject: vol-prune buckets (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-prune buckets" btrfs
}

@test "inject: pool-check --repair (btrfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "pool-check --repair" btrfs
}

@test "inject: reflink-clone (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "reflink-clone" xfs
}

@test "inject: vol-commit -k 1 (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit -k 1" xfs
}

@test "inject: vol-commit --precache=later (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit --precache=later" xfs
}

@test "inject: vol-precache (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-precache" xfs
}

@test "inject: vol-revert -r 1 (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-revert -r 1" xfs
}

@test "inject: vol-prune -u (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-prune -u" xfs
}

@test "inject: vol-remove -f pinned (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-remove -f pinned" xfs
}

@test "inject: vol-resize -f shrink (xfs): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-resize -f shrink" xfs
}

@test "inject: reflink-clone copy (ext4): an error rolls back or leaves a state a re-run completes" {
	inject_case "reflink-clone copy" ext4
}

@test "inject: vol-import FILE (ext4): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-import FILE" ext4
}

@test "inject: vol-start copy (ext4): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-start copy" ext4
}

@test "inject: vol-commit -k 1 (ext4): an error rolls back or leaves a state a re-run completes" {
	inject_case "vol-commit -k 1" ext4
}

@test "inject: EDQUOT on an import's first data write exits 74 and changes nothing" {
	edquot_case
}

@test "inject: every case reported its error points" {
	coverage_summary
}
