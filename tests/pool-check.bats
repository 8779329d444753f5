#!/usr/bin/env bats
# pool-check: --init, the findings of a scan, --repair, JSON.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

teardown() {
	release_lock
	if [ -n "${LOOP:-}" ]; then
		losetup -d "$LOOP" 2>/dev/null || true
	fi
	if [ -n "${KEEPER:-}" ]; then
		kill "$KEEPER" 2>/dev/null || true
		wait "$KEEPER" 2>/dev/null || true
	fi
	if [ -n "${PUB:-}" ]; then
		umount "$PUB" || umount -l "$PUB"
		rmdir "$PUB"
	fi
}

# hold_tool_lock DIR: holds the lock the tools take of the VM directory
# DIR until release_lock (helper.bash: hold_lock, lock_path).
hold_tool_lock() {
	hold_lock "$1"
}

# public_dir [ro]: $PUB is $DIR seen through a bind mount at a path that
# every user may walk (the test directories lie below a 0700 one); with
# "ro", a read-only one.
public_dir() {
	PUB=$(mktemp -d /tmp/pool-check-test.XXXXXX)
	chmod 755 "$PUB"
	mount --bind "$DIR" "$PUB"
	if [ "${1:-}" = ro ]; then
		mount -o remount,bind,ro "$PUB"
	fi
}

# as_nobody COMMAND...: runs COMMAND as the unprivileged uid 65534.
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}

# keeper COMMAND...: runs COMMAND in the background (as it is, or under
# setpriv) as $KEEPER, which teardown kills.  It must not hold bats' fd 3.
keeper() {
	"$@" 3>&- &
	KEEPER=$!
}

# A pool with one example of every finding code that a scan can make on
# a filesystem that reflinks.
sick_pool() {
	vol_setup btrfs
	pool-check -q --init "$POOL" >/dev/null
	mkdir -p "$VM" "$POOL/appvms/vm2" "$POOL/vm-templates/t1"
	# healthy: nothing to report
	vol-create -s 1M "$POOL/vm-templates/t1/root"
	# dirty-detached
	vol-create -s 1M "$VM/private"
	vol-start "$VM/private" >/dev/null
	# stale-precache, temp-leftover, import-leftover
	vol-create -s 1M "$VM/root"
	touch -d 2001-01-01 "$VM/root-precache.img"
	echo t >"$VM/root.img~abc123"
	echo i >"$VM/root-import.img"
	# legacy-revision, malformed-revision
	echo l >"$VM/root.img@2018-01-02T03:04:05Z"
	echo m >"$VM/root.img.x@2018-01-02T03:04:05Z"
	# clean-missing
	echo r >"$POOL/appvms/vm2/data.img.1@2018-01-02T03:04:05Z"
	# not-regular
	ln -s /etc/hostname "$POOL/appvms/vm2/swap.img"
}

SICK_CODES="dirty-detached import-leftover stale-precache malformed-revision legacy-revision temp-leftover clean-missing not-regular"

# repairs CODE PATH: --repair removes PATH, reported as fixed (exit 0),
# and a check after it finds nothing.
repairs() {
	local out
	out=$(pool-check -q --repair "$POOL")
	[ "$out" = "fixed	$2	$1	removed" ]
	[ ! -e "$2" ]
	[ ! -L "$2" ]
	out=$(pool-check -q "$POOL")
	[ -z "$out" ]
}

# keeps FINDINGS PATH...: --repair leaves every PATH, and prints the same
# FINDINGS again (exit 1).
keeps() {
	local findings=$1 out rc=0 path
	shift
	out=$(pool-check -q --repair "$POOL") || rc=$?
	[ "$rc" -eq 1 ]
	[ "$out" = "$findings" ]
	for path in "$@"; do
		[ -e "$path" ] || [ -L "$path" ]
	done
}

@test "pool-check: one line per finding, in a stable order, exit 1" {
	sick_pool
	run --separate-stderr pool-check "$POOL"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 8 ]
	[ "$(printf '%s\n' "${lines[@]}" | cut -f3 | tr '\n' ' ')" = "$SICK_CODES " ]
	[ "${lines[0]}" = "warning	$VM/private-dirty.img	dirty-detached	crash leftover: no VM uses it; keep its changes: vol-commit $VM/private, or drop them: vol-discard $VM/private" ]
	[[ "${lines[1]}" == "warning	$VM/root-import.img	import-leftover	"* ]]
	[[ "${lines[2]}" == "warning	$VM/root-precache.img	stale-precache	"* ]]
	[[ "${lines[3]}" == "warning	$VM/root.img.x@2018-01-02T03:04:05Z	malformed-revision	"* ]]
	[[ "${lines[4]}" == "warning	$VM/root.img@2018-01-02T03:04:05Z	legacy-revision	"* ]]
	[[ "${lines[5]}" == "warning	$VM/root.img~abc123	temp-leftover	"* ]]
	[[ "${lines[6]}" == "error	$POOL/appvms/vm2/data.img	clean-missing	"*"vol-revert $POOL/appvms/vm2/data" ]]
	[[ "${lines[7]}" == "error	$POOL/appvms/vm2/swap.img	not-regular	a symbolic link"* ]]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == "pool-check: $POOL: 3 volumes, 1 revisions, 1 dirty; filesystem "*" used ("*"%)" ]]
	# The same again: the order does not depend on the directory.
	run pool-check -q "$POOL"
	[ "$(printf '%s\n' "${lines[@]}" | cut -f3 | tr '\n' ' ')" = "$SICK_CODES " ]
}

