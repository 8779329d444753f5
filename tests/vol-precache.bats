#!/usr/bin/env bats
# vol-precache, and --precache=later on the tools that change C: the
# precache is made off the stop, and never left unlike C.

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

# P is a valid precache of C: same bytes and mtime, another inode, and
# (where the filesystem clones) C's very extents.
precache_valid() {
	[ -f "$B-precache.img" ]
	[ "$(inode "$B-precache.img")" != "$(inode "$B.img")" ]
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	cmp "$B.img" "$B-precache.img"
}

commit_later_clones_nothing() {
	vol_setup "$1"
	vol_make PRE
	vm_run AAAA
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-commit --precache=later "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	rev=$(revision_of "$VM" private 1)
	[ "$(files_in "$VM")" = "private.img $rev" ]
	[ "$(head_bytes "$B.img")" = AAAA ]
	[ "$(head_bytes "$VM/$rev" 3)" = PRE ]
}

@test "vol-commit --precache=later: no clone, the stale precache goes (btrfs)" {
	commit_later_clones_nothing btrfs
}

@test "vol-commit --precache=later: no clone, the stale precache goes (xfs)" {
	commit_later_clones_nothing xfs
}

precache_then_start() {
	vol_setup "$1"
	vol_make PRE
	vm_run AAAA
	vol-commit --precache=later "$B"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-precache "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
	precache_valid
	extents_shared "$B.img" "$B-precache.img"
	p=$(inode "$B-precache.img")
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	[ "$(inode "$B-dirty.img")" = "$p" ]
	[ ! -e "$B-precache.img" ]
}

@test "vol-precache: one clone, and the next start is a rename (btrfs)" {
	precache_then_start btrfs
}

@test "vol-precache: one clone, and the next start is a rename (xfs)" {
	precache_then_start xfs
}

@test "vol-start without a precache clones D from C, as it always did" {
	vol_setup btrfs
	vol_make PRE
	vm_run AAAA
	vol-commit --precache=later "$B"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-start "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 1 ]
	[ "$(head_bytes "$B-dirty.img")" = AAAA ]
	[ "$(mtime_ns "$B-dirty.img")" = "$(mtime_ns "$B.img")" ]
}

@test "vol-precache: a valid precache is left alone, exit 0, no clone" {
	vol_setup btrfs
	vol_make PRE
	touch -r "$B.img" "$B-precache.img"
	before=$(dir_state "$VM")
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-precache -v "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"private-precache.img: the precache is up to date"* ]]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-precache: a stale precache is made anew" {
	vol_setup btrfs
	vol_make PRE
	printf OLD | dd of="$B-precache.img" conv=notrunc status=none
	touch -d '2020-01-01 UTC' "$B-precache.img"
	old=$(inode "$B-precache.img")
	run vol-precache "$B"
	[ "$status" -eq 0 ]
	precache_valid
	[ "$(inode "$B-precache.img")" != "$old" ]
}

@test "vol-precache: a standard output it cannot close: the precache is made, exit 74 naming it" {
	vol_setup btrfs
	vol_make PRE
	rm "$B-precache.img"
	run sh -c 'vol-precache "$1" 2>&1 >&-' sh "$B"
	[ "$status" -eq 74 ]
	[[ "$output" == *"vol-precache: standard output"* ]]
	precache_valid
}

@test "vol-precache: a running volume is skipped with a message, exit 0" {
	vol_setup btrfs
	vol_make PRE
	vm_run AAAA
	before=$(dir_state "$VM")
	run vol-precache "$B"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$B: the VM runs (there is a dirty image): skipped"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
	run vol-precache -q "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "vol-precache: a snapshot volume (C shared with its source) is skipped" {
	vol_setup btrfs
	vol_make TMPL
	rm "$B-precache.img"
	mkdir -p "$POOL/appvms/vm2"
	ln "$B.img" "$POOL/appvms/vm2/root.img"
	before=$(dir_state "$POOL/appvms/vm2")
	run vol-precache "$POOL/appvms/vm2/root"
	[ "$status" -eq 0 ]
	[[ "$output" == *"a snapshot volume, which has no precache"* ]]
	[ "$(dir_state "$POOL/appvms/vm2")" = "$before" ]
	# And its start as a snapshot still works.
	run vol-start -S "$B" "$POOL/appvms/vm2/root"
	[ "$status" -eq 0 ]
}

@test "vol-precache: each volume on its own; the first failure is the status" {
	vol_setup btrfs
	vol_make PRE
	rm "$B-precache.img"
	run vol-precache "$VM/nothing" "$B"
	[ "$status" -eq 66 ]
	[[ "$output" == *"nothing.img: No such file or directory"* ]]
	precache_valid
	run vol-precache "$POOL/no-such-dir/x"
	[ "$status" -eq 66 ]
}

@test "vol-precache: a temp file of a killed run is removed" {
	vol_setup btrfs
	vol_make PRE
	rm "$B-precache.img"
	cp "$B.img" "$B-precache.img~Ab12Cd"
	run vol-precache "$B"
	[ "$status" -eq 0 ]
	precache_valid
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-precache: waits for the lock, or gives up after -w with 75" {
	vol_setup btrfs
	vol_make PRE
	rm "$B-precache.img"
	hold_lock "$VM"
	run vol-precache -w 0 "$B"
	[ "$status" -eq 75 ]
	[ ! -e "$B-precache.img" ]
	release_lock
	run vol-precache -w 5 "$B"
	[ "$status" -eq 0 ]
	precache_valid
}

# The tools that change C, each with --precache=later: no clone for P,
# no P after, C as without the option.
@test "--precache=later: vol-create, vol-import, vol-resize, vol-revert, vol-discard leave no precache" {
	vol_setup btrfs
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-create --precache=later -s 1M "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	[ "$(files_in "$VM")" = "private.img" ]

	random_file "$DIR/new.img" 1048576
	vol-import --precache=later "$B" "$DIR/new.img"
	cmp "$B.img" "$DIR/new.img"
	[ ! -e "$B-precache.img" ]

	vol-precache "$B"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-resize --precache=later -s 2M "$B"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$B.img")" -eq $((2 * 1024 * 1024)) ]
	[ ! -e "$B-precache.img" ]

	vol-precache "$B"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-revert --precache=later "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	[ "$(stat -c %s "$B.img")" -eq $((1024 * 1024)) ]
	[ ! -e "$B-precache.img" ]

	vm_run AAAA
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-discard --precache=later "$B"
	[ "$status" -eq 0 ]
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
	[ ! -e "$B-dirty.img" ]
	[ ! -e "$B-precache.img" ]
	run vol-discard --precache=now "$B"
	[ "$status" -eq 0 ]
}

