#!/usr/bin/env bats
# vol-commit: D becomes C, the old C a revision, P is refreshed.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

# One VM run: start, write TEXT at offset 0 of D.
vm_run() {
	local d
	d=$(vol-start "$B")
	printf '%s' "$1" | dd of="$d" conv=notrunc status=none
}

commit_makes_revision() {
	vol_setup "$1"
	vol_make PRE
	touch -d '2021-03-04 05:06:07 UTC' "$B.img" "$B-precache.img"
	c_inode=$(inode "$B.img")
	vm_run AAAA
	d_inode=$(inode "$B-dirty.img")
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-commit "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	rev=private.img.1@2021-03-04T05:06:07Z
	[ "$(files_in "$VM")" = "private-precache.img private.img $rev" ]
	[ "$(inode "$B.img")" = "$d_inode" ]
	[ "$(inode "$VM/$rev")" = "$c_inode" ]
	[ "$(head_bytes "$VM/$rev" 3)" = PRE ]
	[ "$(head_bytes "$B.img")" = AAAA ]
	cmp "$B.img" "$B-precache.img"
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	[ "$(inode "$B-precache.img")" != "$d_inode" ]
	# The precache is the only clone a commit makes.
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
}

@test "vol-commit: btrfs: D becomes C, the old C revision 1, P refreshed" {
	commit_makes_revision btrfs
}

@test "vol-commit: xfs: D becomes C, the old C revision 1, P refreshed" {
	commit_makes_revision xfs
}

@test "vol-commit: the revision is named after C's mtime in UTC" {
	vol_setup btrfs
	vol_make
	TZ=America/New_York touch -d '2022-07-01 23:30:00' "$B.img"
	stamp=$(utc_stamp "$B.img")
	[ "$stamp" = 2022-07-02T03:30:00Z ]
	printf X >"$B-dirty.img"
	vol-commit "$B"
	[ -f "$VM/private.img.1@$stamp" ]
}

@test "vol-commit: without D it exits 0 and changes nothing" {
	vol_setup btrfs
	vol_make
	ln "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	ln "$B.img" "$VM/private.img.2@2020-01-01T00:00:00Z"
	before=$(dir_state "$VM")
	run vol-commit "$B"
	[ "$status" -eq 0 ]
	run vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-commit: a second commit is harmless" {
	vol_setup xfs
	vol_make
	vm_run ONE
	vol-commit -k 2 "$B"
	before=$(dir_state "$VM")
	run vol-commit -k 2 "$B"
	[ "$status" -eq 0 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-commit: C missing: D becomes C with a warning, no revision" {
	vol_setup btrfs
	printf DIRTY >"$B-dirty.img"
	d_inode=$(inode "$B-dirty.img")
	run --separate-stderr vol-commit -k 2 "$B"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"$B.img is missing"*"no revision is made"* ]]
	[ "$(inode "$B.img")" = "$d_inode" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-commit: junk revision-like names change nothing and survive" {
	vol_setup btrfs
	vol_make
	echo junk >"$VM/private.img.x@2018-01-02T03:04:05Z"
	echo junk >"$VM/private.img.1@x@2018-01-02T03:04:05Z"
	echo junk >"$VM/private.img.-5@2018-01-02T03:04:05Z"
	echo junk >"$VM/private.img.99999999999999999999999@2018-01-02T03:04:05Z"
	echo legacy >"$VM/private.img@2018-01-02T03:04:05Z"
	vm_run A
	run vol-commit -k 1 "$B"
	[ "$status" -eq 0 ]
	# The new revision is 1: the id beyond 64 bits is no revision.
	[ "$(revision_ids "$VM" private)" = "1 99999999999999999999999" ]
	for f in 'private.img.x@2018-01-02T03:04:05Z' 'private.img.1@x@2018-01-02T03:04:05Z' \
		'private.img.-5@2018-01-02T03:04:05Z' \
		'private.img.99999999999999999999999@2018-01-02T03:04:05Z' \
		'private.img@2018-01-02T03:04:05Z'; do
		[ -f "$VM/$f" ]
	done
}

keep_three_of_five() {
	vol_setup "$1"
	vol_make C0
	for i in 1 2 3 4 5; do
		vm_run "C$i"
		vol-commit -k 3 "$B"
	done
	[ "$(revision_ids "$VM" private)" = "3 4 5" ]
	# Revision N holds what C held before cycle N's commit.
	for i in 3 4 5; do
		[ "$(head_bytes "$VM/$(revision_of "$VM" private "$i")" 2)" = "C$((i - 1))" ]
	done
	[ "$(head_bytes "$B.img" 2)" = C5 ]
}

