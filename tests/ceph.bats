#!/usr/bin/env bats
# A real one-node Ceph cluster (tests/ceph.bash), started by setup_file and
# stopped by teardown_file, against which "rbd diff v1" streams are checked:
# first those of rbd itself (export-diff, merge-diff, import-diff), which
# proves the cluster and the checks; then those of vol-export, applied with
# "rbd import-diff", and those of "rbd export-diff", applied with
# vol-receive.  Every stream a test writes also passes "rbd merge-diff",
# which needs no cluster and refuses a malformed stream.
#
# The file skips when not root or when the Ceph packages that tests/run
# installs are missing; the tests of vol-export and vol-receive skip while
# those tools are not built.

load helper
load ceph

setup_file() {
	local reason
	reason=$(ceph_unavailable_reason)
	if [ -n "$reason" ]; then
		export CEPH_SKIP=$reason
		return 0
	fi
	fs_setup btrfs
	export CEPH_DIR=$BATS_FILE_TMPDIR/ceph
	# ceph_start exports CEPH_CONF: every rbd and ceph of the tests uses
	# this cluster and no other.
	if ! ceph_start "$CEPH_DIR" >&2; then
		ceph_stop "$CEPH_DIR"
		return 1
	fi
	sed 's/^/# /' "$CEPH_DIR/log/started" >&3
}

teardown_file() {
	if [ -n "${CEPH_DIR:-}" ]; then
		ceph_stop "$CEPH_DIR"
	fi
	fs_teardown
}

ceph_needed() {
	if [ -n "${CEPH_SKIP:-}" ]; then
		skip "$CEPH_SKIP"
	fi
	[ -n "${CEPH_CONF:-}" ] && [ -f "$CEPH_CONF" ]
}

# The tests that use the project's replication tools skip until they are
# built.
tools_needed() {
	local tool
	ceph_needed
	for tool in vol-export vol-receive; do
		if [ ! -x "$TOP/bin/$tool" ] || ! command -v "$tool" >/dev/null; then
			skip "$tool is not built yet (no bin/$tool)"
		fi
	done
}

# Every image of a test has a name of its own: the cluster lives as long
# as the file.
img() {
	echo "rbd/t${BATS_TEST_NUMBER}-$1"
}

# is_stream FILE: FILE starts as an rbd diff v1 stream does.
is_stream() {
	[ "$(head -c 12 "$1")" = "rbd diff v1" ] || {
		echo "$1: no rbd diff v1 header" >&2
		return 1
	}
}

# merged A B OUT: "rbd merge-diff A B OUT", which refuses malformed
# streams, and two that do not follow each other.
merged() {
	is_stream "$1" && is_stream "$2" &&
		rbd merge-diff --no-progress "$1" "$2" "$3" && is_stream "$3"
}

# same_as_snap IMAGE@SNAP FILE: the image's snapshot holds FILE's bytes.
same_as_snap() {
	local out=$BATS_TEST_TMPDIR/export.$$
	rm -f "$out"
	rbd export --no-progress "$1" "$out" >/dev/null || return 1
	cmp "$out" "$2" || {
		echo "$1 differs from $2" >&2
		return 1
	}
}

