#!/usr/bin/env bats
# vol-info: the facts about a volume as key/value lines, revision lines or
# JSON, and -t for scripts.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

R2=private.img.2@2021-01-02T00:00:02Z
R10=private.img.10@2021-01-10T00:00:10Z
L1=private.img@2018-01-02T03:04:05Z
L2=private.img@2019-05-06T07:08:09Z

# info_setup KIND: $VM is a VM directory on KIND holding the volume $B:
# C (64 KiB, 8 KiB of data), P, revisions 2 and 10, two legacy revisions
# and files that are no revisions.
info_setup() {
	fs_dir "$1"
	VM=$DIR/vm1
	B=$VM/private
	mkdir "$VM"
	truncate -s 64K "$B.img"
	head -c 8192 /dev/urandom | dd of="$B.img" conv=notrunc status=none
	sync -f "$B.img"
	cp "$B.img" "$B-precache.img"
	ln "$B.img" "$VM/$R10"
	printf TWO >"$VM/$R2"
	printf LEGACY1 >"$VM/$L1"
	printf L2 >"$VM/$L2"
	touch "$VM/private.img.x@2018-01-02T03:04:05Z" "$B.img~tmp" \
		"$VM/privatex.img.11@2021-01-11T00:00:11Z"
}

shows_the_facts() {
	info_setup "$1"
	run --separate-stderr vol-info "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "path	$B.img
state	clean
size	65536
usage	$(allocated "$B.img")
revisions	2
latest	10" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	[ "$(allocated "$B.img")" -gt 0 ]
}

revision_lines() {
	info_setup "$1"
	run vol-info -r "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "legacy	2018-01-02T03:04:05Z	7	$VM/$L1	$(state_of "$VM/$L1")	no
legacy	2019-05-06T07:08:09Z	2	$VM/$L2	$(state_of "$VM/$L2")	no
2	2021-01-02T00:00:02Z	3	$VM/$R2	$(state_of "$VM/$R2")	no
10	2021-01-10T00:00:10Z	65536	$VM/$R10	$(state_of "$VM/$R10")	no" ]
}

@test "vol-info: btrfs: path, state, size, usage, revisions, latest" {
	shows_the_facts btrfs
}

@test "vol-info: xfs: path, state, size, usage, revisions, latest" {
	shows_the_facts xfs
}

@test "vol-info: a dirty volume shows D's size and usage" {
	info_setup btrfs
	truncate -s 1M "$B-dirty.img"
	head -c 4096 /dev/urandom >"$DIR/data"
	dd if="$DIR/data" of="$B-dirty.img" conv=notrunc status=none
	sync -f "$B-dirty.img"
	run vol-info "$B.img"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sed -n 2,4p)" = "state	dirty
size	1048576
usage	$(allocated "$B-dirty.img")" ]
	[ "$(allocated "$B-dirty.img")" -ne "$(allocated "$B.img")" ]
}

@test "vol-info: only revisions left is state missing, size and usage 0" {
	info_setup xfs
	rm "$B.img" "$B-precache.img"
	run vol-info "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "path	$B.img
state	missing
size	0
usage	0
revisions	2
latest	10" ]
}

@test "vol-info: no revisions shows 0 and latest -" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	truncate -s 1M "$DIR/vm1/private.img"
	run vol-info "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$output" = "path	$DIR/vm1/private.img
state	clean
size	1048576
usage	0
revisions	0
latest	-" ]
}

@test "vol-info: several volumes are separated by an empty line" {
	info_setup btrfs
	printf R >"$VM/root.img"
	run vol-info "$VM/root" "$B"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sed -n 1,6p)" = "path	$VM/root.img
state	clean
size	1
usage	$(allocated "$VM/root.img")
revisions	0
latest	-" ]
	[ -z "$(printf '%s\n' "$output" | sed -n 7p)" ]
	[ "$(printf '%s\n' "$output" | sed -n 8p)" = "path	$B.img" ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 13 ]
}

@test "vol-info: btrfs: -r lists legacy revisions, then ids in numeric order" {
	revision_lines btrfs
}

@test "vol-info: xfs: -r lists legacy revisions, then ids in numeric order" {
	revision_lines xfs
}