@test "pool-check: --repair fixes leftovers and leaves what needs a decision" {
	sick_pool
	run pool-check -q --repair "$POOL"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep '^fixed' | cut -f2,3 | tr '\t\n' '  ')" = \
		"$VM/root-import.img import-leftover $VM/root-precache.img stale-precache $VM/root.img~abc123 temp-leftover " ]
	[ ! -e "$VM/root-import.img" ] && [ ! -e "$VM/root.img~abc123" ] && [ ! -e "$VM/root-precache.img" ]
	# Dirty images, revisions and clean images are never removed.
	[ -f "$VM/private-dirty.img" ] && [ -f "$VM/root.img" ]
	[ -f "$POOL/appvms/vm2/data.img.1@2018-01-02T03:04:05Z" ]
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "${lines[@]}" | cut -f3 | tr '\n' ' ')" = \
		"dirty-detached malformed-revision legacy-revision clean-missing not-regular " ]
}

@test "pool-check: --repair -n shows what it would do and changes nothing" {
	sick_pool
	before=$(dir_state "$VM")
	run pool-check -q --repair -n "$POOL"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep -c '^would-fix')" -eq 3 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "pool-check: after --repair and vol-commit the pool is healthy" {
	sick_pool
	rm "$POOL/appvms/vm2/swap.img" "$VM/root.img@2018-01-02T03:04:05Z" \
		"$VM/root.img.x@2018-01-02T03:04:05Z"
	pool-check -q --repair "$POOL" >/dev/null || true
	vol-commit "$VM/private"
	vol-revert "$POOL/appvms/vm2/data"
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "pool-check: finding dirty-attached: a dirty image on a loop device (info, exit 0)" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	vol-start "$B" >/dev/null
	LOOP=$(losetup -f --show "$B-dirty.img")
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "info	$B-dirty.img	dirty-attached	a VM is running on it (used by $LOOP)" ]
	losetup -d "$LOOP"
	LOOP=
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[[ "$output" == "warning	$B-dirty.img	dirty-detached	"* ]]
}

@test "pool-check: a dirty image a process has open is dirty-attached" {
	vol_setup xfs
	vol-create -s 1M "$B"
	vol-start "$B" >/dev/null
	# A process that keeps the image open, as QEMU does.
	exec 5<"$B-dirty.img"
	run pool-check -q "$POOL"
	exec 5<&-
	[ "$status" -eq 0 ]
	[[ "$output" == "info	$B-dirty.img	dirty-attached	a VM is running on it (used by process "*")" ]]
}

@test "pool-check: a temp file in a locked directory is an operation in progress" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	echo t >"$B.img~inprogress"
	hold_tool_lock "$VM"
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	[[ "$output" == "info	$B.img~inprogress	temp-leftover	a tool is working in this directory now"* ]]
	run pool-check -q -w 0 --repair "$POOL"
	[ "$status" -eq 0 ]
	[ -f "$B.img~inprogress" ]
	release_lock
	run pool-check -q --repair "$POOL"
	[ "$status" -eq 0 ]
	[ ! -e "$B.img~inprogress" ]
}

init_makes_pool() {
	fs_dir "$1"
	run pool-check --init "$DIR/pool"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/pool")" = "appvms vm-templates" ]
	run pool-check -q "$DIR/pool"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "pool-check: --init on btrfs makes the pool and its two directories" {
	init_makes_pool btrfs
}

@test "pool-check: --init on xfs makes the pool and its two directories" {
	init_makes_pool xfs
}

@test "pool-check: --init on ext4 exits 69 naming --no-reflink-ok, and removes the new POOL" {
	fs_dir ext4
	run pool-check --init "$DIR/pool"
	[ "$status" -eq 69 ]
	[[ "$output" == *"$DIR/pool: the filesystem (ext2/ext3/ext4) cannot reflink"*"--no-reflink-ok"* ]]
	[ ! -e "$DIR/pool" ]
	mkdir "$DIR/kept"
	run pool-check --init "$DIR/kept"
	[ "$status" -eq 69 ]
	[ -d "$DIR/kept" ]
	[ "$(files_in "$DIR/kept")" = "" ]
	run pool-check --init --no-reflink-ok "$DIR/pool"
	[ "$status" -eq 0 ]
	[ "$(files_in "$DIR/pool")" = "appvms vm-templates" ]
}

@test "pool-check: --init needs POOL's parent, and POOL a directory" {
	fs_dir btrfs
	run pool-check --init "$DIR/a/b"
	[ "$status" -eq 66 ]
	touch "$DIR/file"
	run pool-check --init "$DIR/file"
	[ "$status" -eq 65 ]
}

@test "pool-check: finding no-reflink: on ext4 a scan exits 69; --no-reflink-ok accepts it" {
	vol_setup ext4
	vol-create -s 1M "$B"
	run pool-check -q "$POOL"
	[ "$status" -eq 69 ]
	[[ "$output" == "error	$POOL	no-reflink	the filesystem (ext2/ext3/ext4) cannot reflink"* ]]
	run pool-check -q --no-reflink-ok "$POOL"
	[ "$status" -eq 0 ]
	[[ "$output" == "info	$POOL	no-reflink	"* ]]
}

