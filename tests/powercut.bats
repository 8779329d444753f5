#!/usr/bin/env bats
# Power cuts.  Right after a command that changes a volume exits 0, the
# backing file of its loop filesystem is copied while the filesystem is
# still mounted, with no sync first: the copy holds what the disk would
# hold if the power failed at that instant, that is, only what the command
# made durable.  The copy is then mounted, which replays the filesystem's
# journal as a boot after the power cut would, and must hold the whole new
# state of the volume: C's content, the revisions with their names and
# contents, the precache, and no dirty image.
#
# Every cut first writes a file without fsync (the sentinel), and the copy
# must lack it or have it empty.  That is the negative control: it shows
# the copy really lost what was not made durable, so that a new state found
# in the copy was found because the command fsynced it.

load helper

# This file makes its own filesystems: btrfs is mounted with a long commit
# interval so that no periodic transaction commit makes durable what the
# tools did not, and each copy must be mounted beside the original.
setup_file() {
	cut_setup btrfs
	cut_setup xfs
}

teardown_file() {
	cut_release
	cut_teardown btrfs
	cut_teardown xfs
}

teardown() {
	cut_release
}

CUT_BTRFS_OPTIONS=commit=300

# cut_setup KIND: a filesystem of KIND on a loop device, mounted on
# $BATS_FILE_TMPDIR/cut-KIND, or CUT_SKIP_KIND set to the reason why not.
cut_setup() {
	local kind=$1 image="$BATS_FILE_TMPDIR/cut-$1.img" mountpoint="$BATS_FILE_TMPDIR/cut-$1"
	local reason device options=defaults
	reason=$(fs_unavailable_reason "$kind")
	if [ -z "$reason" ] && [ "$kind" = btrfs ] && ! command -v btrfs >/dev/null; then
		reason="the btrfs command is not installed"
	fi
	if [ -n "$reason" ]; then
		export "CUT_SKIP_$kind=$reason"
		return 0
	fi
	[ "$kind" = btrfs ] && options=$CUT_BTRFS_OPTIONS
	mkdir -p "$mountpoint"
	truncate -s "$(fs_image_size "$kind")" "$image"
	if ! fs_mkfs "$kind" "$image"; then
		export "CUT_SKIP_$kind=mkfs.$kind failed"
		return 0
	fi
	if ! device=$(losetup -f --show "$image"); then
		export "CUT_SKIP_$kind=no free loop device"
		return 0
	fi
	echo "$device" >"$BATS_FILE_TMPDIR/cut-$kind.device"
	if ! mount -o "$options" "$device" "$mountpoint"; then
		export "CUT_SKIP_$kind=mounting $kind failed"
		return 0
	fi
}

# loop_detach DEVICE: detaches DEVICE, retrying while udev still has it open.
loop_detach() {
	local tries=0
	while [ "$tries" -lt 5 ]; do
		tries=$((tries + 1))
		losetup -d "$1" 2>/dev/null && return 0
		[ -z "$(losetup -n -O NAME "$1" 2>/dev/null)" ] && return 0
		sleep 0.2
	done
	echo "cannot detach $1" >&2
	return 1
}

# unmount MOUNTPOINT if something is mounted on it.
unmount() {
	if mountpoint -q "$1" 2>/dev/null; then
		umount "$1" || umount -l "$1"
	fi
}

cut_teardown() {
	local kind=$1 device_file="$BATS_FILE_TMPDIR/cut-$1.device"
	unmount "$BATS_FILE_TMPDIR/cut-$kind"
	if [ -f "$device_file" ]; then
		if [ "$kind" = btrfs ]; then
			btrfs device scan --forget "$(cat "$device_file")" 2>/dev/null || true
		fi
		loop_detach "$(cat "$device_file")"
		rm -f "$device_file"
	fi
	rm -f "$BATS_FILE_TMPDIR/cut-$kind.img"
}

# cut_dir KIND: $DIR becomes a fresh directory on KIND's filesystem (or
# the test skips), with $POOL, $VM and $B as vol_setup sets them.
cut_dir() {
	local skip_var="CUT_SKIP_$1"
	if [ -n "${!skip_var:-}" ]; then
		skip "$1: ${!skip_var}"
	fi
	KIND=$1
	ROOT=$BATS_FILE_TMPDIR/cut-$1
	DIR=$ROOT/t$BATS_TEST_NUMBER
	POOL=$DIR/pool
	VM=$POOL/appvms/vm1
	B=$VM/private
	rm -rf "$DIR"
	mkdir -p "$VM"
}