@test "vol-info: -r of several volumes, and of one without revisions" {
	info_setup btrfs
	printf R >"$VM/root.img"
	printf S >"$VM/swap.img"
	touch "$VM/swap.img.007@2020-02-29T23:59:59Z"
	run vol-info -r "$VM/root" "$VM/swap" "$B"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | head -n 2)" = "7	2020-02-29T23:59:59Z	0	$VM/swap.img.007@2020-02-29T23:59:59Z	$(state_of "$VM/swap.img.007@2020-02-29T23:59:59Z")	no
legacy	2018-01-02T03:04:05Z	7	$VM/$L1	$(state_of "$VM/$L1")	no" ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 5 ]
}

@test "vol-info: -j is one valid JSON document with every member" {
	info_setup btrfs
	printf R >"$VM/root.img"
	run --separate-stderr vol-info -j "$B" "$VM/root"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | python3 -m json.tool >/dev/null
	printf '%s\n' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
b, vm, usage = sys.argv[1], sys.argv[2], int(sys.argv[3])
assert d == [
    {"path": b + ".img", "state": "clean", "size": 65536, "usage": usage,
     "revisions": 2, "latest": 10, "snapshot": sys.argv[5]},
    {"path": vm + "/root.img", "state": "clean", "size": 1,
     "usage": int(sys.argv[4]), "revisions": 0, "latest": None,
     "snapshot": sys.argv[6]},
], d
' "$B" "$VM" "$(allocated "$B.img")" "$(allocated "$VM/root.img")" \
		"$(state_of "$B.img")" "$(state_of "$VM/root.img")"
}

@test "vol-info: -j -r -S adds outdated and the revision list" {
	info_setup xfs
	mkdir "$DIR/tpl"
	printf T >"$DIR/tpl/root.img"
	run vol-info -j -r -S "$DIR/tpl/root" "$B"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
vm = sys.argv[1]
assert len(d) == 1 and d[0]["outdated"] is True, d
names = [r.pop("snapshot") for r in d[0]["revision_list"]]
assert names == sys.argv[2:], names
assert d[0]["revision_list"] == [
    {"id": "legacy", "time": "2018-01-02T03:04:05Z", "size": 7,
     "path": vm + "/private.img@2018-01-02T03:04:05Z", "pinned": False},
    {"id": "legacy", "time": "2019-05-06T07:08:09Z", "size": 2,
     "path": vm + "/private.img@2019-05-06T07:08:09Z", "pinned": False},
    {"id": 2, "time": "2021-01-02T00:00:02Z", "size": 3,
     "path": vm + "/private.img.2@2021-01-02T00:00:02Z", "pinned": False},
    {"id": 10, "time": "2021-01-10T00:00:10Z", "size": 65536,
     "path": vm + "/private.img.10@2021-01-10T00:00:10Z", "pinned": False},
], d
' "$VM" "$(state_of "$VM/$L1")" "$(state_of "$VM/$L2")" "$(state_of "$VM/$R2")" "$(state_of "$VM/$R10")"
}

@test "vol-info: -j escapes quotes, backslashes, tabs, newlines and control bytes" {
	fs_dir btrfs
	vm="$DIR/v\"m"$'\t'"1\\"$'\n'"é"
	base="p\"r"$'\t\001'"iv"$'\n'"x"
	mkdir "$vm"
	printf C >"$vm/$base.img"
	printf R >"$vm/$base.img.3@2021-01-03T00:00:03Z"
	printf L >"$vm/$base.img@2018-01-02T03:04:05Z"
	run --separate-stderr vol-info -j -r "$vm/$base"
	[ "$status" -eq 0 ]
	[[ "$output" == *'\t'* ]]
	[[ "$output" == *'\n'* ]]
	[[ "$output" == *'\"'* ]]
	[[ "$output" == *"\\\\"* ]]
	[[ "$output" == *'\u0001'* ]]
	printf '%s\n' "$output" | python3 -m json.tool >/dev/null
	printf '%s\n' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
vm, base = sys.argv[1], sys.argv[2]
assert d[0]["path"] == vm + "/" + base + ".img", d
assert [r["path"] for r in d[0]["revision_list"]] == [
    vm + "/" + base + ".img@2018-01-02T03:04:05Z",
    vm + "/" + base + ".img.3@2021-01-03T00:00:03Z"], d
assert d[0]["latest"] == 3 and d[0]["revisions"] == 1, d
' "$vm" "$base"
}

