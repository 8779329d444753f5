#!/usr/bin/env bats
# vol-start: D for each volume type, and what an earlier crash left.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

start_renames_precache() {
	vol_setup "$1"
	vol_make DATA
	p_inode=$(inode "$B-precache.img")
	run --separate-stderr strace -f -o "$DIR/trace" -e trace=ioctl vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$B-dirty.img" ]
	[ "$(inode "$B-dirty.img")" = "$p_inode" ]
	[ "$(files_in "$VM")" = "private-dirty.img private.img" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	cmp "$B.img" "$B-dirty.img"
}

@test "vol-start: btrfs: a valid precache becomes D by rename, no clone" {
	start_renames_precache btrfs
}

@test "vol-start: xfs: a valid precache becomes D by rename, no clone" {
	start_renames_precache xfs
}

@test "vol-start: stdout is exactly the path of D and a newline" {
	vol_setup btrfs
	vol_make
	vol-start "$B" >"$DIR/out"
	printf '%s\n' "$B-dirty.img" | cmp - "$DIR/out"
}

@test "vol-start: stale temp files and a leftover import go, other volumes' stay" {
	vol_setup xfs
	vol_make
	for f in private.img~x private-dirty.img~x private-precache.img~abcdef \
		'private.img.3@2020-01-01T00:00:00Z~x' private-import.img \
		private-import.img~x privatex.img~x root.img~x; do
		echo junk >"$VM/$f"
	done
	run vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-dirty.img private.img privatex.img~x root.img~x" ]
}

stale_precache_removed() {
	vol_setup "$1"
	vol_make GOOD
	# The stale precache holds other bytes, so that using it would show.
	printf STALE | dd of="$B-precache.img" conv=notrunc status=none
	if [ "$2" = mtime ]; then
		touch -d '2001-01-01' "$B-precache.img"
	else
		truncate -s 2M "$B-precache.img"
		touch -r "$B.img" "$B-precache.img"
	fi
	run --separate-stderr vol-start "$B"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"$B-precache.img: stale precache"*"removed"* ]]
	# (The inode number may be reused on XFS: compare the bytes.)
	cmp "$B.img" "$B-dirty.img"
	[ "$(files_in "$VM")" = "private-dirty.img private.img" ]
}

@test "vol-start: btrfs: a precache with another mtime is removed with a warning" {
	stale_precache_removed btrfs mtime
}

@test "vol-start: xfs: a precache with another size is removed with a warning" {
	stale_precache_removed xfs size
}

@test "vol-start: without a precache D is cloned from C" {
	vol_setup btrfs
	vol_make DATA
	rm "$B-precache.img"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
	cmp "$B.img" "$B-dirty.img"
	[ "$(inode "$B.img")" != "$(inode "$B-dirty.img")" ]
	extents_shared "$B-dirty.img"
}

@test "vol-start: C missing exits 66, leaves P alone and makes no D" {
	vol_setup btrfs
	vol_make
	rm "$B.img"
	p_inode=$(inode "$B-precache.img")
	run vol-start "$B"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$B.img: No such file or directory"* ]]
	[ "$(files_in "$VM")" = "private-precache.img" ]
	[ "$(inode "$B-precache.img")" = "$p_inode" ]
}

@test "vol-start: an existing D is resumed byte for byte, with a warning" {
	vol_setup xfs
	vol_make CLEAN
	printf 'UNCOMMITTED' >"$B-dirty.img"
	cp "$B-dirty.img" "$DIR/expected"
	d_inode=$(inode "$B-dirty.img")
	run --separate-stderr vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$B-dirty.img" ]
	[[ "$stderr" == *"resuming its uncommitted state"* ]]
	cmp "$DIR/expected" "$B-dirty.img"
	[ "$(inode "$B-dirty.img")" = "$d_inode" ]
}

snapshot_links_source() {
	vol_setup "$1"
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	random_file "$S.img" 1M
	R=$VM/root
	run vol-start -S "$S" "$R"
	[ "$status" -eq 0 ]
	[ "$output" = "$R-dirty.img" ]
	[ "$(inode "$R.img")" = "$(inode "$S.img")" ]
	[ "$(stat -c %h "$S.img")" -eq 2 ]
	cmp "$S.img" "$R-dirty.img"
	[ "$(inode "$R-dirty.img")" != "$(inode "$S.img")" ]
	extents_shared "$R-dirty.img"
}

@test "vol-start: btrfs: -S links SRC's C and clones D from it" {
	snapshot_links_source btrfs
}

@test "vol-start: xfs: -S links SRC's C and clones D from it" {
	snapshot_links_source xfs
}

@test "vol-start: -S rebuilds a D left by a crash and relinks an outdated C" {
	vol_setup btrfs
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	printf NEWSRC >"$S.img"
	R=$VM/root
	# The template was committed since: own C is its revision now.
	printf OLDSRC >"$R.img"
	ln "$R.img" "$S.img.1@2020-01-01T00:00:00Z"
	printf STALE >"$R-dirty.img"
	run vol-start -S "$S" "$R"
	[ "$status" -eq 0 ]
	[ "$(inode "$R.img")" = "$(inode "$S.img")" ]
	[ "$(cat "$R-dirty.img")" = NEWSRC ]
}

@test "vol-start: -S with SRC's C missing exits 66 and leaves own files alone" {
	vol_setup btrfs
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	R=$VM/root
	printf OWN >"$R.img"
	printf DIRTY >"$R-dirty.img"
	run vol-start -S "$S" "$R"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$S.img: No such file or directory"* ]]
	[ "$(cat "$R.img")" = OWN ]
	[ "$(cat "$R-dirty.img")" = DIRTY ]
}

