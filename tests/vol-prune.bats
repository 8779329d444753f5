#!/usr/bin/env bats
# vol-prune: the lowest revision ids go until N remain; nothing else is
# ever touched.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

R1=private.img.1@2021-01-01T00:00:01Z
R2=private.img.2@2021-01-02T00:00:02Z
R3=private.img.3@2021-01-03T00:00:03Z

# prune_setup KIND: $VM is a VM directory on KIND holding the volume $B
# with C ("CUR"), P, and revisions 1, 2 and 3 made as hard links of copies.
prune_setup() {
	fs_dir "$1"
	VM=$DIR/vm1
	B=$VM/private
	mkdir "$VM"
	printf CUR >"$B.img"
	cp "$B.img" "$B-precache.img"
	printf ONE >"$VM/$R1"
	printf TWO >"$VM/$R2"
	printf THREE >"$VM/$R3"
}

teardown() {
	release_lock
}

keeps_the_highest_ids() {
	prune_setup "$1"
	run --separate-stderr vol-prune -k 1 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1"$'\n'"$VM/$R2" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R3" ]
	[ "$(cat "$VM/$R3")" = THREE ]
	[ "$(cat "$B.img")" = CUR ]
}

@test "vol-prune: btrfs: -k 1 removes the lowest ids and prints each path" {
	keeps_the_highest_ids btrfs
}

@test "vol-prune: xfs: -k 1 removes the lowest ids and prints each path" {
	keeps_the_highest_ids xfs
}

@test "vol-prune: -n prints the same and removes nothing" {
	prune_setup btrfs
	before=$(files_in "$VM")
	run vol-prune -n -k 1 "$B"
	[ "$status" -eq 0 ]
	preview=$output
	[ "$preview" = "$VM/$R1"$'\n'"$VM/$R2" ]
	[ "$(files_in "$VM")" = "$before" ]
	run vol-prune -k 1 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$preview" ]
}

@test "vol-prune: -n takes no lock" {
	prune_setup btrfs
	hold_lock "$VM"
	run vol-prune -n -w 0 -k 2 "$B"
	release_lock
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1" ]
}

@test "vol-prune: without -k one revision is kept" {
	prune_setup xfs
	run vol-prune "$B.img"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1"$'\n'"$VM/$R2" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R3" ]
}

@test "vol-prune: -k 0 and -k -1 remove every revision" {
	prune_setup btrfs
	run vol-prune -k 0 "$B"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 3 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	prune_setup xfs
	run vol-prune -k -1 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1"$'\n'"$VM/$R2"$'\n'"$VM/$R3" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
}

@test "vol-prune: -k at or above the count removes nothing" {
	prune_setup btrfs
	run vol-prune -k 3 "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run vol-prune -k 50 "$B"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R2 $R3" ]
}

@test "vol-prune: ids compare as numbers, leading zeros ignored" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	printf C >"$DIR/vm1/private.img"
	touch "$DIR/vm1/private.img.9@2021-01-01T00:00:00Z" \
		"$DIR/vm1/private.img.010@2021-01-02T00:00:00Z" \
		"$DIR/vm1/private.img.100@2021-01-03T00:00:00Z"
	run vol-prune -k 2 "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ "$output" = "$DIR/vm1/private.img.9@2021-01-01T00:00:00Z" ]
	[ "$(files_in "$DIR/vm1")" = "private.img private.img.010@2021-01-02T00:00:00Z private.img.100@2021-01-03T00:00:00Z" ]
}

