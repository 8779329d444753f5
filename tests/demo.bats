#!/usr/bin/env bats
# tests/demo, the script behind "make demo": it runs the whole VM life,
# prints each command and its time, fails when a step fails, and leaves no
# mount, loop device or temporary directory behind, even when interrupted.
# And the README's ten-line tour, which a newcomer types after the demo.

load helper

setup_file() {
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
}

setup() {
	# The demo makes its scratch directory in $TMPDIR: one of each test's own.
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir -p "$TMPDIR"
	unset DEMO_NO_LOOP DEMO_PAUSE
}

teardown() {
	# Should a test or a demo have left a filesystem behind, do not leave it on.
	local mountpoint device
	for mountpoint in "$TMPDIR"/file-reflink-demo.*/mnt "$TMPDIR"; do
		if mountpoint -q "$mountpoint" 2>/dev/null; then
			umount "$mountpoint" || umount -l "$mountpoint"
		fi
	done
	losetup -a 2>/dev/null | grep -F "$TMPDIR/" | cut -d: -f1 |
		while read -r device; do losetup -d "$device"; done
	return 0
}

# The loop-mounted btrfs demo needs root, loop devices and mkfs.btrfs.
need_btrfs_demo() {
	local reason
	reason=$(fs_unavailable_reason btrfs)
	if [ -n "$reason" ]; then
		skip "$reason"
	fi
}

# small_tmpfs SIZE: $TMPDIR becomes a tmpfs of SIZE, a filesystem that
# cannot clone files; the test skips unless root.
small_tmpfs() {
	if [ "$(id -u)" -ne 0 ]; then
		skip "not root: mounting a tmpfs needs root"
	fi
	mount -t tmpfs -o "size=$1" tmpfs "$TMPDIR"
}

# Fails, saying what, if the demo left anything in $TMPDIR, a mount or a
# loop device.
nothing_left_behind() {
	local left
	left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1)
	[ -z "$left" ] || {
		echo "left in TMPDIR: $left" >&2
		return 1
	}
	left=$(grep -F "$TMPDIR/" /proc/mounts || true)
	[ -z "$left" ] || {
		echo "left mounted: $left" >&2
		return 1
	}
	left=$(losetup -a 2>/dev/null | grep -F "$TMPDIR/" || true)
	[ -z "$left" ] || {
		echo "left attached: $left" >&2
		return 1
	}
}

# Fails unless every "$ command" line of $output is followed, before the
# next command, by its time: "  (N ms)" or "  (N ms, exit S)".
every_command_timed() {
	printf '%s\n' "$output" | awk '
		/^\$ / { if (open) { print "no time for: " open; bad = 1 } open = $0; next }
		/^  \([0-9]+ ms(, exit [0-9]+)?\)$/ { if (!open) { print "time without command"; bad = 1 } open = ""; n++ }
		END { if (open) { print "no time for: " open; bad = 1 } if (n < 40) { print "only " n " timed commands"; bad = 1 } exit bad }
	' >&2
}

# count_lines TEXT: how many lines of $output are exactly TEXT.
count_lines() {
	printf '%s\n' "$output" | grep -cxF -- "$1" || true
}

@test "demo: on a loop-mounted btrfs it runs the whole life and exits 0" {
	need_btrfs_demo
	run "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == "scratch filesystem: btrfs on /dev/loop"* ]]
	[ "$(count_lines '$ pool-check --init pool')" -eq 1 ]
	[[ "$output" != *"--no-reflink-ok"* ]]
	[ "$(count_lines '$ vol-start -k 3 pool/appvms/work/private')" -eq 5 ]
	[ "$(count_lines '$ vol-start -S pool/vm-templates/fedora/root pool/appvms/work/root')" -eq 3 ]
	[ "$(count_lines '$ vol-commit -k 3 pool/appvms/work/private')" -eq 4 ]
	[ "$(count_lines '$ vol-revert -r 2 pool/appvms/work/private')" -eq 1 ]
	[ "$(count_lines '$ vol-prune -k 2 pool/appvms/work/private')" -eq 1 ]
	[ "$(count_lines '$ vol-discard pool/appvms/work/private')" -eq 1 ]
	[ "$(count_lines '$ pool-check --repair pool')" -eq 1 ]
	every_command_timed
	[[ "${lines[-1]}" == "# Done: "*" commands, "*" ms in all; the scratch pool is removed now." ]]
	nothing_left_behind
}

@test "demo: vol-info -r lists the three revisions the three commits made" {
	need_btrfs_demo
	run "$TOP/tests/demo"
	[ "$status" -eq 0 ]
	listing=$(printf '%s\n' "$output" | sed -n '/^\$ vol-info -r /,/^  (/p' | sed -n '2,4p')
	[ "$(printf '%s\n' "$listing" | cut -f1 | tr '\n' ' ')" = "1 2 3 " ]
	[[ "$listing" == *"pool/appvms/work/private.img.3@"* ]]
}

