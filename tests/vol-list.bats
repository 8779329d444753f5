#!/usr/bin/env bats
# vol-list: one line (or JSON object) per volume of a directory or, with
# -r, of a whole pool.

load helper

setup_file() {
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
}

teardown() {
	release_lock
}

# list_setup: $VM, in the pool $POOL on btrfs, holds one volume of each
# type the files suggest, and files that make no volume:
#   private   origin: C (64 KiB), P, revisions 1 and 3
#   root      snapshot: C a second name of the template's, and D
#   volatile  volatile: D only (128 KiB)
#   swap      unknown: C a symbolic link
#   data      origin, missing: a revision only
list_setup() {
	vol_setup btrfs
	mkdir -p "$POOL/vm-templates/t1"
	truncate -s 64K "$B.img"
	head -c 8192 /dev/urandom | dd of="$B.img" conv=notrunc status=none
	sync -f "$B.img"
	cp -p "$B.img" "$B-precache.img"
	ln "$B.img" "$VM/private.img.1@2021-01-01T00:00:00Z"
	echo three >"$VM/private.img.3@2021-01-03T00:00:00Z"
	truncate -s 1M "$POOL/vm-templates/t1/root.img"
	ln "$POOL/vm-templates/t1/root.img" "$VM/root.img"
	cp --reflink=always "$VM/root.img" "$VM/root-dirty.img"
	truncate -s 128K "$VM/volatile-dirty.img"
	ln -s /etc/hostname "$VM/swap.img"
	echo r >"$VM/data.img.1@2021-01-01T00:00:00Z"
	echo t >"$VM/other.img~tmp"
	echo i >"$VM/other-import.img"
	echo l >"$VM/old.img@2018-01-02T03:04:05Z"
}

# usage_of FILE: its allocated bytes, as vol-list counts them.
usage_of() {
	echo $(($(stat -c %b "$1") * 512))
}

@test "vol-list: one line per volume, every column, sorted by path" {
	list_setup
	run --separate-stderr vol-list "$VM"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 5 ]
	[ "${lines[0]}" = "$VM/data.img	origin	missing	0	0	1	1" ]
	[ "${lines[1]}" = "$VM/private.img	origin	clean	65536	$(usage_of "$B.img")	2	3" ]
	[ "${lines[2]}" = "$VM/root.img	snapshot	dirty	1048576	$(usage_of "$VM/root-dirty.img")	0	-" ]
	[ "${lines[3]}" = "$VM/swap.img	unknown	missing	0	0	0	-" ]
	[ "${lines[4]}" = "$VM/volatile.img	volatile	dirty	131072	$(usage_of "$VM/volatile-dirty.img")	0	-" ]
	# The usage is the image's blocks: 8 KiB written of 64 KiB.
	[ "$(usage_of "$B.img")" -ge 8192 ] && [ "$(usage_of "$B.img")" -lt 65536 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	# DIR given with a slash at its end: the same paths, no "//".
	run vol-list "$VM/"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "$VM/private.img	origin	clean	65536	$(usage_of "$B.img")	2	3" ]
}

@test "vol-list: the columns agree with vol-info" {
	list_setup
	for v in private root volatile; do
		line=$(vol-list "$VM" | grep "^$VM/$v.img	")
		facts=$(vol-info "$VM/$v" | cut -f2 | tr '\n' '\t')
		[ "$(echo "$line" | cut -f1,3-)" = "${facts%	}" ]
	done
}

@test "vol-list: the types the tools' own volumes show" {
	vol_setup btrfs
	mkdir -p "$POOL/vm-templates/t1"
	vol-create -s 64K "$POOL/vm-templates/t1/root"
	vol-start -S "$POOL/vm-templates/t1/root" "$VM/root" >/dev/null
	vol-create -k -1 -s 64K "$VM/private"
	vol-start --volatile -s 64K "$VM/volatile" >/dev/null
	run vol-list "$VM"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | cut -f1-3)" = "$VM/private.img	origin	clean
$VM/root.img	snapshot	dirty
$VM/volatile.img	volatile	dirty" ]
	run vol-list "$POOL/vm-templates/t1"
	[ "$(echo "$output" | cut -f1-3)" = "$POOL/vm-templates/t1/root.img	origin	clean" ]
}

