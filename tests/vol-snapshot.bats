#!/usr/bin/env bats
# vol-snapshot: a running volume's D, cloned once into the next revision;
# D and C untouched.  Also its kill and error points (reliability.bash).

load helper
load reliability

# Its kill and error points are cases of reliability.bash, run by
# tests/crash.bats and tests/inject.bats; the check below proves the rule
# they need (a new revision is D's, C never changes).

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

teardown() {
	release_lock
	if [ -n "${loop_device:-}" ]; then
		losetup -d "$loop_device" 2>/dev/null || true
	fi
}

# A running volume: started from vol_make's C ("CLEAN"), D holding TEXT
# at offset 0, with the mtime DATE if given.
vm_running() {
	vol_make CLEAN
	vol-start "$B" >/dev/null
	printf '%s' "${1:-RUN1}" | dd of="$B-dirty.img" conv=notrunc status=none
	if [ -n "${2:-}" ]; then touch -d "$2" "$B-dirty.img"; fi
}

snapshot_one_clone() {
	vol_setup "$1"
	vm_running RUN1 '2023-04-05 06:07:08.123456789 UTC'
	c_state=$(dir_state "$VM" | grep '^private\.img ')
	d_state=$(dir_state "$VM" | grep '^private-dirty\.img ')
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-snapshot "$B"
	[ "$status" -eq 0 ]
	rev=private.img.1@2023-04-05T06:07:08Z
	[ "$output" = "$VM/$rev" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
	[ "$(files_in "$VM")" = "private-dirty.img private.img $rev" ]
	cmp "$VM/$rev" "$B-dirty.img"
	[ "$(mtime_ns "$VM/$rev")" = 1680674828.123456789 ]
	# D and C: the same inode, links, size, mtime and bytes.
	[ "$(dir_state "$VM" | grep '^private-dirty\.img ')" = "$d_state" ]
	[ "$(dir_state "$VM" | grep '^private\.img ')" = "$c_state" ]
	extents_shared "$VM/$rev"
	no_temp_files "$VM"
}

@test "vol-snapshot: btrfs: one FICLONE of D makes revision 1, D and C untouched" {
	snapshot_one_clone btrfs
}

@test "vol-snapshot: xfs: one FICLONE of D makes revision 1, D and C untouched" {
	snapshot_one_clone xfs
}

@test "vol-snapshot: the revision keeps D's bytes of that instant while the VM writes on" {
	vol_setup btrfs
	vm_running SNAP
	rev=$(vol-snapshot "$B")
	printf LATER | dd of="$B-dirty.img" conv=notrunc status=none
	[ "$(head_bytes "$rev")" = SNAP ]
	[ "$(head_bytes "$B-dirty.img" 5)" = LATER ]
	[ "$(head_bytes "$B.img" 5)" = CLEAN ]
}

@test "vol-snapshot: the id follows the highest, the time is D's mtime in UTC" {
	vol_setup btrfs
	vm_running RUN1
	head -c 4096 /dev/zero >"$VM/private.img.2@2020-01-01T00:00:00Z"
	head -c 4096 /dev/zero >"$VM/private.img.007@2020-02-01T00:00:00Z"
	TZ=America/New_York touch -d '2022-07-01 23:30:00' "$B-dirty.img"
	run vol-snapshot "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/private.img.8@2022-07-02T03:30:00Z" ]
	[ "$(revision_ids "$VM" private)" = "2 007 8" ]
}

@test "vol-snapshot: the revision is the pool's: owner of the VM directory, mode 0600" {
	vol_setup btrfs
	vm_running RUN1
	# The guest's QEMU user owns D and may write it; not the revision.
	chown 107:107 "$B-dirty.img"
	chmod 0664 "$B-dirty.img"
	# A default ACL of the VM directory would give a new file a user's
	# entry: the revision keeps none.
	setfacl -d -m u:108:rw "$VM"
	rev=$(vol-snapshot "$B")
	setfacl -k "$VM"
	[ "$(stat -c '%u:%g %a' "$rev")" = "$(stat -c '%u:%g' "$VM") 600" ]
	[ "$(stat -c '%u:%g %a' "$B-dirty.img")" = "107:107 664" ]
	run getfacl -cp "$rev"
	[ "$status" -eq 0 ]
	[[ "$output" != *user:108* ]]
}

@test "vol-snapshot: -k N removes the lowest ids, the snapshot stays" {
	vol_setup btrfs
	vm_running RUN1
	for id in 1 2 3; do
		head -c 4096 /dev/zero >"$VM/private.img.$id@2020-01-0${id}T00:00:00Z"
	done
	run vol-snapshot -k 2 "$B"
	[ "$status" -eq 0 ]
	[ "$(revision_ids "$VM" private)" = "3 4" ]
	[ "$output" = "$VM/$(revision_of "$VM" private 4)" ]
}