@test "vol-prune: legacy revisions, junk names, D, I and temp files are never removed" {
	prune_setup xfs
	printf D >"$B-dirty.img"
	printf I >"$B-import.img"
	keep=(private.img@2018-01-02T03:04:05Z private.img.x@2018-01-02T03:04:05Z
		private.img.1@x@2018-01-02T03:04:05Z private.img.-5@2018-01-02T03:04:05Z
		private.img.4@2018-02-30T03:04:05Z private.img~tmp "$R1~tmp"
		private-dirty.img~tmp privatex.img.1@2018-01-02T03:04:05Z)
	for name in "${keep[@]}"; do
		printf X >"$VM/$name"
	done
	run vol-prune -k 0 "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/$R1"$'\n'"$VM/$R2"$'\n'"$VM/$R3" ]
	for name in "${keep[@]}" private.img private-dirty.img \
		private-precache.img private-import.img; do
		[ -f "$VM/$name" ]
	done
	[ "$(find "$VM" -mindepth 1 | wc -l)" -eq $((${#keep[@]} + 4)) ]
}

@test "vol-prune: several volumes in one call, in order" {
	prune_setup btrfs
	mkdir "$DIR/vm2"
	printf R >"$DIR/vm2/root.img"
	touch "$DIR/vm2/root.img.7@2022-01-01T00:00:00Z" \
		"$DIR/vm2/root.img.8@2022-01-02T00:00:00Z"
	run vol-prune -k 1 "$DIR/vm2/root" "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$DIR/vm2/root.img.7@2022-01-01T00:00:00Z"$'\n'"$VM/$R1"$'\n'"$VM/$R2" ]
	[ "$(files_in "$DIR/vm2")" = "root.img root.img.8@2022-01-02T00:00:00Z" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R3" ]
}

@test "vol-prune: a failing volume is reported, the others are pruned, the first failure is the status" {
	prune_setup btrfs
	mkdir "$DIR/vm2"
	mkdir "$DIR/vm2/root.img"
	touch "$DIR/vm2/root.img.1@2022-01-01T00:00:00Z" \
		"$DIR/vm2/root.img.2@2022-01-02T00:00:00Z"
	run --separate-stderr vol-prune -k 1 "$DIR/nope/private" "$DIR/vm2/root" "$B"
	[ "$status" -eq 66 ]
	[ "$output" = "$VM/$R1"$'\n'"$VM/$R2" ]
	[[ "$stderr" == *"vol-prune: $DIR/nope: "* ]]
	[[ "$stderr" == *"vol-prune: $DIR/vm2/root.img: not a regular file"* ]]
	[ "$(files_in "$DIR/vm2")" = "root.img root.img.1@2022-01-01T00:00:00Z root.img.2@2022-01-02T00:00:00Z" ]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R3" ]
}

@test "vol-prune: a volume none of whose files exist exits 66; one without revisions is nothing to do" {
	fs_dir xfs
	mkdir "$DIR/vm1"
	run --separate-stderr vol-prune -k 0 "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[ -z "$output" ]
	[[ "$stderr" == *"$DIR/vm1/private: no such volume"* ]]
	printf C >"$DIR/vm1/private.img"
	run vol-prune -k 0 "$DIR/vm1/private"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(files_in "$DIR/vm1")" = private.img ]
}

@test "vol-prune: another volume sharing the prefix is untouched" {
	prune_setup btrfs
	printf X >"$VM/privatex.img"
	printf X >"$VM/privatex.img.1@2021-01-01T00:00:01Z"
	run vol-prune -k 0 "$B"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "private-precache.img private.img privatex.img privatex.img.1@2021-01-01T00:00:01Z" ]
}

@test "vol-prune: -w 0 exits 75 while another process holds the lock, and removes nothing" {
	prune_setup btrfs
	hold_lock "$VM"
	run vol-prune -w 0 -k 0 "$B"
	release_lock
	[ "$status" -eq 75 ]
	[[ "$output" == *busy* ]]
	[ "$(files_in "$VM")" = "private-precache.img private.img $R1 $R2 $R3" ]
}

@test "vol-prune: usage errors exit 64 with usage on stderr and change nothing" {
	prune_setup btrfs
	before=$(files_in "$VM")
	for args in "" "-x $B" "-k -2 $B" "-k x $B" "-k $B" "-k 1.5 $B" \
		"-w x $B" "-w -1 $B" "--keep"; do
		# shellcheck disable=SC2086
		run --separate-stderr vol-prune $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[ -z "$output" ]
		[[ "$stderr" == *"usage: vol-prune"* ]]
	done
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-prune: --help prints the usage on stdout and exits 0" {
	run --separate-stderr vol-prune --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: vol-prune "* ]]
	[ -z "$stderr" ]
}

@test "vol-prune: a VOLUME whose directory does not exist exits 66" {
	fs_dir btrfs
	run vol-prune "$DIR/nope/private"
	[ "$status" -eq 66 ]
	[ ! -e "$DIR/nope" ]
}

@test "vol-prune: C that is a directory exits 65 and nothing changes" {
	fs_dir xfs
	mkdir -p "$DIR/vm1/private.img"
	touch "$DIR/vm1/private.img.1@2021-01-01T00:00:00Z" \
		"$DIR/vm1/private.img.2@2021-01-02T00:00:00Z"
	run vol-prune -k 0 "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[ "$(files_in "$DIR/vm1")" = "private.img private.img.1@2021-01-01T00:00:00Z private.img.2@2021-01-02T00:00:00Z" ]
}

@test "vol-prune: C that is a symlink exits 65, nothing followed or changed" {
	fs_dir btrfs
	mkdir "$DIR/vm1" "$DIR/other"
	printf OUTSIDE >"$DIR/other/private.img"
	touch "$DIR/other/private.img.1@2021-01-01T00:00:00Z"
	ln -s ../other/private.img "$DIR/vm1/private.img"
	touch "$DIR/vm1/private.img.1@2021-01-01T00:00:00Z"
	run vol-prune -k 0 "$DIR/vm1/private"
	[ "$status" -eq 65 ]
	[[ "$output" == *"symbolic link"* ]]
	[ -L "$DIR/vm1/private.img" ]
	[ "$(files_in "$DIR/vm1")" = "private.img private.img.1@2021-01-01T00:00:00Z" ]
	[ "$(files_in "$DIR/other")" = "private.img private.img.1@2021-01-01T00:00:00Z" ]
	[ "$(cat "$DIR/other/private.img")" = OUTSIDE ]
}

@test "vol-prune: a stdout that cannot be written exits 74" {
	prune_setup btrfs
	run bash -c 'vol-prune -n -k 0 "$1" >/dev/full' _ "$B"
	[ "$status" -eq 74 ]
}

@test "vol-prune: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	mkdir vm1
	printf C >vm1/private.img
	printf R >vm1/root.img
	for id in 1 2 3 4; do
		touch "vm1/private.img.$id@2021-01-0${id}T00:00:00Z" \
			"vm1/root.img.$id@2021-01-0${id}T00:00:00Z"
	done
	run_man_examples vol-prune.1
	[ "$(files_in vm1)" = "private.img root.img root.img.4@2021-01-04T00:00:00Z" ]
}