# Makes the prepared state durable: what a cut then loses, the command
# under test failed to make durable.
prepared() {
	sync -f "$ROOT"
}

# power_cut: the power fails now.  Writes the sentinel, copies the backing
# file of $KIND's filesystem while it is mounted, mounts the copy on $CUT
# and sets $CUT_DIR to $DIR's path in it; fails unless the sentinel is
# missing or empty there.
power_cut() {
	local copy="$BATS_FILE_TMPDIR/cut-copy.img" device mounted sentinel
	# A new name each time: a file truncated and rewritten is flushed
	# on close by XFS, btrfs and ext4 alike.
	sentinel=sentinel.$(date +%s%N)
	head -c 65536 /dev/urandom >"$DIR/$sentinel"
	cp --sparse=always "$BATS_FILE_TMPDIR/cut-$KIND.img" "$copy"
	# What the copy must show, before the original may be unmounted.
	LIVE_STATE=$(tree_state "$DIR")
	[ -n "$LIVE_STATE" ]
	CUT=$BATS_FILE_TMPDIR/cut-copy
	mkdir -p "$CUT"
	device=$(losetup -f --show "$copy")
	echo "$device" >"$BATS_FILE_TMPDIR/cut-copy.device"
	case $KIND in
	xfs)
		# nouuid: the copy has the original's UUID.  The copy is
		# writable, so the mount replays the log as a reboot would;
		# norecovery would show the state without the log.
		mount -o nouuid "$device" "$CUT"
		;;
	btrfs)
		# The copy has the original's fsid.  Since Linux 6.7 a
		# single-device btrfs whose fsid is already mounted is mounted
		# under a temporary fsid (features/temp_fsid), so the copy
		# mounts beside the original, and its tree log is replayed.
		# An older kernel would refuse it or hand back the mounted
		# original, so there the original is unmounted first and
		# forgotten by the btrfs device list, whose entry, of a higher
		# generation, would make the copy's mount fail; cut_release
		# mounts the original again.  Giving the copy a new fsid with
		# btrfstune -m is no way out: it commits a transaction of its
		# own, after which the tree log no longer replays ("parent
		# transid verify failed") and the copy does not mount.
		if [ ! -e /sys/fs/btrfs/features/temp_fsid ]; then
			unmount "$ROOT"
			btrfs device scan --forget "$(cat "$BATS_FILE_TMPDIR/cut-btrfs.device")"
		fi
		mount -o "$CUT_BTRFS_OPTIONS" "$device" "$CUT"
		;;
	esac
	# The copy, not the original, is what is mounted there.
	mounted=$(findmnt -n -o SOURCE --mountpoint "$CUT")
	[ "$mounted" = "$device" ] || {
		echo "$CUT: $mounted is mounted, not the copy on $device" >&2
		return 1
	}
	CUT_DIR=$CUT/${DIR#"$ROOT"/}
	if [ -s "$CUT_DIR/$sentinel" ]; then
		echo "the copy kept a file written without fsync: it is no power cut" >&2
		return 1
	fi
}

# Unmounts and detaches the copy, and mounts the btrfs original again if
# power_cut had to unmount it.
cut_release() {
	local device_file="$BATS_FILE_TMPDIR/cut-copy.device" original
	unmount "$BATS_FILE_TMPDIR/cut-copy"
	if [ -f "$device_file" ]; then
		btrfs device scan --forget "$(cat "$device_file")" 2>/dev/null || true
		loop_detach "$(cat "$device_file")"
		rm -f "$device_file"
	fi
	rm -f "$BATS_FILE_TMPDIR/cut-copy.img"
	original="$BATS_FILE_TMPDIR/cut-btrfs.device"
	if [ -f "$original" ] && ! mountpoint -q "$BATS_FILE_TMPDIR/cut-btrfs"; then
		mount -o "$CUT_BTRFS_OPTIONS" "$(cat "$original")" "$BATS_FILE_TMPDIR/cut-btrfs"
	fi
}

