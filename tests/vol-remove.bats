#!/usr/bin/env bats
# vol-remove: every file of a volume goes, C last, then the VM directory
# if it is empty; other files and dirty volumes are left alone.

load helper

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

R1=private.img.1@2021-01-01T00:00:01Z
R2=private.img.2@2021-01-02T00:00:02Z
R10=private.img.10@2021-01-10T00:00:10Z
L1=private.img@2018-01-02T03:04:05Z

# remove_setup KIND: $VM is a VM directory on KIND holding the volume $B:
# C, P, I, revisions 1, 2 and 10 (hard links of C and copies), a legacy
# revision and two temp files.
remove_setup() {
	fs_dir "$1"
	VM=$DIR/vm1
	B=$VM/private
	mkdir "$VM"
	printf CUR >"$B.img"
	cp "$B.img" "$B-precache.img"
	printf IMPORT >"$B-import.img"
	ln "$B.img" "$VM/$R1"
	printf TWO >"$VM/$R2"
	printf TEN >"$VM/$R10"
	printf OLD >"$VM/$L1"
	touch "$B.img~tmp1" "$VM/$R2~tmp2"
}

# The paths vol-remove prints for the files of remove_setup, in order.
remove_expected() {
	printf '%s\n' "$VM/$R1" "$VM/$R2" "$VM/$R10" "$VM/$L1" \
		"$VM/$R2~tmp2" "$B.img~tmp1" "$B-import.img" "$B-precache.img" \
		"$B.img"
}

teardown() {
	release_lock
}

removes_everything() {
	remove_setup "$1"
	run --separate-stderr vol-remove "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$(remove_expected)" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	[ ! -e "$VM" ]
	[ "$(files_in "$DIR")" = "" ]
}

@test "vol-remove: btrfs: every file goes, C last, then the empty directory" {
	removes_everything btrfs
}

@test "vol-remove: xfs: every file goes, C last, then the empty directory" {
	removes_everything xfs
}

@test "vol-remove: B.img is accepted for B" {
	remove_setup btrfs
	run vol-remove "$B.img"
	[ "$status" -eq 0 ]
	[ "$output" = "$(remove_expected)" ]
	[ ! -e "$VM" ]
}

@test "vol-remove: a foreign file and another volume keep the directory" {
	remove_setup xfs
	printf X >"$VM/notes.txt"
	printf X >"$VM/privatex.img"
	printf X >"$VM/privatex.img.1@2021-01-01T00:00:01Z"
	printf X >"$VM/privatex.img~tmp"
	printf X >"$VM/root.img"
	run vol-remove "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$(remove_expected)" ]
	[ "$(files_in "$VM")" = "notes.txt privatex.img privatex.img.1@2021-01-01T00:00:01Z privatex.img~tmp root.img" ]
}

@test "vol-remove: malformed revision names are kept with a warning, and keep the directory" {
	remove_setup btrfs
	printf X >"$VM/private.img.x@2018-01-02T03:04:05Z"
	printf X >"$VM/private.img.1@x@2018-01-02T03:04:05Z"
	run --separate-stderr vol-remove "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$(remove_expected)" ]
	[[ "$stderr" == *"vol-remove: $VM/private.img.x@2018-01-02T03:04:05Z: not removed"* ]]
	[ "$(files_in "$VM")" = "private.img.1@x@2018-01-02T03:04:05Z private.img.x@2018-01-02T03:04:05Z" ]
	run vol-remove -q "$B"
	[ "$status" -eq 66 ]
	[[ "$output" != *"not removed"* ]]
}

@test "vol-remove: a dirty volume exits 75 without -f and nothing is removed" {
	remove_setup btrfs
	printf DIRTY >"$B-dirty.img"
	before=$(files_in "$VM")
	run --separate-stderr vol-remove "$B"
	[ "$status" -eq 75 ]
	[ -z "$output" ]
	[[ "$stderr" == *"vol-remove: $B-dirty.img: the volume is dirty (a VM may be running)"* ]]
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-remove: -f removes a dirty volume, D just before C" {
	remove_setup xfs
	printf DIRTY >"$B-dirty.img"
	run vol-remove -f "$B"
	[ "$status" -eq 0 ]
	expected=$(remove_expected | sed '$d')
	[ "$output" = "$expected"$'\n'"$B-dirty.img"$'\n'"$B.img" ]
	[ ! -e "$VM" ]
}

@test "vol-remove: -n lists the same files and removes nothing" {
	remove_setup btrfs
	before=$(files_in "$VM")
	run vol-remove -n "$B"
	[ "$status" -eq 0 ]
	[ "$output" = "$(remove_expected)" ]
	[ "$(files_in "$VM")" = "$before" ]
	[ "$(cat "$B.img")" = CUR ]
}