@test "demo: pool-check finds the crash leftovers and --repair removes the temp file" {
	need_btrfs_demo
	run "$TOP/tests/demo"
	[ "$status" -eq 0 ]
	check=$(printf '%s\n' "$output" | sed -n '/^\$ pool-check pool$/,/^  (/{p;/^  (/q;}')
	[[ "$check" == *"pool/appvms/work/private-dirty.img	dirty-detached	"*"vol-commit pool/appvms/work/private"* ]]
	[[ "$check" == *"pool/appvms/work/private.img~k3Jd9q	temp-leftover	"* ]]
	[[ "$check" == *" ms, exit 1)" ]]
	[[ "$output" == *"would-fix	pool/appvms/work/private.img~k3Jd9q	temp-leftover	"* ]]
	[[ "$output" == *"fixed	pool/appvms/work/private.img~k3Jd9q	temp-leftover	removed"* ]]
}

@test "demo: DEMO_NO_LOOP=1 runs in a plain directory, saying that copies replace reflinks" {
	export DEMO_NO_LOOP=1
	run "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == "scratch directory: $TMPDIR/file-reflink-demo."*"/dir on "*"(DEMO_NO_LOOP is set: no loop-mounted btrfs)" ]]
	[[ "$output" == *"copies replace reflinks"* ]]
	[[ "$output" != *"scratch filesystem: btrfs"* ]]
	every_command_timed
	nothing_left_behind
}

@test "demo: without reflinks, pool-check --init exits 69 and the demo goes on with --no-reflink-ok" {
	small_tmpfs 256M
	export DEMO_NO_LOOP=1
	run "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *'$ pool-check --init pool'$'\n'*'ms, exit 69)'* ]]
	[ "$(count_lines '$ pool-check --init --no-reflink-ok pool')" -eq 1 ]
	[[ "${lines[-1]}" == "# Done: "* ]]
	nothing_left_behind
}

@test "demo: Ctrl-C unmounts, detaches and removes everything, exit 130" {
	need_btrfs_demo
	export DEMO_PAUSE=1
	run timeout --preserve-status -s INT 3.5 "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 130 ]
	[[ "$output" == *"scratch filesystem: btrfs on /dev/loop"* ]]
	[[ "$output" == *"demo: interrupted; cleaning up"* ]]
	nothing_left_behind
}

@test "demo: SIGTERM cleans up as well, exit 143" {
	need_btrfs_demo
	export DEMO_PAUSE=1
	run timeout --preserve-status -s TERM 3.5 "$TOP/tests/demo"
	[ "$status" -eq 143 ]
	[[ "$output" == *"scratch filesystem: btrfs on /dev/loop"* ]]
	nothing_left_behind
}

@test "demo: a step that fails (a full disk) stops the demo with exit 1" {
	# A filesystem too small for the demo's 32 MiB template image.
	small_tmpfs 16M
	export DEMO_NO_LOOP=1
	run "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 1 ]
	[[ "$output" == *'demo: step failed: "head -c 32M /dev/urandom >fedora-root.raw" exited 1, expected 0'* ]]
	[[ "$output" != *"# Done: "* ]]
	nothing_left_behind
}

# The commands of the README's tour: its "    $ " lines, prompt removed.
readme_tour() {
	sed -n '/^## A ten-line tour/,/^## /p' "$TOP/README.md" | sed -n 's/^    \$ //p'
}

@test "README: the ten-line tour runs on btrfs, and leaves an empty pool" {
	fs_dir btrfs
	[ "$(readme_tour | wc -l)" -eq 10 ]
	cd "$DIR"
	run bash -ec "$(readme_tour)"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[[ "$output" == *"1	"*"	10737418240	pool/appvms/work/private.img.1@"* ]]
	[ "$(files_in pool)" = "appvms vm-templates" ]
	[ "$(files_in pool/appvms)" = "" ]
}

@test "demo: as root without mkfs.btrfs, it installs btrfs-progs and runs on a loop-mounted btrfs" {
	need_btrfs_demo
	command -v unshare >/dev/null || skip "unshare is not installed"
	local real fake=$BATS_TEST_TMPDIR/fake
	real=$(command -v mkfs.btrfs)
	# In a mount namespace of its own, mkfs.btrfs is hidden under a
	# file that cannot be run, and apt-get is a stand-in that logs its
	# arguments and "installs" by uncovering the real one.
	mkdir -p "$fake"
	: >"$fake/not-executable"
	cat >"$fake/apt-get" <<END
#!/bin/sh
echo "apt-get \$*" >>"$fake/log"
case \$* in *install*btrfs-progs*) umount "$real" ;; esac
END
	chmod 755 "$fake/apt-get"
	# shellcheck disable=SC2016 # expanded by that sh
	run unshare -m sh -c 'mount --bind "$2/not-executable" "$1" && PATH="$2:$PATH" exec "$3"' \
		sh "$real" "$fake" "$TOP/tests/demo"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "installing btrfs-progs (apt-get), for a loop-mounted btrfs" ]
	[[ "${lines[2]}" == "scratch filesystem: btrfs on /dev/loop"* ]]
	grep -qx 'apt-get install -y -qq --no-install-recommends btrfs-progs' "$fake/log"
	[[ "$output" != *"copies replace reflinks"* ]]
	nothing_left_behind
}
