#!/usr/bin/env bats
# reflink-clone: clones on btrfs and XFS, sparse copies elsewhere, atomic
# replacement of DST, and failures that leave DST as it was.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

clone_shares_extents() {
	fs_dir "$1"
	random_file "$DIR/src" 1M
	cp "$DIR/src" "$DIR/src.orig"
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp "$DIR/src" "$DIR/dst"
	[ "$(inode "$DIR/src")" != "$(inode "$DIR/dst")" ]
	[ "$(stat -c %a "$DIR/dst")" = 600 ]
	extents_shared "$DIR/dst"
	cmp "$DIR/src" "$DIR/src.orig"
	no_temp_files "$DIR"
}

@test "reflink-clone: btrfs: DST is a new inode, mode 0600, sharing SRC's extents" {
	clone_shares_extents btrfs
}

@test "reflink-clone: xfs: DST is a new inode, mode 0600, sharing SRC's extents" {
	clone_shares_extents xfs
}

@test "reflink-clone: ext4: copy keeps bytes and holes, zero blocks become holes" {
	fs_dir ext4
	# 1 MiB: data at 0 and 512 KiB, an all-zero data block at 256 KiB.
	truncate -s 1M "$DIR/src"
	random_file "$DIR/a" 4096
	dd if="$DIR/a" of="$DIR/src" bs=4096 seek=0 conv=notrunc status=none
	dd if="$DIR/a" of="$DIR/src" bs=4096 seek=128 conv=notrunc status=none
	dd if=/dev/zero of="$DIR/src" bs=4096 seek=64 count=1 conv=notrunc status=none
	sync -f "$DIR/src"
	[ "$(allocated "$DIR/src")" -eq $((3 * 4096)) ]
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/dst"
	[ "$(stat -c %s "$DIR/dst")" -eq 1048576 ]
	sync -f "$DIR/dst"
	[ "$(allocated "$DIR/dst")" -eq $((2 * 4096)) ]
	extents_unshared "$DIR/dst"
}

@test "reflink-clone: ext4: a source with a trailing hole keeps it" {
	fs_dir ext4
	random_file "$DIR/src" 4096
	truncate -s 8M "$DIR/src"
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/dst"
	sync -f "$DIR/dst"
	[ "$(allocated "$DIR/dst")" -eq 4096 ]
}

@test "reflink-clone: -s larger extends DST with zeros" {
	fs_dir btrfs
	random_file "$DIR/src" 8192
	run reflink-clone -s 64K "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/dst")" -eq 65536 ]
	cmp -n 8192 "$DIR/src" "$DIR/dst"
	cmp -i 8192:0 -n $((65536 - 8192)) "$DIR/dst" /dev/zero
}

@test "reflink-clone: -s larger on ext4 extends the copy with a hole" {
	fs_dir ext4
	random_file "$DIR/src" 8192
	run reflink-clone -s 1M "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/dst")" -eq 1048576 ]
	cmp -n 8192 "$DIR/src" "$DIR/dst"
	cmp -i 8192:0 -n $((1048576 - 8192)) "$DIR/dst" /dev/zero
	sync -f "$DIR/dst"
	[ "$(allocated "$DIR/dst")" -eq 8192 ]
}

@test "reflink-clone: -s smaller keeps a prefix" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	run reflink-clone -s 4K "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/dst")" -eq 4096 ]
	cmp -n 4096 "$DIR/src" "$DIR/dst"
}

@test "reflink-clone: -s smaller on ext4 copies only the prefix" {
	fs_dir ext4
	random_file "$DIR/src" 65536
	run reflink-clone -s 5000 "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/dst")" -eq 5000 ]
	cmp -n 5000 "$DIR/src" "$DIR/dst"
}

@test "reflink-clone: -s 0 makes an empty file without trying to clone" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	run strace -f -e trace=ioctl -o "$DIR/trace" reflink-clone -s 0 "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$DIR/dst")" -eq 0 ]
	run ! grep -q FICLONE "$DIR/trace"
}

@test "reflink-clone: -t gives DST SRC's mtime to the nanosecond" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	touch -d '2020-02-03 04:05:06.123456789' "$DIR/src"
	run reflink-clone -t "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(mtime_ns "$DIR/dst")" = "$(mtime_ns "$DIR/src")" ]
	[ "$(mtime_ns "$DIR/dst")" = "$(date -d '2020-02-03 04:05:06' +%s).123456789" ]
}

@test "reflink-clone: without -t DST's mtime is new" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	touch -d '2020-02-03 04:05:06' "$DIR/src"
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ "$(stat -c %Y "$DIR/dst")" -gt "$(date -d '2024-01-01' +%s)" ]
}