@test "pool-check: -j is valid JSON for names with quotes, tabs and newlines" {
	vol_setup btrfs
	rmdir "$VM"
	odd=$'q"u\\o\tt\ne'
	mkdir -p "$POOL/appvms/$odd"
	vol-create -s 1M "$POOL/appvms/$odd/private"
	echo t >"$POOL/appvms/$odd/private.img~x"
	run pool-check -q -j "$POOL"
	[ "$status" -eq 1 ]
	printf '%s\n' "$output" | python3 -m json.tool >/dev/null
	[ "$(printf '%s\n' "$output" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["findings"][0]["path"] == sys.argv[1] + "/appvms/" + sys.argv[2] + "/private.img~x", d["volumes"], d["reflink"])' "$POOL" "$odd")" = "True 1 True" ]
	# In text, the name's TAB and newline are escaped, so a line stays a line.
	run pool-check -q "$POOL"
	[ "${#lines[@]}" -eq 1 ]
	[[ "${lines[0]}" == *'q"u\\o\tt\ne/private.img~x'* ]]
}

@test "pool-check: a healthy pool of 200 volumes with 5 revisions each is healthy" {
	vol_setup btrfs
	pool-check -q --init "$POOL"
	for vm in $(seq 1 40); do
		mkdir -p "$POOL/appvms/vm$vm"
		for v in private root volatile kernel data; do
			b=$POOL/appvms/vm$vm/$v
			: >"$b.img"
			for r in 1 2 3 4 5; do
				ln "$b.img" "$b.img.$r@2020-01-0${r}T00:00:00Z"
			done
			cp -p "$b.img" "$b-precache.img"
		done
	done
	run --separate-stderr pool-check "$POOL"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[[ "$stderr" == "pool-check: $POOL: 200 volumes, 1000 revisions, 0 dirty;"* ]]
}

@test "pool-check: POOL missing exits 66, a regular file 65, usage errors 64" {
	fs_dir btrfs
	run pool-check "$DIR/nope"
	[ "$status" -eq 66 ]
	[[ "$output" == *"$DIR/nope: No such file or directory"* ]]
	touch "$DIR/file"
	run pool-check "$DIR/file"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$DIR/file: not a directory"* ]]
	for args in "" "-x $DIR" "$DIR $DIR" "-n $DIR" "--init -j $DIR" "-w x $DIR"; do
		# shellcheck disable=SC2086
		run pool-check $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: pool-check"* ]]
	done
}

@test "pool-check: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	run_man_examples pool-check.1
	[ -d pool/appvms ]
}

@test "pool-check: the fix for a dirty image fits what the files suggest" {
	vol_setup btrfs
	mkdir -p "$POOL/vm-templates/t1"
	vol-create -s 1M "$POOL/vm-templates/t1/root"
	vol-start --volatile -s 1M "$VM/volatile" >/dev/null
	vol-start -S "$POOL/vm-templates/t1/root" "$VM/root" >/dev/null
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == *"root-dirty.img	dirty-detached	"*"vol-discard -S SRC $VM/root"* ]]
	[[ "${lines[1]}" == *"volatile-dirty.img	dirty-detached	"*"vol-discard --volatile $VM/volatile"*"vol-commit -k -1 $VM/volatile" ]]
}

# The odd names of the escaping tests, as printf %b formats: bytes that
# are not UTF-8, control characters, quotes and a backslash.
ODD_NAMES=('inv\xff\xfe' 'new\nline' 'tab\there' 'q"uote' 'back\\slash' "s'quote")

@test "pool-check: -j gives back every byte of any name; a text line stays a line" {
	vol_setup btrfs
	local format names=()
	for format in "${ODD_NAMES[@]}"; do
		names+=("$(printf '%b' "$format")")
		vol-create -s 64K "$VM/${names[-1]}"
		vol-start "$VM/${names[-1]}" >/dev/null
	done
	run --separate-stderr pool-check -q -j "$POOL"
	[ "$status" -eq 1 ]
	# Strict JSON; each path encoded back with surrogateescape (PEP 383)
	# is the name's bytes.
	printf '%s\n' "$output" | python3 -c '
import json, os, sys
d = json.loads(sys.stdin.read())
vm = os.fsencode(sys.argv[1])
got = sorted(f["path"].encode("utf-8", "surrogateescape") for f in d["findings"])
want = sorted(vm + b"/" + os.fsencode(n) + b"-dirty.img" for n in sys.argv[2:])
assert got == want, (got, want)
' "$VM" "${names[@]}"
	if command -v jq >/dev/null; then
		printf '%s\n' "$output" | jq . >/dev/null
	fi
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq "${#names[@]}" ]
	[[ "$output" == *"	$VM/inv\\xff\\xfe-dirty.img	dirty-detached	"* ]]
	[[ "$output" == *"	$VM/new\\nline-dirty.img	dirty-detached	"* ]]
	[[ "$output" == *"	$VM/tab\\there-dirty.img	dirty-detached	"* ]]
	[[ "$output" == *"	$VM/back\\\\slash-dirty.img	dirty-detached	"* ]]
}

