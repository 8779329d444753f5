#!/usr/bin/env bats
# vol-discard: drop D without committing it.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

discard_drops_dirty() {
	vol_setup "$1"
	vol_make CLEAN
	ln "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	vol-create -s 1M "$VM/root"
	# A running VM's D, made by hand so that P stays beside it.
	cp "$B.img" "$B-dirty.img"
	printf CHANGED | dd of="$B-dirty.img" conv=notrunc status=none
	before=$(dir_state "$VM" | grep -v private-dirty)
	run vol-discard "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -e "$B-dirty.img" ]
	[ "$(dir_state "$VM")" = "$before" ]
	[ "$(head_bytes "$B.img" 5)" = CLEAN ]
}

@test "vol-discard: btrfs: D goes; C, P, revisions and other volumes stay" {
	discard_drops_dirty btrfs
}

@test "vol-discard: xfs: D goes; C, P, revisions and other volumes stay" {
	discard_drops_dirty xfs
}

@test "vol-discard: -S removes D and own C; SRC's C keeps its data" {
	vol_setup btrfs
	S=$POOL/vm-templates/t1/root
	mkdir -p "$POOL/vm-templates/t1"
	random_file "$S.img" 64K
	cp "$S.img" "$DIR/expected"
	R=$VM/root
	vol-start -S "$S" "$R" >/dev/null
	[ "$(stat -c %h "$S.img")" -eq 2 ]
	run vol-discard -S "$S" "$R"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "" ]
	[ "$(stat -c %h "$S.img")" -eq 1 ]
	cmp "$DIR/expected" "$S.img"
}

@test "vol-discard: -S on a volume with revisions keeps its C and exits 65" {
	vol_setup btrfs
	vol_make ORIGIN
	ln "$B.img" "$VM/private.img.1@2020-01-01T00:00:00Z"
	printf D >"$B-dirty.img"
	mkdir -p "$POOL/vm-templates/t1"
	vol-create -s 1M "$POOL/vm-templates/t1/root"
	run vol-discard -S "$POOL/vm-templates/t1/root" "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"origin volume"* ]]
	[ "$(head_bytes "$B.img" 6)" = ORIGIN ]
	[ -f "$B-dirty.img" ]
}

@test "vol-discard: nothing to discard exits 0" {
	vol_setup btrfs
	vol_make
	run vol-discard "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-discard: D that is a directory exits 65 and stays" {
	vol_setup btrfs
	vol_make
	mkdir "$B-dirty.img"
	run vol-discard "$B"
	[ "$status" -eq 65 ]
	[ -d "$B-dirty.img" ]
}

@test "vol-discard: usage errors exit 64; a missing directory 66" {
	vol_setup btrfs
	vol_make
	printf D >"$B-dirty.img"
	for args in "" "-x $B" "$B extra" "-w x $B" "-S"; do
		# shellcheck disable=SC2086
		run vol-discard $args
		[ "$status" -eq 64 ]
		[[ "$output" == *"usage: vol-discard"* ]]
	done
	[ -f "$B-dirty.img" ]
	run vol-discard "$POOL/appvms/nope/private"
	[ "$status" -eq 66 ]
}

@test "vol-discard: the EXAMPLES of the man page work" {
	vol_setup btrfs
	cd "$POOL"
	vol-create -s 1M appvms/vm1/private
	mkdir -p vm-templates/fedora
	vol-create -s 1M vm-templates/fedora/root
	vol-start appvms/vm1/private >/dev/null
	vol-start -S vm-templates/fedora/root appvms/vm1/root >/dev/null
	run_man_examples vol-discard.1
	[ ! -e appvms/vm1/private-dirty.img ]
	[ ! -e appvms/vm1/root.img ]
}

@test "vol-discard: a D without C is the only copy: kept, exit 65" {
	vol_setup btrfs
	vol-create -k -1 -s 1M "$B"
	vol-start -k -1 "$B" >/dev/null
	printf ONLY | dd of="$B-dirty.img" conv=notrunc status=none
	run vol-discard "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"$B-dirty.img: the only copy of the volume's data"* ]]
	[ "$(head_bytes "$B-dirty.img")" = ONLY ]
}

@test "vol-discard: --volatile removes a volatile volume's D" {
	vol_setup btrfs
	vol-start --volatile -s 64K "$VM/volatile" >/dev/null
	run vol-discard --volatile "$VM/volatile"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "" ]
	run vol-discard -S "$B" --volatile "$VM/volatile"
	[ "$status" -eq 64 ]
}

@test "vol-discard: nothing to discard says so on stderr, exit 0" {
	vol_setup btrfs
	vol_make CLEAN
	run --separate-stderr vol-discard "$B"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[[ "$stderr" == *"$B: nothing to discard"* ]]
	run --separate-stderr vol-discard -q "$B"
	[ -z "$stderr" ]
	# A stopped volatile or snapshot volume has no file at all.
	run --separate-stderr vol-discard --volatile "$VM/volatile"
	[ "$status" -eq 0 ]
}

@test "vol-discard: a name with none of a volume's files exits 66" {
	vol_setup btrfs
	run --separate-stderr vol-discard "$VM/typo"
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"$VM/typo: no such volume"* ]]
}

@test "vol-discard: an origin volume gets its precache back, so the next start is a rename" {
	vol_setup btrfs
	vol_make CLEAN
	vol-start "$B" >/dev/null
	[ ! -e "$B-precache.img" ]
	run vol-discard "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	run strace -f -o "$DIR/trace" -e trace=ioctl vol-start "$B"
	[ "$(ficlone_count "$DIR/trace")" -eq 0 ]
}