@test "reflink-clone: an existing DST is replaced atomically" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	echo old >"$DIR/dst"
	old_inode=$(inode "$DIR/dst")
	exec 5<"$DIR/dst"
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	# A reader that opened the old DST still reads the old bytes.
	[ "$(cat <&5)" = old ]
	exec 5<&-
	cmp "$DIR/src" "$DIR/dst"
	[ "$(inode "$DIR/dst")" != "$old_inode" ]
	no_temp_files "$DIR"
}

@test "reflink-clone: -n refuses an existing DST with 73 and leaves it alone" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	echo old >"$DIR/dst"
	old_inode=$(inode "$DIR/dst")
	run reflink-clone -n "$DIR/src" "$DIR/dst"
	[ "$status" -eq 73 ]
	[[ "$output" == *"$DIR/dst: already exists"* ]]
	[ "$(cat "$DIR/dst")" = old ]
	[ "$(inode "$DIR/dst")" = "$old_inode" ]
	no_temp_files "$DIR"
}

@test "reflink-clone: -n with a new DST clones" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	run reflink-clone -n "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/dst"
}

@test "reflink-clone: DST's missing parent directory is created, one level only" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	run reflink-clone "$DIR/src" "$DIR/new/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/new/dst"
	run reflink-clone "$DIR/src" "$DIR/a/b/dst"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/a"*"No such file or directory"* ]]
	[ ! -e "$DIR/a" ]
}

@test "reflink-clone: --reflink=always on ext4 exits 69 and leaves DST alone" {
	fs_dir ext4
	random_file "$DIR/src" 4096
	echo old >"$DIR/dst"
	run reflink-clone --reflink=always "$DIR/src" "$DIR/dst"
	[ "$status" -eq 69 ]
	[[ "$output" == *"cannot reflink"* ]]
	[ "$(cat "$DIR/dst")" = old ]
	no_temp_files "$DIR"
}

@test "reflink-clone: --reflink=always on btrfs clones" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	run reflink-clone --reflink=always "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	extents_shared "$DIR/dst"
}

@test "reflink-clone: --reflink=never on btrfs copies without sharing extents" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	run reflink-clone --reflink=never "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/dst"
	extents_unshared "$DIR/dst"
	extents_unshared "$DIR/src"
}

@test "reflink-clone: btrfs to XFS falls back to a copy" {
	fs_dir xfs
	xfs_dir=$DIR
	fs_dir btrfs
	random_file "$DIR/src" 65536
	run reflink-clone -v "$DIR/src" "$xfs_dir/dst"
	[ "$status" -eq 0 ]
	[[ "$output" == *"copied $DIR/src to $xfs_dir/dst"* ]]
	cmp "$DIR/src" "$xfs_dir/dst"
	extents_unshared "$xfs_dir/dst"
}

@test "reflink-clone: a missing SRC exits 66 and creates nothing" {
	fs_dir btrfs
	run reflink-clone "$DIR/nope" "$DIR/dst"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/nope: No such file or directory"* ]]
	[ ! -e "$DIR/dst" ]
	no_temp_files "$DIR"
}

@test "reflink-clone: a SRC that is a directory exits 65" {
	fs_dir btrfs
	mkdir "$DIR/srcdir"
	run reflink-clone "$DIR/srcdir" "$DIR/dst"
	[ "$status" -eq 65 ]
	[[ "$output" == *"not a regular file"* ]]
	[ ! -e "$DIR/dst" ]
}

@test "reflink-clone: FICLONE failing with EIO exits 74 without falling back" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	echo old >"$DIR/dst"
	run strace -f -o "$DIR/trace" -e trace=openat,ioctl,lseek,pread64,pwrite64 \
		-e inject=ioctl:error=EIO reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/dst: Input/output error"* ]]
	grep -q 'FICLONE.*EIO' "$DIR/trace"
	# No copy follows: once SRC is open, it is never read and nothing
	# is written.
	sed -n "\\|openat(.*\"$DIR/src\"|,\$p" "$DIR/trace" >"$DIR/after"
	grep -q FICLONE "$DIR/after"
	run ! grep -qE 'SEEK_DATA|pread64|pwrite64' "$DIR/after"
	[ "$(cat "$DIR/dst")" = old ]
	no_temp_files "$DIR"
}