@test "vol-info: text lines escape control characters, backslashes and bytes that are not UTF-8" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	name=$'p\tr\ni\\v\xff\x1b'
	printf C >"$DIR/vm1/$name.img"
	printf R >"$DIR/vm1/$name.img.3@2021-01-03T00:00:03Z"
	run vol-info "$DIR/vm1/$name"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
	[ "${lines[0]}" = "path	$DIR/vm1/p\\tr\\ni\\\\v\\xff\\x1b.img" ]
	run vol-info -r "$DIR/vm1/$name"
	[ "$status" -eq 0 ]
	[ "$output" = "3	2021-01-03T00:00:03Z	1	$DIR/vm1/p\\tr\\ni\\\\v\\xff\\x1b.img.3@2021-01-03T00:00:03Z	$(state_of "$DIR/vm1/$name.img.3@2021-01-03T00:00:03Z")	no" ]
}

@test "vol-info: -j gives back every byte of a name that is not UTF-8 (surrogateescape)" {
	fs_dir btrfs
	mkdir "$DIR/vm"
	v=$DIR/vm/inv$'\xff\xfe'
	vol-create -s 64K "$v"
	printf R >"$v.img.1@2021-01-01T00:00:00Z"
	run --separate-stderr vol-info -j -r "$v"
	[ "$status" -eq 0 ]
	[[ "$output" == *'/vm/inv\udcff\udcfe.img"'* ]]
	printf '%s\n' "$output" | python3 -c '
import json, os, sys
d = json.loads(sys.stdin.read())
v = os.fsencode(sys.argv[1])
assert d[0]["path"].encode("utf-8", "surrogateescape") == v + b".img", d
assert [r["path"].encode("utf-8", "surrogateescape") for r in d[0]["revision_list"]] == [v + b".img.1@2021-01-01T00:00:00Z"], d
' "$v"
	if command -v jq >/dev/null; then
		printf '%s\n' "$output" | jq . >/dev/null
	fi
}

@test "vol-info: -j with no revisions has latest null and an empty list" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	printf C >"$DIR/vm1/private.img"
	run vol-info -j -r "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d[0]["latest"] is None and d[0]["revision_list"] == [], d
'
}

@test "vol-info: -t dirty exits 0 when dirty, 1 when not, and prints nothing" {
	info_setup btrfs
	run vol-info -t dirty "$B"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	run vol-info -t clean "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	printf D >"$B-dirty.img"
	run vol-info -t dirty "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run vol-info -t clean "$B"
	[ "$status" -eq 1 ]
}

@test "vol-info: -t missing is for a volume with revisions but no C or D" {
	info_setup xfs
	run vol-info -t missing "$B"
	[ "$status" -eq 1 ]
	rm "$B.img"
	run vol-info -t missing "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "vol-info: -t with several volumes is 0 only if every one is in the state" {
	info_setup btrfs
	printf R >"$VM/root.img"
	run vol-info -t clean "$B" "$VM/root"
	[ "$status" -eq 0 ]
	printf D >"$VM/root-dirty.img"
	run vol-info -t clean "$B" "$VM/root"
	[ "$status" -eq 1 ]
	run vol-info -t clean "$VM/root" "$B"
	[ "$status" -eq 1 ]
}

@test "vol-info: -S SRC -t outdated is 1 right after start, 0 after SRC was committed or reverted" {
	fs_dir btrfs
	mkdir "$DIR/tpl" "$DIR/vm1"
	printf OLD >"$DIR/tpl/root.img"
	# Start of a snapshot volume: own C is a hard link of SRC's C.
	ln "$DIR/tpl/root.img" "$DIR/vm1/root.img"
	run vol-info -S "$DIR/tpl/root" -t outdated "$DIR/vm1/root"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	run vol-info -S "$DIR/tpl/root" "$DIR/vm1/root"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | tail -n 1)" = "outdated	no" ]
	# A commit of SRC: a new file replaces its C by rename.
	printf NEW >"$DIR/tpl/new"
	mv "$DIR/tpl/new" "$DIR/tpl/root.img"
	run vol-info -S "$DIR/tpl/root" -t outdated "$DIR/vm1/root"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run vol-info -S "$DIR/tpl/root.img" "$DIR/vm1/root"
	[ "$(printf '%s\n' "$output" | tail -n 1)" = "outdated	yes" ]
	# Started again: linked to the new C.
	ln -f "$DIR/tpl/root.img" "$DIR/vm1/root.img"
	run vol-info -S "$DIR/tpl/root" -t outdated "$DIR/vm1/root"
	[ "$status" -eq 1 ]
	# A revert of SRC: a revision becomes its C by rename.
	printf REV >"$DIR/tpl/root.img.1@2021-01-01T00:00:00Z"
	mv "$DIR/tpl/root.img.1@2021-01-01T00:00:00Z" "$DIR/tpl/root.img"
	run vol-info -S "$DIR/tpl/root" -t outdated "$DIR/vm1/root"
	[ "$status" -eq 0 ]
}

