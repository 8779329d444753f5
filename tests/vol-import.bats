#!/usr/bin/env bats
# vol-import: a file or standard input becomes the volume's new C, the old C
# a revision; short or long input with -s and dirty volumes change nothing.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

# A test that made its VM directory immutable undoes it even when it fails.
teardown() {
	release_lock
	if [ -n "${DIR:-}" ] && [ -d "$DIR/vm1" ]; then
		chattr -i "$DIR/vm1" 2>/dev/null || true
	fi
}

# An origin volume vm1/private in $DIR: C holds "OLD" at offset 0 of 64 KiB
# with a fixed mtime, P is its copy with the same mtime.
make_volume() {
	mkdir -p "$DIR/vm1"
	truncate -s 64K "$DIR/vm1/private.img"
	printf OLD | dd of="$DIR/vm1/private.img" conv=notrunc status=none
	touch -d '2021-03-04 05:06:07Z' "$DIR/vm1/private.img"
	cp --reflink=auto -p "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
}

import_file_into_existing() {
	fs_dir "$1"
	make_volume
	old_inode=$(inode "$DIR/vm1/private.img")
	random_file "$DIR/new.img" 192K
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq $((192 << 10)) ]
	[ "$(stat -c %a "$DIR/vm1/private.img")" = 600 ]
	extents_shared "$DIR/vm1/private.img"
	rev=private.img.1@2021-03-04T05:06:07Z
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $rev" ]
	[ "$(inode "$DIR/vm1/$rev")" = "$old_inode" ]
	[ "$(head -c 3 "$DIR/vm1/$rev")" = OLD ]
	cmp "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
	[ "$(mtime_ns "$DIR/vm1/private-precache.img")" = "$(mtime_ns "$DIR/vm1/private.img")" ]
	[ "$(inode "$DIR/vm1/private-precache.img")" != "$(inode "$DIR/vm1/private.img")" ]
}

import_stdin_sparse() {
	fs_dir "$1"
	make_volume
	random_file "$DIR/data" 4096
	{ cat "$DIR/data" && head -c 1M /dev/zero && cat "$DIR/data"; } >"$DIR/input"
	run bash -c 'cat "$1" | vol-import "$2"' _ "$DIR/input" "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	cmp "$DIR/input" "$DIR/vm1/private.img"
	sync -f "$DIR/vm1/private.img"
	# Two blocks of data; XFS may keep some speculative preallocation.
	[ "$(allocated "$DIR/vm1/private.img")" -lt $((512 << 10)) ]
	[ "$(revision_ids "$DIR/vm1" private)" = 1 ]
	cmp "$DIR/input" "$DIR/vm1/private-precache.img"
	no_temp_files "$DIR"
}

not_enough_stdin() {
	fs_dir "$1"
	make_volume
	before=$(dir_state "$DIR/vm1")
	run bash -c 'printf abc | vol-import -s 4K "$1"' _ "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[ "$output" = "vol-import: $DIR/vm1/private: not enough data (copied 3 bytes, expected 4096 bytes)" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img" ]
}

too_much_stdin() {
	fs_dir "$1"
	make_volume
	before=$(dir_state "$DIR/vm1")
	run bash -c 'head -c 3M /dev/urandom | vol-import -s 1M "$1"' _ "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[ "$output" = "vol-import: $DIR/vm1/private: too much data (expected 1048576 bytes)" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img" ]
}