@test "reflink-clone: ENOSPC during a copy exits 74 and leaves DST alone" {
	fs_dir ext4
	random_file "$DIR/src" 65536
	echo old >"$DIR/dst"
	run strace -f -o "$DIR/trace" -e trace=pwrite64 \
		-e inject=pwrite64:error=ENOSPC reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/dst: No space left on device"* ]]
	[ "$(cat "$DIR/dst")" = old ]
	no_temp_files "$DIR"
}

@test "reflink-clone: a real full ext4 filesystem exits 74 and leaves DST alone" {
	fs_dir ext4
	random_file "$DIR/src" 65536
	echo old >"$DIR/dst"
	dd if=/dev/zero of="$DIR/fill" bs=1M status=none 2>/dev/null || true
	dd if=/dev/zero of="$DIR/fill2" bs=4096 status=none 2>/dev/null || true
	run reflink-clone "$DIR/src" "$DIR/dst"
	rm -f "$DIR/fill" "$DIR/fill2"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/dst: No space left on device"* ]]
	[ "$(cat "$DIR/dst")" = old ]
	no_temp_files "$DIR"
	run reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	cmp "$DIR/src" "$DIR/dst"
}

@test "reflink-clone: a write failing with EIO exits 74, naming DST" {
	fs_dir ext4
	random_file "$DIR/src" 65536
	run strace -f -o "$DIR/trace" -e trace=pwrite64 \
		-e inject=pwrite64:error=EIO reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/dst: Input/output error"* ]]
	[ ! -e "$DIR/dst" ]
	no_temp_files "$DIR"
}

@test "reflink-clone: a read failing with EIO exits 74, naming SRC" {
	fs_dir ext4
	random_file "$DIR/src" 65536
	# -P: only the source's reads fail, not the dynamic loader's.
	run strace -f -o "$DIR/trace" -P "$DIR/src" -e trace=pread64 \
		-e inject=pread64:error=EIO reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[[ "$output" == *"$DIR/src: Input/output error"* ]]
	[ ! -e "$DIR/dst" ]
	no_temp_files "$DIR"
}

@test "reflink-clone: a failing fsync exits 74 and leaves DST alone" {
	fs_dir btrfs
	random_file "$DIR/src" 65536
	echo old >"$DIR/dst"
	run strace -f -o "$DIR/trace" -e trace=fsync \
		-e inject=fsync:error=EIO:when=1 reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[ "$(cat "$DIR/dst")" = old ]
	no_temp_files "$DIR"
}

@test "reflink-clone: the clone and rename are logged with -v" {
	fs_dir btrfs
	random_file "$DIR/src" 4096
	run reflink-clone -v "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[[ "$output" == *"reflink-clone: cloned $DIR/src to $DIR/dst"* ]]
	[[ "$output" == *"reflink-clone: renamed $DIR/dst~"*" to $DIR/dst"* ]]
	run reflink-clone -q "$DIR/src" "$DIR/dst"
	[ -z "$output" ]
}

@test "reflink-clone: usage errors exit 64 with usage on stderr and change nothing" {
	cd "$BATS_TEST_TMPDIR"
	echo data >src
	echo old >dst
	for args in "" "src" "src dst extra" "-x src dst" "-s 12Q src dst" \
		"-s -5 src dst" "-s 1e3 src dst" "-s 99999999999999999999 src dst" \
		"--reflink=sometimes src dst" "-s"; do
		# shellcheck disable=SC2086
		run reflink-clone $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: reflink-clone"* ]]
		[ "$(cat dst)" = old ]
	done
	run reflink-clone -s '' src dst
	[ "$status" -eq 64 ]
	no_temp_files .
}

@test "reflink-clone: usage goes to stderr on errors, stdout with --help" {
	cd "$BATS_TEST_TMPDIR"
	reflink-clone 2>err >out && false
	[ ! -s out ]
	grep -q 'usage: reflink-clone' err
	reflink-clone --help >out 2>err
	[ ! -s err ]
	grep -q 'usage: reflink-clone' out
	run reflink-clone -V
	[ "$status" -eq 0 ]
	[[ "$output" == "reflink-clone (file-reflink) "* ]]
}

@test "reflink-clone: --progress draws a line on stderr for a copy" {
	fs_dir ext4
	random_file "$DIR/src" 1M
	run --separate-stderr reflink-clone --progress "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"reflink-clone: 1.0 MiB / 1.0 MiB"* ]]
}

@test "reflink-clone: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	random_file disk.img 1M
	run_man_examples reflink-clone.1
	cmp disk.img disk-test.img
	cmp disk.img backup/disk.img
	[ "$(mtime_ns disk-precache.img)" = "$(mtime_ns disk.img)" ]
	[ "$(stat -c %s disk-big.img)" -eq $((20 << 30)) ]
}
