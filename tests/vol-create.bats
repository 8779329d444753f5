#!/usr/bin/env bats
# vol-create: a new, empty, sparse origin volume.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

create_makes_clean_and_precache() {
	vol_setup "$1"
	run vol-create -s 1M "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	for f in "$B.img" "$B-precache.img"; do
		[ "$(stat -c %s "$f")" -eq 1048576 ]
		[ "$(stat -c %b "$f")" -eq 0 ]
		[ "$(stat -c %a "$f")" = 600 ]
	done
	[ "$(inode "$B.img")" != "$(inode "$B-precache.img")" ]
	[ "$(mtime_ns "$B.img")" = "$(mtime_ns "$B-precache.img")" ]
}

@test "vol-create: btrfs: C and P, 1 MiB, no blocks, two inodes, one mtime, 0600" {
	create_makes_clean_and_precache btrfs
}

@test "vol-create: xfs: C and P, 1 MiB, no blocks, two inodes, one mtime, 0600" {
	create_makes_clean_and_precache xfs
}

@test "vol-create: an existing volume without -f exits 73 and changes nothing" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	before="$(inode "$B.img") $(inode "$B-precache.img")"
	run vol-create -s 2M "$B"
	[ "$status" -eq 73 ]
	[[ "$output" == *"the volume exists (use -f to replace it)"* ]]
	[ "$(inode "$B.img") $(inode "$B-precache.img")" = "$before" ]
	[ "$(stat -c %s "$B.img")" -eq 1048576 ]
}

@test "vol-create: -f replaces every file of the volume, and only those" {
	vol_setup xfs
	vol_make OLD
	ln "$B.img" "$B.img.1@2020-01-01T00:00:00Z"
	echo d >"$B-dirty.img"
	echo i >"$B-import.img"
	echo t >"$B.img~abc123"
	echo t >"$B.img.2@2020-01-01T00:00:00Z~abc123"
	echo other >"$VM/privatex.img~x"
	echo other >"$VM/root.img"
	run vol-create -f -s 64K "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img privatex.img~x root.img" ]
	[ "$(stat -c %s "$B.img")" -eq 65536 ]
	cmp -n 65536 "$B.img" /dev/zero
}

@test "vol-create: -k -1 makes only C" {
	vol_setup btrfs
	run vol-create -k -1 -s 1M "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private.img" ]
}

@test "vol-create: a missing VM directory is made, one level only" {
	vol_setup btrfs
	run vol-create -s 4K "$POOL/appvms/vm2/private"
	[ "$status" -eq 0 ]
	[ -f "$POOL/appvms/vm2/private.img" ]
	run vol-create -s 4K "$POOL/nope/vm3/private"
	[ "$status" -eq 66 ]
	[ ! -e "$POOL/nope" ]
}

@test "vol-create: B.img names the same volume as B" {
	vol_setup btrfs
	run vol-create -s 4K "$B.img"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-create: C that is a directory or a symlink exits 65 and is left alone" {
	vol_setup btrfs
	mkdir "$B.img"
	run vol-create -f -s 4K "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$B.img: not a regular file"* ]]
	[ -d "$B.img" ]
	rmdir "$B.img"
	echo target >"$DIR/target"
	ln -s "$DIR/target" "$B.img"
	run vol-create -f -s 4K "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"symbolic link"* ]]
	[ -L "$B.img" ]
	[ "$(cat "$DIR/target")" = target ]
}

@test "vol-create: usage errors exit 64 and create nothing" {
	vol_setup btrfs
	for args in "" "$B" "-s 1M" "-s 12Q $B" "-s -5 $B" "-s 1M -k -2 $B" \
		"-s 1M -k x $B" "-x -s 1M $B" "-s 1M $B extra" "-s 1M -w x $B"; do
		# shellcheck disable=SC2086
		run vol-create $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-create"* ]]
	done
	[ "$(files_in "$VM")" = "" ]
}

@test "vol-create: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$POOL"
	run_man_examples vol-create.1
}