@test "pool-check: finding reflink-probe-skipped: a read-only pool is checked all the same (info)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	vol-start "$B" >/dev/null
	public_dir ro
	run --separate-stderr pool-check -q "$PUB/pool"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "info	$PUB/pool	reflink-probe-skipped	the reflink probe could not run (Read-only file system): whether the filesystem can clone is not known; the files were checked all the same" ]
	[[ "${lines[1]}" == "warning	$PUB/pool/appvms/vm1/private-dirty.img	dirty-detached	"* ]]
	run --separate-stderr pool-check -q -j "$PUB/pool"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["reflink"], *[f["code"] for f in d["findings"]])')" = "None reflink-probe-skipped dirty-detached" ]
}

@test "pool-check: finding unreadable: a user who may not write the pool checks it; a directory it cannot read is an error" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	vol-start "$B" >/dev/null
	mkdir -m 700 "$POOL/appvms/secret"
	vol-create -s 64K "$POOL/appvms/secret/root"
	public_dir
	run --separate-stderr as_nobody pool-check -q "$PUB/pool"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[0]}" == "info	$PUB/pool	reflink-probe-skipped	the reflink probe could not run (Permission denied): "* ]]
	[ "${lines[1]}" = "error	$PUB/pool/appvms/secret	unreadable	cannot be read (Permission denied): what it holds is not checked; run pool-check as a user who may read it" ]
	[[ "${lines[2]}" == "warning	$PUB/pool/appvms/vm1/private-dirty.img	dirty-detached	"* ]]
	# Nothing unreadable, nothing else: only the probe's info.
	vol-commit "$B"
	chmod 755 "$POOL/appvms/secret"
	run --separate-stderr as_nobody pool-check -q "$PUB/pool"
	[ "$status" -eq 0 ]
	[[ "$output" == "info	$PUB/pool	reflink-probe-skipped	"* ]]
}

@test "pool-check: --repair -n exits 0 when the repair would leave the pool healthy, 1 when not" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	echo t >"$B.img~abc123"
	echo i >"$B-import.img"
	run pool-check -q --repair -n "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "would-fix	$B-import.img	import-leftover	would be removed
would-fix	$B.img~abc123	temp-leftover	would be removed" ]
	echo m >"$B.img.x@2018-01-02T03:04:05Z"
	run pool-check -q --repair -n "$POOL"
	[ "$status" -eq 1 ]
	[ -f "$B.img~abc123" ] && [ -f "$B-import.img" ]
}

@test "pool-check: the EXAMPLE --repair -n pool && --repair pool repairs a pool of leftovers" {
	vol_setup btrfs
	cd "$DIR"
	vol-create -s 1M pool/appvms/vm1/private
	echo t >pool/appvms/vm1/private.img~abc123
	touch -d 2001-01-01 pool/appvms/vm1/private-precache.img
	example=$(man_examples pool-check.1 | grep -e '--repair -n')
	[ "$example" = "pool-check --repair -n pool && pool-check --repair pool" ]
	run bash -ec "$example"
	[ "$status" -eq 0 ]
	[ "$(files_in pool/appvms/vm1)" = "private.img" ]
	run pool-check -q pool
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

# The commands that the messages of pool-check -j (on standard input)
# suggest for the volumes: "vol-commit WORD" and "vol-discard WORD", WORD
# a word of sh.
suggested_commands() {
	python3 -c '
import json, re, sys
word = r"(?:\x27[^\x27]*\x27|\\\x27|[^\s,;\x27\\])+"
for f in json.load(sys.stdin)["findings"]:
    for m in re.finditer(r"vol-(?:commit|discard) " + word, f["message"]):
        print(m.group(0))
'
}

@test "pool-check: the commands it suggests are quoted for sh, whatever the volume's name" {
	vol_setup btrfs
	cd "$DIR"
	# shellcheck disable=SC2016 # a name that sh must not expand
	names=("a b" "q'uo\"te" '$(touch pwned) $HOME' 'semi;colon&' 'star*?' '-dash')
	for name in "${names[@]}"; do
		vol-create -s 64K "$VM/$name"
		printf 'DATA %s' "$name" | dd of="$(vol-start "$VM/$name")" conv=notrunc status=none
	done
	run pool-check -q -j "$POOL"
	[ "$status" -eq 1 ]
	mapfile -t commands < <(printf '%s\n' "$output" | suggested_commands | grep '^vol-commit')
	[ "${#commands[@]}" -eq "${#names[@]}" ]
	for command in "${commands[@]}"; do
		sh -c "$command"
	done
	for name in "${names[@]}"; do
		[ ! -e "$VM/$name-dirty.img" ]
		[ "$(head -c $((5 + ${#name})) "$VM/$name.img")" = "DATA $name" ]
	done
	[ "$(find "$DIR" -name pwned)" = "" ]
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	# A POOL that begins with "-" gets "./", or it would be an option.
	mkdir -p -- -pool/appvms/vm1
	vol-create -s 64K -- -pool/appvms/vm1/private
	vol-start -- -pool/appvms/vm1/private >/dev/null
	run pool-check -q -j -- -pool
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | suggested_commands)" = "vol-commit ./-pool/appvms/vm1/private
vol-discard ./-pool/appvms/vm1/private" ]
	sh -c "vol-discard ./-pool/appvms/vm1/private"
	[ ! -e -pool/appvms/vm1/private-dirty.img ]
}

