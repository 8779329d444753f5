#!/usr/bin/env bats
# vol-info -u and vol-prune -u: what each revision holds alone, and what
# a prune frees, proven against the filesystem itself.  A volume of
# 256 MiB gets revisions that overwrite 0%, 10% and 50% of it, and one
# with a hole punched; each revision is then pruned in turn, and the free
# space the filesystem gained is held against what vol-prune -n -u said
# removing it would free.

load helper

setup_file() {
	FS_IMAGE_SIZE=1200M fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

MIB=1048576

# commit_after V WHAT...: starts V, changes its dirty image as WHAT says,
# commits: "touch" (a revision equal to C), "write OFFSET COUNT" (COUNT
# MiB of random data at OFFSET MiB), "punch OFFSET COUNT" (a hole).
commit_after() {
	local v=$1
	shift
	vol-start "$v" >/dev/null
	while [ $# -gt 0 ]; do
		case $1 in
		touch)
			touch "$v-dirty.img"
			shift
			;;
		write)
			dd if=/dev/urandom of="$v-dirty.img" bs=1M seek="$2" \
				count="$3" conv=notrunc status=none
			shift 3
			;;
		punch)
			fallocate -p -o "$(($2 * MIB))" -l "$(($3 * MIB))" "$v-dirty.img"
			shift 3
			;;
		esac
	done
	vol-commit "$v"
}

# history V: the volume of the truth tests: 256 MiB of random data, and
# five revisions over it: the data as imported; the same, touched (0%);
# then 10% written at 0 MiB; then 50% written at 100 MiB; then a hole
# punched at 200 MiB and the first 10% written again, so that the extents
# of the first write are held by revisions alone.
history() {
	head -c 256M /dev/urandom | vol-import -s 256M "$1" -
	commit_after "$1" touch
	commit_after "$1" write 0 26
	commit_after "$1" write 100 128
	commit_after "$1" punch 200 20 write 0 26
	commit_after "$1" write 40 10
}

# free_bytes KIND: the free bytes of KIND's filesystem, once what was
# removed is freed: a sync, and on btrfs a transaction commit.
free_bytes() {
	local root
	root=$(fs_root "$1")
	sync
	if [ "$1" = btrfs ]; then
		btrfs filesystem sync "$root" >/dev/null
	fi
	sync -f "$root"
	stat -f -c '%f %S' "$root" | awk '{ print $1 * $2 }'
}

# truth KIND PERCENT: prunes the revisions of the history one at a time,
# oldest first; what the filesystem freed must be within PERCENT of what
# vol-prune -n -u predicted, or 1 MiB (metadata) for a small figure.
truth() {
	local kind=$1 percent=$2 v count predicted before after freed slack bad=0
	fs_dir "$kind"
	v=$DIR/private
	history "$v"
	count=$(vol-info -r "$v" | wc -l)
	[ "$count" -eq 5 ]
	while [ "$count" -gt 0 ]; do
		predicted=$(vol-prune -n -u -k $((count - 1)) "$v" 2>/dev/null | cut -f2)
		before=$(free_bytes "$kind")
		vol-prune -k $((count - 1)) "$v" >/dev/null
		after=$(free_bytes "$kind")
		freed=$((after - before))
		slack=$((predicted * percent / 100))
		[ "$slack" -ge "$MIB" ] || slack=$MIB
		echo "# $kind: oldest of $count revisions: predicted $predicted, freed $freed" >&3
		if [ $((freed - predicted)) -gt "$slack" ] || [ $((predicted - freed)) -gt "$slack" ]; then
			bad=1
		fi
		count=$((count - 1))
	done
	[ "$bad" -eq 0 ]
}

@test "space: xfs: pruning each revision frees what vol-prune -n -u predicted, within 1%" {
	truth xfs 1
}

@test "space: btrfs: pruning each revision frees what vol-prune -n -u predicted, within 2%" {
	# btrfs frees an extent only when no byte of it is referenced: the
	# part of an extent a later image overwrote stays allocated while
	# the rest is referenced, and the prediction does not count it
	# (a range referenced once yet marked shared is not freed).
	truth btrfs 2
}

@test "space: btrfs: each revision's exclusive bytes are what btrfs filesystem du says" {
	local v id exclusive path du
	fs_dir btrfs
	v=$DIR/private
	history "$v"
	# btrfs counts C's extents as shared with P: the revisions are the
	# comparison.  With the three oldest pruned, revision 4 alone holds
	# the extents of the first write of 26 MiB.
	vol-prune -k 2 "$v" >/dev/null
	[ "$(vol-info -u -r "$v" | head -1 | cut -f7)" -eq $((26 * MIB)) ]
	while IFS=$'\t' read -r id _ _ path _ _ exclusive _; do
		du=$(btrfs filesystem du --raw "$path" | awk 'NR == 2 { print $2 }')
		echo "# revision $id: exclusive $exclusive, btrfs filesystem du $du" >&3
		[ "$exclusive" -eq "$du" ]
	done < <(vol-info -u -r "$v")
}