dirty_refused() {
	fs_dir "$1"
	make_volume
	echo running >"$DIR/vm1/private-dirty.img"
	random_file "$DIR/new.img" 4096
	before=$(dir_state "$DIR/vm1")
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 75 ]
	[[ "$output" == "vol-import: $DIR/vm1/private-dirty.img: the volume is dirty"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

import_creates() {
	fs_dir "$1"
	mkdir "$DIR/vm1"
	random_file "$DIR/new.img" 64K
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img" ]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
	cmp "$DIR/new.img" "$DIR/vm1/private-precache.img"
	[ "$(mtime_ns "$DIR/vm1/private-precache.img")" = "$(mtime_ns "$DIR/vm1/private.img")" ]
}

@test "vol-import: btrfs: FILE's clone becomes C, the old C revision 1, P refreshed" {
	import_file_into_existing btrfs
}

@test "vol-import: xfs: FILE's clone becomes C, the old C revision 1, P refreshed" {
	import_file_into_existing xfs
}

@test "vol-import: btrfs: standard input is written sparse" {
	import_stdin_sparse btrfs
}

@test "vol-import: xfs: standard input is written sparse" {
	import_stdin_sparse xfs
}

@test "vol-import: a dash reads standard input too" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/input" 10000
	run vol-import "$DIR/vm1/private.img" - <"$DIR/input"
	[ "$status" -eq 0 ]
	cmp "$DIR/input" "$DIR/vm1/private.img"
}

@test "vol-import: -s with exactly SIZE bytes from a pipe succeeds" {
	fs_dir btrfs
	make_volume
	run bash -c 'head -c 1M /dev/urandom | vol-import -s 1M "$1"' _ "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq $((1 << 20)) ]
}

@test "vol-import: btrfs: -s with fewer bytes on stdin: not enough data, 65, nothing changed" {
	not_enough_stdin btrfs
}

@test "vol-import: xfs: -s with fewer bytes on stdin: not enough data, 65, nothing changed" {
	not_enough_stdin xfs
}

@test "vol-import: btrfs: -s with more bytes on stdin: too much data, 65, nothing changed" {
	too_much_stdin btrfs
}

@test "vol-import: xfs: -s with more bytes on stdin: too much data, 65, nothing changed" {
	too_much_stdin xfs
}

@test "vol-import: -s one byte short of a larger input is too much data" {
	fs_dir btrfs
	make_volume
	before=$(dir_state "$DIR/vm1")
	random_file "$DIR/input" 4097
	run vol-import -s 4K "$DIR/vm1/private" <"$DIR/input"
	[ "$status" -eq 65 ]
	[[ "$output" == *": too much data (expected 4096 bytes)" ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: -s that FILE's size does not match: 65, nothing changed" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/small" 1000
	random_file "$DIR/big" 9000
	before=$(dir_state "$DIR/vm1")
	run vol-import -s 4K "$DIR/vm1/private" "$DIR/small"
	[ "$status" -eq 65 ]
	[ "$output" = "vol-import: $DIR/vm1/private: not enough data (copied 1000 bytes, expected 4096 bytes)" ]
	run vol-import -s 4K "$DIR/vm1/private" "$DIR/big"
	[ "$status" -eq 65 ]
	[ "$output" = "vol-import: $DIR/vm1/private: too much data (expected 4096 bytes)" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: btrfs: a dirty volume is refused with 75, nothing changed" {
	dirty_refused btrfs
}

@test "vol-import: xfs: a dirty volume is refused with 75, nothing changed" {
	dirty_refused xfs
}

@test "vol-import: btrfs: a missing volume is created, with no revision" {
	import_creates btrfs
}

@test "vol-import: xfs: a missing volume is created, with no revision" {
	import_creates xfs
}

@test "vol-import: a missing VM directory is created, one level" {
	fs_dir btrfs
	random_file "$DIR/input" 8192
	run vol-import "$DIR/vm2/root" <"$DIR/input"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm2")" = "root-precache.img root.img" ]
	cmp "$DIR/input" "$DIR/vm2/root.img"
}

@test "vol-import: a VM directory whose parent is missing: 66, nothing created" {
	fs_dir btrfs
	random_file "$DIR/input" 8192
	run vol-import "$DIR/a/vm1/private" "$DIR/input"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/a"*"No such file or directory"* ]]
	[ ! -e "$DIR/a" ]
}

@test "vol-import: ext4: FILE is copied, keeping holes" {
	fs_dir ext4
	make_volume
	truncate -s 1M "$DIR/new.img"
	random_file "$DIR/data" 4096
	dd if="$DIR/data" of="$DIR/new.img" bs=4096 seek=100 conv=notrunc status=none
	run vol-import -v "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-import: copied $DIR/new.img to $DIR/vm1/private-import.img~"* ]]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
	sync -f "$DIR/vm1/private.img"
	[ "$(allocated "$DIR/vm1/private.img")" -eq 4096 ]
	[ "$(revision_ids "$DIR/vm1" private)" = 1 ]
	cmp "$DIR/new.img" "$DIR/vm1/private-precache.img"
}

@test "vol-import: ext4: standard input is written sparse" {
	fs_dir ext4
	make_volume
	random_file "$DIR/data" 4096
	{ head -c 1M /dev/zero && cat "$DIR/data"; } >"$DIR/input"
	run bash -c 'cat "$1" | vol-import "$2"' _ "$DIR/input" "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	cmp "$DIR/input" "$DIR/vm1/private.img"
	sync -f "$DIR/vm1/private.img"
	[ "$(allocated "$DIR/vm1/private.img")" -eq 4096 ]
}

@test "vol-import: a FILE on another filesystem is copied" {
	fs_dir btrfs
	btrfs_dir=$DIR
	random_file "$btrfs_dir/new.img" 64K
	fs_dir xfs
	make_volume
	run vol-import -v "$DIR/vm1/private" "$btrfs_dir/new.img"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-import: copied $btrfs_dir/new.img to $DIR/vm1/private-import.img~"* ]]
	cmp "$btrfs_dir/new.img" "$DIR/vm1/private.img"
	extents_unshared "$btrfs_dir/new.img"
	[ "$(revision_ids "$DIR/vm1" private)" = 1 ]
}

@test "vol-import: -k 1 prunes the oldest revisions after the import" {
	fs_dir btrfs
	make_volume
	echo one >"$DIR/vm1/private.img.3@2020-01-01T00:00:00Z"
	echo two >"$DIR/vm1/private.img.4@2020-01-02T00:00:00Z"
	random_file "$DIR/new.img" 4096
	run vol-import -k 1 "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img private.img.5@2021-03-04T05:06:07Z" ]
	[ "$(head -c 3 "$DIR/vm1/private.img.5@2021-03-04T05:06:07Z")" = OLD ]
}