@test "--precache=later: vol-receive makes no precache" {
	vol_setup btrfs
	random_file "$DIR/src.img" 1048576
	mkdir -p "$DIR/src"
	vol-import "$DIR/src/disk" "$DIR/src.img"
	vol-export "$DIR/src/disk" >"$DIR/full.diff"
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-receive --precache=later "$B" <"$DIR/full.diff"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private.img" ]
	cmp "$B.img" "$DIR/src.img"
	vol-precache "$B"
	precache_valid
}

@test "--precache: a value other than now or later is a usage error (64)" {
	vol_setup btrfs
	vol_make PRE
	vm_run AAAA
	before=$(dir_state "$VM")
	for tool in vol-commit vol-revert vol-import vol-create vol-resize vol-discard vol-receive; do
		run "$tool" --precache=soon "$B" </dev/null
		[ "$status" -eq 64 ]
		[[ "$output" == *"invalid --precache value: soon (now or later)"* ]]
	done
	[ "$(dir_state "$VM")" = "$before" ]
}

# While one process starts and commits a volume over and over, another
# makes its precache over and over: whenever the volume is stopped, a
# precache that exists has C's bytes and mtime.
@test "vol-precache racing vol-start and vol-commit never leaves a precache unlike C" {
	vol_setup btrfs
	vol_make PRE
	end=$((SECONDS + 8))
	(
		while [ "$SECONDS" -lt "$end" ]; do
			d=$(vol-start -w 30 "$B")
			head -c 4096 /dev/urandom | dd of="$d" conv=notrunc status=none
			vol-commit -w 30 -k 2 --precache=later "$B"
		done
	) &
	runner=$!
	(
		while [ "$SECONDS" -lt "$end" ]; do
			vol-precache -q -w 30 "$B"
		done
	) &
	precacher=$!
	checks=0
	while [ "$SECONDS" -lt "$end" ]; do
		# Under the lock, the directory is between two tools.
		exec {fd}>>"$(lock_path "$VM")"
		flock "$fd"
		if [ ! -e "$B-dirty.img" ] && [ -e "$B-precache.img" ]; then
			precache_valid
			checks=$((checks + 1))
		fi
		exec {fd}>&-
		sleep 0.05
	done
	wait "$runner"
	wait "$precacher"
	echo "checks: $checks" >&3
	[ "$checks" -gt 0 ]
}

@test "vol-precache: the EXAMPLES of its man page work" {
	vol_setup btrfs
	cd "$DIR"
	mkdir -p pool/appvms/vm1
	vol-create -s 1M pool/appvms/vm1/private
	vol-start pool/appvms/vm1/private >/dev/null
	run_man_examples vol-precache.1
	B=$DIR/pool/appvms/vm1/private
	# The first example left vol-precache in the background.
	for _ in $(seq 300); do
		[ -e "$B-precache.img" ] && ! compgen -G "$B*~*" >/dev/null && break
		sleep 0.1
	done
	flock -w 30 "$(lock_path "$DIR/pool/appvms/vm1")" true
	precache_valid
}

@test "vol-precache: --help prints the usage and exits 0" {
	run vol-precache --help
	[ "$status" -eq 0 ]
	[ "$output" = "usage: vol-precache [-qv] [-w SECONDS] VOLUME ..." ]
	run vol-precache
	[ "$status" -eq 64 ]
}
