# shellcheck shell=bash
#
# helper.bash: what every test file shares.
#
# Each test file that needs real filesystems calls, in setup_file,
#   fs_setup btrfs xfs ext4
# which makes one scratch filesystem of each kind on a loop device for the
# whole file, and, in teardown_file, fs_teardown, which unmounts and
# detaches them even when tests failed.  A test then calls
#   fs_dir btrfs
# which skips the test with a reason if that filesystem is unavailable (not
# root, no loop devices, no mkfs), and otherwise sets $DIR to a fresh empty
# directory of its own on it.

bats_require_minimum_version 1.5.0

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PATH="$TOP/bin:$PATH:/usr/sbin:/sbin"
export TOP PATH

# LeakSanitizer cannot work under ptrace: a tool that a test runs under
# strace is checked for everything but leaks in a SAN=1 build.
strace() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" command strace "$@"
}

# Sizes: the smallest each mkfs accepts comfortably (XFS needs 300 MiB),
# or FS_IMAGE_SIZE for a test file that needs room.
fs_image_size() {
	if [ -n "${FS_IMAGE_SIZE:-}" ]; then
		echo "$FS_IMAGE_SIZE"
		return
	fi
	case $1 in
	btrfs) echo 256M ;;
	xfs) echo 320M ;;
	ext4) echo 64M ;;
	esac
}

fs_mkfs() {
	case $1 in
	btrfs) mkfs.btrfs -q -f "$2" >/dev/null 2>&1 ;;
	xfs) mkfs.xfs -q -f -m reflink=1 "$2" >/dev/null 2>&1 ;;
	ext4) mkfs.ext4 -q -F "$2" >/dev/null 2>&1 ;;
	esac
}

# Why filesystem tests cannot run here, or nothing if they can.
fs_unavailable_reason() {
	local kind=$1
	if [ "$(id -u)" -ne 0 ]; then
		echo "not root: loop-mounted filesystems need root"
	elif [ ! -e /dev/loop-control ]; then
		echo "no loop devices (/dev/loop-control is missing)"
	elif ! command -v "mkfs.$kind" >/dev/null; then
		echo "mkfs.$kind is not installed"
	fi
}

fs_setup() {
	local kind image mountpoint device reason
	for kind in "$@"; do
		reason=$(fs_unavailable_reason "$kind")
		if [ -n "$reason" ]; then
			export "FS_SKIP_$kind=$reason"
			continue
		fi
		image="$BATS_FILE_TMPDIR/$kind.img"
		mountpoint="$BATS_FILE_TMPDIR/$kind"
		mkdir -p "$mountpoint"
		truncate -s "$(fs_image_size "$kind")" "$image"
		if ! fs_mkfs "$kind" "$image"; then
			export "FS_SKIP_$kind=mkfs.$kind failed"
			continue
		fi
		if ! device=$(losetup -f --show "$image"); then
			export "FS_SKIP_$kind=no free loop device"
			continue
		fi
		echo "$device" >"$BATS_FILE_TMPDIR/$kind.device"
		if ! mount "$device" "$mountpoint"; then
			losetup -d "$device"
			rm -f "$BATS_FILE_TMPDIR/$kind.device"
			export "FS_SKIP_$kind=mounting $kind failed"
			continue
		fi
		export "FS_$kind=$mountpoint"
	done
}

fs_teardown() {
	local kind mountpoint
	for kind in btrfs xfs ext4; do
		mountpoint="$BATS_FILE_TMPDIR/$kind"
		if mountpoint -q "$mountpoint" 2>/dev/null; then
			umount "$mountpoint" || umount -l "$mountpoint"
		fi
		if [ -f "$BATS_FILE_TMPDIR/$kind.device" ]; then
			losetup -d "$(cat "$BATS_FILE_TMPDIR/$kind.device")" 2>/dev/null
			rm -f "$BATS_FILE_TMPDIR/$kind.device"
		fi
		rm -f "$BATS_FILE_TMPDIR/$kind.img"
	done
}

# fs_dir KIND: $DIR becomes a fresh directory on KIND, or the test skips.
fs_dir() {
	local skip_var="FS_SKIP_$1" mount_var="FS_$1"
	if [ -n "${!skip_var:-}" ]; then
		skip "$1: ${!skip_var}"
	fi
	if [ -z "${!mount_var:-}" ]; then
		skip "$1: not set up by this test file"
	fi
	DIR="${!mount_var}/t$BATS_TEST_NUMBER"
	rm -rf "$DIR"
	mkdir -p "$DIR"
}

# fs_root KIND: the mountpoint of KIND (after fs_dir KIND succeeded).
fs_root() {
	local mount_var="FS_$1"
	echo "${!mount_var}"
}