# tree_state DIR: every file under DIR but the sentinels: its path, type
# and inode, and for a regular file its link count, size, mtime and data.
tree_state() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 ! -name 'sentinel.*' -printf '%P\n' | LC_ALL=C sort |
			while IFS= read -r f; do
				if [ -f "$f" ] && [ ! -L "$f" ]; then
					printf '%s %s\n' "$(stat -c '%n %F %i %h %s %.9Y' -- "$f")" \
						"$(md5sum <"$f" | cut -d' ' -f1)"
				else
					stat -c '%n %F %i' -- "$f"
				fi
			done
	)
}

# True if $DIR in the copy is exactly as it was on the live filesystem at
# the cut.
survived() {
	local copied
	copied=$(tree_state "$CUT_DIR")
	[ "$LIVE_STATE" = "$copied" ] || {
		printf 'live:\n%s\ncopy:\n%s\n' "$LIVE_STATE" "$copied" >&2
		return 1
	}
}

# VM run that wrote its disk without fsync, as a guest with a write-back
# cache does: only vol-commit's fsync of D makes the data durable.
vm_run() {
	local d
	d=$(vol-start "$B")
	head -c 1M /dev/urandom | dd of="$d" bs=64K conv=notrunc status=none
	printf '%s' "$1" | dd of="$d" conv=notrunc status=none
}

# The method itself: of two files written just before the cut, the one
# fsynced (with its directory) is in the copy, the other is not; three
# times over.
control() {
	cut_dir "$1"
	for round in 1 2 3; do
		dd if=/dev/urandom of="$DIR/synced$round" bs=64K count=4 conv=fsync status=none
		# Its name too: an fsync of the directory.
		sync "$DIR"
		cp "$DIR/synced$round" "$BATS_TEST_TMPDIR/synced"
		# After the fsyncs that could have carried it along.
		head -c 1M /dev/urandom >"$DIR/unsynced$round"
		power_cut
		cmp "$BATS_TEST_TMPDIR/synced" "$CUT_DIR/synced$round"
		[ ! -s "$CUT_DIR/unsynced$round" ]
		cut_release
	done
}

@test "power cut: btrfs: control: a file written without fsync is lost, one with fsync kept" {
	control btrfs
}

@test "power cut: xfs: control: a file written without fsync is lost, one with fsync kept" {
	control xfs
}

# Sets $CV to the VM directory in the copy.
copy_vm() {
	CV=$CUT_DIR/pool/appvms/$1
}

cut_commit() {
	cut_dir "$1"
	vol_make C0
	vm_run C1
	vol-commit -k 3 "$B"
	prepared
	vm_run C2
	run vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	power_cut
	survived
	copy_vm vm1
	[ "$(revision_ids "$CV" private)" = "1 2" ]
	[ "$(head_bytes "$CV/private.img" 2)" = C2 ]
	[ "$(head_bytes "$CV/$(revision_of "$CV" private 2)" 2)" = C1 ]
	[ ! -e "$CV/private-dirty.img" ]
	cmp "$CV/private.img" "$CV/private-precache.img"
}

@test "power cut: btrfs: vol-commit: new C, revisions and P survive, D is gone" {
	cut_commit btrfs
}

@test "power cut: xfs: vol-commit: new C, revisions and P survive, D is gone" {
	cut_commit xfs
}

# The method against a tool: vol-commit run with every fsync and fdatasync
# skipped (strace makes them return 0 without doing them) has committed on
# the live filesystem, but the copy still has the old C.
skipped_fsyncs() {
	cut_dir "$1"
	command -v strace >/dev/null || skip "strace is not installed"
	vol_make C0
	vm_run C1
	vol-commit -k 3 "$B"
	prepared
	vm_run C2
	run strace -f -o /dev/null -e trace=fsync,fdatasync \
		-e inject=fsync,fdatasync:retval=0 vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = C2 ]
	power_cut
	run ! survived
	copy_vm vm1
	[ "$(head_bytes "$CV/private.img" 2)" = C1 ]
	[ "$(revision_ids "$CV" private)" = 1 ]
}

@test "power cut: btrfs: control: vol-commit with its fsyncs skipped loses the commit" {
	skipped_fsyncs btrfs
}

@test "power cut: xfs: control: vol-commit with its fsyncs skipped loses the commit" {
	skipped_fsyncs xfs
}