@test "vol-start: --volatile makes a fresh all-zero sparse D" {
	vol_setup xfs
	V=$VM/volatile
	random_file "$V-dirty.img" 128K
	old=$(inode "$V-dirty.img")
	run vol-start --volatile -s 64K "$V"
	[ "$status" -eq 0 ]
	[ "$output" = "$V-dirty.img" ]
	[ "$(stat -c %s "$V-dirty.img")" -eq 65536 ]
	[ "$(stat -c %b "$V-dirty.img")" -eq 0 ]
	cmp "$V-dirty.img" <(head -c 65536 /dev/zero)
	[ "$(inode "$V-dirty.img")" != "$old" ]
	[ "$(files_in "$VM")" = "volatile-dirty.img" ]
}

snapshots_disabled_start() {
	vol_setup "$1"
	vol_make DATA
	ln "$B.img" "$B.img.1@2020-01-01T00:00:00Z"
	cp "$B.img" "$B.img.2@2020-01-02T00:00:00Z"
	c_inode=$(inode "$B.img")
	run vol-start -k -1 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$B-dirty.img" ]
	[ "$(files_in "$VM")" = "private-dirty.img" ]
	[ "$(inode "$B-dirty.img")" = "$c_inode" ]
}

@test "vol-start: btrfs: -k -1 renames C to D and removes revisions and P" {
	snapshots_disabled_start btrfs
}

@test "vol-start: xfs: -k -1 renames C to D and removes revisions and P" {
	snapshots_disabled_start xfs
}

@test "vol-start: -k -1 keeps an existing D" {
	vol_setup btrfs
	printf RUNNING >"$B-dirty.img"
	d_inode=$(inode "$B-dirty.img")
	run vol-start -k -1 "$B"
	[ "$status" -eq 0 ]
	[ "$(inode "$B-dirty.img")" = "$d_inode" ]
	[ "$(cat "$B-dirty.img")" = RUNNING ]
}

@test "vol-start: -k -1 with C missing exits 66 and keeps the revisions" {
	vol_setup btrfs
	echo r1 >"$B.img.1@2020-01-01T00:00:00Z"
	echo p >"$B-precache.img"
	run vol-start -k -1 "$B"
	[ "$status" -eq 66 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img.1@2020-01-01T00:00:00Z" ]
}

@test "vol-start: C that is a symlink or a directory exits 65, nothing followed" {
	vol_setup btrfs
	echo target >"$DIR/target"
	ln -s "$DIR/target" "$B.img"
	run vol-start "$B"
	[ "$status" -eq 65 ]
	[ ! -e "$B-dirty.img" ]
	[ "$(cat "$DIR/target")" = target ]
	rm "$B.img"
	mkdir "$B.img"
	run vol-start "$B"
	[ "$status" -eq 65 ]
	[ ! -e "$B-dirty.img" ]
}

@test "vol-start: a VOLUME whose directory does not exist exits 66" {
	vol_setup btrfs
	run vol-start "$POOL/appvms/nope/private"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$POOL/appvms/nope: No such file or directory"* ]]
}

@test "vol-start: usage errors exit 64 and change nothing" {
	vol_setup btrfs
	vol_make
	for args in "" "-x $B" "$B extra" "-k -2 $B" "-k x $B" "--volatile $B" \
		"-s 1M $B" "--volatile -s 12Q $B" "-k 1 -S $B $B" \
		"-S $B --volatile -s 1M $B" "-w -1 $B"; do
		# shellcheck disable=SC2086
		run vol-start $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-start"* ]]
	done
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-start: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$POOL"
	vol-create -s 1M appvms/vm1/private
	mkdir -p vm-templates/fedora
	vol-create -s 1M vm-templates/fedora/root
	run_man_examples vol-start.1
}

@test "vol-start: -S or --volatile while D backs a loop device exits 75, D kept" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	V=$VM/volatile
	random_file "$V-dirty.img" 1M
	before=$(dir_state "$VM")
	loop=$(losetup -f --show "$V-dirty.img")
	run vol-start --volatile -s 1M "$V"
	status_volatile=$status
	run vol-start -S "$B" "$V"
	losetup -d "$loop"
	[ "$status_volatile" -eq 75 ]
	[ "$status" -eq 75 ]
	[[ "$output" == *"$V-dirty.img: in use by $loop"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-start: -S on an origin volume (revisions or P) exits 65 and keeps its C" {
	vol_setup btrfs
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	vol-create -s 1M "$S"
	vol_make PRECIOUS
	before=$(dir_state "$VM")
	run vol-start -S "$S" "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$B.img: an origin volume (it has "*", not a snapshot"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-start: -S on a stopped volume whose C has no other name (-k -1) exits 65" {
	vol_setup btrfs
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	vol-create -s 1M "$S"
	vol-create -k -1 -s 1M "$B"
	printf ONLY | dd of="$B.img" conv=notrunc status=none
	before=$(dir_state "$VM")
	run vol-start -S "$S" "$B"
	[ "$status" -eq 65 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-start: a volume name with a '~' exits 64" {
	vol_setup btrfs
	run vol-create -s 1M "$VM/p.img~x"
	[ "$status" -eq 64 ]
	[[ "$output" == *"not a volume name"* ]]
	[ "$(files_in "$VM")" = "" ]
}