@test "vol-list: -r lists a whole pool, three levels deep, no symlink followed" {
	list_setup
	mkdir -p "$POOL/appvms/vm2" "$POOL/a/b/c/d"
	truncate -s 4K "$POOL/appvms/vm2/private.img" "$POOL/a/b/c/near.img" \
		"$POOL/a/b/c/d/far.img" "$POOL/stray.img"
	ln -s "$VM" "$POOL/appvms/link"
	# Without -r, only the directory itself: POOL's own stray image.
	run vol-list "$POOL"
	[ "$status" -eq 0 ]
	[ "$output" = "$POOL/stray.img	origin	clean	4096	0	0	-" ]
	run vol-list -r "$POOL"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | cut -f1 | tr '\n' ' ')" = \
		"$POOL/a/b/c/near.img $POOL/appvms/vm1/data.img $POOL/appvms/vm1/private.img $POOL/appvms/vm1/root.img $POOL/appvms/vm1/swap.img $POOL/appvms/vm1/volatile.img $POOL/appvms/vm2/private.img $POOL/stray.img $POOL/vm-templates/t1/root.img " ]
	# --recursive is -r; a VM directory given with -r is listed whole.
	[ "$(vol-list --recursive "$VM" | wc -l)" -eq 5 ]
}

@test "vol-list: -j is a JSON array of objects, latest null without revisions" {
	list_setup
	# The template's C, without revisions or precache, has a second
	# name (vm1's root): to the files it is a snapshot too.
	run --separate-stderr vol-list -j "$VM" "$POOL/vm-templates/t1"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert isinstance(d, list) and len(d) == 6, d
p = d[1]
assert sorted(p) == ["latest", "path", "revisions", "size", "state", "type", "usage"], p
assert p["type"] == "origin" and p["state"] == "clean" and p["size"] == 65536, p
assert p["revisions"] == 2 and p["latest"] == 3 and isinstance(p["usage"], int), p
assert d[4]["type"] == "volatile" and d[4]["latest"] is None, d[4]
print(d[5]["path"], d[5]["type"])
')" = "$POOL/vm-templates/t1/root.img snapshot" ]
	# No volume: an empty array.
	mkdir "$POOL/empty"
	run vol-list -j "$POOL/empty"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin))')" = "[]" ]
	run vol-list "$POOL/empty"
	[ "$status" -eq 0 ] && [ -z "$output" ]
}

@test "vol-list: a name with a newline or a TAB stays one line; -j gives back its bytes" {
	vol_setup btrfs
	names=($'new\nline' $'tab\there' "$(printf 'inv\xff')" 'back\slash')
	for name in "${names[@]}"; do
		truncate -s 4K "$VM/$name.img"
	done
	run vol-list "$VM"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[0]}" = "$VM/back\\\\slash.img	origin	clean	4096	0	0	-" ]
	[ "${lines[1]}" = "$VM/inv\\xff.img	origin	clean	4096	0	0	-" ]
	[ "${lines[2]}" = "$VM/new\\nline.img	origin	clean	4096	0	0	-" ]
	[ "${lines[3]}" = "$VM/tab\\there.img	origin	clean	4096	0	0	-" ]
	vol-list -j "$VM" >"$BATS_TEST_TMPDIR/out.json"
	python3 -c '
import json, os, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
back = sorted(v["path"].encode("utf-8", "surrogateescape") for v in d)
want = sorted(os.fsencode(sys.argv[2]) + b"/" + os.fsencode(n) + b".img" for n in sys.argv[3:])
assert back == want, (back, want)
' "$BATS_TEST_TMPDIR/out.json" "$VM" "${names[@]}"
}

@test "vol-list: reads a directory a tool holds locked, and changes nothing" {
	list_setup
	before=$(dir_state "$VM")
	hold_lock "$VM"
	run timeout 5 vol-list -r "$POOL"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | grep -c "^$VM/")" -eq 5 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "vol-list: exit 66 for a missing DIR, 65 for a file, 77 untrusted, 64 usage; the others still listed" {
	list_setup
	run --separate-stderr vol-list "$DIR/nope" "$VM"
	[ "$status" -eq 66 ]
	[ "${#lines[@]}" -eq 5 ]
	[[ "$stderr" == *"vol-list: $DIR/nope: No such file or directory"* ]]
	run --separate-stderr vol-list "$B.img" "$DIR/nope"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"vol-list: $B.img: not a directory"* ]]
	chmod 777 "$POOL/appvms"
	run --separate-stderr vol-list "$VM"
	[ "$status" -eq 77 ]
	[ -z "$output" ]
	[[ "$stderr" == *"refused: $POOL/appvms"*"--unsafe-dirs"* ]]
	run vol-list --unsafe-dirs "$VM"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 5 ]
	chmod 755 "$POOL/appvms"
	for args in "" "-x $VM" "-w 1 $VM"; do
		# shellcheck disable=SC2086
		run vol-list $args
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-list"* ]]
	done
	run vol-list --help
	[ "$status" -eq 0 ] && [[ "$output" == "usage: vol-list"* ]]
	run vol-list --version
	[ "$status" -eq 0 ]
}

@test "vol-list: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$DIR"
	vol-create -s 64K pool/appvms/vm1/private
	vol-start pool/appvms/vm1/private >/dev/null
	run_man_examples vol-list.1
	example=$(man_examples vol-list.1 | grep awk)
	[ "$(bash -c "$example")" = "pool/appvms/vm1/private.img" ]
}