@test "pool-check: finding misplaced: a volume's files directly in POOL, appvms/ or vm-templates/" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	mkdir "$POOL/vm-templates"
	touch "$POOL/stray.img" "$POOL/appvms/work-dirty.img" "$POOL/appvms/x.img~tmp" \
		"$POOL/vm-templates/root.img.1@2020-01-01T00:00:00Z" "$POOL/notes.txt"
	run pool-check -q --repair "$POOL"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = "warning	$POOL/appvms/work-dirty.img	misplaced	a volume's file where no volume belongs: volumes live in VM directories, $POOL/appvms/VM/ or $POOL/vm-templates/VM/; move it into one by hand" ]
	[[ "${lines[1]}" == "warning	$POOL/appvms/x.img~tmp	misplaced	a volume's file where"* ]]
	[[ "${lines[2]}" == "warning	$POOL/stray.img	misplaced	a volume's file where"* ]]
	[[ "${lines[3]}" == "warning	$POOL/vm-templates/root.img.1@2020-01-01T00:00:00Z	misplaced	"* ]]
	# Not repairable: a person decides where each belongs.
	[ -f "$POOL/appvms/x.img~tmp" ] && [ -f "$POOL/appvms/work-dirty.img" ]
}

@test "pool-check: finding empty-vm-directory: info; --repair removes it, only it, and not while locked" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	mkdir -p "$POOL/appvms/gone" "$POOL/vm-templates/t1" "$VM/sub" "$POOL/other/vm"
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "info	$POOL/appvms/gone	empty-vm-directory	an empty VM directory, as an interrupted vol-remove leaves it; pool-check --repair removes it
info	$POOL/vm-templates/t1	empty-vm-directory	an empty VM directory, as an interrupted vol-remove leaves it; pool-check --repair removes it" ]
	run pool-check -q --repair -n "$POOL"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "would-fix	$POOL/appvms/gone	empty-vm-directory	would be removed" ]
	[ -d "$POOL/appvms/gone" ]
	hold_tool_lock "$POOL/vm-templates/t1"
	run pool-check -q -w 0 --repair "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "fixed	$POOL/appvms/gone	empty-vm-directory	removed
info	$POOL/vm-templates/t1	empty-vm-directory	a tool is working in this directory now: its work in progress, not a leftover" ]
	[ ! -e "$POOL/appvms/gone" ] && [ -d "$POOL/vm-templates/t1" ]
	release_lock
	run pool-check -q --repair "$POOL"
	[ "$output" = "fixed	$POOL/vm-templates/t1	empty-vm-directory	removed" ]
	# Deeper or elsewhere an empty directory is nobody's business.
	[ -d "$VM/sub" ] && [ -d "$POOL/other/vm" ] && [ -d "$POOL/vm-templates" ]
}

# Whether the tools were built with the sanitizers, which need far more
# address space than any limit below.
built_with_sanitizers() {
	grep -q fsanitize "$TOP/lib/.build-flags" 2>/dev/null
}

