#!/usr/bin/env bats
# vol-export and vol-receive: a volume's states as rbd diff v1 streams,
# from pool to pool.  (tests/ceph.bats runs them against Ceph's rbd.)

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

# history KIND: $V (8 MiB of random data) with revisions 1 to 3, each
# commit writing 40 KiB at its own place; $W, an empty place for a second
# volume on the same filesystem.
history() {
	local i
	vol_setup "$1"
	V=$B
	W=$DIR/backup/vm1/private
	mkdir -p "$DIR/backup"
	head -c 8M /dev/urandom | vol-import -s 8M "$V" -
	for i in 1 2 3; do
		vol-start "$V" >/dev/null
		dd if=/dev/urandom of="$V-dirty.img" bs=4K count=10 \
			seek=$((i * 200)) conv=notrunc status=none
		vol-commit "$V"
	done
}

# revision V ID: the path of revision ID of V.
revision() {
	echo "$1.img.$2@"*
}

# name FILE: the state name vol-info shows for the clean image of FILE's
# volume, or for revision ID with a second argument.
snapshot_of() {
	if [ $# -eq 1 ]; then
		vol-info -j "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["snapshot"])'
	else
		vol-info -r "$1" | awk -F '\t' -v id="$2" '$1 == id { print $5 }'
	fi
}

@test "vol-export | vol-receive: a full stream, then a chain of three incrementals, state by state" {
	local id
	history btrfs
	vol-export -r 1 "$V" | vol-receive "$W"
	cmp "$W.img" "$(revision "$V" 1)"
	[ "$(snapshot_of "$W")" = "$(snapshot_of "$V" 1)" ]
	for id in 2 3; do
		vol-export -i $((id - 1)) -r "$id" "$V" | vol-receive "$W"
		cmp "$W.img" "$(revision "$V" "$id")"
		[ "$(snapshot_of "$W")" = "$(snapshot_of "$V" "$id")" ]
	done
	vol-export -i 3 "$V" | vol-receive -k 2 "$W"
	cmp "$W.img" "$V.img"
	[ "$(snapshot_of "$W")" = "$(snapshot_of "$V")" ]
	# The receiver's revisions are the sender's states, by name.
	[ "$(vol-info -r "$W" | cut -f5)" = "$(vol-info -r "$V" | cut -f5 | tail -n 2)" ]
	# By state name as well as by id.
	vol-export -i "$(snapshot_of "$V" 2)" -r "$(snapshot_of "$V" 3)" "$V" | cmp - <(vol-export -i 2 -r 3 "$V")
}

@test "vol-export -i: only the changed blocks are read and sent" {
	local size read
	history xfs
	vol-export -i 2 -r 3 "$V" >"$DIR/inc.diff"
	size=$(stat -c %s "$DIR/inc.diff")
	# 40 KiB of data, the names, and a few records.
	[ "$size" -ge 40960 ] && [ "$size" -lt 41500 ]
	strace -f -e trace=pread64,read -o "$DIR/trace" vol-export -i 2 -r 3 "$V" >/dev/null
	read=$(awk -F '= ' '/^[0-9]+ +pread64\(/ { sum += $NF } END { print sum + 0 }' "$DIR/trace")
	[ "$read" -le $((2 * 40960)) ]
	# A full stream reads and sends the whole image.
	size=$(vol-export -r 3 "$V" | wc -c)
	[ "$size" -gt $((8 << 20)) ]
}

@test "vol-receive: an incremental stream lands on a clone of C: the receiver grows by the change" {
	local exclusive
	history btrfs
	vol-export -r 2 "$V" | vol-receive "$W"
	vol-export -i 2 -r 3 "$V" | vol-receive "$W"
	# The new C holds alone only the 40 KiB the stream changed; the rest
	# it shares with the revision the old C became.
	exclusive=$(vol-info -u "$W" | awk '$1 == "exclusive" { print $2 }')
	[ "$exclusive" -le $((64 << 10)) ]
	[ "$(vol-info -u -r "$W" | cut -f7)" -le $((64 << 10)) ]
}

@test "vol-receive: a stream that starts from another state: 65, nothing changed" {
	local before
	history btrfs
	vol-export -r 1 "$V" | vol-receive "$W"
	before=$(dir_state "$(dirname "$W")")
	run vol-receive "$W" < <(vol-export -i 2 -r 3 "$V")
	[ "$status" -eq 65 ]
	[[ $output == *"base is $(snapshot_of "$V" 1), stream starts from $(snapshot_of "$V" 2): nothing changed"* ]]
	[ "$(dir_state "$(dirname "$W")")" = "$before" ]
	# Nothing at all there: the same.
	run vol-receive "$DIR/other/private" < <(vol-export -i 2 -r 3 "$V")
	[ "$status" -eq 65 ]
	[[ $output == *"base is nothing (no clean image)"* ]]
}

@test "vol-receive: the same stream again changes nothing and exits 0" {
	history xfs
	vol-export -r 2 "$V" | vol-receive "$W"
	vol-export -i 2 -r 3 "$V" | vol-receive -k 1 "$W"
	before=$(dir_state "$(dirname "$W")")
	run vol-receive -k 1 "$W" < <(vol-export -i 2 -r 3 "$V")
	[ "$status" -eq 0 ]
	[[ $output == *"already: nothing to receive"* ]]
	[ "$(dir_state "$(dirname "$W")")" = "$before" ]
}

# Hand-made streams: little-endian integers (the formats are made of
# the digits of the values), and records.
# shellcheck disable=SC2059
le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x00\\x00"; }
le64() {
	local i
	for i in 0 1 2 3 4 5 6 7; do
		# shellcheck disable=SC2059
		printf "\\x$(printf %02x $((($1 >> (8 * i)) & 255)))"
	done
}
rec_name() { printf %s "$1"; le32 ${#2}; printf %s "$2"; }
rec_size() { printf s; le64 "$1"; }
rec_w() { printf w; le64 "$1"; le64 "$2"; head -c "$2" /dev/zero | tr '\0' x; }
rec_z() { printf z; le64 "$1"; le64 "$2"; }

@test "vol-receive: broken streams are refused with 65, the volume unchanged, no temp file" {
	local name before
	history btrfs
	vol-export -r 1 "$V" | vol-receive "$W"
	before=$(dir_state "$(dirname "$W")")
	mkdir "$DIR/bad"
	{ printf 'rbd diff v2\n'; rec_size 4096; printf e; } >"$DIR/bad/magic"
	{ printf 'rbd diff v1\n'; rec_size 4096; rec_w 0 100; } >"$DIR/bad/truncated"
	{ printf 'rbd diff v1\n'; rec_size 4096; printf q; } >"$DIR/bad/tag"
	{ printf 'rbd diff v1\n'; rec_size 4096; rec_w 100 10; rec_w 0 10; printf e; } >"$DIR/bad/order"
	{ printf 'rbd diff v1\n'; rec_size 4096; rec_w 0 100; rec_z 50 10; printf e; } >"$DIR/bad/overlap"
	{ printf 'rbd diff v1\n'; rec_size 4096; rec_w 4090 10; printf e; } >"$DIR/bad/past-size"
	{ printf 'rbd diff v1\n'; rec_size 4096; printf z; le64 16; printf '\xf8\xff\xff\xff\xff\xff\xff\xff'; printf e; } >"$DIR/bad/near-2-64"
	{ printf 'rbd diff v1\n'; rec_name t a; rec_name t b; rec_size 4096; printf e; } >"$DIR/bad/second-t"
	{ printf 'rbd diff v1\n'; rec_size 4096; rec_w 0 10; rec_name t a; printf e; } >"$DIR/bad/meta-after"
	{ printf 'rbd diff v1\n'; rec_w 0 10; printf e; } >"$DIR/bad/no-size"
	{ printf 'rbd diff v1\n'; rec_size 4096; printf e; printf e; } >"$DIR/bad/after-end"
	{ printf 'rbd diff v1\n'; rec_name f nope; rec_size 4096; printf e; } >"$DIR/bad/wrong-f"
	{ printf 'rbd diff v1\n'; rec_name t 'a b'; rec_size 4096; printf e; } >"$DIR/bad/bad-name"
	for name in magic truncated tag order overlap past-size near-2-64 second-t meta-after no-size after-end wrong-f bad-name; do
		run vol-receive "$W" <"$DIR/bad/$name"
		echo "# $name: $status: $output" >&3
		[ "$status" -eq 65 ]
		[ "$(dir_state "$(dirname "$W")")" = "$before" ]
	done
	# A valid hand-made one is taken, for contrast.
	{ printf 'rbd diff v1\n'; rec_name t hand; rec_size 4096; rec_w 0 100; rec_z 200 10; printf e; } | vol-receive "$W"
	[ "$(snapshot_of "$W")" = hand ]
	[ "$(head -c 100 "$W.img")" = "$(printf 'x%.0s' $(seq 100))" ]
	[ "$(stat -c %s "$W.img")" -eq 4096 ]
}

@test "vol-export: standard output a terminal 64, no such state 66, the same state twice 64" {
	history btrfs
	run script -qec "vol-export '$V'" /dev/null
	[ "$status" -eq 64 ]
	[[ $output == *"standard output is a terminal"* ]]
	run vol-export -r 9 "$V"
	[ "$status" -eq 66 ]
	[[ $output == *"no such state: 9"* ]]
	run vol-export -i nosuch "$V"
	[ "$status" -eq 66 ]
	run vol-export -i 2 -r 2 "$V"
	[ "$status" -eq 64 ]
	run vol-export "$DIR/nowhere/private"
	[ "$status" -eq 66 ]
	run script -qec "vol-receive '$W'" /dev/null
	[ "$status" -eq 64 ]
	[[ $output == *"standard input is a terminal"* ]]
}

@test "vol-receive: a dirty volume is refused with 75; --progress shows a line" {
	history btrfs
	vol-export -r 1 "$V" | vol-receive "$W"
	vol-start "$W" >/dev/null
	run vol-receive "$W" < <(vol-export -i 1 -r 2 "$V")
	[ "$status" -eq 75 ]
	vol-discard "$W"
	run bash -c 'vol-export --progress -i 1 -r 2 "$1" | vol-receive --progress "$2"' _ "$V" "$W"
	[ "$status" -eq 0 ]
	[[ $output == *"vol-export: "*" / "* ]]
	[[ $output == *"vol-receive: "* ]]
}

@test "vol-export, vol-receive: the EXAMPLES of the man pages work" {
	local bin=$BATS_TEST_TMPDIR/bin
	history btrfs
	cd "$DIR"
	mkdir -p pool/appvms backup/appvms
	mv "$VM" pool/appvms/work
	# "ssh backup COMMAND": COMMAND, here.
	mkdir -p "$bin"
	printf '#!/bin/sh\nshift\nexec "$@"\n' >"$bin/ssh"
	chmod +x "$bin/ssh"
	PATH=$bin:$PATH run_man_examples vol-export.1
	rm -rf backup/appvms/work work-1.diff
	PATH=$bin:$PATH run_man_examples vol-receive.1
	cmp backup/appvms/work/private.img pool/appvms/work/private.img
}