# Fills FILE with SIZE bytes of random data.
random_file() {
	head -c "$2" /dev/urandom >"$1"
}

# Allocated bytes of FILE.
allocated() {
	echo $(($(stat -c '%b * %B' "$1")))
}

# True if every extent of FILE holding data is shared with another file.
extents_shared() {
	local out
	sync -f "$1"
	out=$(filefrag -v "$1") || return 1
	printf '%s\n' "$out" | grep -qE '^ +[0-9]+:' || return 1
	! printf '%s\n' "$out" | grep -E '^ +[0-9]+:' | grep -vq shared
}

# True if no extent of FILE is shared.
extents_unshared() {
	local out
	sync -f "$1"
	out=$(filefrag -v "$1") || return 1
	! printf '%s\n' "$out" | grep -E '^ +[0-9]+:' | grep -q shared
}

# Lists the temp files ("~") in a directory; fails if there are any.
no_temp_files() {
	local found
	found=$(find "$1" -name '*~*')
	[ -z "$found" ] || {
		echo "temp files left: $found" >&2
		return 1
	}
}

inode() {
	stat -c %i "$1"
}

mtime_ns() {
	stat -c '%.9Y' "$1"
}

# Prints the commands of the EXAMPLES section of man/PAGE, one per line:
# the ".Dl $ command" lines, with mdoc escapes undone.
man_examples() {
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$TOP/man/$1" |
		sed -n 's/^\.Dl \$ //p' |
		sed -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" -e 's/\\&//g' \
			-e 's/\\-/-/g' -e 's/\\e/\\/g'
}

# Runs every EXAMPLES command of man/PAGE in the current directory with
# bash -e; fails naming the first command that fails.
run_man_examples() {
	local command count=0
	while IFS= read -r command; do
		count=$((count + 1))
		if ! bash -ec "$command" </dev/null >"$BATS_TEST_TMPDIR/example.out" 2>&1; then
			echo "example failed: $command" >&2
			cat "$BATS_TEST_TMPDIR/example.out" >&2
			return 1
		fi
	done < <(man_examples "$1")
	[ "$count" -gt 0 ] || {
		echo "no examples in $1" >&2
		return 1
	}
}