@test "vol-import: -k 0 makes no revision and removes the old ones" {
	fs_dir btrfs
	make_volume
	echo one >"$DIR/vm1/private.img.3@2020-01-01T00:00:00Z"
	random_file "$DIR/new.img" 4096
	run vol-import -k 0 "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img" ]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
}

@test "vol-import: -k -1 leaves only C" {
	fs_dir btrfs
	make_volume
	echo one >"$DIR/vm1/private.img.3@2020-01-01T00:00:00Z"
	random_file "$DIR/new.img" 4096
	run vol-import -k -1 "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
}

@test "vol-import: stale temp files and a leftover I are removed, another volume's kept" {
	fs_dir btrfs
	make_volume
	echo x >"$DIR/vm1/private.img~x"
	echo x >"$DIR/vm1/private-import.img~x"
	echo x >"$DIR/vm1/private-import.img"
	echo x >"$DIR/vm1/privatex.img~x"
	random_file "$DIR/new.img" 4096
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img private.img.1@2021-03-04T05:06:07Z privatex.img~x" ]
	cmp "$DIR/new.img" "$DIR/vm1/private.img"
}

@test "vol-import: a missing FILE: 66, nothing created" {
	fs_dir btrfs
	run vol-import "$DIR/vm1/private" "$DIR/nope"
	[ "$status" -eq 66 ]
	[ "$output" = "vol-import: $DIR/nope: No such file or directory" ]
	[ ! -e "$DIR/vm1" ]
}