cut_revert() {
	cut_dir "$1"
	vol_make C0
	vm_run C1
	vol-commit -k 3 "$B"
	vm_run C2
	vol-commit -k 3 "$B"
	prepared
	run vol-revert -k 3 "$B"
	[ "$status" -eq 0 ]
	power_cut
	survived
	copy_vm vm1
	# Revision 2 (C1) became C; C2 became revision 3.
	[ "$(revision_ids "$CV" private)" = "1 3" ]
	[ "$(head_bytes "$CV/private.img" 2)" = C1 ]
	[ "$(head_bytes "$CV/$(revision_of "$CV" private 3)" 2)" = C2 ]
	cmp "$CV/private.img" "$CV/private-precache.img"
}

@test "power cut: btrfs: vol-revert: the reverted C, the saved revision and P survive" {
	cut_revert btrfs
}

@test "power cut: xfs: vol-revert: the reverted C, the saved revision and P survive" {
	cut_revert xfs
}

cut_import() {
	cut_dir "$1"
	# Outside the filesystem, so the data is copied, not cloned.
	head -c 3M /dev/urandom >"$BATS_TEST_TMPDIR/disk.img"
	prepared
	run vol-import "$POOL/appvms/vm2/private" "$BATS_TEST_TMPDIR/disk.img"
	[ "$status" -eq 0 ]
	power_cut
	survived
	copy_vm vm2
	[ "$(files_in "$CV")" = "private-precache.img private.img" ]
	cmp "$BATS_TEST_TMPDIR/disk.img" "$CV/private.img"
	cmp "$BATS_TEST_TMPDIR/disk.img" "$CV/private-precache.img"
}

@test "power cut: btrfs: vol-import into a new VM directory: directory, C and P survive" {
	cut_import btrfs
}

@test "power cut: xfs: vol-import into a new VM directory: directory, C and P survive" {
	cut_import xfs
}

cut_import_replace() {
	cut_dir "$1"
	vol_make OLD
	head -c 2M /dev/urandom >"$BATS_TEST_TMPDIR/disk.img"
	prepared
	run vol-import -k 1 "$B" "$BATS_TEST_TMPDIR/disk.img"
	[ "$status" -eq 0 ]
	power_cut
	survived
	copy_vm vm1
	cmp "$BATS_TEST_TMPDIR/disk.img" "$CV/private.img"
	[ "$(revision_ids "$CV" private)" = 1 ]
	[ "$(head_bytes "$CV/$(revision_of "$CV" private 1)" 3)" = OLD ]
	[ "$(files_in "$CV" | wc -w)" -eq 3 ]
}

@test "power cut: btrfs: vol-import over a volume: new C and the old one as revision 1 survive" {
	cut_import_replace btrfs
}

@test "power cut: xfs: vol-import over a volume: new C and the old one as revision 1 survive" {
	cut_import_replace xfs
}

cut_create() {
	cut_dir "$1"
	prepared
	run vol-create -s 64M "$POOL/appvms/vm2/private"
	[ "$status" -eq 0 ]
	power_cut
	survived
	copy_vm vm2
	[ "$(files_in "$CV")" = "private-precache.img private.img" ]
	[ "$(stat -c %s "$CV/private.img")" -eq $((64 << 20)) ]
}

@test "power cut: btrfs: vol-create in a new VM directory: directory, C and P survive" {
	cut_create btrfs
}

@test "power cut: xfs: vol-create in a new VM directory: directory, C and P survive" {
	cut_create xfs
}

# cut_clone KIND [OPTION]: reflink-clone into a directory it creates.
cut_clone() {
	cut_dir "$1"
	shift
	head -c 2M /dev/urandom >"$BATS_TEST_TMPDIR/src.img"
	cp "$BATS_TEST_TMPDIR/src.img" "$DIR/src.img"
	prepared
	run reflink-clone "$@" "$DIR/src.img" "$DIR/new/dst.img"
	[ "$status" -eq 0 ]
	power_cut
	survived
	cmp "$BATS_TEST_TMPDIR/src.img" "$CUT_DIR/new/dst.img"
}

@test "power cut: btrfs: reflink-clone: the clone and its new directory survive" {
	cut_clone btrfs
}

@test "power cut: xfs: reflink-clone: the clone and its new directory survive" {
	cut_clone xfs
}

@test "power cut: btrfs: reflink-clone --reflink=never: the copied data survives" {
	cut_clone btrfs --reflink=never
}

@test "power cut: xfs: reflink-clone --reflink=never: the copied data survives" {
	cut_clone xfs --reflink=never
}
