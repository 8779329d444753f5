#!/usr/bin/env bats
# vol-resize: a stopped volume's C is replaced by a new inode of the new size
# (a shrink saves it as a revision first); a running volume's D is resized in
# place and its loop devices learn the new capacity.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

# Loop devices attached by a test are detached, and files it made
# immutable made mutable again, even when it fails.
teardown() {
	release_lock
	local device
	if [ -n "${DIR:-}" ] && [ -d "$DIR/vm1" ]; then
		chattr -i "$DIR/vm1" "$DIR/vm1/private-dirty.img" 2>/dev/null || true
	fi
	if [ -f "$BATS_TEST_TMPDIR/loops" ]; then
		while read -r device; do
			losetup -d "$device" || true
		done <"$BATS_TEST_TMPDIR/loops"
	fi
}

# Attaches FILE to a new loop device and prints the device.
loop_attach() {
	local device
	device=$(losetup -f --show "$1") || return 1
	echo "$device" >>"$BATS_TEST_TMPDIR/loops"
	echo "$device"
}

# A stopped origin volume vm1/private in $DIR: an 8 KiB C with "DATA" at
# offset 6000 and a fixed mtime, P its copy with the same mtime, and an
# older revision 1.
make_volume() {
	mkdir -p "$DIR/vm1"
	truncate -s 8K "$DIR/vm1/private.img"
	printf DATA | dd of="$DIR/vm1/private.img" bs=1 seek=6000 conv=notrunc status=none
	touch -d '2021-03-04 05:06:07Z' "$DIR/vm1/private.img"
	cp --reflink=auto -p "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
	echo REV1 >"$DIR/vm1/private.img.1@2020-01-01T00:00:00Z"
}

# The 4 bytes at offset 6000 of FILE.
bytes_at_6000() {
	dd if="$1" bs=1 skip=6000 count=4 status=none
}

REV1=private.img.1@2020-01-01T00:00:00Z
REV2=private.img.2@2021-03-04T05:06:07Z

grow_stopped() {
	fs_dir "$1"
	make_volume
	old_inode=$(inode "$DIR/vm1/private.img")
	rev_inode=$(inode "$DIR/vm1/$REV1")
	run vol-resize -s 16K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV1" ]
	[ "$(inode "$DIR/vm1/private.img")" != "$old_inode" ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 16384 ]
	[ "$(bytes_at_6000 "$DIR/vm1/private.img")" = DATA ]
	cmp -i 8192:0 -n 8192 "$DIR/vm1/private.img" /dev/zero
	[ "$(stat -c %a "$DIR/vm1/private.img")" = 600 ]
	# P is made anew from the new C (its size and mtime show it; the
	# old P's inode number may be reused).
	cmp "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
	[ "$(mtime_ns "$DIR/vm1/private-precache.img")" = "$(mtime_ns "$DIR/vm1/private.img")" ]
	# The revision is untouched.
	[ "$(inode "$DIR/vm1/$REV1")" = "$rev_inode" ]
	[ "$(cat "$DIR/vm1/$REV1")" = REV1 ]
}

shrink_without_force() {
	fs_dir "$1"
	make_volume
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 4K "$DIR/vm1/private"
	[ "$status" -eq 64 ]
	[ "$output" = "vol-resize: $DIR/vm1/private.img: shrinking from 8192 to 4096 bytes needs -f (the data past the new end is lost)" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

shrink_saves_revision() {
	fs_dir "$1"
	make_volume
	old_inode=$(inode "$DIR/vm1/private.img")
	run vol-resize -f -k 1 -s 4K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV2" ]
	[ "$(inode "$DIR/vm1/$REV2")" = "$old_inode" ]
	[ "$(stat -c %s "$DIR/vm1/$REV2")" -eq 8192 ]
	[ "$(bytes_at_6000 "$DIR/vm1/$REV2")" = DATA ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 4096 ]
	cmp -n 4096 "$DIR/vm1/$REV2" "$DIR/vm1/private.img"
	cmp "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
}

grow_relative() {
	fs_dir "$1"
	make_volume
	run vol-resize -s +8K "$DIR/vm1/private.img"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 16384 ]
	[ "$(bytes_at_6000 "$DIR/vm1/private.img")" = DATA ]
	run vol-resize -s +8K "$DIR/vm1/private.img"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 24576 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV1" ]
}

# A running volume: D of 1 MiB attached to a loop device, and another file
# attached to a second one whose backing file has grown meanwhile.
grow_running() {
	fs_dir "$1"
	make_volume
	random_file "$DIR/vm1/private-dirty.img" 1M
	cp "$DIR/vm1/private-dirty.img" "$DIR/dirty.orig"
	dirty_inode=$(inode "$DIR/vm1/private-dirty.img")
	loop=$(loop_attach "$DIR/vm1/private-dirty.img")
	truncate -s 1M "$DIR/other.img"
	other=$(loop_attach "$DIR/other.img")
	truncate -s 3M "$DIR/other.img"
	[ "$(blockdev --getsize64 "$loop")" -eq $((1 << 20)) ]
	clean_before=$(dir_state "$DIR/vm1" | grep -v dirty)
	run vol-resize -s 2M "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(inode "$DIR/vm1/private-dirty.img")" = "$dirty_inode" ]
	[ "$(stat -c %s "$DIR/vm1/private-dirty.img")" -eq $((2 << 20)) ]
	cmp -n $((1 << 20)) "$DIR/dirty.orig" "$DIR/vm1/private-dirty.img"
	[ "$(blockdev --getsize64 "$loop")" -eq $((2 << 20)) ]
	# Only the devices of D were told.
	[ "$(blockdev --getsize64 "$other")" -eq $((1 << 20)) ]
	# C, P and the revision are untouched.
	[ "$(dir_state "$DIR/vm1" | grep -v dirty)" = "$clean_before" ]
}

