#!/usr/bin/env bats
# The tools together: locking between processes, and a whole VM life on
# each filesystem.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

teardown() {
	release_lock
}

@test "lock: -w 0 exits 75 at once while another process holds the lock" {
	vol_setup btrfs
	vol_make
	printf D >"$B-dirty.img"
	before=$(dir_state "$VM")
	hold_lock "$VM"
	start=$(date +%s%N)
	run vol-commit -w 0 "$B"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	release_lock
	[ "$status" -eq 75 ]
	[[ "$output" == *"busy"* ]]
	[ "$elapsed" -lt 1000 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "lock: -w 2 waits about two seconds, then exits 75" {
	vol_setup btrfs
	vol_make
	printf D >"$B-dirty.img"
	hold_lock "$VM"
	start=$(date +%s%N)
	run vol-commit -w 2 "$B"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	release_lock
	[ "$status" -eq 75 ]
	[ "$elapsed" -ge 1900 ]
	[ "$elapsed" -lt 4000 ]
	[ -f "$B-dirty.img" ]
}

@test "lock: once the holder exits, the tool goes ahead" {
	vol_setup btrfs
	vol_make
	printf D >"$B-dirty.img"
	hold_lock "$VM" 1
	run vol-commit "$B"
	[ "$status" -eq 0 ]
	[ ! -e "$B-dirty.img" ]
	[ "$(head_bytes "$B.img" 1)" = D ]
}

@test "lock: the lock is the VM directory itself; no lock file is made" {
	vol_setup btrfs
	run vol-create -s 1M "$B"
	[ "$status" -eq 0 ]
	vol-start "$B" >/dev/null
	vol-commit -k 1 "$B"
	[ "$(files_in "$VM" | tr ' ' '\n' | grep -cv '^private')" -eq 0 ]
}

# A whole VM life with every lifecycle tool; prints each file's name (the
# revision time replaced by TIME) and a checksum of its data.
life_cycle() {
	vol-create -s 1M "$B"
	for i in 1 2 3; do
		d=$(vol-start "$B")
		printf "CYCLE%s" "$i" | dd of="$d" bs=1 seek=$((i * 4096)) conv=notrunc status=none
		vol-commit -k 2 "$B"
	done
	vol-revert -r 2 "$B"
	vol-prune -k 1 "$B" >/dev/null
	vol-resize -s 2M "$B"
	vol-info "$B" | grep -v '^usage' | sed "s|$DIR|DIR|"
	(cd "$VM" && for f in *; do
		printf '%s %s\n' "$(printf '%s' "$f" | sed "s/@$REVISION_STAMP/@TIME/")" \
			"$(md5sum <"$f" | cut -d' ' -f1)"
	done)
	vol-remove "$B" >/dev/null
	[ ! -e "$VM" ]
}

@test "life cycle: ext4 copies give the same files and bytes as btrfs clones" {
	vol_setup btrfs
	btrfs_result=$(life_cycle)
	vol_setup ext4
	ext4_result=$(life_cycle)
	echo "$btrfs_result" >&2
	[ "$btrfs_result" = "$ext4_result" ]
	[[ "$btrfs_result" == *"private.img.4@TIME"* ]]
	[[ "$btrfs_result" == *"state	clean"* ]]
}

@test "life cycle: xfs gives the same files and bytes as btrfs" {
	vol_setup btrfs
	btrfs_result=$(life_cycle)
	vol_setup xfs
	[ "$(life_cycle)" = "$btrfs_result" ]
}

@test "file-reflink(7): the EXAMPLES cycle works" {
	vol_setup btrfs
	cd "$POOL"
	run_man_examples file-reflink.7
	# The revert brought back the empty image; "hello" is revision 2.
	cmp -n 4096 appvms/work/private.img /dev/zero
	[ "$(revision_ids appvms/work private)" = 2 ]
	[ "$(head -c 5 "appvms/work/$(revision_of appvms/work private 2)")" = hello ]
}

@test "file-reflink(7): the hook example starts and stops a VM" {
	vol_setup btrfs
	man_example_script file-reflink.7 >"$DIR/vm-hook"
	mkdir -p "$POOL/vm-templates/fedora"
	vol-create -s 1M "$POOL/vm-templates/fedora/root"
	vol-create -s 1M "$VM/private"
	export POOL
	run sh "$DIR/vm-hook" vm1 start
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$VM/private-dirty.img" ]
	[ "${lines[1]}" = "$VM/root-dirty.img" ]
	[ "${lines[2]}" = "$VM/volatile-dirty.img" ]
	printf RUN1 | dd of="$VM/private-dirty.img" conv=notrunc status=none
	run sh "$DIR/vm-hook" vm1 stop
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img private.img.1@$(utc_stamp "$VM/private.img.1@"*)" ]
	[ "$(head -c 4 "$VM/private.img")" = RUN1 ]
}