@test "pool-check: short of memory, a running VM's image is still dirty-attached" {
	built_with_sanitizers && skip "ulimit -v and ASan do not mix"
	[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 19100 ] ||
		skip "a process may not open 19,000 files here"
	vol_setup btrfs
	vol-create -s 64K "$B"
	vol-start "$B" >/dev/null
	: >"$DIR/other"
	# A process with 19,000 other files open, then the image, as QEMU.
	keeper python3 -c '
import os, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (19100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
fds = [os.open(sys.argv[1], os.O_RDONLY) for _ in range(19000)]
image = os.open(sys.argv[2], os.O_RDONLY)
print("ready", flush=True)
time.sleep(60)
' "$DIR/other" "$B-dirty.img" >"$DIR/ready"
	while ! grep -q ready "$DIR/ready"; do sleep 0.05; done
	# 8 MB of address space: plenty for the check, too little to keep
	# every open file of that process.
	run bash -c 'ulimit -v 8000 && exec pool-check -q "$1"' _ "$POOL"
	[ "$status" -eq 0 ]
	[[ "$output" == "info	$B-dirty.img	dirty-attached	a VM is running on it (used by process $KEEPER (python3"* ]]
}

@test "pool-check: 50,000 revisions in one directory need little memory" {
	built_with_sanitizers && skip "ulimit -v and ASan do not mix"
	vol_setup btrfs
	truncate -s 64K "$B.img"
	cp -p "$B.img" "$B-precache.img"
	python3 -c '
import os, sys
for i in range(1, 50001):
    os.close(os.open("%s.img.%d@2020-01-01T00:00:00Z" % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o600))
' "$B"
	run bash -c 'ulimit -v 24000 && exec pool-check "$1"' _ "$POOL"
	[ "$status" -eq 0 ]
	[[ "$output" == "pool-check: $POOL: 1 volumes, 50000 revisions, 0 dirty;"* ]]
}

@test "pool-check: --repair removes only what it scanned, though a user swaps a directory for a symlink" {
	vol_setup btrfs
	mkdir "$DIR/outside"
	echo bait >"$DIR/outside/x-import.img"
	evil=$POOL/appvms/evil
	mkdir -p "$evil/sub"
	: >"$evil/swaps"
	chown -R 65534:65534 "$evil"
	# Other VM directories, so that a check takes a while.
	for vm in $(seq 50); do
		mkdir "$POOL/appvms/pad$vm"
		: >"$POOL/appvms/pad$vm/notes"
	done
	public_dir
	# A python3 that uid 65534 may run (root's may lie in a home of its
	# own).
	for python in /usr/bin/python3 "$(command -v python3)"; do
		as_nobody "$python" -c '' 2>/dev/null && break
		python=
	done
	[ -n "$python" ] || skip "no python3 that uid 65534 may run"
	# The owner of evil/ makes "sub", where an import leftover lies, and
	# a symlink to the bait's directory take turns, 0.2 ms each, counting
	# the swaps.
	keeper setpriv --reuid=65534 --regid=65534 --clear-groups -- "$python" -c '
import os, sys, time
sub, target = sys.argv[1] + "/sub", sys.argv[2]
def hold():
    end = time.perf_counter() + 0.0002
    while time.perf_counter() < end:
        pass
with open(sys.argv[1] + "/swaps", "ab", buffering=0) as swaps:
    while True:
        if not os.path.exists(sub + "/x-import.img"):
            open(sub + "/x-import.img", "w").close()
        hold()
        os.rename(sub, sub + ".real")
        os.symlink(target, sub)
        swaps.write(b".")
        hold()
        os.unlink(sub)
        os.rename(sub + ".real", sub)
' "$PUB/pool/appvms/evil" "$DIR/outside"
	raced=0
	for round in $(seq 200); do
		before=$(stat -c %s "$evil/swaps")
		run pool-check -q --repair "$POOL"
		after=$(stat -c %s "$evil/swaps")
		[ -f "$DIR/outside/x-import.img" ] || {
			echo "round $round: the bait outside the pool was removed: $output"
			false
		}
		# Raced: the scan read the real directory while it was being
		# swapped for the symlink, and the run went on to repair it.
		if [[ "$output" == *"$evil/sub/x-import.img"* ]] && [ "$after" -gt "$before" ]; then
			raced=$((raced + 1))
		fi
	done
	echo "# $raced of 200 rounds raced: the scan read the directory being swapped, then repaired" >&3
	[ "$raced" -gt 0 ]
}

@test "pool-check: a lock it cannot take fails the run, after the check, and repairs nothing" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	echo i >"$B-import.img"
	# In a mount namespace of its own, root's lock directory is one that
	# anyone may write, which lock_open refuses.
	mkdir -p /run/file-reflink && { [ -d /run/file-reflink/lock ] || mkdir -m 700 /run/file-reflink/lock; }
	for repair in "" --repair; do
		# shellcheck disable=SC2016 # expanded by the inner shell
		run --separate-stderr unshare -m -- sh -c 'mount -t tmpfs -o mode=777 tmpfs /run/file-reflink &&
			exec pool-check -q $2 "$1"' _ "$POOL" "$repair"
		[ "$status" -eq 77 ]
		[ "$output" = "warning	$B-import.img	import-leftover	import left by an interrupted vol-import; pool-check --repair removes it" ]
		# shellcheck disable=SC2154 # set by run --separate-stderr
		[[ "$stderr" == *"pool-check: $VM: lock: Operation not permitted"* ]]
		[ -f "$B-import.img" ]
	done
}

@test "pool-check: a user's flock on a VM directory does not make a leftover work in progress" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	echo i >"$B-import.img"
	public_dir
	# shellcheck disable=SC2016 # expanded by the inner shell
	keeper setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		bash -c 'exec 9<"$1" && flock 9 && exec sleep 30' _ "$PUB/pool/appvms/vm1"
	while flock -n "$VM" true; do sleep 0.05; done
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B-import.img	import-leftover	import left by an interrupted vol-import; pool-check --repair removes it" ]
	run pool-check -q -w 0 --repair "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "fixed	$B-import.img	import-leftover	removed" ]
}

# One test per finding code: each shows the finding, its severity and the
# exit status, and what --repair does about it (removes it where it is
# repairable, else leaves it).  The codes not here have their test above.

@test "pool-check: finding dirty-detached: a dirty image no VM uses (warning, not repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	vol-start "$B" >/dev/null
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B-dirty.img	dirty-detached	crash leftover: no VM uses it; keep its changes: vol-commit $B, or drop them: vol-discard $B" ]
	run pool-check -q -j "$POOL"
	[ "$(printf '%s\n' "$output" | python3 -c 'import json, sys; f = json.load(sys.stdin)["findings"][0]; print(f["severity"], f["code"])')" = "warning dirty-detached" ]
	run pool-check -q "$POOL"
	keeps "$output" "$B-dirty.img" "$B.img"
}