@test "vol-info: -S: a snapshot without own C is not outdated" {
	fs_dir xfs
	mkdir "$DIR/tpl" "$DIR/vm1"
	printf OLD >"$DIR/tpl/root.img"
	printf D >"$DIR/vm1/root-dirty.img"
	run vol-info -S "$DIR/tpl/root" -t outdated "$DIR/vm1/root"
	[ "$status" -eq 1 ]
}

@test "vol-info: -S with a SRC whose directory does not exist exits 66" {
	info_setup btrfs
	run vol-info -S "$DIR/nope/root" "$B"
	[ "$status" -eq 66 ]
}

@test "vol-info: a volume with no files exits 66, also with -t" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	touch "$DIR/vm1/private.img~tmp" "$DIR/vm1/private.img.x@2018-01-02T03:04:05Z"
	run --separate-stderr vol-info "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[ -z "$output" ]
	[[ "$stderr" == *"vol-info: $DIR/vm1/private: no such volume"* ]]
	run vol-info -t missing "$DIR/vm1/private"
	[ "$status" -eq 66 ]
}

@test "vol-info: a failing volume is reported, the others shown, the status is the first failure" {
	info_setup xfs
	mkdir "$VM/root.img"
	run --separate-stderr vol-info "$VM/none" "$VM/root" "$B"
	[ "$status" -eq 66 ]
	[ "$(printf '%s\n' "$output" | head -n 1)" = "path	$B.img" ]
	[[ "$stderr" == *"$VM/none: no such volume"* ]]
	[[ "$stderr" == *"$VM/root.img: not a regular file"* ]]
	run vol-info -t clean "$VM/root" "$B"
	[ "$status" -eq 65 ]
}

@test "vol-info: a VOLUME whose directory does not exist exits 66" {
	fs_dir btrfs
	run vol-info "$DIR/nope/private"
	[ "$status" -eq 66 ]
	run vol-info -t dirty "$DIR/nope/private"
	[ "$status" -eq 66 ]
	[ ! -e "$DIR/nope" ]
}

@test "vol-info: C that is a directory exits 65" {
	fs_dir xfs
	mkdir -p "$DIR/vm1/private.img"
	run vol-info "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[ -d "$DIR/vm1/private.img" ]
}

@test "vol-info: C that is a symlink exits 65 and is not followed" {
	fs_dir btrfs
	mkdir "$DIR/vm1" "$DIR/other"
	truncate -s 1M "$DIR/other/private.img"
	ln -s ../other/private.img "$DIR/vm1/private.img"
	run vol-info "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[[ "$output" == *"symbolic link"* ]]
	[[ "$output" != *1048576* ]]
	[ -L "$DIR/vm1/private.img" ]
}

@test "vol-info: usage errors exit 64 with usage on stderr" {
	info_setup btrfs
	before=$(files_in "$VM")
	for args in "" "-x $B" "-t" "-t bogus $B" "-t outdated $B" \
		"-t Dirty $B" "-S" "-j -t outdated $B"; do
		# shellcheck disable=SC2086
		run --separate-stderr vol-info $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[ -z "$output" ]
		[[ "$stderr" == *"usage: vol-info"* ]]
	done
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-info: --help prints the usage on stdout and exits 0" {
	run --separate-stderr vol-info --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: vol-info "* ]]
	[ -z "$stderr" ]
}

@test "vol-info: a stdout that cannot be written exits 74" {
	info_setup btrfs
	run bash -c 'vol-info "$1" >/dev/full' _ "$B"
	[ "$status" -eq 74 ]
	run bash -c 'vol-info -j -r "$1" >/dev/full' _ "$B"
	[ "$status" -eq 74 ]
}

@test "vol-info: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	mkdir vm1 tpl
	truncate -s 1M vm1/private.img tpl/root.img
	ln vm1/private.img vm1/private.img.1@2021-01-01T00:00:00Z
	ln tpl/root.img vm1/root.img
	printf NEW >tpl/new
	mv tpl/new tpl/root.img
	run_man_examples vol-info.1
	[ "$(vol-info vm1/private | grep '^size' | cut -f 2)" = 1048576 ]
}