@test "vol-resize: btrfs: growing a stopped volume gives C a new inode, P refreshed" {
	grow_stopped btrfs
}

@test "vol-resize: xfs: growing a stopped volume gives C a new inode, P refreshed" {
	grow_stopped xfs
}

@test "vol-resize: btrfs: shrinking without -f: 64, nothing changed" {
	shrink_without_force btrfs
}

@test "vol-resize: xfs: shrinking without -f: 64, nothing changed" {
	shrink_without_force xfs
}

@test "vol-resize: btrfs: shrinking with -f -k 1 saves the old C as a revision first" {
	shrink_saves_revision btrfs
}

@test "vol-resize: xfs: shrinking with -f -k 1 saves the old C as a revision first" {
	shrink_saves_revision xfs
}

@test "vol-resize: btrfs: +SIZE grows relative to the current size" {
	grow_relative btrfs
}

@test "vol-resize: xfs: +SIZE grows relative to the current size" {
	grow_relative xfs
}

@test "vol-resize: the same size changes nothing" {
	fs_dir btrfs
	make_volume
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 8K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: shrinking with -f and no -k adds a revision and keeps the others" {
	fs_dir btrfs
	make_volume
	run vol-resize -f -s 4K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV1 $REV2" ]
	[ "$(bytes_at_6000 "$DIR/vm1/$REV2")" = DATA ]
}

@test "vol-resize: shrinking with -f -k 0 makes no revision" {
	fs_dir btrfs
	make_volume
	run vol-resize -f -k 0 -s 4K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img" ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 4096 ]
}

@test "vol-resize: -k -1 leaves only C" {
	fs_dir btrfs
	make_volume
	run vol-resize -k -1 -s 16K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq 16384 ]
}

@test "vol-resize: a reader of the old C keeps seeing all of it" {
	fs_dir btrfs
	make_volume
	exec 5<"$DIR/vm1/private.img"
	run vol-resize -f -s 4K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(dd bs=1 skip=6000 count=4 status=none <&5)" = DATA ]
	exec 5<&-
}

@test "vol-resize: ext4: growing copies C, keeping holes" {
	fs_dir ext4
	make_volume
	old_inode=$(inode "$DIR/vm1/private.img")
	run vol-resize -v -s 1M "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-resize: copied $DIR/vm1/private.img to $DIR/vm1/private.img~"* ]]
	[ "$(inode "$DIR/vm1/private.img")" != "$old_inode" ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq $((1 << 20)) ]
	[ "$(bytes_at_6000 "$DIR/vm1/private.img")" = DATA ]
	sync -f "$DIR/vm1/private.img"
	[ "$(allocated "$DIR/vm1/private.img")" -le 4096 ]
	cmp "$DIR/vm1/private.img" "$DIR/vm1/private-precache.img"
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV1" ]
}

@test "vol-resize: btrfs: a running volume's D grows in place and its loop device learns it" {
	grow_running btrfs
}

@test "vol-resize: xfs: a running volume's D grows in place and its loop device learns it" {
	grow_running xfs
}

