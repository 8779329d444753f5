#!/usr/bin/env bats
# --progress: one stderr line, rewritten in place with "\r", for copies
# (never clones); by default only on a terminal and above 64 MiB.  script(1)
# gives the tool a pseudo-terminal; its output file is what the terminal
# showed, with the terminal's "\r\n" for each newline.

load helper

setup_file() {
	fs_setup btrfs ext4
}

teardown_file() {
	fs_teardown
}

# sparse_image FILE SIZE: a file of SIZE bytes that holds 4 KiB of data at
# each MiB boundary of its first 4 MiB and at its end: a large copy that
# fits a small filesystem.
sparse_image() {
	local mib
	truncate -s "$2" "$1"
	for mib in 0 1 2 3; do
		random_file "$BATS_TEST_TMPDIR/block" 4096
		dd if="$BATS_TEST_TMPDIR/block" of="$1" bs=4096 seek=$((mib * 256)) \
			conv=notrunc status=none
	done
	dd if="$BATS_TEST_TMPDIR/block" of="$1" bs=4096 seek=$(($(stat -c %s "$1") / 4096 - 1)) \
		conv=notrunc status=none
}

# on_terminal OUT COMMAND: runs COMMAND (a shell command line) with its
# stdin, stdout and stderr on a pseudo-terminal; what the terminal
# showed goes to OUT.  Returns COMMAND's status.
on_terminal() {
	local out=$1
	shift
	script -qec "$*" /dev/null </dev/null >"$out"
}

@test "progress: a 100 MiB copy on a terminal draws one line, rewritten, then a newline" {
	fs_dir ext4
	sparse_image "$DIR/src" 100M
	on_terminal "$DIR/tty" reflink-clone "$DIR/src" "$DIR/dst"
	cmp "$DIR/src" "$DIR/dst"
	# Each drawing starts with "\r"; the first is at the start, the last
	# is the whole copy, and only the end has a newline.
	[ "$(head -c 16 "$DIR/tty")" = $'\rreflink-clone: ' ]
	[ "$(grep -o $'\rreflink-clone: ' "$DIR/tty" | wc -l)" -ge 2 ]
	[ "$(tr -cd '\n' <"$DIR/tty" | wc -c)" -eq 1 ]
	[ "$(tail -c 2 "$DIR/tty" | od -An -c | tr -d ' ')" = '\r\n' ]
	last=$(tr '\r' '\n' <"$DIR/tty" | sed '/^$/d' | tail -n 1)
	[[ "$last" =~ ^"reflink-clone: 100.0 MiB / 100.0 MiB, "[0-9.]+" "[KMGT]?i?B/s", "[0-9]+:[0-9][0-9]" left" ]]
}

@test "progress: the same copy without a terminal prints nothing" {
	fs_dir ext4
	sparse_image "$DIR/src" 100M
	run --separate-stderr reflink-clone "$DIR/src" "$DIR/dst"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	[ -z "$stderr" ]
	cmp "$DIR/src" "$DIR/dst"
}

@test "progress: --progress without a terminal draws the line on stderr only" {
	fs_dir ext4
	sparse_image "$DIR/src" 100M
	reflink-clone --progress "$DIR/src" "$DIR/dst" >"$DIR/out" 2>"$DIR/err"
	[ ! -s "$DIR/out" ]
	[ "$(head -c 1 "$DIR/err")" = $'\r' ]
	[ "$(tail -c 1 "$DIR/err" | od -An -c | tr -d ' ')" = '\n' ]
	[ "$(tr -cd '\n' <"$DIR/err" | wc -c)" -eq 1 ]
	grep -q 'reflink-clone: 100.0 MiB / 100.0 MiB, ' "$DIR/err"
}

@test "progress: a copy of 64 MiB or less stays silent on a terminal" {
	fs_dir ext4
	sparse_image "$DIR/src" 64M
	on_terminal "$DIR/tty" reflink-clone "$DIR/src" "$DIR/dst"
	cmp "$DIR/src" "$DIR/dst"
	[ ! -s "$DIR/tty" ]
}

@test "progress: a clone on btrfs never draws the line, even with --progress" {
	fs_dir btrfs
	sparse_image "$DIR/src" 100M
	on_terminal "$DIR/tty" reflink-clone --progress "$DIR/src" "$DIR/dst"
	extents_shared "$DIR/dst"
	[ ! -s "$DIR/tty" ]
	on_terminal "$DIR/tty" reflink-clone "$DIR/src" "$DIR/dst2"
	[ ! -s "$DIR/tty" ]
}

@test "progress: a forced copy on btrfs draws the line" {
	fs_dir btrfs
	sparse_image "$DIR/src" 100M
	on_terminal "$DIR/tty" reflink-clone --reflink=never "$DIR/src" "$DIR/dst"
	extents_unshared "$DIR/dst"
	grep -q 'reflink-clone: 100.0 MiB / 100.0 MiB, ' "$DIR/tty"
}

@test "progress: stdout keeps only its data while stderr is a terminal" {
	fs_dir ext4
	B=$DIR/vm1/private
	mkdir "$DIR/vm1"
	sparse_image "$B.img" 100M
	chmod 600 "$B.img"
	on_terminal "$DIR/tty" vol-start "$B" ">$DIR/out"
	[ "$(cat "$DIR/out")" = "$B-dirty.img" ]
	cmp "$B.img" "$B-dirty.img"
	grep -q 'vol-start: 100.0 MiB / 100.0 MiB, ' "$DIR/tty"
	run ! grep -q 'dirty.img' "$DIR/tty"
}

@test "progress: an import from a pipe shows bytes and rate, no total" {
	fs_dir ext4
	B=$DIR/vm1/private
	mkdir "$DIR/vm1"
	on_terminal "$DIR/tty" "head -c 70M /dev/zero | vol-import $B"
	[ "$(stat -c %s "$B.img")" -eq $((70 << 20)) ]
	first=$(tr '\r' '\n' <"$DIR/tty" | sed '/^$/d' | head -n 1)
	[[ "$first" =~ ^"vol-import: "[0-9.]+" MiB, "[0-9.]+" "[KMGT]?i?B/s$ ]]
	# A line shorter than the one before it ends in blanks that erase it.
	tr '\r' '\n' <"$DIR/tty" | grep -qx 'vol-import: 70.0 MiB, .*B/s *'
}

@test "progress: an import from a pipe of 64 MiB or less stays silent" {
	fs_dir ext4
	B=$DIR/vm1/private
	mkdir "$DIR/vm1"
	on_terminal "$DIR/tty" "head -c 60M /dev/zero | vol-import $B"
	[ "$(stat -c %s "$B.img")" -eq $((60 << 20)) ]
	run ! grep -q 'vol-import: [0-9]' "$DIR/tty"
}

@test "progress: a failing copy ends the line before the error message" {
	fs_dir ext4
	sparse_image "$DIR/src" 100M
	run strace -f -o "$DIR/trace" -P "$DIR/src" -e trace=pread64 \
		-e inject=pread64:error=EIO:when=2 \
		reflink-clone --progress "$DIR/src" "$DIR/dst"
	[ "$status" -eq 74 ]
	[[ "$output" == *$'\n'"reflink-clone: $DIR/src: Input/output error"* ]]
	run ! grep -q '100.0 MiB / 100.0 MiB' <<<"$output"
	[ ! -e "$DIR/dst" ]
	no_temp_files "$DIR"
}