@test "vol-commit: btrfs: -k 3 over five cycles keeps revisions 3, 4, 5" {
	keep_three_of_five btrfs
}

@test "vol-commit: xfs: -k 3 over five cycles keeps revisions 3, 4, 5" {
	keep_three_of_five xfs
}

@test "vol-commit: -k 0 leaves no revision, and numbering restarts at 1" {
	vol_setup btrfs
	vol_make C0
	vm_run C1
	vol-commit -k 2 "$B"
	vm_run C2
	vol-commit -k 2 "$B"
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	vm_run C3
	vol-commit -k 0 "$B"
	[ "$(revision_ids "$VM" private)" = "" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	vm_run C4
	vol-commit -k 2 "$B"
	[ "$(revision_ids "$VM" private)" = 1 ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 1)" 2)" = C3 ]
}

@test "vol-commit: ids never repeat while a revision exists" {
	vol_setup btrfs
	vol_make C0
	for i in 1 2 3; do
		vm_run "C$i"
		vol-commit -k 1 "$B"
	done
	[ "$(revision_ids "$VM" private)" = 3 ]
	# A hand-placed high id is respected: the next is one above it.
	mv "$VM/$(revision_of "$VM" private 3)" "$VM/private.img.0041@2020-01-01T00:00:00Z"
	vm_run C4
	vol-commit "$B"
	[ "$(revision_ids "$VM" private)" = "0041 42" ]
}

@test "vol-commit: -k -1 fsyncs D, renames it to C, no revision, no P" {
	vol_setup xfs
	vol_make OLD
	ln "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	printf NEW >"$B-dirty.img"
	d_inode=$(inode "$B-dirty.img")
	run strace -f -o "$DIR/trace" -e trace=fsync,rename,renameat,renameat2,openat,ioctl \
		vol-commit -k -1 "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private.img" ]
	[ "$(inode "$B.img")" = "$d_inode" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	# D's data is fsynced before the rename that makes it C.
	# (The last open of D: the first ones look whether a VM wrote it.)
	fd=$(sed -n 's/.*openat(.*"private-dirty.img".* = \([0-9]*\)$/\1/p' "$DIR/trace" | tail -1)
	[ -n "$fd" ]
	fsync_line=$(grep -n "fsync($fd)" "$DIR/trace" | head -1 | cut -d: -f1)
	rename_line=$(grep -n 'rename.*"private-dirty.img".*"private.img"' "$DIR/trace" | head -1 | cut -d: -f1)
	[ -n "$fsync_line" ] && [ -n "$rename_line" ]
	[ "$fsync_line" -lt "$rename_line" ]
}

@test "vol-commit: after a crash between link and rename, no second revision" {
	vol_setup btrfs
	vol_make PRE
	vm_run NEW
	# What a crash right after the link leaves: C is also revision 1.
	ln "$B.img" "$VM/private.img.1@$(utc_stamp "$B.img")"
	run vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 1)" 3)" = PRE ]
	[ "$(head_bytes "$B.img" 3)" = NEW ]
}

@test "vol-commit: --from FILE consumes FILE by rename" {
	vol_setup btrfs
	vol_make PRE
	printf FROMFILE >"$DIR/new.img"
	f_inode=$(inode "$DIR/new.img")
	run vol-commit -k 1 --from "$DIR/new.img" "$B"
	[ "$status" -eq 0 ]
	[ ! -e "$DIR/new.img" ]
	[ "$(inode "$B.img")" = "$f_inode" ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	cmp "$B.img" "$B-precache.img"
}

@test "vol-commit: --from refuses a dirty volume and another filesystem" {
	vol_setup btrfs
	vol_make PRE
	printf D >"$B-dirty.img"
	printf F >"$DIR/new.img"
	run vol-commit --from "$DIR/new.img" "$B"
	[ "$status" -eq 75 ]
	rm "$B-dirty.img"
	printf F >"$BATS_TEST_TMPDIR/other.img"
	run vol-commit --from "$BATS_TEST_TMPDIR/other.img" "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"not on the filesystem"* ]]
	[ -f "$BATS_TEST_TMPDIR/other.img" ]
	[ "$(head_bytes "$B.img" 3)" = PRE ]
}

@test "vol-commit: every file operation is logged to syslog and, with -v, stderr" {
	vol_setup btrfs
	vol_make
	vm_run A
	run syslog_capture "$DIR/syslog" vol-commit -v "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vol-commit: linked $B.img to $B.img.1@"* ]]
	[[ "$output" == *"vol-commit: renamed $B-dirty.img to $B.img"* ]]
	[[ "$output" == *"vol-commit: cloned $B-dirty.img to $B-precache.img~"* ]]
	# <14> is user.info; the ident is the tool's name.
	grep -q "^<14>.*vol-commit\[[0-9]*\]: linked $B.img to $B.img.1@" "$DIR/syslog"
	grep -q "^<14>.*vol-commit\[[0-9]*\]: renamed $B-dirty.img to $B.img\$" "$DIR/syslog"
	grep -q "^<14>.*vol-commit\[[0-9]*\]: renamed $B-precache.img~.* to $B-precache.img\$" "$DIR/syslog"
	# Without -v the same goes to syslog and nothing to stderr.
	vm_run B
	run syslog_capture "$DIR/syslog" vol-commit "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -q "vol-commit\[[0-9]*\]: linked $B.img to $B.img.2@" "$DIR/syslog"
}

