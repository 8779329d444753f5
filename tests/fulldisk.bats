#!/usr/bin/env bats
# Full disks.  On a filesystem filled to its last few MiB, each command that
# must store new data fails with 74 and "No space left on device", and the
# volume is left exactly as it was (same names, inodes, sizes, mtimes and
# data), with no temporary file; once space is freed, the same command
# succeeds.
#
# On XFS with reflink=1 a clone needs almost no space, so the commands that
# really copy data are used there: vol-import of a file from another
# filesystem, and reflink-clone --reflink=never.  vol-resize growth and the
# precache that vol-commit refreshes are clones on XFS and btrfs, and a
# growth of a dirty image is a truncate that allocates nothing; both are
# run on ext4 instead, where the new clean image of a stopped origin and
# the precache are copies.

load helper

setup_file() {
	fs_setup xfs ext4
}

teardown_file() {
	fs_teardown
}

# The test's files and the filler go, so the next test has room.
teardown() {
	if [ -n "${DIR:-}" ]; then
		rm -rf "$DIR"
	fi
}

bytes_free() {
	echo $(($(stat -f -c '%f * %S' "$1")))
}

# fill_up DIR [MIB]: a file DIR/filler takes all but about MIB (default 4)
# MiB of the free space of DIR's filesystem.  DIR is in the filesystem, so
# that the test's teardown removes the filler.
fill_up() {
	local free left=$((${2:-4} << 20))
	sync -f "$1"
	free=$(bytes_free "$1")
	fallocate -l $((free - left)) "$1/filler"
	sync -f "$1"
	free=$(bytes_free "$1")
	echo "free after filling: $free bytes" >&2
	[ "$free" -gt $((left - (3 << 20))) ] && [ "$free" -lt $((left + (4 << 20))) ]
}

free_up() {
	rm "$1/filler"
	sync -f "$1"
}

# A stopped origin volume whose C holds SIZE of random data (saved in
# $BATS_TEST_TMPDIR/old), with its precache and one revision.
volume_with() {
	random_file "$BATS_TEST_TMPDIR/old" "$1"
	cp "$BATS_TEST_TMPDIR/old" "$B.img"
	chmod 600 "$B.img"
	touch -d '2024-01-02 03:04:05 UTC' "$B.img"
	cp -p "$B.img" "$B-precache.img"
	printf REV1 >"$VM/private.img.1@2020-01-01T00:00:00Z"
}

# True if the last run failed as a full disk must make it fail.
failed_full() {
	[ "$status" -eq 74 ] || {
		echo "exit status $status, not 74" >&2
		return 1
	}
	[[ "$output" == *"No space left on device"* ]]
}

# unchanged DIR STATE: DIR's dir_state is STATE; else shows what changed.
unchanged() {
	local now
	now=$(dir_state "$1")
	[ "$now" = "$2" ] || {
		echo "$1 changed:" >&2
		diff <(echo "$2") <(echo "$now") >&2
		return 1
	}
}

@test "full disk: xfs: vol-import of a file exits 74, the volume is as it was" {
	vol_setup xfs
	volume_with 1M
	# On another filesystem, so it is copied, not cloned.
	random_file "$BATS_TEST_TMPDIR/new.img" 16M
	fill_up "$DIR"
	before=$(dir_state "$VM")
	run vol-import -k 2 "$B" "$BATS_TEST_TMPDIR/new.img"
	failed_full
	[[ "$output" == *"$B"* ]]
	unchanged "$VM" "$before"
	no_temp_files "$VM"
	free_up "$DIR"
	run vol-import -k 2 "$B" "$BATS_TEST_TMPDIR/new.img"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/new.img" "$B.img"
	cmp "$BATS_TEST_TMPDIR/new.img" "$B-precache.img"
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	cmp "$BATS_TEST_TMPDIR/old" "$VM/$(revision_of "$VM" private 2)"
}

@test "full disk: xfs: vol-import from standard input exits 74, the volume is as it was" {
	vol_setup xfs
	volume_with 1M
	random_file "$BATS_TEST_TMPDIR/new.img" 16M
	fill_up "$DIR"
	before=$(dir_state "$VM")
	run vol-import -k 2 "$B" - <"$BATS_TEST_TMPDIR/new.img"
	failed_full
	unchanged "$VM" "$before"
	no_temp_files "$VM"
	free_up "$DIR"
	run vol-import -k 2 "$B" - <"$BATS_TEST_TMPDIR/new.img"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/new.img" "$B.img"
}