@test "space: xfs: each revision's exclusive bytes are its unshared extents in xfs_bmap -v" {
	local v id exclusive path bmap
	fs_dir xfs
	v=$DIR/private
	history "$v"
	while IFS=$'\t' read -r id _ _ path _ _ exclusive _; do
		# FLAGS 0100000: a shared extent; the length is in 512-byte
		# blocks.  Holes have no AG.
		bmap=$(xfs_bmap -vp "$path" | awk '
			NR > 2 && $3 != "hole" && substr($7, 1, 1) != "1" { sum += $6 }
			END { print sum * 512 }')
		echo "# revision $id: exclusive $exclusive, xfs_bmap -v unshared $bmap" >&3
		[ "$exclusive" -eq "$bmap" ]
	done < <(vol-info -u -r "$v")
}

@test "space: vol-prune -n -u: a line per revision with its bytes, and the total by the set, not the sum" {
	local v total sum=0 bytes
	fs_dir xfs
	v=$DIR/private
	head -c 64M /dev/urandom | vol-import -s 64M "$v" -
	# Revisions 1 and 2 hold the same data; C overwrites 16 MiB of it:
	# neither frees that alone, both together do.
	commit_after "$v" touch
	commit_after "$v" write 0 16
	run vol-prune -n -u -k 0 "$v"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	while IFS=$'\t' read -r _ bytes; do
		sum=$((sum + bytes))
	done < <(vol-prune -n -u -k 0 "$v" 2>/dev/null)
	[ "$sum" -eq 0 ]
	total=$(vol-prune -n -u -k 0 "$v" 2>&1 >/dev/null)
	[[ $total == *"2 revisions would go, freeing 16777216 bytes (16.0 MiB)"* ]]
	# Nothing went.
	[ "$(vol-info -r "$v" | wc -l)" -eq 2 ]
	run vol-prune -u -k 0 "$v"
	[ "$status" -eq 0 ]
	[[ ${lines[-1]} == *"2 revisions removed, freeing 16777216 bytes"* ]]
	[ "$(vol-info -r "$v" | wc -l)" -eq 0 ]
}

@test "space: vol-info -u: extents and exclusive in text, TSV and JSON" {
	local v
	fs_dir xfs
	v=$DIR/private
	head -c 32M /dev/urandom | vol-import -s 32M "$v" -
	commit_after "$v" write 0 8
	run vol-info -u "$v"
	[ "$status" -eq 0 ]
	[ "${lines[6]%%$'\t'*}" = extents ]
	[ "${lines[7]}" = "exclusive	8388608" ]
	run vol-info -u -r "$v"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(cut -f7 <<<"${lines[0]}")" = 8388608 ]
	[ "$(cut -f6 <<<"${lines[0]}")" -ge 1 ]
	run vol-info -u -r -j "$v"
	[ "$status" -eq 0 ]
	python3 - "$output" <<'PY'
import json, sys
v = json.loads(sys.argv[1])[0]
assert v["exclusive_bytes"] == 8388608, v
assert v["extents"] >= 1, v
r = v["revision_list"][0]
assert r["exclusive_bytes"] == 8388608 and r["extents"] >= 1, r
PY
	# Without -u, nothing of it.
	run vol-info -j "$v"
	[[ $output != *exclusive* ]]
}

@test "space: vol-info -u: a dirty image holds alone what the VM wrote" {
	local v
	fs_dir btrfs
	v=$DIR/private
	head -c 32M /dev/urandom | vol-import -s 32M "$v" -
	vol-start "$v" >/dev/null
	dd if=/dev/urandom of="$v-dirty.img" bs=1M count=4 conv=notrunc status=none
	# Written, not yet flushed: -u syncs the image before it looks.
	run vol-info -u "$v"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "state	dirty" ]
	[ "${lines[7]}" = "exclusive	4194304" ]
}

@test "space: vol-info -u -S: a snapshot volume counts the template's clean image" {
	local t s
	fs_dir xfs
	t=$DIR/template/root
	s=$DIR/vm/root
	mkdir -p "$DIR/template" "$DIR/vm"
	head -c 32M /dev/urandom | vol-import -s 32M "$t" -
	vol-start -S "$t" "$s" >/dev/null
	dd if=/dev/urandom of="$s-dirty.img" bs=1M count=2 conv=notrunc status=none
	run vol-info -u -S "$t" "$s"
	[ "$status" -eq 0 ]
	[ "${lines[8]}" = "exclusive	2097152" ]
}

@test "space: vol-info -u -r on a terminal: human units and a bar per revision" {
	local v
	fs_dir xfs
	v=$DIR/private
	head -c 32M /dev/urandom | vol-import -s 32M "$v" -
	# Revision 1 (the import) alone holds the first 8 MiB, revision 2
	# the first 2 MiB of the first write, revision 3 nothing of its own.
	commit_after "$v" write 0 8
	commit_after "$v" write 0 2
	commit_after "$v" write 16 1
	run script -qec "vol-info -u -r '$v'" /dev/null
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *REVISION*EXCLUSIVE*EXTENTS*PATH* ]]
	# Revision 1 holds 8 MiB alone: the longest bar, 30 characters.
	[[ ${lines[2]} == *" 1  "*"8.0 MiB  ##############################  "* ]]
	[[ ${lines[3]} == *" 2  "*"2.0 MiB  ########  "* ]]
	[[ ${lines[4]} == *" 3  "*"    0 B  "* ]]
	# Through a pipe, the plain TSV.
	run vol-info -u -r "$v"
	[ "${#lines[@]}" -eq 3 ]
	[[ ${lines[0]} == 1$'\t'* ]]
	[ "$(cut -f7 <<<"${lines[1]}")" -eq 2097152 ]
}

@test "space: a filesystem without extent maps: 69, and why" {
	local dir=$BATS_TEST_TMPDIR/tmpfs
	mkdir -p "$dir"
	mount -t tmpfs none "$dir"
	mkdir "$dir/vm"
	vol-create -s 1M "$dir/vm/private" 2>/dev/null
	run vol-info -u "$dir/vm/private"
	umount "$dir"
	[ "$status" -eq 69 ]
	[[ $output == *"private.img: its filesystem tells no extent map (FIEMAP)"* ]]
}