@test "vol-snapshot: without -k no revision is removed" {
	vol_setup btrfs
	vm_running RUN1
	for id in 1 2 3; do
		head -c 4096 /dev/zero >"$VM/private.img.$id@2020-01-0${id}T00:00:00Z"
	done
	vol-snapshot "$B"
	[ "$(revision_ids "$VM" private)" = "1 2 3 4" ]
}

@test "vol-snapshot: a D in use by a process and a loop device is snapshotted" {
	vol_setup btrfs
	vm_running RUN1
	loop_device=$(losetup -f --show "$B-dirty.img")
	exec 8<>"$B-dirty.img"
	run vol-snapshot "$B"
	exec 8<&-
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$output")" = RUN1 ]
	[ -e "$B-dirty.img" ]
}

@test "vol-snapshot: a stopped volume: nothing to snapshot, exit 0, nothing changed" {
	vol_setup btrfs
	vol_make CLEAN
	before=$(dir_state "$VM")
	run vol-snapshot -k 1 "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"not running"*"nothing to snapshot"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
	run vol-snapshot -q "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

snapshot_again() {
	vol_setup "$1"
	vm_running RUN1 '2023-01-01 00:00:00 UTC'
	first=$(vol-snapshot "$B")
	run vol-snapshot "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"already holds"* ]]
	[ "${lines[-1]}" = "$first" ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	printf RUN2 | dd of="$B-dirty.img" conv=notrunc status=none
	second=$(vol-snapshot "$B")
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(head_bytes "$second")" = RUN2 ]
	[ "$(head_bytes "$first")" = RUN1 ]
}

@test "vol-snapshot: btrfs: again with D unchanged makes no second revision; after a write it does" {
	snapshot_again btrfs
}

@test "vol-snapshot: xfs: again with D unchanged makes no second revision; after a write it does" {
	snapshot_again xfs
}

write_same_mtime() {
	vol_setup "$1"
	vm_running RUN1 '2023-01-01 00:00:00 UTC'
	first=$(vol-snapshot "$B")
	printf RUN2 | dd of="$B-dirty.img" conv=notrunc status=none
	touch -d '2023-01-01 00:00:00 UTC' "$B-dirty.img"
	second=$(vol-snapshot "$B")
	[ "$second" != "$first" ]
	[ "$(head_bytes "$second")" = RUN2 ]
}

@test "vol-snapshot: btrfs: a write that leaves D's mtime as it was still makes a new revision" {
	write_same_mtime btrfs
}

@test "vol-snapshot: xfs: a write that leaves D's mtime as it was still makes a new revision" {
	write_same_mtime xfs
}

@test "vol-snapshot: a later vol-commit makes its own revision; vol-revert -r brings the snapshot" {
	vol_setup btrfs
	vm_running SNAP
	snap=$(vol-snapshot "$B")
	[ "$(revision_ids "$VM" private)" = 1 ]
	printf LAST | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit "$B"
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(head_bytes "$snap")" = SNAP ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 2)" 5)" = CLEAN ]
	[ "$(head_bytes "$B.img")" = LAST ]
	vol-revert -r 1 "$B"
	[ "$(head_bytes "$B.img")" = SNAP ]
	[ "$(revision_ids "$VM" private)" = "2 3" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 3)")" = LAST ]
}

@test "vol-snapshot: vol-revert --discard -r brings the snapshot back once the VM stopped" {
	vol_setup xfs
	vm_running SNAP
	vol-snapshot "$B" >/dev/null
	printf LATE | dd of="$B-dirty.img" conv=notrunc status=none
	vol-revert --discard -r 1 "$B"
	[ ! -e "$B-dirty.img" ]
	[ "$(head_bytes "$B.img")" = SNAP ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 2)" 5)" = CLEAN ]
}

