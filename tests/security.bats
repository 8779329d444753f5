#!/usr/bin/env bats
# Security (file-reflink(7), SECURITY): the tools run as root among files
# and directories of a second user, uid 65534, who stands for the guest's
# QEMU user (libvirt gives it a running guest's dirty image) and for a local
# user.  Each test is an attack by that user, run against the real tools on
# btrfs and XFS; races run a bounded number of rounds and print how many the
# attacker won, which must be 0.
#
# Tests that depend on fs.protected_hardlinks or fs.protected_symlinks run
# under each value they name; the values are saved when the file starts and
# restored after every test, also one that failed.
#
# A test marked known_defect shows a defect of the tools: it is skipped with
# the reason, and runs (and fails) with SECURITY_KNOWN_DEFECTS=1.

# The tables hold command lines in single quotes on purpose: they are
# expanded by eval for each case.
# shellcheck disable=SC2016

load helper

NOBODY=65534

setup_file() {
	fs_setup btrfs xfs
	[ "$(id -u)" -eq 0 ] || return 0
	reach_for_nobody
	sysctl_save
	NOBODY_PYTHON=$(nobody_python) || NOBODY_PYTHON=
	export NOBODY_PYTHON
}

teardown_file() {
	sysctl_restore
	fs_teardown
	reach_undo
}

setup() {
	BACKGROUND=()
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	command -v setfacl >/dev/null || skip "setfacl is not installed (package acl)"
}

teardown() {
	background_stop
	sysctl_restore
}

# known_defect WHAT: skips the test, saying WHAT, unless
# SECURITY_KNOWN_DEFECTS=1, which runs it to show the defect.
known_defect() {
	[ "${SECURITY_KNOWN_DEFECTS:-0}" = 1 ] || skip "known defect: $1"
}

# as_nobody COMMAND...: runs COMMAND as uid and gid 65534, without groups,
# from /, which every user may enter.
as_nobody() {
	(cd / && exec setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups -- "$@")
}

# A python3 that uid 65534 may run (root's own may live under /root).
nobody_python() {
	local python
	for python in $(type -a -P python3) /usr/bin/python3; do
		if as_nobody "$python" -c '' 2>/dev/null; then
			echo "$python"
			return 0
		fi
	done
	return 1
}

need_nobody_python() {
	[ -n "${NOBODY_PYTHON:-}" ] || skip "no python3 that uid $NOBODY may run"
}

# background COMMAND...: runs COMMAND in the background in a process group
# of its own, which teardown (or background_stop) ends.
background() {
	(cd / && exec setsid "$@") </dev/null >>"$BATS_TEST_TMPDIR/background.out" 2>&1 3>&- &
	BACKGROUND+=("$!")
}

nobody_background() {
	background setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups -- "$@"
}

background_stop() {
	local pid
	for pid in "${BACKGROUND[@]}"; do
		kill -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	BACKGROUND=()
}

# wait_for FILE: until FILE exists, for at most 10 seconds.
wait_for() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "timed out waiting for $1" >&2
	cat "$BATS_TEST_TMPDIR/background.out" >&2 2>/dev/null
	return 1
}

# bats makes its run directory 0700: uid 65534 could not reach the scratch
# filesystems.  Directories above them get search permission for others
# (never write permission) until the file ends.
reach_for_nobody() {
	local dir=$BATS_FILE_TMPDIR
	: >"$BATS_FILE_TMPDIR/reach.undo"
	while [ "$dir" != / ]; do
		if [ $((0$(stat -c %a "$dir") & 1)) -eq 0 ]; then
			chmod o+x "$dir"
			printf '%s\n' "$dir" >>"$BATS_FILE_TMPDIR/reach.undo"
		fi
		dir=$(dirname "$dir")
	done
}

reach_undo() {
	local dir
	[ -f "$BATS_FILE_TMPDIR/reach.undo" ] || return 0
	while IFS= read -r dir; do
		chmod o-x "$dir" 2>/dev/null || true
	done <"$BATS_FILE_TMPDIR/reach.undo"
}

SYSCTLS="protected_hardlinks protected_symlinks"

sysctl_save() {
	local name
	for name in $SYSCTLS; do
		cat "/proc/sys/fs/$name" >"$BATS_FILE_TMPDIR/$name.saved" 2>/dev/null ||
			rm -f "$BATS_FILE_TMPDIR/$name.saved"
	done
}

sysctl_restore() {
	local name value
	for name in $SYSCTLS; do
		[ -f "$BATS_FILE_TMPDIR/$name.saved" ] || continue
		value=$(cat "$BATS_FILE_TMPDIR/$name.saved")
		[ "$(cat "/proc/sys/fs/$name")" = "$value" ] ||
			echo "$value" >"/proc/sys/fs/$name"
	done
}

# sysctl_set NAME VALUE: fs.NAME is VALUE for this test, or it skips.
sysctl_set() {
	[ -f "$BATS_FILE_TMPDIR/$1.saved" ] || skip "fs.$1 cannot be read here"
	[ "$(cat "/proc/sys/fs/$1")" = "$2" ] && return 0
	{ echo "$2" >"/proc/sys/fs/$1"; } 2>/dev/null || skip "fs.$1 cannot be set to $2 here"
}

# Everything about the trees under the given directories that a tool or the
# attacker could change: per entry its path, type, inode, links, size,
# mtime (not of directories, which temp files touch), owner, mode and
# symlink target; the checksum of every file; every extended ACL.
tree_state() {
	local root
	for root in "$@"; do
		(
			cd "$root" || exit 1
			find . -type d -printf '%p d %i %u:%g %m\n' -o \
				-printf '%p %y %i %n %s %T@ %u:%g %m %l\n' | LC_ALL=C sort
			find . -type f -exec md5sum {} + | LC_ALL=C sort
			find . ! -type l -print0 | LC_ALL=C sort -z | xargs -0 getfacl -sp --
		)
	done
}