@test "vol-remove: -n takes no lock, and still refuses a dirty volume without -f" {
	remove_setup btrfs
	printf DIRTY >"$B-dirty.img"
	before=$(files_in "$VM")
	hold_lock "$VM"
	run vol-remove -n -w 0 "$B"
	dirty_status=$status
	run vol-remove -n -f -w 0 "$B"
	release_lock
	[ "$dirty_status" -eq 75 ]
	[ "$status" -eq 0 ]
	[[ "$output" == *"$B-dirty.img"$'\n'"$B.img" ]]
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-remove: -w 0 exits 75 while another process holds the lock, and removes nothing" {
	remove_setup xfs
	before=$(files_in "$VM")
	hold_lock "$VM"
	run vol-remove -w 0 "$B"
	release_lock
	[ "$status" -eq 75 ]
	[[ "$output" == *busy* ]]
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-remove: a snapshot's C goes, its source's C keeps its inode and data" {
	remove_setup btrfs
	mkdir "$DIR/tpl"
	printf TEMPLATE >"$DIR/tpl/root.img"
	ln "$DIR/tpl/root.img" "$VM/root.img"
	run vol-remove "$VM/root"
	[ "$status" -eq 0 ]
	[ "$output" = "$VM/root.img" ]
	[ "$(stat -c %h "$DIR/tpl/root.img")" -eq 1 ]
	[ "$(cat "$DIR/tpl/root.img")" = TEMPLATE ]
	[ -e "$B.img" ]
}

@test "vol-remove: a volume with no files exits 66 and removes nothing, not even an empty directory" {
	fs_dir btrfs
	mkdir "$DIR/vm1"
	printf X >"$DIR/vm1/other.img"
	run vol-remove "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[[ "$output" == *"vol-remove: $DIR/vm1/private: no such volume"* ]]
	[ "$(files_in "$DIR/vm1")" = other.img ]
	# Not even an empty directory goes: a typo must not remove P/appvms.
	rm "$DIR/vm1/other.img"
	run vol-remove "$DIR/vm1/private"
	[ "$status" -eq 66 ]
	[ -d "$DIR/vm1" ]
}

@test "vol-remove: a VOLUME whose directory does not exist exits 66" {
	fs_dir xfs
	run vol-remove "$DIR/nope/private"
	[ "$status" -eq 66 ]
	run vol-remove -n "$DIR/nope/private"
	[ "$status" -eq 66 ]
	[ ! -e "$DIR/nope" ]
}

@test "vol-remove: C that is a directory exits 65 and nothing is removed" {
	remove_setup btrfs
	rm "$B.img"
	mkdir "$B.img"
	touch "$B.img/inside"
	before=$(files_in "$VM")
	run vol-remove -f "$B"
	[ "$status" -eq 65 ]
	[ "$(files_in "$VM")" = "$before" ]
	[ -e "$B.img/inside" ]
}

@test "vol-remove: C that is a symlink exits 65, nothing followed or removed" {
	remove_setup xfs
	mkdir "$DIR/other"
	printf OUTSIDE >"$DIR/other/private.img"
	rm "$B.img"
	ln -s ../other/private.img "$B.img"
	before=$(files_in "$VM")
	run vol-remove -f "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"symbolic link"* ]]
	[ -L "$B.img" ]
	[ "$(files_in "$VM")" = "$before" ]
	[ "$(cat "$DIR/other/private.img")" = OUTSIDE ]
}

@test "vol-remove: a revision that is a directory or symlink exits 65 and nothing is removed" {
	remove_setup btrfs
	mkdir "$VM/private.img.5@2021-01-05T00:00:05Z"
	before=$(files_in "$VM")
	run vol-remove "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"private.img.5@2021-01-05T00:00:05Z: not a regular file"* ]]
	[ "$(files_in "$VM")" = "$before" ]
	rmdir "$VM/private.img.5@2021-01-05T00:00:05Z"
	ln -s "$B-precache.img" "$VM/private.img.5@2021-01-05T00:00:05Z"
	run vol-remove "$B"
	[ "$status" -eq 65 ]
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-remove: usage errors exit 64 with usage on stderr and change nothing" {
	remove_setup btrfs
	before=$(files_in "$VM")
	for args in "" "-x $B" "$B extra" "-k 1 $B" "-w x $B" "-w -1 $B" \
		"--wait"; do
		# shellcheck disable=SC2086
		run --separate-stderr vol-remove $args
		echo "args: $args -> $status" >&2
		[ "$status" -eq 64 ]
		[ -z "$output" ]
		[[ "$stderr" == *"usage: vol-remove"* ]]
	done
	[ "$(files_in "$VM")" = "$before" ]
}

@test "vol-remove: --help prints the usage on stdout and exits 0" {
	run --separate-stderr vol-remove --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: vol-remove "* ]]
	[ -z "$stderr" ]
}

@test "vol-remove: each removal is logged with -v" {
	remove_setup btrfs
	run --separate-stderr vol-remove -v "$B"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"vol-remove: removed $B.img"* ]]
	[[ "$stderr" == *"vol-remove: removed directory $VM"* ]]
}

@test "vol-remove: the EXAMPLES of the man page work" {
	fs_dir btrfs
	cd "$DIR"
	mkdir vm1
	printf C >vm1/private.img
	touch vm1/private.img.1@2021-01-01T00:00:00Z vm1/private-precache.img
	printf D >vm1/volatile-dirty.img
	run_man_examples vol-remove.1
	[ ! -e vm1 ]
}