@test "vol-snapshot: ext4 cannot clone: 69, nothing changed, no temp file" {
	vol_setup ext4
	vm_running RUN1
	before=$(dir_state "$VM")
	run vol-snapshot "$B"
	[ "$status" -eq 69 ]
	[[ "$output" == *"private-dirty.img: the filesystem cannot clone"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
	no_temp_files "$VM"
}

@test "vol-snapshot: a volume without a clean image (volatile, -k -1): 65, nothing changed" {
	vol_setup btrfs
	vol-start --volatile -s 1M "$B" >/dev/null
	before=$(dir_state "$VM")
	run vol-snapshot "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"no clean image"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-snapshot: -k below 1, a bad -w, no operand, two operands: 64 and the usage" {
	vol_setup btrfs
	vm_running RUN1
	before=$(dir_state "$VM")
	for args in "-k 0 $B" "-k -1 $B" "-k x $B" "-w soon $B" "" "$B $B"; do
		# shellcheck disable=SC2086 # the words of args
		run vol-snapshot $args
		[ "$status" -eq 64 ] || { echo "$args: $status"; false; }
		[[ "$output" == *"usage: vol-snapshot"* ]]
	done
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-snapshot: no such volume: 66" {
	vol_setup btrfs
	run vol-snapshot "$VM/nope"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no such volume"* ]]
	run vol-snapshot "$POOL/appvms/vm9/private"
	[ "$status" -eq 66 ]
}

@test "vol-snapshot: the lock held elsewhere: -w 0 exits 75, nothing changed" {
	vol_setup btrfs
	vm_running RUN1
	before=$(dir_state "$VM")
	hold_lock "$VM"
	run vol-snapshot -w 0 "$B"
	[ "$status" -eq 75 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-snapshot: temp files an interrupted run left are removed" {
	vol_setup btrfs
	vm_running RUN1 '2024-01-01 00:00:00 UTC'
	head -c 4096 /dev/zero >"$VM/private.img.1@2024-01-01T00:00:00Z~Ab12Cd"
	run vol-snapshot "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-dirty.img private.img private.img.1@2024-01-01T00:00:00Z" ]
}

@test "vol-snapshot: -v tells each file operation" {
	vol_setup btrfs
	vm_running RUN1 '2024-01-01 00:00:00 UTC'
	run vol-snapshot -v "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"cloned $VM/private-dirty.img to $VM/private.img.1@2024-01-01T00:00:00Z~"* ]]
	[[ "$output" == *"renamed $VM/private.img.1@2024-01-01T00:00:00Z~"*" to $VM/private.img.1@2024-01-01T00:00:00Z"* ]]
}

@test "vol-snapshot: D a symlink: 65, not followed" {
	vol_setup btrfs
	vol_make CLEAN
	head -c 4096 /dev/zero >"$DIR/outside.img"
	ln -s "$DIR/outside.img" "$B-dirty.img"
	run vol-snapshot "$B"
	[ "$status" -eq 65 ]
	[ "$(revision_ids "$VM" private)" = "" ]
}

@test "vol-snapshot: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$POOL"
	vol-create -s 1M appvms/vm1/private
	for run in 1 2; do
		vol-start appvms/vm1/private >/dev/null
		printf 'RUN%s' "$run" | dd of=appvms/vm1/private-dirty.img conv=notrunc status=none
		vol-commit appvms/vm1/private
	done
	vol-start appvms/vm1/private >/dev/null
	printf SNAP | dd of=appvms/vm1/private-dirty.img conv=notrunc status=none
	run_man_examples vol-snapshot.1
	[ "$(head_bytes appvms/vm1/private.img)" = SNAP ]
}

@test "vol-snapshot: the script of the man page freezes, snapshots each volume, thaws" {
	vol_setup btrfs
	vm_running RUN1
	mkdir "$DIR/fakebin"
	# virsh, as the QEMU guest agent answers it: each call logged.
	printf '#!/bin/sh\necho "virsh $*" >>"%s"\n' "$DIR/calls" >"$DIR/fakebin/virsh"
	chmod +x "$DIR/fakebin/virsh"
	man_example_script vol-snapshot.1 >"$DIR/vm-snapshot"
	PATH=$DIR/fakebin:$PATH run sh "$DIR/vm-snapshot" vm1 "$B"
	[ "$status" -eq 0 ]
	[ "$(cat "$DIR/calls")" = "$(printf 'virsh -q domfsfreeze vm1\nvirsh -q domfsthaw vm1')" ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	# No guest agent: a crash-consistent snapshot, said so.
	printf '#!/bin/sh\nexit 1\n' >"$DIR/fakebin/virsh"
	printf RUN2 | dd of="$B-dirty.img" conv=notrunc status=none
	PATH=$DIR/fakebin:$PATH run sh "$DIR/vm-snapshot" vm1 "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"crash-consistent only"* ]]
	[ "$(revision_ids "$VM" private)" = "1 2" ]
}

# A state line: "path type md5 inode".
@test "crash: vol-snapshot's checks catch a changed C and a revision that is not D" {
	case_load "vol-snapshot" xfs
	rev3=vm/private.img.3@2024-03-02T10:00:00Z
	printf '%s\n' "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		>"$BATS_TEST_TMPDIR/before"
	printf '%s\n' "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		"$rev3 f D0 4" >"$BATS_TEST_TMPDIR/final"
	check() {
		printf '%s\n' "$@" >"$BATS_TEST_TMPDIR/after"
		state_problems "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/final" \
			"$BATS_TEST_TMPDIR/after"
	}
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" \
		"$rev3 f D0 4" "$rev3~x f XX 9"
	[ -z "$output" ]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f C0 2" "$rev3 f C0 2"
	[[ "$output" == *"$rev3: a new revision that is not the old C"* ]]
	run check "vm d - 1" "vm/private-dirty.img f D0 3" "vm/private.img f D0 2"
	[[ "$output" == *"vm/private.img: the clean image changed"* ]]
}

@test "vol-snapshot: after revision 18446744073709551615 no id is left: 65, nothing changed" {
	vol_setup btrfs
	vm_running RUN1
	head -c 4096 /dev/zero >"$VM/private.img.18446744073709551615@2020-01-01T00:00:00Z"
	before=$(dir_state "$VM")
	run vol-snapshot "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"no revision id is left"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}