@test "vol-commit: D that is a symlink exits 65 and is not followed" {
	vol_setup btrfs
	vol_make PRE
	printf OUTSIDE >"$DIR/outside"
	ln -s "$DIR/outside" "$B-dirty.img"
	run vol-commit "$B"
	[ "$status" -eq 65 ]
	[ -L "$B-dirty.img" ]
	[ "$(head_bytes "$B.img" 3)" = PRE ]
	[ "$(cat "$DIR/outside")" = OUTSIDE ]
}

@test "vol-commit: usage errors exit 64 and change nothing" {
	vol_setup btrfs
	vol_make
	printf D >"$B-dirty.img"
	for args in "" "-x $B" "$B extra" "-k -2 $B" "-k x $B" \
		"-k 99999999999 $B" "-w x $B" "--from"; do
		# shellcheck disable=SC2086
		run vol-commit $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-commit"* ]]
	done
	[ "$(files_in "$VM")" = "private-dirty.img private-precache.img private.img" ]
}

@test "vol-commit: a VOLUME whose directory does not exist exits 66" {
	vol_setup btrfs
	run vol-commit "$POOL/appvms/nope/private"
	[ "$status" -eq 66 ]
}

@test "vol-commit: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$POOL"
	vol-create -s 1M appvms/vm1/private
	vol-start appvms/vm1/private >/dev/null
	printf '%s\n' "$DIR/new.img" >/dev/null
	run_man_examples vol-commit.1
}

@test "vol-commit: a volume none of whose files exist exits 66" {
	vol_setup btrfs
	run vol-commit -k 3 "$VM/privat"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$VM/privat: no such volume"* ]]
	[ "$(files_in "$VM")" = "" ]
}

@test "vol-commit: D still backing a loop device exits 75 and nothing changes" {
	vol_setup btrfs
	vol_make PRE
	printf RUNNING >"$B-dirty.img"
	truncate -s 1M "$B-dirty.img"
	before=$(dir_state "$VM")
	loop=$(losetup -f --show "$B-dirty.img")
	run vol-commit -k 1 "$B"
	losetup -d "$loop"
	[ "$status" -eq 75 ]
	[[ "$output" == *"$B-dirty.img: in use by $loop"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
	run vol-commit -k 1 "$B"
	[ "$status" -eq 0 ]
}

@test "vol-commit: names that belong to another volume's files exit 64" {
	vol_setup btrfs
	vol_make
	for name in private-dirty private-precache private-import private-dirty.img ""; do
		run vol-commit "$VM/$name"
		[ "$status" -eq 64 ]
		[[ "$output" == *"not a volume name"* ]]
	done
	run vol-commit "$VM/"
	[ "$status" -eq 64 ]
}

@test "vol-commit: --from a FILE that is gone exits 66 and finishes a commit cut short" {
	vol_setup btrfs
	vol_make PRE
	printf NEW >"$DIR/new.img"
	# What a vol-commit --from killed after its rename leaves: FILE is C,
	# the old C revision 1, the precache stale.
	ln "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	mv "$DIR/new.img" "$B.img"
	run vol-commit -k 1 --from "$DIR/new.img" "$B"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/new.img: No such file or directory"* ]]
	cmp "$B.img" "$B-precache.img"
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
}
