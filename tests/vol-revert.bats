#!/usr/bin/env bats
# vol-revert: a revision becomes C again; the old C becomes a revision.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

# Revisions 3, 4, 5 holding R3, R4, R5 and C holding CUR, as five commits
# with -k 3 leave them.
revert_setup() {
	vol_setup "$1"
	vol_make R1
	local i d
	for i in 2 3 4 5 6; do
		d=$(vol-start "$B")
		if [ "$i" -le 5 ]; then
			printf "R%s" "$i" | dd of="$d" conv=notrunc status=none
		else
			printf CUR | dd of="$d" conv=notrunc status=none
		fi
		vol-commit -k 3 "$B"
	done
	[ "$(revision_ids "$VM" private)" = "3 4 5" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 3)" 2)" = R3 ]
}

revert_to_three() {
	revert_setup "$1"
	r3=$(revision_of "$VM" private 3)
	r3_inode=$(inode "$VM/$r3")
	c_inode=$(inode "$B.img")
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-revert -r 3 "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(head_bytes "$B.img" 2)" = R3 ]
	[ "$(inode "$B.img")" = "$r3_inode" ]
	[ "$(revision_ids "$VM" private)" = "4 5 6" ]
	[ "$(inode "$VM/$(revision_of "$VM" private 6)")" = "$c_inode" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 6)" 3)" = CUR ]
	cmp "$B.img" "$B-precache.img"
	[ "$(mtime_ns "$B.img")" = "$(mtime_ns "$B-precache.img")" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
}

@test "vol-revert: btrfs: -r 3 makes revision 3 C; the old C becomes 6" {
	revert_to_three btrfs
}

@test "vol-revert: xfs: -r 3 makes revision 3 C; the old C becomes 6" {
	revert_to_three xfs
}

@test "vol-revert: the default target is the highest id" {
	revert_setup btrfs
	run vol-revert "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R5 ]
	[ "$(revision_ids "$VM" private)" = "3 4 6" ]
}

@test "vol-revert: a revert of a revert restores the state before" {
	revert_setup xfs
	vol-revert -r 3 "$B"
	run vol-revert "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 3)" = CUR ]
}

@test "vol-revert: a dirty volume exits 75 and nothing changes" {
	revert_setup btrfs
	vol-start "$B" >/dev/null
	before=$(dir_state "$VM")
	run vol-revert -r 3 "$B"
	[ "$status" -eq 75 ]
	[[ "$output" == *"the volume is dirty"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-revert: --discard drops D first, then reverts" {
	revert_setup btrfs
	vol-start "$B" >/dev/null
	run vol-revert --discard -r 4 "$B"
	[ "$status" -eq 0 ]
	[ ! -e "$B-dirty.img" ]
	[ "$(head_bytes "$B.img" 2)" = R4 ]
}

@test "vol-revert: no revisions, or an unknown id, exit 66 and change nothing" {
	vol_setup btrfs
	vol_make
	before=$(dir_state "$VM")
	run vol-revert "$B"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no revisions"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
	ln "$B.img" "$VM/private.img.7@2020-01-01T00:00:00Z"
	run vol-revert -r 8 "$B"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no revision 8"* ]]
	run vol-revert -r 99999999999999999999999 "$B"
	[ "$status" -eq 66 ]
}

@test "vol-revert: leading zeros name the same revision" {
	revert_setup btrfs
	run vol-revert -r 004 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R4 ]
}

@test "vol-revert: C missing: the revision becomes C, no new revision" {
	revert_setup btrfs
	rm "$B.img"
	run vol-revert -r 4 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R4 ]
	[ "$(revision_ids "$VM" private)" = "3 5" ]
}

@test "vol-revert: -k 0 makes no revision of the old C" {
	revert_setup xfs
	run vol-revert -k 0 -r 5 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R5 ]
	[ "$(revision_ids "$VM" private)" = "" ]
}

@test "vol-revert: -k 2 prunes after the revert" {
	revert_setup btrfs
	run vol-revert -k 2 -r 3 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R3 ]
	[ "$(revision_ids "$VM" private)" = "5 6" ]
}

@test "vol-revert: after a crash between link and rename, latest skips C's copy" {
	revert_setup btrfs
	# A crash right after "link C to revision 6" leaves C twice.
	ln "$B.img" "$VM/private.img.6@$(utc_stamp "$B.img")"
	run vol-revert "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R5 ]
	[ "$(revision_ids "$VM" private)" = "3 4 6" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 6)" 3)" = CUR ]
}

@test "vol-revert: usage errors exit 64 and change nothing" {
	revert_setup btrfs
	before=$(dir_state "$VM")
	for args in "" "-x $B" "$B extra" "-k -2 $B" "-r x $B" "-r -1 $B" \
		"-r 1x $B" "-w x $B"; do
		# shellcheck disable=SC2086
		run vol-revert $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-revert"* ]]
	done
	run vol-revert -r '' "$B"
	[ "$status" -eq 64 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-revert: a VOLUME whose directory does not exist exits 66" {
	vol_setup btrfs
	run vol-revert "$POOL/appvms/nope/private"
	[ "$status" -eq 66 ]
}

@test "vol-revert: the EXAMPLES of the man page work" {
	revert_setup btrfs
	cd "$POOL"
	run_man_examples vol-revert.1
}

@test "vol-revert: a -k 0 revert cut short after its rename is finished, not redone" {
	revert_setup btrfs
	r5=$(revision_of "$VM" private 5)
	# What a vol-revert -k 0 killed right after its last step, the
	# rename of revision 5 over C, leaves: the other revisions are gone
	# already, the precache is the old one.
	rm "$VM/$(revision_of "$VM" private 3)" "$VM/$(revision_of "$VM" private 4)"
	mv "$VM/$r5" "$B.img"
	run vol-revert -k 0 "$B"
	[ "$status" -eq 66 ]
	[ "$(head_bytes "$B.img" 2)" = R5 ]
	[ "$(revision_ids "$VM" private)" = "" ]
	cmp "$B.img" "$B-precache.img"
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
}

@test "vol-revert: -k 0 prunes the others before it renames the revision over C" {
	revert_setup btrfs
	run strace -f -o "$DIR/trace" -e trace=unlinkat,renameat,renameat2 vol-revert -k 0 -r 4 "$B"
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$B.img" 2)" = R4 ]
	[ "$(revision_ids "$VM" private)" = "" ]
	last_unlink=$(grep -n 'unlinkat(.*private.img.[35]@' "$DIR/trace" | tail -1 | cut -d: -f1)
	rename=$(grep -n 'rename.*private.img.4@.*"private.img"' "$DIR/trace" | cut -d: -f1)
	[ -n "$last_unlink" ] && [ -n "$rename" ]
	[ "$last_unlink" -lt "$rename" ]
}