@test "pool-check: finding clean-missing: what is left says what fixes it (error, not repaired)" {
	vol_setup btrfs
	echo r >"$VM/a.img.1@2020-01-01T00:00:00Z"
	echo p >"$VM/b-precache.img"
	echo r >"$VM/c.img.1@2020-01-01T00:00:00Z"
	echo d >"$VM/c-dirty.img"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = "error	$VM/a.img	clean-missing	missing, while revisions remain; make the latest one clean: vol-revert $VM/a" ]
	[ "${lines[1]}" = "error	$VM/b.img	clean-missing	missing, while a precache remains; make it clean: vol-commit --from $VM/b-precache.img $VM/b" ]
	[ "${lines[2]}" = "warning	$VM/c-dirty.img	dirty-detached	crash leftover: no VM uses it, and there is no clean image; a volatile volume drops it: vol-discard --volatile $VM/c; one with snapshots disabled keeps it: vol-commit -k -1 $VM/c" ]
	[ "${lines[3]}" = "error	$VM/c.img	clean-missing	missing, while the dirty image and revisions remain; make the dirty image clean: vol-commit $VM/c" ]
	keeps "$output" "$VM/a.img.1@2020-01-01T00:00:00Z" "$VM/b-precache.img" "$VM/c-dirty.img"
}

@test "pool-check: finding stale-precache: a precache that is no copy of C (warning, repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	touch -d 2001-01-01 "$B-precache.img"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B-precache.img	stale-precache	stale precache: not a copy of private.img (size or mtime differs); pool-check --repair removes it" ]
	repairs stale-precache "$B-precache.img"
	[ -f "$B.img" ]
}

@test "pool-check: finding import-leftover: an interrupted vol-import's file (warning, repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	echo i >"$B-import.img"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B-import.img	import-leftover	import left by an interrupted vol-import; pool-check --repair removes it" ]
	repairs import-leftover "$B-import.img"
}

@test "pool-check: finding temp-leftover: an interrupted operation's temp file (warning, repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	echo t >"$B.img~abc123"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B.img~abc123	temp-leftover	temp file of an interrupted operation; pool-check --repair removes it" ]
	repairs temp-leftover "$B.img~abc123"
}

@test "pool-check: finding legacy-revision: a revision name of 2018 (warning, not repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	echo l >"$B.img@2018-01-02T03:04:05Z"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B.img@2018-01-02T03:04:05Z	legacy-revision	legacy revision name (2018): the tools never prune or revert to it; keep it, or remove it by hand" ]
	keeps "$output" "$B.img@2018-01-02T03:04:05Z"
}

@test "pool-check: finding malformed-revision: a name like a revision's (warning, not repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	echo m >"$B.img.x@2018-01-02T03:04:05Z"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B.img.x@2018-01-02T03:04:05Z	malformed-revision	looks like a revision but is not a valid one: the tools ignore it; rename or remove it by hand" ]
	keeps "$output" "$B.img.x@2018-01-02T03:04:05Z"
}

@test "pool-check: finding orphan-pin: a pin marker whose revision is gone (warning, repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	cp "$B.img" "$B.img.1@2024-01-02T03:04:05Z"
	vol-pin -r 1 "$B"
	rm "$B.img.1@2024-01-02T03:04:05Z"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B.img.1@2024-01-02T03:04:05Z.pin	orphan-pin	pin marker of a revision that is gone (removed by hand, or by a tool that knows no pins): it pins nothing; pool-check --repair removes it" ]
	repairs orphan-pin "$B.img.1@2024-01-02T03:04:05Z.pin"
}

@test "pool-check: finding untrusted-pin: a marker vol-pin did not make (warning, not repaired)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	cp "$B.img" "$B.img.1@2024-01-02T03:04:05Z"
	cp "$B.img" "$B.img.2@2024-01-03T03:04:05Z"
	echo note >"$B.img.1@2024-01-02T03:04:05Z.pin"
	ln -s /etc/hostname "$B.img.2@2024-01-03T03:04:05Z.pin"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "warning	$B.img.1@2024-01-02T03:04:05Z.pin	untrusted-pin	a file of 5 bytes of uid 0 under a pin marker's name, not an empty regular file of root's or of the directory's owner: it pins nothing; remove it by hand; vol-pin -r ID pins the revision again
warning	$B.img.2@2024-01-03T03:04:05Z.pin	untrusted-pin	a symbolic link under a pin marker's name, not an empty regular file of root's or of the directory's owner: it pins nothing; remove it by hand; vol-pin -r ID pins the revision again" ]
	keeps "$output" "$B.img.1@2024-01-02T03:04:05Z.pin" "$B.img.2@2024-01-03T03:04:05Z.pin"
	# A pinned revision with its marker is no finding at all.
	rm "$B.img.1@2024-01-02T03:04:05Z.pin" "$B.img.2@2024-01-03T03:04:05Z.pin"
	vol-pin -r 1 "$B"
	run pool-check -q "$POOL"
	[ "$status" -eq 0 ] && [ -z "$output" ]
}

@test "pool-check: pinned revisions beside the dirty image of -k -1 are no clean-missing; beside no image they are" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	vol-start "$B" >/dev/null
	printf RUN | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit -k 1 "$B"
	vol-pin -r 1 "$B"
	vol-start -k -1 "$B" >/dev/null
	[ "$(revision_ids "$VM" private)" = 1 ]
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | cut -f2,3)" = "$B-dirty.img	dirty-detached" ]
	vol-commit -k -1 "$B"
	rm "$B.img"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | cut -f2,3)" = "$B.img	clean-missing" ]
}