@test "full disk: xfs: reflink-clone --reflink=never exits 74, DST is as it was" {
	fs_dir xfs
	random_file "$DIR/src.img" 16M
	mkdir "$DIR/to"
	printf OLD >"$DIR/to/dst.img"
	fill_up "$DIR"
	before=$(dir_state "$DIR/to")
	run reflink-clone --reflink=never "$DIR/src.img" "$DIR/to/dst.img"
	failed_full
	[[ "$output" == *"dst.img"* ]]
	unchanged "$DIR/to" "$before"
	no_temp_files "$DIR"
	free_up "$DIR"
	run reflink-clone --reflink=never "$DIR/src.img" "$DIR/to/dst.img"
	[ "$status" -eq 0 ]
	cmp "$DIR/src.img" "$DIR/to/dst.img"
	extents_unshared "$DIR/to/dst.img"
}

@test "full disk: xfs: a clone still fits where the copy did not" {
	fs_dir xfs
	random_file "$DIR/src.img" 16M
	fill_up "$DIR"
	run reflink-clone --reflink=never "$DIR/src.img" "$DIR/copy.img"
	failed_full
	run reflink-clone --reflink=always "$DIR/src.img" "$DIR/clone.img"
	[ "$status" -eq 0 ]
	cmp "$DIR/src.img" "$DIR/clone.img"
}

# ext4: a stopped origin grows into a new C that is a copy of the old one.
@test "full disk: ext4: vol-resize growth of a stopped origin exits 74, the volume is as it was" {
	vol_setup ext4
	# 8 MiB: the new C and the new P (copies here) are made while the
	# old ones still exist, so that a failure changes nothing: at the
	# peak four images share the 64 MiB filesystem.
	volume_with 8M
	fill_up "$DIR"
	before=$(dir_state "$VM")
	run vol-resize -s +1M "$B"
	failed_full
	[[ "$output" == *"$B"* ]]
	unchanged "$VM" "$before"
	no_temp_files "$VM"
	free_up "$DIR"
	run vol-resize -s +1M "$B"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$B.img")" -eq $((9 << 20)) ]
	cmp -n $((8 << 20)) "$BATS_TEST_TMPDIR/old" "$B.img"
	cmp "$B.img" "$B-precache.img"
}

# ext4: the commit itself renames D, but the new precache is a copy of it.
@test "full disk: ext4: vol-commit whose precache copy does not fit exits 74, the volume is as it was" {
	vol_setup ext4
	volume_with 1M
	d=$(vol-start "$B")
	random_file "$BATS_TEST_TMPDIR/new.img" 16M
	dd if="$BATS_TEST_TMPDIR/new.img" of="$d" bs=1M conv=notrunc,fsync status=none
	fill_up "$DIR"
	before=$(dir_state "$VM")
	run vol-commit -k 2 "$B"
	failed_full
	unchanged "$VM" "$before"
	no_temp_files "$VM"
	free_up "$DIR"
	run vol-commit -k 2 "$B"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/new.img" "$B.img"
	cmp "$B.img" "$B-precache.img"
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	cmp "$BATS_TEST_TMPDIR/old" "$VM/$(revision_of "$VM" private 2)"
}

# ext4: the imported data fits, but the precache copy made after it does
# not.  The failure must come before the import replaces C, as it does
# when the data itself does not fit.
@test "full disk: ext4: vol-import whose precache copy does not fit exits 74, the volume is as it was" {
	vol_setup ext4
	volume_with 1M
	random_file "$BATS_TEST_TMPDIR/new.img" 16M
	fill_up "$DIR" 20
	before=$(dir_state "$VM")
	run vol-import -k 2 "$B" "$BATS_TEST_TMPDIR/new.img"
	failed_full
	unchanged "$VM" "$before"
	no_temp_files "$VM"
	free_up "$DIR"
	run vol-import -k 2 "$B" "$BATS_TEST_TMPDIR/new.img"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/new.img" "$B.img"
	cmp "$B.img" "$B-precache.img"
}