@test "vol-import: a FILE that is a directory or a FIFO: 65, nothing changed" {
	fs_dir btrfs
	make_volume
	mkdir "$DIR/somedir"
	mkfifo "$DIR/fifo"
	before=$(dir_state "$DIR/vm1")
	run vol-import "$DIR/vm1/private" "$DIR/somedir"
	[ "$status" -eq 65 ]
	[[ "$output" == "vol-import: $DIR/somedir: not a regular file"* ]]
	run timeout 5 vol-import "$DIR/vm1/private" "$DIR/fifo"
	[ "$status" -eq 65 ]
	[[ "$output" == "vol-import: $DIR/fifo: not a regular file"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: C that is a directory: 65, nothing changed" {
	fs_dir btrfs
	mkdir -p "$DIR/vm1/private.img"
	random_file "$DIR/new.img" 4096
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private.img: not a regular file"* ]]
	[ -d "$DIR/vm1/private.img" ]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
	[ "$(files_in "$DIR/vm1/private.img")" = "" ]
}

@test "vol-import: C that is a symlink: 65, its target neither followed nor changed" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	echo target >"$DIR/target"
	ln -s "$DIR/target" "$DIR/vm1/private.img"
	random_file "$DIR/new.img" 4096
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private.img: is a symbolic link"* ]]
	[ -L "$DIR/vm1/private.img" ]
	[ "$(cat "$DIR/target")" = target ]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
}

@test "vol-import: P that is a FIFO: 65, nothing changed" {
	fs_dir btrfs
	make_volume
	rm "$DIR/vm1/private-precache.img"
	mkfifo "$DIR/vm1/private-precache.img"
	random_file "$DIR/new.img" 4096
	before=$(dir_state "$DIR/vm1")
	run timeout 5 vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private-precache.img: not a regular file"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: a failing write (ENOSPC) exits 74 naming C, nothing changed" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/input" 64K
	before=$(dir_state "$DIR/vm1")
	run strace -f -o "$DIR/trace" -e trace=pwrite64 -e inject=pwrite64:error=ENOSPC \
		vol-import "$DIR/vm1/private" <"$DIR/input"
	[ "$status" -eq 74 ]
	[[ "$output" == *"vol-import: $DIR/vm1/private.img: No space left on device"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: a real full ext4 filesystem exits 74, nothing changed" {
	fs_dir ext4
	make_volume
	random_file "$DIR/input" 256K
	before=$(dir_state "$DIR/vm1")
	dd if=/dev/zero of="$DIR/fill" bs=1M status=none 2>/dev/null || true
	dd if=/dev/zero of="$DIR/fill2" bs=4096 status=none 2>/dev/null || true
	run vol-import "$DIR/vm1/private" <"$DIR/input"
	rm -f "$DIR/fill" "$DIR/fill2"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/vm1/private.img: No space left on device"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: a failing read of FILE exits 74 naming FILE, nothing changed" {
	fs_dir ext4
	make_volume
	random_file "$DIR/new.img" 64K
	before=$(dir_state "$DIR/vm1")
	run strace -f -o "$DIR/trace" -P "$DIR/new.img" -e trace=pread64 \
		-e inject=pread64:error=EIO vol-import "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 74 ]
	[[ "$output" == *"vol-import: $DIR/new.img: Input/output error"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: permission denied (an immutable VM directory): 77, nothing changed" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/new.img" 4096
	before=$(dir_state "$DIR/vm1")
	chattr +i "$DIR/vm1"
	run vol-import "$DIR/vm1/private" "$DIR/new.img"
	chattr -i "$DIR/vm1"
	[ "$status" -eq 77 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: -w 0 while another process holds the lock: 75, nothing changed" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/new.img" 4096
	before=$(dir_state "$DIR/vm1")
	hold_lock "$DIR/vm1"
	run vol-import -w 0 "$DIR/vm1/private" "$DIR/new.img"
	release_lock
	[ "$status" -eq 75 ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-import: the operations are logged with -v" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/new.img" 4096
	run vol-import -v "$DIR/vm1/private" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-import: cloned $DIR/new.img to $DIR/vm1/private-import.img~"* ]]
	[[ "$output" == *"vol-import: linked $DIR/vm1/private.img to $DIR/vm1/private.img.1@"* ]]
	[[ "$output" == *"vol-import: renamed $DIR/vm1/private-import.img to $DIR/vm1/private.img"* ]]
}

@test "vol-import: usage errors exit 64 with usage on stderr and change nothing" {
	fs_dir btrfs
	make_volume
	cd "$DIR"
	random_file new.img 4096
	before=$(dir_state vm1)
	for args in "" "vm1/private new.img extra" "-x vm1/private new.img" \
		"-s 12Q vm1/private new.img" "-s -5 vm1/private new.img" \
		"-s 1e3 vm1/private new.img" "-k -2 vm1/private new.img" \
		"-k x vm1/private new.img" "-w x vm1/private new.img" "-s"; do
		# shellcheck disable=SC2086
		run --separate-stderr vol-import $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[ -z "$output" ]
		# shellcheck disable=SC2154 # set by run --separate-stderr
		[[ "$stderr" == *"usage: vol-import"* ]]
	done
	[ "$(dir_state vm1)" = "$before" ]
}

@test "vol-import: --help prints the usage on stdout, -V the version" {
	run --separate-stderr vol-import --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: vol-import "* ]]
	[ -z "$stderr" ]
	run vol-import -V
	[ "$status" -eq 0 ]
	[[ "$output" == "vol-import (file-reflink) "* ]]
}

@test "vol-import: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	random_file disk.img 64K
	gzip -c disk.img >disk.img.gz
	run_man_examples vol-import.1
	# The last example imported disk.img again and kept one revision:
	# the 1 MiB of zeros of the second.
	cmp disk.img vm1/private.img
	[ "$(revision_ids vm1 private)" = 2 ]
	cmp -n $((1 << 20)) /dev/zero "vm1/$(revision_of vm1 private 2)"
	[ "$(stat -c %s "vm1/$(revision_of vm1 private 2)")" -eq $((1 << 20)) ]
}