@test "vol-resize: after growing a running volume, vol-commit gives C the new size" {
	fs_dir btrfs
	make_volume
	truncate -s 1M "$DIR/vm1/private-dirty.img"
	run vol-resize -s +1M "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	run vol-commit "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/vm1/private.img")" -eq $((2 << 20)) ]
}

@test "vol-resize: shrinking a running volume without -f: 64, D and its loop device unchanged" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/vm1/private-dirty.img" 1M
	loop=$(loop_attach "$DIR/vm1/private-dirty.img")
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 512K "$DIR/vm1/private"
	[ "$status" -eq 64 ]
	[[ "$output" == "vol-resize: $DIR/vm1/private-dirty.img: shrinking from 1048576 to 524288 bytes needs -f"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
	[ "$(blockdev --getsize64 "$loop")" -eq $((1 << 20)) ]
}

@test "vol-resize: shrinking a running volume with -f cuts D in place, no revision" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/vm1/private-dirty.img" 1M
	cp "$DIR/vm1/private-dirty.img" "$DIR/dirty.orig"
	dirty_inode=$(inode "$DIR/vm1/private-dirty.img")
	loop=$(loop_attach "$DIR/vm1/private-dirty.img")
	run vol-resize -v -f -s 512K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-resize: truncated $DIR/vm1/private-dirty.img from 1048576 to 524288 bytes"* ]]
	[[ "$output" == *"vol-resize: set the capacity of $loop"* ]]
	[ "$(inode "$DIR/vm1/private-dirty.img")" = "$dirty_inode" ]
	cmp -n $((512 << 10)) "$DIR/dirty.orig" "$DIR/vm1/private-dirty.img"
	[ "$(stat -c %s "$DIR/vm1/private-dirty.img")" -eq $((512 << 10)) ]
	[ "$(blockdev --getsize64 "$loop")" -eq $((512 << 10)) ]
	[ "$(files_in "$DIR/vm1")" = "private-dirty.img private-precache.img private.img $REV1" ]
}

@test "vol-resize: ext4: a size the filesystem cannot hold: 65, nothing changed" {
	fs_dir ext4
	make_volume
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 1000000T "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[ "$output" = "vol-resize: $DIR/vm1/private.img: File too large" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
	no_temp_files "$DIR"
}