# pool_world KIND: the scratch tree of a test: $POOL with the VM directory
# $VM and volume $B (helper.bash's vol_setup), $HOMEDIR a directory of uid
# 65534 on the same filesystem, and $ELSEWHERE a directory of root's
# outside the pool.
pool_world() {
	vol_setup "$1"
	HOMEDIR=$DIR/home
	ELSEWHERE=$DIR/elsewhere
	mkdir -p "$HOMEDIR" "$ELSEWHERE"
	chown "$NOBODY:$NOBODY" "$HOMEDIR"
}

# guest_takes FILE [TEXT]: what libvirt and the guest's QEMU user do to a
# running guest's image: libvirt chowns it to that user, who makes it
# writable by everybody, adds an ACL entry, and writes TEXT at offset 0.
guest_takes() {
	chown "$NOBODY:$NOBODY" "$1"
	as_nobody chmod 0666 "$1"
	as_nobody setfacl -m "u:$NOBODY:rw" "$1"
	[ -z "${2:-}" ] || guest_writes "$1" "$2"
}

guest_writes() {
	as_nobody sh -c 'printf %s "$2" | dd of="$1" conv=notrunc status=none' sh "$1" "$2"
}

# nobody_cannot_write FILE...: uid 65534 can neither append to nor
# overwrite any of them, and they keep their data.
nobody_cannot_write() {
	local file sum
	for file in "$@"; do
		sum=$(md5sum <"$file")
		if as_nobody sh -c 'echo x >>"$1"' sh "$file" 2>/dev/null ||
			as_nobody sh -c 'printf x | dd of="$1" conv=notrunc status=none' sh "$file" 2>/dev/null; then
			echo "uid $NOBODY could write $file"
			return 1
		fi
		[ "$(md5sum <"$file")" = "$sum" ]
	done
}

# sealed FILE...: each belongs to root:root (the VM directory's owner), has
# mode 0600 and no extended ACL.
sealed() {
	local file
	for file in "$@"; do
		[ "$(stat -c '%u:%g %a' "$file")" = "0:0 600" ] || {
			echo "$file: $(stat -c '%u:%g %a' "$file"), not 0:0 600"
			return 1
		}
		[ -z "$(getfacl -sp -- "$file")" ] || {
			echo "$file keeps an ACL:"
			getfacl -p -- "$file"
			return 1
		}
	done
}

links() {
	stat -c %h "$1"
}

# running_volume KIND: a volume whose VM runs: its D was given to the QEMU
# user, who made it 0666 with an ACL entry and wrote GUEST1 into it.
running_volume() {
	pool_world "$1"
	vol-create -s 1M "$B"
	guest_takes "$(vol-start -k 3 "$B")" GUEST1
}

# nobody_holds_open FILE: a process of uid 65534 holds FILE open for
# writing until the test ends.
nobody_holds_open() {
	nobody_background sh -c 'exec 5<>"$1" && : >"$2" && exec sleep 60' sh "$1" "$HOMEDIR/open"
	wait_for "$HOMEDIR/open"
	rm -f "$HOMEDIR/open"
}

# 1. The committed inode ---------------------------------------------------

fd_open_refused() {
	running_volume "$1"
	nobody_holds_open "$B-dirty.img"
	before=$(tree_state "$VM")
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 75 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"$B-dirty.img: in use by process"* ]]
	# Nothing changed, not even D's owner, mode or ACL.
	[ "$(tree_state "$VM")" = "$before" ]
	[ "$(stat -c '%u %a' "$B-dirty.img")" = "$NOBODY 666" ]
}

@test "security: btrfs: D held open by the QEMU user: vol-commit exits 75, changes nothing" {
	fd_open_refused btrfs
}

@test "security: xfs: D held open by the QEMU user: vol-commit exits 75, changes nothing" {
	fd_open_refused xfs
}