@test "pool-check: finding not-regular: a symlink, FIFO or directory where an image belongs (error, not repaired)" {
	vol_setup btrfs
	ln -s /etc/hostname "$VM/a.img"
	mkfifo "$VM/b-dirty.img"
	mkdir "$VM/c-precache.img"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "error	$VM/a.img	not-regular	a symbolic link where an image belongs: the tools refuse the volume; move or remove it by hand
error	$VM/b-dirty.img	not-regular	a FIFO where an image belongs: the tools refuse the volume; move or remove it by hand
error	$VM/c-precache.img	not-regular	a directory where an image belongs: the tools refuse the volume; move or remove it by hand" ]
	keeps "$output" "$VM/a.img" "$VM/b-dirty.img" "$VM/c-precache.img"
}

@test "pool-check: finding untrusted-directory: a directory others may write (error; nothing repaired below it, 77)" {
	vol_setup btrfs
	vol-create -s 64K "$B"
	echo i >"$B-import.img"
	chmod 777 "$VM"
	run pool-check -q "$POOL"
	[ "$status" -eq 1 ]
	[ "$output" = "error	$VM	untrusted-directory	other users may write it (mode 0777, owner uid 0), and could lead the tools outside the pool: make it root's and not writable by others; the tools refuse it (77)
warning	$B-import.img	import-leftover	import left by an interrupted vol-import; pool-check --repair removes it" ]
	run --separate-stderr pool-check -q --repair "$POOL"
	[ "$status" -eq 77 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"$VM: refused: $VM (mode 0777, owner uid 0) may be written by other users"*"not repaired"* ]]
	[ -f "$B-import.img" ]
	chmod 755 "$VM"
	# A directory on the way to the pool: the pool is the finding's path.
	mkdir -m 777 "$DIR/open"
	mv "$POOL" "$DIR/open/pool"
	run pool-check -q "$DIR/open/pool"
	[ "$status" -eq 1 ]
	[[ "${lines[0]}" == "error	$DIR/open/pool	untrusted-directory	$DIR/open"*", on the way to the pool: other users could lead the tools outside it; the tools refuse it (77)" ]]
	run pool-check -q --repair "$DIR/open/pool"
	[ "$status" -eq 77 ]
	[ -f "$DIR/open/pool/appvms/vm1/private-import.img" ]
}

# fragment FILE BYTES: writes every other 4 KiB block of the first BYTES
# of FILE, flushed in batches: each block its own extent.
fragment() {
	python3 - "$1" "$2" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i, offset in enumerate(range(0, int(sys.argv[2]), 8192)):
    os.pwrite(fd, os.urandom(4096), offset)
    if i % 64 == 63:
        os.fsync(fd)
os.fsync(fd)
PY
}

@test "pool-check: finding fragmented: info with the extents and a clone's time; --fragmented sets the limit" {
	local line
	vol_setup btrfs
	vol-create -s 64M "$B"
	vol-start "$B" >/dev/null
	# 4,096 extents in 16 MiB of data: over the default of 2,000 per
	# GiB (less than 1 GiB of data counts as 1 GiB).
	fragment "$B-dirty.img" $((32 << 20))
	vol-commit "$B"
	run --separate-stderr pool-check -q "$POOL"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	line=${lines[0]}
	[[ $line == "info	$B.img	fragmented	fragmented: "*" extents in 16.0 MiB of data ("*" per GiB); one clone of it took "*" ms here; every commit and revert clones it, and pays that; a copy made with reflink-clone --reflink=never and given to vol-import has few extents, but shares none with the revisions" ]]
	line=${line#*fragmented: }
	[ "${line%% extents*}" -ge 4096 ]
	# A higher limit, and 0, find nothing; a running VM's image too.
	run pool-check -q --fragmented=100000 "$POOL"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	run pool-check -q --fragmented=0 "$POOL"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	vol-start "$B" >/dev/null
	run pool-check -q --fragmented=1000 -j "$POOL"
	[ "$(printf '%s\n' "$output" | python3 -c 'import json, sys; print(*sorted(f["code"] + ":" + f["path"].rsplit("/", 1)[1] for f in json.load(sys.stdin)["findings"]))')" = "dirty-detached:private-dirty.img fragmented:private-dirty.img fragmented:private.img" ]
	# Nothing was left by the clone that timed it.
	[[ $(files_in "$VM") == "private-dirty.img private.img private.img.1@"* ]]
	[ "$(find "$VM" -mindepth 1 | wc -l)" -eq 3 ]
	run pool-check -q --fragmented=x "$POOL"
	[ "$status" -eq 64 ]
	[[ $output == *"invalid --fragmented value: x"* ]]
}

@test "pool-check: each finding code of the man page has its test here" {
	local code codes=0
	while read -r code; do
		codes=$((codes + 1))
		[ "$(grep -c "^@test \"pool-check: finding $code: " "$BATS_TEST_FILENAME")" -eq 1 ] ||
			{ echo "no single test for $code"; false; }
	done < <(sed -n 's/^\.It Cm \([a-z-]*\)$/\1/p' "$TOP/man/pool-check.1" | sort -u)
	[ "$codes" -eq 18 ]
}