@test "vol-resize: a failing write while copying (ENOSPC): 74, nothing changed" {
	fs_dir ext4
	make_volume
	before=$(dir_state "$DIR/vm1")
	run strace -f -o "$DIR/trace" -e trace=pwrite64 -e inject=pwrite64:error=ENOSPC \
		vol-resize -s 16K "$DIR/vm1/private"
	[ "$status" -eq 74 ]
	[[ "$output" == *"vol-resize: $DIR/vm1/private.img: No space left on device"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: a failing truncate of D (EIO): 74, D unchanged" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/vm1/private-dirty.img" 64K
	before=$(dir_state "$DIR/vm1")
	run strace -f -o "$DIR/trace" -e trace=ftruncate -e inject=ftruncate:error=EIO \
		vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 74 ]
	[[ "$output" == *"vol-resize: $DIR/vm1/private-dirty.img: Input/output error"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: permission denied (an immutable VM directory): 77, nothing changed" {
	fs_dir btrfs
	make_volume
	before=$(dir_state "$DIR/vm1")
	chattr +i "$DIR/vm1"
	run vol-resize -s 16K "$DIR/vm1/private"
	chattr -i "$DIR/vm1"
	[ "$status" -eq 77 ]
	[[ "$output" == *"Operation not permitted"* ]]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: permission denied (an immutable D): 77, D unchanged" {
	fs_dir btrfs
	make_volume
	random_file "$DIR/vm1/private-dirty.img" 64K
	chattr +i "$DIR/vm1/private-dirty.img"
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 1M "$DIR/vm1/private"
	chattr -i "$DIR/vm1/private-dirty.img"
	[ "$status" -eq 77 ]
	[ "$output" = "vol-resize: $DIR/vm1/private-dirty.img: Operation not permitted" ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: a volume with neither C nor D: 66" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	run vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[ "$output" = "vol-resize: $DIR/vm1/private.img: no such volume" ]
	[ "$(files_in "$DIR/vm1")" = "" ]
}

@test "vol-resize: a missing VM directory: 66, nothing created" {
	fs_dir btrfs
	run vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[ ! -e "$DIR/vm1" ]
	run vol-resize -s 1M "$DIR/a/vm1/private"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/a/vm1: No such file or directory"* ]]
	[ ! -e "$DIR/a" ]
}

@test "vol-resize: C that is a directory: 65, nothing changed" {
	fs_dir btrfs
	mkdir -p "$DIR/vm1/private.img"
	run vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private.img: not a regular file"* ]]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
	[ "$(files_in "$DIR/vm1/private.img")" = "" ]
}

@test "vol-resize: C that is a symlink: 65, its target neither followed nor changed" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	truncate -s 8K "$DIR/target"
	ln -s "$DIR/target" "$DIR/vm1/private.img"
	run vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private.img: is a symbolic link"* ]]
	[ -L "$DIR/vm1/private.img" ]
	[ "$(stat -c %s "$DIR/target")" -eq 8192 ]
	[ "$(files_in "$DIR/vm1")" = "private.img" ]
}

@test "vol-resize: D that is a symlink: 65, its target not resized" {
	fs_dir btrfs
	make_volume
	truncate -s 8K "$DIR/target"
	ln -s "$DIR/target" "$DIR/vm1/private-dirty.img"
	before=$(dir_state "$DIR/vm1")
	run vol-resize -s 1M "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/vm1/private-dirty.img: is a symbolic link"* ]]
	[ "$(stat -c %s "$DIR/target")" -eq 8192 ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: stale temp files of the volume are removed, another volume's kept" {
	fs_dir btrfs
	make_volume
	echo x >"$DIR/vm1/private.img~x"
	echo x >"$DIR/vm1/privatex.img~x"
	run vol-resize -s 16K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/vm1")" = "private-precache.img private.img $REV1 privatex.img~x" ]
}

@test "vol-resize: -w 0 while another process holds the lock: 75, nothing changed" {
	fs_dir btrfs
	make_volume
	before=$(dir_state "$DIR/vm1")
	hold_lock "$DIR/vm1"
	run vol-resize -w 0 -s 16K "$DIR/vm1/private"
	release_lock
	[ "$status" -eq 75 ]
	[ "$(dir_state "$DIR/vm1")" = "$before" ]
}

@test "vol-resize: the operations are logged with -v" {
	fs_dir btrfs
	make_volume
	run vol-resize -v -s 16K "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-resize: cloned $DIR/vm1/private.img to $DIR/vm1/private.img~"*" (16384 bytes)"* ]]
	[[ "$output" == *"vol-resize: renamed $DIR/vm1/private.img~"*" to $DIR/vm1/private.img"* ]]
	[[ "$output" != *"linked"* ]]
}

@test "vol-resize: usage errors exit 64 with usage on stderr and change nothing" {
	fs_dir btrfs
	make_volume
	cd "$DIR"
	before=$(dir_state vm1)
	for args in "" "-s 16K" "vm1/private" "-s 16K vm1/private extra" \
		"-x -s 16K vm1/private" "-s 12Q vm1/private" "-s -5 vm1/private" \
		"-s 1e3 vm1/private" "-s + vm1/private" "-s +-5 vm1/private" \
		"-s ++5 vm1/private" "-k -2 -s 16K vm1/private" \
		"-k x -s 16K vm1/private" "-w x -s 16K vm1/private" "-s"; do
		# shellcheck disable=SC2086
		run --separate-stderr vol-resize $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[ -z "$output" ]
		# shellcheck disable=SC2154 # set by run --separate-stderr
		[[ "$stderr" == *"usage: vol-resize"* ]]
	done
	[ "$(dir_state vm1)" = "$before" ]
}

@test "vol-resize: without -s it says that -s is required" {
	fs_dir btrfs
	make_volume
	run vol-resize "$DIR/vm1/private"
	[ "$status" -eq 64 ]
	[[ "$output" == "vol-resize: -s SIZE is required"* ]]
}

@test "vol-resize: --help prints the usage on stdout, -V the version" {
	run --separate-stderr vol-resize --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: vol-resize "* ]]
	[ -z "$stderr" ]
	run vol-resize -V
	[ "$status" -eq 0 ]
	[[ "$output" == "vol-resize (file-reflink) "* ]]
}

@test "vol-resize: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	make_volume
	run_man_examples vol-resize.1
	[ "$(stat -c %s vm1/private.img)" -eq $((16 << 20)) ]
	[ "$(bytes_at_6000 vm1/private.img)" = DATA ]
	# The shrink from 17 MiB kept the old image as the only revision.
	[ "$(revision_ids vm1 private)" = 2 ]
	[ "$(stat -c %s "vm1/$(revision_of vm1 private 2)")" -eq $((17 << 20)) ]
}