committed_sealed() {
	sysctl_set protected_hardlinks "$2"
	running_volume "$1"
	d_inode=$(inode "$B-dirty.img")
	vol-commit -k 3 "$B"
	# C is that very inode, now the pool's, with the one name it has.
	[ "$(inode "$B.img")" = "$d_inode" ]
	sealed "$B.img"
	[ "$(links "$B.img")" -eq 1 ]
	[ "$(head_bytes "$B.img" 6)" = GUEST1 ]
	nobody_cannot_write "$B.img"
	# A hard link of C, which only protected_hardlinks=0 allows, gives no
	# access either.
	if as_nobody ln "$B.img" "$HOMEDIR/c" 2>/dev/null; then
		[ "$2" -eq 0 ]
		nobody_cannot_write "$HOMEDIR/c"
		rm "$HOMEDIR/c"
	else
		[ "$2" -eq 1 ]
	fi
	committed=$(md5sum <"$B.img")
	# The next run: the precache becomes D, which libvirt gives to the
	# QEMU user again; its commit makes the first commit revision 2.
	guest_takes "$(vol-start -k 3 "$B")" GUEST2
	vol-commit -k 3 "$B"
	rev=$VM/$(revision_of "$VM" private 2)
	[ "$(inode "$rev")" = "$d_inode" ]
	[ "$(links "$rev")" -eq 1 ]
	nobody_cannot_write "$rev" "$B.img"
	# Every file of the volume is root's, 0600, one name each.
	for file in "$VM"/*; do
		sealed "$file"
		[ "$(links "$file")" -eq 1 ]
	done
	# The revert gives back the bytes committed, whatever 65534 tried.
	vol-revert -r 2 "$B"
	[ "$(md5sum <"$B.img")" = "$committed" ]
}

@test "security: btrfs: protected_hardlinks=0: the committed D is root's 0600 without ACL, as C and as revision" {
	committed_sealed btrfs 0
}

@test "security: btrfs: protected_hardlinks=1: the committed D is root's 0600 without ACL, as C and as revision" {
	committed_sealed btrfs 1
}

@test "security: xfs: protected_hardlinks=0: the committed D is root's 0600 without ACL, as C and as revision" {
	committed_sealed xfs 0
}

@test "security: xfs: protected_hardlinks=1: the committed D is root's 0600 without ACL, as C and as revision" {
	committed_sealed xfs 1
}

second_name_refused() {
	sysctl_set protected_hardlinks "$2"
	running_volume "$1"
	# D's owner may link it whatever protected_hardlinks says.
	as_nobody ln "$B-dirty.img" "$HOMEDIR/keep"
	before=$(tree_state "$VM" "$HOMEDIR")
	for keep in "-k 3" ""; do
		# shellcheck disable=SC2086 # no option, or one
		run --separate-stderr vol-commit $keep "$B"
		[ "$status" -eq 65 ]
		[[ "$stderr" == *"$B-dirty.img: has 2 names"* ]]
		[ "$(tree_state "$VM" "$HOMEDIR")" = "$before" ]
	done
}

@test "security: btrfs: protected_hardlinks=0: D with a hard link elsewhere: vol-commit exits 65, changes nothing" {
	second_name_refused btrfs 0
}

@test "security: btrfs: protected_hardlinks=1: D with a hard link elsewhere: vol-commit exits 65, changes nothing" {
	second_name_refused btrfs 1
}

@test "security: xfs: protected_hardlinks=0: D with a hard link elsewhere: vol-commit exits 65, changes nothing" {
	second_name_refused xfs 0
}

@test "security: xfs: protected_hardlinks=1: D with a hard link elsewhere: vol-commit exits 65, changes nothing" {
	second_name_refused xfs 1
}

unwritten_sealed() {
	pool_world "$1"
	vol-create -s 1M "$B"
	# The guest's user changes D's owner, mode and ACL, never its data.
	guest_takes "$(vol-start -k 3 "$B")"
	d_inode=$(inode "$B-dirty.img")
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"never written"* ]]
	# D becomes the precache again: the next start's D, so the pool's.
	[ "$(inode "$B-precache.img")" = "$d_inode" ]
	sealed "$B-precache.img"
	nobody_cannot_write "$B-precache.img"
	# With a second name it stays where it is.
	guest_takes "$(vol-start -k 3 "$B")"
	as_nobody ln "$B-dirty.img" "$HOMEDIR/keep"
	before=$(tree_state "$VM" "$HOMEDIR")
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"has 2 names"* ]]
	[ "$(tree_state "$VM" "$HOMEDIR")" = "$before" ]
}

@test "security: btrfs: a D the QEMU user only chmodded becomes a sealed precache; with a second name 65" {
	unwritten_sealed btrfs
}

@test "security: xfs: a D the QEMU user only chmodded becomes a sealed precache; with a second name 65" {
	unwritten_sealed xfs
}

# from_file_sealed KIND HARDLINKS: --from FILE, a finished image of uid
# 65534 in a directory of root's, mode 0666 with an ACL entry.
from_file_sealed() {
	sysctl_set protected_hardlinks "$2"
	pool_world "$1"
	vol-create -s 1M "$B"
	mkdir "$DIR/incoming"
	file=$DIR/incoming/new.img
	head -c 1M /dev/urandom >"$file"
	sum=$(md5sum <"$file")
	guest_takes "$file"
	# A second name of FILE, made by its owner: 65, nothing changed.
	as_nobody ln "$file" "$HOMEDIR/keep"
	before=$(tree_state "$VM" "$DIR/incoming" "$HOMEDIR")
	run --separate-stderr vol-commit -k 3 --from "$file" "$B"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"new.img: has 2 names"* ]]
	[ "$(tree_state "$VM" "$DIR/incoming" "$HOMEDIR")" = "$before" ]
	rm "$HOMEDIR/keep"
	# FILE held open by its owner: 75, nothing changed.
	nobody_holds_open "$file"
	before=$(tree_state "$VM" "$DIR/incoming")
	run --separate-stderr vol-commit -k 3 --from "$file" "$B"
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"new.img: in use by process"* ]]
	[ "$(tree_state "$VM" "$DIR/incoming")" = "$before" ]
	background_stop
	# Alone, it becomes C, the pool's.
	file_inode=$(inode "$file")
	vol-commit -k 3 --from "$file" "$B"
	[ ! -e "$file" ]
	[ "$(inode "$B.img")" = "$file_inode" ]
	[ "$(links "$B.img")" -eq 1 ]
	sealed "$B.img"
	nobody_cannot_write "$B.img"
	[ "$(md5sum <"$B.img")" = "$sum" ]
}

@test "security: btrfs: protected_hardlinks=0: vol-commit --from a FILE of 65534's: 65 with 2 names, 75 in use, else sealed" {
	from_file_sealed btrfs 0
}

@test "security: btrfs: protected_hardlinks=1: vol-commit --from a FILE of 65534's: 65 with 2 names, 75 in use, else sealed" {
	from_file_sealed btrfs 1
}

@test "security: xfs: protected_hardlinks=0: vol-commit --from a FILE of 65534's: 65 with 2 names, 75 in use, else sealed" {
	from_file_sealed xfs 0
}

@test "security: xfs: protected_hardlinks=1: vol-commit --from a FILE of 65534's: 65 with 2 names, 75 in use, else sealed" {
	from_file_sealed xfs 1
}

# vol-import copies FILE (a clone where it can) into a staging file of its
# own: C is a new inode, so FILE's names, users, owner and ACL cannot reach
# it, and FILE is left as it was.
import_sealed() {
	pool_world "$1"
	vol-create -s 1M "$B"
	file=$HOMEDIR/new.img
	head -c 1M /dev/urandom >"$file"
	sum=$(md5sum <"$file")
	guest_takes "$file"
	as_nobody ln "$file" "$HOMEDIR/keep"
	nobody_holds_open "$file"
	before=$(tree_state "$HOMEDIR")
	vol-import -k 3 "$B" "$file"
	[ "$(inode "$B.img")" != "$(inode "$file")" ]
	[ "$(links "$B.img")" -eq 1 ]
	sealed "$B.img"
	nobody_cannot_write "$B.img"
	[ "$(md5sum <"$B.img")" = "$sum" ]
	[ "$(tree_state "$HOMEDIR")" = "$before" ]
}

@test "security: btrfs: vol-import of a FILE of 65534's (0666, ACL, 2 names, open): C is a new sealed inode" {
	import_sealed btrfs
}

@test "security: xfs: vol-import of a FILE of 65534's (0666, ACL, 2 names, open): C is a new sealed inode" {
	import_sealed xfs
}

template_sealed() {
	pool_world "$1"
	template=$POOL/vm-templates/tpl/root
	appvm=$POOL/appvms/app1/root
	mkdir -p "$(dirname "$template")"
	vol-create -s 1M "$template"
	# The template runs, and its QEMU user makes its D its own.
	guest_takes "$(vol-start -k 1 "$template")" TEMPLATE
	vol-commit -k 1 "$template"
	sealed "$template.img"
	# An AppVM's root: its C is a link of the template's C.
	app_dirty=$(vol-start -S "$template" "$appvm")
	[ "$(inode "$appvm.img")" = "$(inode "$template.img")" ]
	[ "$(links "$template.img")" -eq 2 ]
	nobody_cannot_write "$template.img" "$appvm.img"
	# The AppVM runs: its D, a clone, is given to the same QEMU user.
	guest_takes "$app_dirty" APPVM
	nobody_cannot_write "$template.img"
	[ "$(head_bytes "$template.img" 8)" = TEMPLATE ]
	vol-discard -S "$template" "$appvm"
	[ "$(head_bytes "$template.img" 8)" = TEMPLATE ]
	[ "$(links "$template.img")" -eq 1 ]
}

@test "security: btrfs: a template committed from a D of 65534's: the C snapshots link is not writable by 65534" {
	template_sealed btrfs
}

@test "security: xfs: a template committed from a D of 65534's: the C snapshots link is not writable by 65534" {
	template_sealed xfs
}

# The QEMU user keeps a way to write D that is no descriptor in
# /proc/PID/fd, closes every descriptor, and writes after the commit.
# Fixed behaviour: vol-commit refuses (75), or the C it makes is not what
# that way writes.
hidden_writer_code_mmap='
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
fd = os.open(sys.argv[1], os.O_RDWR)
address = libc.mmap(None, 4096, 3, 1, fd, 0)  # read, write; MAP_SHARED
if address in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap failed")
os.close(fd)  # only the mapping is left
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
ctypes.memmove(address, sys.argv[4].encode(), len(sys.argv[4]))
libc.msync(address, 4096, 4)  # MS_SYNC
open(sys.argv[5], "w").close()
'

hidden_writer_code_inflight='
import os, socket, sys, time
keep, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fd = os.open(sys.argv[1], os.O_RDWR)
socket.send_fds(keep, [b"x"], [fd])  # the descriptor is only in flight
os.close(fd)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
_, fds, _, _ = socket.recv_fds(peer, 1, 1)
os.pwrite(fds[0], sys.argv[4].encode(), 0)
os.fsync(fds[0])
open(sys.argv[5], "w").close()
'

hidden_writer() {
	local code
	case $2 in
	mmap) code=$hidden_writer_code_mmap ;;
	inflight) code=$hidden_writer_code_inflight ;;
	esac
	need_nobody_python
	running_volume "$1"
	nobody_background "$NOBODY_PYTHON" -c "$code" "$B-dirty.img" \
		"$HOMEDIR/ready" "$HOMEDIR/go" EVIL "$HOMEDIR/done"
	wait_for "$HOMEDIR/ready"
	before=$(tree_state "$VM")
	run --separate-stderr vol-commit -k 3 "$B"
	if [ "$status" -eq 75 ]; then
		[ "$(tree_state "$VM")" = "$before" ]
		return 0
	fi
	[ "$status" -eq 0 ]
	touch "$HOMEDIR/go"
	wait_for "$HOMEDIR/done"
	[ "$(head_bytes "$B.img" 6)" = GUEST1 ] || {
		echo "uid $NOBODY wrote into the committed C: $(head_bytes "$B.img" 6)"
		return 1
	}
}

@test "security: btrfs: a shared writable mmap of D (no fd left): the committed C stays unwritable" {
	hidden_writer btrfs mmap
}

@test "security: xfs: a shared writable mmap of D (no fd left): the committed C stays unwritable" {
	hidden_writer xfs mmap
}

@test "security: btrfs: a descriptor of D in flight in a unix socket: the committed C stays unwritable" {
	hidden_writer btrfs inflight
}

@test "security: xfs: a descriptor of D in flight in a unix socket: the committed C stays unwritable" {
	hidden_writer xfs inflight
}

# swap_code DIR HOLD PAUSE SECONDS A B [A B...]: exchanges each pair of
# names (renameat2 RENAME_EXCHANGE, so both names always exist), holds
# the swap HOLD seconds, exchanges them back, and waits PAUSE seconds,
# until SECONDS have passed or it is killed.
swap_code='
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
directory = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
hold, pause = float(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + float(sys.argv[4])
pairs = [(sys.argv[i].encode(), sys.argv[i + 1].encode())
         for i in range(5, len(sys.argv), 2)]
while time.monotonic() < end:
    for a, b in pairs:
        if libc.renameat2(directory, a, directory, b, 2) == 0:
            time.sleep(hold)
            libc.renameat2(directory, a, directory, b, 2)
        time.sleep(pause)
'

# vol-commit --from FILE in a directory of FILE's owner, who swaps FILE for
# another image of theirs while the commit runs.  Fixed behaviour: whatever
# the exit status, C is root's 0600 without ACL.
from_swap_race() {
	local rounds=20 won=0 round
	need_nobody_python
	pool_world "$1"
	vol-create -s 1M "$B"
	for ((round = 1; round <= rounds; round++)); do
		as_nobody sh -c '
			cd "$1" && rm -f new.img other.img &&
			head -c 1M /dev/zero >new.img && head -c 1M /dev/zero >other.img &&
			printf GOOD | dd of=new.img conv=notrunc status=none &&
			printf EVIL | dd of=other.img conv=notrunc status=none &&
			chmod 0666 new.img other.img' sh "$HOMEDIR"
		nobody_background "$NOBODY_PYTHON" -c "$swap_code" "$HOMEDIR" 0 0 20 new.img other.img
		run timeout -k 2 10 vol-commit -k 2 --from "$HOMEDIR/new.img" "$B"
		background_stop
		[ "$status" -ne 124 ]
		if ! sealed "$B.img" >/dev/null; then
			won=$((won + 1))
			echo "round $round: exit $status, C is $(stat -c '%U %a' "$B.img")"
			# The next round starts from a sealed C again.
			chown 0:0 "$B.img" && chmod 0600 "$B.img" && setfacl -b "$B.img"
		fi
	done
	echo "# $1: vol-commit --from swap: 65534 won $won of $rounds rounds" >&3
	[ "$won" -eq 0 ]
}

@test "security: btrfs: vol-commit --from a FILE whose owner swaps it: C is never theirs" {
	from_swap_race btrfs
}

@test "security: xfs: vol-commit --from a FILE whose owner swaps it: C is never theirs" {
	from_swap_race xfs
}

# 2. Directories on the way ------------------------------------------------

# One command of every tool that changes or reads a volume: the state the
# pool must be in ("stopped" or "dirty"), and the command.
TOOL_TABLE='stopped | vol-create -s 1M "$POOL/appvms/vm2/new"
stopped | vol-create -s 1M "$POOL/appvms/vm3/new"
stopped | vol-start -k 3 "$B"
stopped | vol-start --volatile -s 1M "$POOL/appvms/vm2/volatile"
stopped | vol-start -S "$B" "$POOL/appvms/vm2/root"
dirty   | vol-commit -k 3 "$B"
stopped | vol-commit -k 3 --from "$FILE" "$B"
dirty   | vol-discard "$B"
stopped | vol-revert "$B"
stopped | vol-prune -k 0 "$B"
stopped | vol-resize -s 2M "$B"
dirty   | vol-resize -s 2M "$B"
stopped | vol-remove "$B"
stopped | vol-import "$B" "$FILE"
stopped | vol-info "$B"
stopped | reflink-clone "$B.img" "$POOL/appvms/vm2/copy.img"'

# dir_world STATE: a fresh pool: $B with C, P and revision 1, and D if
# STATE is dirty; an empty VM directory vm2; $FILE, an image to import.
dir_world() {
	chmod 0755 "$DIR"
	rm -rf "$POOL" "$DIR/incoming"
	mkdir -p "$VM" "$POOL/appvms/vm2" "$DIR/incoming"
	vol_make CLEAN
	cp --reflink=auto -p "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	if [ "$1" = dirty ]; then
		mv "$B-precache.img" "$B-dirty.img"
		printf DIRTY | dd of="$B-dirty.img" conv=notrunc status=none
	fi
	FILE=$DIR/incoming/new.img
	head -c 65536 /dev/urandom >"$FILE"
}

# untrusted CASE: makes a directory on the way writable by uid 65534;
# sets $CULPRIT to it and $CULPRIT_MODE to what the refusal must say.
untrusted() {
	CULPRIT=$POOL/appvms
	case $1 in
	world-writable)
		chmod 0777 "$CULPRIT"
		CULPRIT_MODE="mode 0777, owner uid 0"
		;;
	group-writable)
		chgrp "$NOBODY" "$CULPRIT"
		chmod 0775 "$CULPRIT"
		CULPRIT_MODE="mode 0775, owner uid 0"
		;;
	owned)
		chown "$NOBODY" "$CULPRIT"
		CULPRIT_MODE="mode 0755, owner uid $NOBODY"
		;;
	acl)
		setfacl -m "u:$NOBODY:rwx" "$CULPRIT"
		CULPRIT_MODE="mode 0775, owner uid 0"
		;;
	above)
		CULPRIT=$DIR
		chmod 0777 "$CULPRIT"
		CULPRIT_MODE="mode 0777, owner uid 0"
		;;
	esac
}

# dir_refused KIND CASE: every command of TOOL_TABLE exits 77 naming the
# culprit and its mode, and changes nothing; with --unsafe-dirs it works.
dir_refused() {
	local world command failures=0
	pool_world "$1"
	while IFS='|' read -r world command; do
		world=${world// /}
		command=${command#"${command%%[! ]*}"}
		dir_world "$world"
		untrusted "$2"
		before=$(tree_state "$DIR")
		run --separate-stderr eval "$command"
		if [ "$status" -ne 77 ] ||
			[[ "$stderr" != *"refused: $(realpath "$CULPRIT") ($CULPRIT_MODE)"* ]] ||
			[ "$(tree_state "$DIR")" != "$before" ]; then
			echo "$2: $command: exit $status: $stderr"
			failures=$((failures + 1))
		fi
		dir_world "$world"
		untrusted "$2"
		run --separate-stderr eval "${command/ / --unsafe-dirs }"
		if [ "$status" -ne 0 ]; then
			echo "$2: ${command/ / --unsafe-dirs }: exit $status: $stderr"
			failures=$((failures + 1))
		fi
	done <<<"$TOOL_TABLE"
	[ "$failures" -eq 0 ]
}

@test "security: btrfs: appvms writable by all (0777): every tool exits 77 naming it, changes nothing; --unsafe-dirs works" {
	dir_refused btrfs world-writable
}

@test "security: xfs: appvms writable by all (0777): every tool exits 77 naming it, changes nothing; --unsafe-dirs works" {
	dir_refused xfs world-writable
}

@test "security: btrfs: appvms writable by 65534's group (0775, not sticky): every tool exits 77" {
	dir_refused btrfs group-writable
}

@test "security: btrfs: appvms owned by 65534 (0755): every tool exits 77" {
	dir_refused btrfs owned
}

@test "security: btrfs: appvms writable by 65534 through an ACL entry: every tool exits 77" {
	dir_refused btrfs acl
}

@test "security: xfs: the directory above the pool writable by all: every tool exits 77 naming it" {
	dir_refused xfs above
}

# sticky_accepted KIND: a sticky directory on the way, writable by others
# (1777, like /tmp, and 1775 with 65534's group), whose entries below are
# root's: every tool works; a VM directory of 65534's below it is refused.
sticky_accepted() {
	local world command mode failures=0
	pool_world "$1"
	for mode in 1777 1775; do
		while IFS='|' read -r world command; do
			dir_world "${world// /}"
			chgrp "$NOBODY" "$POOL/appvms"
			chmod "$mode" "$POOL/appvms"
			run --separate-stderr eval "$command"
			if [ "$status" -ne 0 ]; then
				echo "$mode: $command: exit $status: $stderr"
				failures=$((failures + 1))
			fi
		done <<<"$TOOL_TABLE"
	done
	[ "$failures" -eq 0 ]
	dir_world dirty
	chmod 1777 "$POOL/appvms"
	chown "$NOBODY" "$VM"
	before=$(tree_state "$DIR")
	for command in 'vol-commit -k 3 "$B"' 'vol-discard "$B"' 'vol-resize -s 2M "$B"' 'vol-info "$B"'; do
		run --separate-stderr eval "$command"
		[ "$status" -eq 77 ]
		[[ "$stderr" == *"refused: $(realpath "$VM") (mode 0755, owner uid $NOBODY)"* ]]
	done
	[ "$(tree_state "$DIR")" = "$before" ]
}

@test "security: btrfs: a sticky appvms (1777, 1775) with root's VM directories is accepted; one of 65534's is not" {
	sticky_accepted btrfs
}

@test "security: xfs: a sticky appvms (1777, 1775) with root's VM directories is accepted; one of 65534's is not" {
	sticky_accepted xfs
}

# bait: $ELSEWHERE, a directory of root's outside the pool, holds the files
# of a volume "private" that the tools must never touch nor hand out.
bait() {
	rm -rf "${ELSEWHERE:?}"/*
	printf BAIT-C >"$ELSEWHERE/private.img"
	printf BAIT-D >"$ELSEWHERE/private-dirty.img"
	cp -p "$ELSEWHERE/private.img" "$ELSEWHERE/private-precache.img"
	cp -p "$ELSEWHERE/private.img" "$ELSEWHERE/private.img.1@2020-01-01T00:00:00Z"
	chmod 0600 "$ELSEWHERE"/*
	BAIT=$(tree_state "$ELSEWHERE")
}

# Commands on a volume $B8 reached through a symbolic link: none may
# succeed or change anything outside the pool.
PLANTED_TABLE='vol-discard "$B8"
vol-commit -k 3 "$B8"
vol-start -k 3 "$B8"
vol-start --volatile -s 1M "$POOL/appvms/vm8/volatile"
vol-revert "$B8"
vol-resize -s 2M "$B8"
vol-prune -k 0 "$B8"
vol-import "$B8" "$FILE"
vol-remove -f "$B8"'

# planted_symlink KIND MODE [PROTECTED_SYMLINKS]: appvms has MODE (group
# 65534); uid 65534 makes appvms/vm8 a symbolic link to $ELSEWHERE before
# root ever runs a tool on a volume of vm8.
planted_symlink() {
	local command failures=0
	[ -z "${3:-}" ] || sysctl_set protected_symlinks "$3"
	pool_world "$1"
	FILE=$DIR/new.img
	head -c 65536 /dev/urandom >"$FILE"
	chgrp "$NOBODY" "$POOL/appvms"
	chmod "$2" "$POOL/appvms"
	as_nobody ln -s "$ELSEWHERE" "$POOL/appvms/vm8"
	# shellcheck disable=SC2034 # the table uses it through eval
	B8=$POOL/appvms/vm8/private
	while IFS= read -r command; do
		bait
		run --separate-stderr eval "$command"
		if [ "$status" -eq 0 ] || [ "$(tree_state "$ELSEWHERE")" != "$BAIT" ]; then
			echo "$2: $command: exit $status, $ELSEWHERE: $(files_in "$ELSEWHERE")"
			failures=$((failures + 1))
		fi
	done <<<"$PLANTED_TABLE"
	[ "$failures" -eq 0 ]
}

@test "security: btrfs: a symlink 65534 planted in a writable appvms (0777) leads no tool outside the pool" {
	planted_symlink btrfs 0777
}

@test "security: btrfs: a symlink 65534 planted in a sticky appvms of its group (1775) leads no tool outside the pool" {
	planted_symlink btrfs 1775
}

@test "security: btrfs: protected_symlinks=0: a symlink 65534 planted in a sticky appvms (1777) leads no tool outside the pool" {
	planted_symlink btrfs 1777 0
}

@test "security: btrfs: protected_symlinks=1: a symlink 65534 planted in a sticky appvms (1777) leads no tool outside the pool" {
	planted_symlink btrfs 1777 1
}

# The attack the check is for: appvms is writable by uid 65534, which swaps
# the VM directory vm7 with a symbolic link to $ELSEWHERE and back, over
# and over, while root runs vol-discard, vol-commit and vol-start.  A
# round is won if the tool succeeded (it printed or changed the files of
# wherever vm7 led) or anything in $ELSEWHERE changed.
symlink_swap_race() {
	local rounds=99 won=0 round tool tools=(vol-discard vol-commit vol-start)
	need_nobody_python
	pool_world "$1"
	VM=$POOL/appvms/vm7
	B=$VM/private
	mkdir "$VM"
	vol_make CLEAN
	bait
	chmod 0777 "$POOL/appvms"
	as_nobody ln -s "$ELSEWHERE" "$POOL/appvms/.vm7"
	nobody_background "$NOBODY_PYTHON" -c "$swap_code" "$POOL/appvms" 0.002 0.002 120 vm7 .vm7
	for ((round = 0; round < rounds; round++)); do
		tool=${tools[round % 3]}
		case $tool in
		vol-discard) run --separate-stderr timeout -k 2 10 vol-discard "$B" ;;
		vol-commit) run --separate-stderr timeout -k 2 10 vol-commit -k 3 "$B" ;;
		vol-start) run --separate-stderr timeout -k 2 10 vol-start -k 3 "$B" ;;
		esac
		[ "$status" -ne 124 ]
		if [ "$status" -eq 0 ] || [ "$(tree_state "$ELSEWHERE")" != "$BAIT" ]; then
			won=$((won + 1))
			[ "$won" -gt 3 ] || echo "round $round: $tool exit $status ${output:-}, $ELSEWHERE: $(files_in "$ELSEWHERE")"
			bait
		fi
	done
	background_stop
	echo "# $1: vm7 swapped with a symlink: 65534 won $won of $rounds rounds" >&3
	[ "$won" -eq 0 ]
}

@test "security: btrfs: 65534 swapping a VM directory with a symlink in a writable appvms never leads the tools outside" {
	symlink_swap_race btrfs
}

@test "security: xfs: 65534 swapping a VM directory with a symlink in a writable appvms never leads the tools outside" {
	symlink_swap_race xfs
}

@test "security: btrfs: pool-check --repair in a pool 65534 may write exits 77 naming the directory" {
	pool_world btrfs
	vol_make
	: >"$B.img~abcdef"
	chmod 0777 "$POOL/appvms"
	before=$(tree_state "$POOL")
	run --separate-stderr pool-check --repair "$POOL"
	[[ "$stderr" == *"refused: $(realpath "$POOL/appvms") (mode 0777"* ]]
	[ "$(tree_state "$POOL")" = "$before" ]
	[ "$status" -eq 77 ]
}

# 3. FIFOs and second names ------------------------------------------------

# The VM directory is the QEMU user's (--unsafe-dirs accepts it): it swaps
# C and D with FIFOs for a moment, over and over, while root runs the
# tools.  No run may hang; runs refused at the scan ("not a regular file")
# and at the open are counted.
fifo_race() {
	local rounds=40 round tool runs=0 hung=0 at_scan=0 at_open=0 worked=0
	need_nobody_python
	pool_world "$1"
	vol-create -s 1M "$B"
	chown "$NOBODY" "$VM"
	as_nobody mkfifo "$VM/fifo-c" "$VM/fifo-d"
	nobody_background "$NOBODY_PYTHON" -c "$swap_code" "$VM" 0.001 0.002 120 \
		private.img fifo-c private-dirty.img fifo-d
	for ((round = 0; round < rounds; round++)); do
		for tool in vol-start vol-resize vol-commit vol-revert; do
			case $tool in
			vol-start) run --separate-stderr timeout -k 2 10 vol-start --unsafe-dirs -k 3 "$B" ;;
			vol-resize) run --separate-stderr timeout -k 2 10 vol-resize --unsafe-dirs -s 1M "$B" ;;
			vol-commit) run --separate-stderr timeout -k 2 10 vol-commit --unsafe-dirs -k 3 "$B" ;;
			vol-revert) run --separate-stderr timeout -k 2 10 vol-revert --unsafe-dirs "$B" ;;
			esac
			runs=$((runs + 1))
			if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
				hung=$((hung + 1))
				echo "$tool hung"
			elif [ "$status" -eq 0 ]; then
				worked=$((worked + 1))
			elif [[ "$stderr" == *"not a regular file"* ]]; then
				at_scan=$((at_scan + 1))
			elif [[ "$stderr" == *"Invalid argument"* || "$stderr" == *"Resource temporarily unavailable"* ||
				"$stderr" == *"directory changed under the lock"* ]]; then
				at_open=$((at_open + 1))
			fi
		done
	done
	background_stop
	echo "# $1: FIFO swaps: $runs runs, $worked worked, $at_scan refused at the scan, $at_open refused at the open, $hung hung" >&3
	[ "$hung" -eq 0 ]
	[ $((at_scan + at_open)) -gt 0 ]
}

@test "security: btrfs: C and D swapped with FIFOs: vol-start, vol-resize, vol-commit, vol-revert never hang" {
	fifo_race btrfs
}

@test "security: xfs: C and D swapped with FIFOs: vol-start, vol-resize, vol-commit, vol-revert never hang" {
	fifo_race xfs
}

# D is a hard link of a file of root's outside the pool: neither a resize
# in place nor a commit may touch that file.
outside_link_refused() {
	sysctl_set protected_hardlinks "$2"
	pool_world "$1"
	head -c 1M /dev/urandom >"$ELSEWHERE/secret.img"
	chmod 0600 "$ELSEWHERE/secret.img"
	vol-create -s 1M "$B"
	vol-start -k 3 "$B" >/dev/null
	ln -f "$ELSEWHERE/secret.img" "$B-dirty.img"
	before=$(tree_state "$ELSEWHERE")
	run --separate-stderr vol-resize -f -s 0 "$B"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"$B-dirty.img: has 2 names"* ]]
	[ "$(tree_state "$ELSEWHERE")" = "$before" ]
	[ "$(stat -c %s "$ELSEWHERE/secret.img")" -eq 1048576 ]
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 65 ]
	[ "$(tree_state "$ELSEWHERE")" = "$before" ]
}

@test "security: btrfs: protected_hardlinks=0: D a link of a file outside: vol-resize -f -s 0 and vol-commit exit 65" {
	outside_link_refused btrfs 0
}

@test "security: btrfs: protected_hardlinks=1: D a link of a file outside: vol-resize -f -s 0 and vol-commit exit 65" {
	outside_link_refused btrfs 1
}

@test "security: xfs: protected_hardlinks=0: D a link of a file outside: vol-resize -f -s 0 and vol-commit exit 65" {
	outside_link_refused xfs 0
}

@test "security: xfs: protected_hardlinks=1: D a link of a file outside: vol-resize -f -s 0 and vol-commit exit 65" {
	outside_link_refused xfs 1
}

# 4. The lock --------------------------------------------------------------

nobody_lock_ignored() {
	pool_world "$1"
	vol_make
	guest_takes "$(vol-start -k 3 "$B")" GUEST1
	[ "$(stat -c %a "$VM")" = 755 ]
	nobody_background flock -x "$VM" sleep 100
	# Held once root can no longer take it without waiting.
	for ((i = 0; i < 200; i++)); do
		flock -n "$VM" true || break
		sleep 0.05
	done
	run ! flock -n "$VM" true
	start=$(date +%s%N)
	run vol-commit -w 2 -k 3 "$B"
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	[ "$status" -eq 0 ]
	[ "$elapsed_ms" -lt 2000 ]
	run vol-start -w 0 -k 3 "$B"
	[ "$status" -eq 0 ]
	# Nor can 65534 take the lock the tools use.
	[ "$(stat -c '%u %a' /run/file-reflink/lock)" = "0 700" ]
	lock=$(lock_path "$VM")
	run ! as_nobody flock -n "$lock" true
}

@test "security: btrfs: 65534 holding a flock of the VM directory does not stall vol-commit -w 2" {
	nobody_lock_ignored btrfs
}

@test "security: xfs: 65534 holding a flock of the VM directory does not stall vol-commit -w 2" {
	nobody_lock_ignored xfs
}

documented_lock() {
	pool_world "$1"
	vol_make
	mkdir -p /run/file-reflink && { [ -d /run/file-reflink/lock ] || mkdir -m 700 /run/file-reflink/lock; }
	# The command of file-reflink(7), LOCKING, run by a root script.
	background sh -c 'flock "/run/file-reflink/lock/$(stat -c %d-%i "$1").lock" sh -c ": >\"\$0\"; exec sleep 30" "$2"' \
		sh "$VM" "$BATS_TEST_TMPDIR/held"
	wait_for "$BATS_TEST_TMPDIR/held"
	run --separate-stderr reflink-clone -w 1 "$B.img" "$VM/copy.img"
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"busy"* ]]
	[ ! -e "$VM/copy.img" ]
	no_temp_files "$VM"
	run vol-commit -w 1 -k 3 "$B"
	[ "$status" -eq 75 ]
	background_stop
	reflink-clone -w 1 "$B.img" "$VM/copy.img"
}

@test "security: btrfs: reflink-clone -w 1 exits 75 while a root script holds the documented lock" {
	documented_lock btrfs
}

@test "security: xfs: reflink-clone -w 1 exits 75 while a root script holds the documented lock" {
	documented_lock xfs
}

@test "security: btrfs: a /run/file-reflink others may enter cannot let 65534 stall the tools" {
	pool_world btrfs
	vol_make
	vol-start "$B" >/dev/null
	mkdir -p /run/file-reflink && { [ -d /run/file-reflink/lock ] || mkdir -m 700 /run/file-reflink/lock; }
	# In a mount namespace of its own, /run/file-reflink is a new tmpfs
	# and its lock directory is of mode 0755, as mkdir -p or a
	# tmpfiles.d line would make it.
	run unshare -m -- bash -c '
		mount -t tmpfs -o mode=0755 tmpfs /run/file-reflink || exit 99
		mkdir -m 0755 /run/file-reflink/lock || exit 99
		lock=/run/file-reflink/lock/$(stat -c %d-%i "$1").lock
		flock "$lock" true
		setsid setpriv --reuid=65534 --regid=65534 --clear-groups -- \
			flock -x "$lock" sleep 30 </dev/null >/dev/null 2>&1 &
		holder=$!
		for i in $(seq 100); do flock -n "$lock" true || break; sleep 0.05; done
		start=$(date +%s%N)
		vol-commit -w 2 -k 3 "$2"
		status=$?
		echo "elapsed $((($(date +%s%N) - start) / 1000000)) ms"
		kill -- -"$holder"
		exit "$status"' bash "$VM" "$B"
	echo "$output"
	[ "$status" -ne 99 ]
	[ "$status" -ne 75 ]
}

# 5. Log lines -------------------------------------------------------------

@test "security: btrfs: a file name cannot forge a line on standard error or in syslog" {
	pool_world btrfs
	name=$'x\nvol-commit: forged line\033[1A\377'
	run --separate-stderr syslog_capture "$BATS_TEST_TMPDIR/syslog" vol-discard "$VM/$name"
	[ "$status" -eq 66 ]
	# One line, no control character, nothing that is not UTF-8.
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
	[[ "$stderr" != *[[:cntrl:]]* ]]
	printf '%s' "$stderr" | iconv -f UTF-8 -t UTF-8 >/dev/null
	grep -q 'no such volume' "$BATS_TEST_TMPDIR/syslog"
	run ! grep -q '^vol-commit: forged' "$BATS_TEST_TMPDIR/syslog"
	run ! grep -q $'\033' "$BATS_TEST_TMPDIR/syslog"
}