# at FILE OFFSET SOURCE: SOURCE's bytes written into FILE at OFFSET.
at() {
	dd if="$3" of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# zero FILE OFFSET LENGTH: those bytes of FILE become zeros.
zero() {
	head -c "$3" /dev/zero | dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# A 4 MiB file with data at 0 and near the end, and a hole between.
first_state() {
	truncate -s 4M "$1"
	random_file "$BATS_TEST_TMPDIR/part" 1M
	at "$1" 0 "$BATS_TEST_TMPDIR/part"
	random_file "$BATS_TEST_TMPDIR/part" 512K
	at "$1" $((3 * 1024 * 1024)) "$BATS_TEST_TMPDIR/part"
}

# second_state IMAGE FILE: the same change to IMAGE (in the cluster) and
# to FILE: new data in the first MiB and in the hole, a range of the data
# near the end discarded.
second_state() {
	random_file "$BATS_TEST_TMPDIR/part" 64K
	rbd_write "$1" 65536 "$BATS_TEST_TMPDIR/part"
	at "$2" 65536 "$BATS_TEST_TMPDIR/part"
	random_file "$BATS_TEST_TMPDIR/part" 128K
	rbd_write "$1" $((2 * 1024 * 1024)) "$BATS_TEST_TMPDIR/part"
	at "$2" $((2 * 1024 * 1024)) "$BATS_TEST_TMPDIR/part"
	rbd_discard "$1" $((3 * 1024 * 1024)) 262144
	zero "$2" $((3 * 1024 * 1024)) 262144
}

@test "ceph: the cluster runs one OSD, up and in, and pool rbd" {
	ceph_needed
	run ceph osd stat -f json
	[ "$status" -eq 0 ]
	python3 -c '
import json, sys
s = json.loads(sys.argv[1])
s = s.get("osdmap", s)
assert (s["num_osds"], s["num_up_osds"], s["num_in_osds"]) == (1, 1, 1), s' "$output"
	run ceph osd pool ls
	[ "$status" -eq 0 ]
	[ "$output" = rbd ]
	# The monitor is this file's, on loopback.
	grep -q '^mon host = \[v1:127\.0\.0\.1:[0-9]*\]$' "$CEPH_CONF"
	[ "$(dirname "$CEPH_CONF")" = "$CEPH_DIR" ]
}

@test "ceph: rbd export-diff, merge-diff and import-diff give back each snapshot byte for byte" {
	ceph_needed
	local t=$BATS_TEST_TMPDIR a b c
	a=$(img a) b=$(img b) c=$(img c)
	first_state "$t/s1"
	rbd import --no-progress "$t/s1" "$a"
	rbd snap create --no-progress "$a@s1"
	cp "$t/s1" "$t/s2"
	second_state "$a" "$t/s2"
	rbd snap create --no-progress "$a@s2"
	# Head changes after s2 must not leak into the streams.
	random_file "$t/part" 4096
	rbd_write "$a" 0 "$t/part"
	same_as_snap "$a@s1" "$t/s1"
	same_as_snap "$a@s2" "$t/s2"

	rbd export-diff --no-progress "$a@s1" "$t/full1"
	rbd export-diff --no-progress --from-snap s1 "$a@s2" "$t/inc12"
	merged "$t/full1" "$t/inc12" "$t/full2"
	# The incremental stream holds only what changed, not the 4 MiB.
	[ "$(stat -c %s "$t/inc12")" -lt $((1024 * 1024)) ]

	rbd create --size 4M "$b"
	rbd import-diff --no-progress "$t/full1" "$b"
	same_as_snap "$b@s1" "$t/s1"
	rbd import-diff --no-progress "$t/inc12" "$b"
	same_as_snap "$b@s2" "$t/s2"
	same_as_snap "$b" "$t/s2"

	# The merged stream is a full one of s2.
	rbd create --size 1M "$c"
	rbd import-diff --no-progress "$t/full2" "$c"
	same_as_snap "$c@s2" "$t/s2"
	run rbd snap ls --format json "$c"
	[ "$status" -eq 0 ]
	[ "$(python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.loads(sys.argv[1])))' "$output")" = s2 ]
}

@test "ceph: rbd refuses a stream that is cut short, or that starts from a snapshot the image lacks" {
	ceph_needed
	local t=$BATS_TEST_TMPDIR a b
	a=$(img a) b=$(img b)
	first_state "$t/s1"
	rbd import --no-progress "$t/s1" "$a"
	rbd snap create --no-progress "$a@s1"
	random_file "$t/part" 64K
	rbd_write "$a" 0 "$t/part"
	rbd snap create --no-progress "$a@s2"
	rbd export-diff --no-progress "$a@s1" "$t/full1"
	rbd export-diff --no-progress --from-snap s1 "$a@s2" "$t/inc12"
	merged "$t/full1" "$t/inc12" "$t/ok"

	head -c $(($(stat -c %s "$t/inc12") - 100)) "$t/inc12" >"$t/cut"
	run ! merged "$t/full1" "$t/cut" "$t/bad"
	{ printf 'rbd diff v2\n'; tail -c +13 "$t/inc12"; } >"$t/v2"
	run ! merged "$t/full1" "$t/v2" "$t/bad"
	# Two streams that do not follow each other.
	run ! merged "$t/inc12" "$t/full1" "$t/bad"

	rbd create --size 4M "$b"
	run ! rbd import-diff --no-progress "$t/inc12" "$b"
	run rbd snap ls "$b"
	[ -z "$output" ]
}

# vol_info_field JSON WHAT FIELD: FIELD of the volume (WHAT "volume") or of
# its revision with id WHAT, from the output of "vol-info -j [-r]".
vol_info_field() {
	python3 -c '
import json, sys
v = json.loads(sys.argv[1])[0]
what, field = sys.argv[2], sys.argv[3]
if what != "volume":
    v = [r for r in v["revision_list"] if str(r["id"]) == what][0]
value = v[field]
print("" if value is None else value)' "$@"
}

# vm_run OFFSET...: one VM run of $B: 64 KiB of random data written at
# each OFFSET of D, then committed.
vm_run() {
	local d offset
	d=$(vol-start "$B")
	for offset in "$@"; do
		random_file "$BATS_TEST_TMPDIR/part" 64K
		at "$d" "$offset" "$BATS_TEST_TMPDIR/part"
	done
	vol-commit "$B"
}

@test "ceph: vol-export streams, full then incremental, applied by rbd import-diff" {
	tools_needed
	vol_setup btrfs
	local t=$BATS_TEST_TMPDIR v info id name names="" from expected chain=""
	v=$(img v)
	# C made by vol-import (no revision), which three runs make revisions
	# 1, 2 and 3.
	first_state "$t/first"
	vol-import "$B" "$t/first"
	vm_run 0 $((3 * 1024 * 1024))
	vm_run 65536 $((2 * 1024 * 1024))
	vm_run 0 $((4 * 1024 * 1024 - 65536))
	info=$(vol-info -r -j "$B")
	[ "$(vol_info_field "$info" volume revisions)" -eq 3 ]
	cmp "$(vol_info_field "$info" 1 path)" "$t/first"
	rbd create --size 4M "$v"

	for id in 1 2 3 C; do
		if [ "$id" = C ]; then
			vol-export -i 3 "$B" >"$t/stream$id"
			name=$(vol_info_field "$(vol-info -j "$B")" volume snapshot)
			expected=$B.img
		else
			vol-export ${from:+-i "$from"} -r "$id" "$B" >"$t/stream$id"
			name=$(vol_info_field "$info" "$id" snapshot)
			expected=$(vol_info_field "$info" "$id" path)
		fi
		[ -n "$name" ]
		names="${names:+$names }$name"
		is_stream "$t/stream$id"
		if [ -n "$from" ]; then
			# Only what changed: two 64 KiB writes a run.
			[ "$(stat -c %s "$t/stream$id")" -lt $((1024 * 1024)) ]
		fi
		rbd import-diff --no-progress "$t/stream$id" "$v"
		same_as_snap "$v@$name" "$expected"
		same_as_snap "$v" "$expected"
		# Pairwise through rbd merge-diff: each stream follows the
		# ones before it.
		if [ -z "$chain" ]; then
			chain=$t/stream$id
		else
			merged "$chain" "$t/stream$id" "$t/chain$id"
			chain=$t/chain$id
		fi
		from=$id
	done
	# One snapshot a stream, named as vol-info names the states.
	run rbd snap ls --format json "$v"
	[ "$status" -eq 0 ]
	[ "$(python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.loads(sys.argv[1])))' "$output")" = "$names" ]
	# The chain is a full stream of C.
	rbd create --size 1M "$(img w)"
	rbd import-diff --no-progress "$chain" "$(img w)"
	same_as_snap "$(img w)@$name" "$B.img"
}

@test "ceph: rbd export-diff streams, full then incremental, applied by vol-receive" {
	tools_needed
	vol_setup btrfs
	local t=$BATS_TEST_TMPDIR a B2=$VM/copy info
	a=$(img a)
	first_state "$t/s1"
	rbd import --no-progress "$t/s1" "$a"
	rbd snap create --no-progress "$a@s1"
	cp "$t/s1" "$t/s2"
	second_state "$a" "$t/s2"
	rbd snap create --no-progress "$a@s2"
	same_as_snap "$a@s1" "$t/s1"
	same_as_snap "$a@s2" "$t/s2"

	rbd export-diff --no-progress "$a@s1" - | vol-receive "$B2"
	cmp "$B2.img" "$t/s1"
	[ "$(vol_info_field "$(vol-info -j "$B2")" volume snapshot)" = s1 ]

	rbd export-diff --no-progress --from-snap s1 "$a@s2" - | vol-receive "$B2"
	cmp "$B2.img" "$t/s2"
	info=$(vol-info -r -j "$B2")
	[ "$(vol_info_field "$info" volume snapshot)" = s2 ]
	# The state before is a revision, under its name.
	python3 -c '
import json, sys
v = json.loads(sys.argv[1])[0]
old = [r for r in v["revision_list"] if r["snapshot"] == "s1"]
assert len(old) == 1, v
print(old[0]["path"])' "$info" >"$t/old"
	cmp "$(cat "$t/old")" "$t/s1"
}