# The names in directory DIR, sorted, on one line separated by spaces.
files_in() {
	(cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
}

# The state name of FILE (vol-export(1)): its mtime in UTC to the
# nanosecond, YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ.
state_of() {
	TZ=UTC stat -c %y "$1" | sed 's/^\([^ ]*\) \([^ ]*\) .*/\1T\2Z/'
}

# The UTC revision time stamp of FILE's mtime: YYYY-MM-DDTHH:MM:SSZ.
utc_stamp() {
	date -u -d "@$(stat -c %Y "$1")" +%Y-%m-%dT%H:%M:%SZ
}

REVISION_STAMP='[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z'

# The name of the only revision with id N in DIR for base BASE.
revision_of() {
	local found
	found=$(find "$1" -maxdepth 1 -printf '%f\n' |
		grep -x "$2\.img\.$3@$REVISION_STAMP") || return 1
	[ "$(printf '%s\n' "$found" | wc -l)" -eq 1 ] || return 1
	echo "$found"
}

# The revision ids of BASE in DIR, ascending, on one line.
revision_ids() {
	find "$1" -maxdepth 1 -printf '%f\n' |
		sed -n "s/^$2\.img\.\([0-9][0-9]*\)@$REVISION_STAMP\$/\1/p" |
		sort -n | tr '\n' ' ' | sed 's/ $//'
}

# Counts FICLONE ioctls in an strace -e trace=ioctl log.
ficlone_count() {
	grep -c 'FICLONE' "$1" || true
}

# vol_setup KIND: a pool on KIND with one VM directory; sets $POOL, $VM
# (the VM directory) and $B (the volume appvms/vm1/private).
vol_setup() {
	fs_dir "$1"
	POOL=$DIR/pool
	VM=$POOL/appvms/vm1
	B=$VM/private
	mkdir -p "$VM"
}

# A stopped origin volume $B whose C holds TEXT at offset 0 (1 MiB file),
# with a valid precache, as vol-create and a commit would leave it.
vol_make() {
	truncate -s 1M "$B.img"
	printf '%s' "${1:-CLEAN}" | dd of="$B.img" conv=notrunc status=none
	chmod 600 "$B.img"
	cp --reflink=auto -p "$B.img" "$B-precache.img"
}

# The first N bytes of FILE (default 4).
head_bytes() {
	head -c "${2:-4}" "$1"
}

# syslog_capture OUT COMMAND...: runs COMMAND in a private mount namespace
# whose /dev/log is a socket read by this function; writes the syslog
# messages COMMAND sent to OUT, one per line, and returns its status.
syslog_capture() {
	local out=$1
	shift
	unshare -m -- python3 -c '
import os, socket, subprocess, sys
out = sys.argv[1]
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
for name in ("null", "zero", "urandom"):
    os.mknod("/dev/" + name, 0o20666, os.makedev(1, {"null": 3, "zero": 5, "urandom": 9}[name]))
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
status = subprocess.run(sys.argv[2:]).returncode
log.setblocking(False)
with open(out, "w") as f:
    while True:
        try:
            f.write(log.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
        except BlockingIOError:
            break
sys.exit(status)
' "$out" "$@"
}

# dir_state [-r] DIR: everything about the files in DIR (with -r, in the
# whole tree below it) that a tool could change: one line per entry,
# sorted, "PATH TYPE INODE LINKS SIZE MTIME MD5 TARGET".  TYPE is find's
# %y (f, d, l...); MD5 is the data's checksum, "-" if not a regular file;
# TARGET a symlink's, else "-".  A directory shows "-" for its links, size
# and mtime, which a temp file made and removed again changes.  The one
# picture of a directory that every test compares.
dir_state() {
	local depth=(-maxdepth 1) line path type rest
	local -A sum
	if [ "$1" = -r ]; then
		depth=()
		shift
	fi
	(
		cd "$1" || exit 1
		while IFS= read -r -d '' line; do
			sum[${line#*  }]=${line%%  *}
		done < <(find . -mindepth 1 "${depth[@]}" -type f -exec md5sum -z -- {} +)
		while IFS= read -r -d '' line; do
			# "TYPE INODE LINKS SIZE MTIME PATH": the path, last, may
			# hold any byte but NUL.
			[[ $line =~ ^([^ ]+)\ ([^ ]+)\ ([^ ]+\ [^ ]+\ [^ ]+)\ (.*)$ ]] || continue
			type=${BASH_REMATCH[1]}
			rest="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
			path=${BASH_REMATCH[4]}
			[ "$type" = d ] && rest="${BASH_REMATCH[2]} - - -"
			printf '%s %s %s %s %s\n' "${path#./}" "$type" "$rest" \
				"${sum[$path]:--}" "$([ "$type" = l ] && readlink -- "$path" || echo -)"
		done < <(find . -mindepth 1 "${depth[@]}" -printf '%y %i %n %s %T@ %p\0') | LC_ALL=C sort
	)
}

# Prints the first literal block (.Bd -literal ... .Ed) of the EXAMPLES
# section of man/PAGE: a script shown in full.
man_example_script() {
	sed -n '/^\.Sh EXAMPLES/,/^\.Sh /p' "$TOP/man/$1" |
		sed -n '/^\.Bd -literal/,/^\.Ed/p' | sed '1d;$d' |
		sed -e 's/\\e/\\/g' -e 's/^\\&//'
}

# precache_awaited VOLUME: waits (up to 30 s) for the precache a hook (tests/hooks)
# left to vol-precache in the background: it exists and no temp file is left.
precache_awaited() {
	local tries=0
	while [ ! -f "$1-precache.img" ] || compgen -G "$1*~*" >/dev/null; do
		tries=$((tries + 1))
		[ "$tries" -le 300 ] || return 1
		sleep 0.1
	done
	# Its lock is given back last: a tool that takes it waits for it.
	flock -w 30 "$(lock_path "$(dirname "$1")")" true
}

# lock_path DIR: what the tools lock for VM directory DIR: as root a file
# in /run/file-reflink/lock named after DIR's device and inode, else DIR.
lock_path() {
	local lock
	if [ "$(id -u)" -eq 0 ]; then
		mkdir -p /run/file-reflink && { [ -d /run/file-reflink/lock ] || mkdir -m 700 /run/file-reflink/lock; }
		lock="/run/file-reflink/lock/$(stat -c %d-%i "$1").lock"
		[ -e "$lock" ] || (umask 077 && : >>"$lock")
		echo "$lock"
	else
		echo "$1"
	fi
}

# hold_lock DIR [SECONDS]: a background process holds the lock of VM
# directory DIR (for at most SECONDS, default 30) until release_lock;
# returns once the lock is held.  $holder is its pid.
hold_lock() {
	local lock
	lock=$(lock_path "$1")
	rm -f "$BATS_TEST_TMPDIR/locked"
	(
		exec 9<"$lock"
		flock 9
		touch "$BATS_TEST_TMPDIR/locked"
		exec sleep "${2:-30}"
	) >/dev/null 2>&1 3>&- &
	holder=$!
	while [ ! -e "$BATS_TEST_TMPDIR/locked" ]; do
		sleep 0.05
	done
}

release_lock() {
	if [ -n "${holder:-}" ]; then
		kill "$holder" 2>/dev/null || true
		wait "$holder" 2>/dev/null || true
	fi
	holder=
}
