#!/usr/bin/env bats
# Hostile input: every tool against missing and extra operands, unknown
# options, bad SIZE and -k values, odd and overlong paths, the volume's
# files being of the wrong kind, and junk that only looks like revisions.
#
# Most cases are lines of a table run by run_table (see there): one line,
# one case, and a failing case is named by its line in the output.  A case
# that must fail has to exit with the documented status, say what is wrong
# on stderr, and change nothing at all: the whole scratch tree (the volume,
# its VM directory, a sibling VM directory and the targets of symlinks
# outside the pool) is compared before and after.

# The tables hold command lines in single quotes on purpose: run_table
# expands them for each case.
# shellcheck disable=SC2016

load helper

setup_file() {
	fs_setup btrfs
	# Without btrfs (not root) the tools still run, copying instead of
	# cloning; only the device-node cases need root.
	ROOT=${FS_btrfs:-$BATS_FILE_TMPDIR}/hostile
	export ROOT
	mkdir -p "$ROOT"
	world_make "$ROOT/template"
}

teardown_file() {
	fs_teardown
}

# A small image file holding TEXT, mode 0600, with a fixed mtime.
image_make() {
	head -c 65536 /dev/zero >"$1"
	printf '%s' "$2" | dd of="$1" conv=notrunc status=none
	chmod 600 "$1"
	touch -d "${3:-2024-01-02 03:04:05 UTC}" "$1"
}

# The scratch tree every case starts from:
#   pool/appvms/vm1/    the volume "private" (C, P, revisions 1 and 2),
#                       another volume "root", and a foreign file
#   pool/appvms/vm2/    a sibling volume, the source for -S
#   pool/appvms/dangling  a symlink to outside/newdir, which does not exist
#   outside/            what symlinks point at
world_make() {
	local w=$1 vm=$1/pool/appvms/vm1 sib=$1/pool/appvms/vm2
	mkdir -p "$vm" "$sib" "$w/outside/dir"
	image_make "$vm/private.img" CLEAN
	cp --reflink=auto -p "$vm/private.img" "$vm/private-precache.img"
	image_make "$vm/private.img.1@2020-01-01T00:00:00Z" REV1 '2020-01-01 UTC'
	image_make "$vm/private.img.2@2020-02-01T00:00:00Z" REV2 '2020-02-01 UTC'
	image_make "$vm/root.img" ROOT
	echo "not an image" >"$vm/private.img.bak"
	image_make "$sib/private.img" SIBLING
	image_make "$w/outside/target.img" TARGET
	echo "outside" >"$w/outside/dir/file"
	# A VM directory that is a symlink to a directory not yet made.
	ln -s ../../outside/newdir "$w/pool/appvms/dangling"
}

# world_fresh NAME: a copy of the template as $W, with the names every
# table line may use:
#   $V  the volume, $VM its directory, $R1 $R2 its revisions
#   $S  the sibling volume, $N a volume in a VM directory not yet made
#   $O  the outside directory
# shellcheck disable=SC2034 # the tables use them through eval
world_fresh() {
	W=$ROOT/$1
	rm -rf "$W"
	cp -a --reflink=auto "$ROOT/template" "$W"
	VM=$W/pool/appvms/vm1
	V=$VM/private
	R1=$VM/private.img.1@2020-01-01T00:00:00Z
	R2=$VM/private.img.2@2020-02-01T00:00:00Z
	S=$W/pool/appvms/vm2/private
	N=$W/pool/appvms/vm3/new
	O=$W/outside
}

# make_kind KIND PATH: replaces PATH by a file of the wrong KIND.
make_kind() {
	rm -f "$2"
	case $1 in
	symlink) ln -s "$O/target.img" "$2" ;;
	dangling) ln -s "$O/missing.img" "$2" ;;
	dir) mkdir "$2" ;;
	fifo) mkfifo "$2" ;;
	dev) mknod "$2" c 1 3 ;;
	*) return 1 ;;
	esac
}

# setup_apply STEP...: prepares the case.  A step is "dirty" (a regular
# D), "none", or FILE:KIND with FILE one of C D P R2 and KIND as make_kind.
setup_apply() {
	local step file kind path
	for step in "$@"; do
		case $step in
		none) ;;
		dirty) image_make "$V-dirty.img" DIRTY '2024-05-06 UTC' ;;
		*:*)
			file=${step%%:*} kind=${step#*:}
			case $file in
			C) path=$V.img ;;
			D) path=$V-dirty.img ;;
			P) path=$V-precache.img ;;
			R2) path=$R2 ;;
			*) return 1 ;;
			esac
			make_kind "$kind" "$path" || return 1
			;;
		*) return 1 ;;
		esac
	done
}

# run_table: runs the cases on standard input, one per line:
#   STATUS | SETUP | MESSAGE | COMMAND
# STATUS is the exit status the case must have; SETUP is a list of
# setup_apply steps; MESSAGE an extended regular expression stderr must
# match (case-insensitive); COMMAND a shell-quoted command line, in which
# $V, $S, $N, $R1, $R2, $VM, $W and $O may be used.  Each case runs on a
# fresh tree with standard input from /dev/null and a time limit of 3 s
# (a hang is a failure).  A failing case (status > 0) must leave the
# whole tree as it was.  With the argument "usage", status 64 must also
# print the usage (DESIGN.md section 4, "Bad input").  Prints every
# failing case and returns 1 if there was any.
run_table() {
	local want_usage=${1:-}
	local line expected setup message command case_number=0 failures=0
	local -a words steps
	local status stderr before after reason rest
	shopt -s nocasematch
	while IFS= read -r line; do
		[[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
		case_number=$((case_number + 1))
		# The message may hold "|" (alternatives), the others never.
		expected=${line%%|*} rest=${line#*|}
		setup=${rest%%|*} rest=${rest#*|}
		command=${rest##*|} message=${rest%|*}
		expected=${expected//[[:space:]]/}
		message=$(echo "$message" | sed 's/^ *//; s/ *$//')
		read -ra steps <<<"$setup"
		world_fresh "case$case_number"
		reason=
		if ! setup_apply "${steps[@]}"; then
			reason="bad setup"
		else
			eval "words=($command)"
			before=$(dir_state -r "$W")
			status=0
			timeout 3 "${words[@]}" </dev/null >"$W.out" 2>"$W.err" || status=$?
			stderr=$(cat "$W.err")
			after=$(dir_state -r "$W")
			if [ "$status" -eq 124 ]; then
				reason="hung (killed after 3 s)"
			elif [ "$status" -ne "$expected" ]; then
				reason="exit status $status, expected $expected"
			elif ! [[ "$stderr" =~ $message ]]; then
				reason="stderr does not match /$message/"
			elif [ "$want_usage" = usage ] && [ "$expected" -eq 64 ] && ! [[ "$stderr" == *"usage: ${words[0]}"* ]]; then
				reason="no usage on stderr"
			elif [ "$expected" -gt 1 ] && [ "$before" != "$after" ]; then
				reason="files changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -4 | tr '\n' ' ')"
			fi
		fi
		if [ -n "$reason" ]; then
			failures=$((failures + 1))
			printf 'FAILED case %d: %s\n  %s\n  stderr: %s\n' "$case_number" \
				"$(echo "$line" | tr -s ' \t' ' ')" "$reason" \
				"$(head -c 300 "$W.err" 2>/dev/null | tr '\n' ' ')"
		fi
		rm -rf "$W" "$W.out" "$W.err"
	done
	shopt -u nocasematch
	echo "$case_number cases, $failures failed"
	echo "# $case_number cases, $failures failed" >&3
	[ "$case_number" -gt 0 ] && [ "$failures" -eq 0 ]
}

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "device nodes need root"
}

@test "hostile: missing and extra operands, unknown options: 64 and the usage" {
	run_table usage <<'EOF'
64 | none | missing operand   | reflink-clone
64 | none | missing operand   | reflink-clone "$V.img"
64 | none | extra operand     | reflink-clone "$V.img" "$O/x" "$O/y"
64 | none | invalid option    | reflink-clone -Z "$V.img" "$O/x"
64 | none | unrecognized      | reflink-clone --bogus "$V.img" "$O/x"
64 | none | invalid --reflink | reflink-clone --reflink=sometimes "$V.img" "$O/x"
64 | none | missing operand   | vol-create -s 1M
64 | none | extra operand     | vol-create -s 1M "$N" "$V"
64 | none | invalid option    | vol-create -Z -s 1M "$N"
64 | none | unrecognized      | vol-create --bogus -s 1M "$N"
64 | none | size              | vol-create "$N"
64 | none | missing operand   | vol-import
64 | none | extra operand     | vol-import "$N" "$V.img" "$V.img"
64 | none | invalid option    | vol-import -Z "$N" "$V.img"
64 | none | unrecognized      | vol-import --bogus "$N" "$V.img"
64 | none | missing operand   | vol-start
64 | none | extra operand     | vol-start "$V" "$S"
64 | none | invalid option    | vol-start -Z "$V"
64 | none | unrecognized      | vol-start --bogus "$V"
64 | none | usage             | vol-start -k 1 -S "$S" "$V"
64 | none | usage             | vol-start -s 1M "$V"
64 | none | usage             | vol-start --volatile "$N"
64 | none | missing operand   | vol-commit
64 | none | extra operand     | vol-commit "$V" "$S"
64 | none | invalid option    | vol-commit -Z "$V"
64 | none | unrecognized      | vol-commit --bogus "$V"
64 | none | missing operand   | vol-discard
64 | none | extra operand     | vol-discard "$V" "$S"
64 | none | invalid option    | vol-discard -Z "$V"
64 | none | unrecognized      | vol-discard --bogus "$V"
64 | none | missing operand   | vol-revert
64 | none | extra operand     | vol-revert "$V" "$S"
64 | none | invalid option    | vol-revert -Z "$V"
64 | none | unrecognized      | vol-revert --bogus "$V"
64 | none | invalid revision  | vol-revert -r 1x "$V"
64 | none | invalid revision  | vol-revert -r '' "$V"
64 | none | invalid revision  | vol-revert -r -1 "$V"
64 | none | missing operand   | vol-prune
64 | none | invalid option    | vol-prune -Z "$V"
64 | none | unrecognized      | vol-prune --bogus "$V"
64 | none | invalid --keep-daily value | vol-prune --keep-daily x "$V"
64 | none | invalid --keep-hourly value | vol-prune --keep-hourly -1 "$V"
64 | none | invalid --keep-yearly value | vol-prune --keep-yearly 2147483648 "$V"
64 | none | requires an argument | vol-prune --keep-monthly
64 | none | missing operand   | vol-pin -r 1
64 | none | extra operand     | vol-pin -r 1 "$V" "$S"
64 | none | missing -r        | vol-pin "$V"
64 | none | missing -r        | vol-pin -u "$V"
64 | none | invalid option    | vol-pin -Z -r 1 "$V"
64 | none | unrecognized      | vol-pin --bogus -r 1 "$V"
64 | none | invalid revision  | vol-pin -r 1x "$V"
64 | none | invalid revision  | vol-pin -r '' "$V"
64 | none | invalid revision  | vol-pin -r -1 "$V"
64 | none | invalid -w        | vol-pin -w soon -r 1 "$V"
64 | none | missing operand   | vol-resize -s 1M
64 | none | extra operand     | vol-resize -s 1M "$V" "$S"
64 | none | invalid option    | vol-resize -Z -s 1M "$V"
64 | none | unrecognized      | vol-resize --bogus -s 1M "$V"
64 | none | -s SIZE           | vol-resize "$V"
64 | none | missing operand   | vol-remove
64 | none | extra operand     | vol-remove "$V" "$S"
64 | none | invalid option    | vol-remove -Z "$V"
64 | none | unrecognized      | vol-remove --bogus "$V"
64 | none | missing operand   | vol-export
64 | none | extra operand     | vol-export "$V" "$S"
64 | none | invalid option    | vol-export -Z "$V"
64 | none | unrecognized      | vol-export --bogus "$V"
64 | none | missing operand   | vol-receive
64 | none | extra operand     | vol-receive "$V" "$S"
64 | none | invalid option    | vol-receive -Z "$V"
64 | none | unrecognized      | vol-receive --bogus "$V"
64 | none | missing operand   | vol-snapshot
64 | none | extra operand     | vol-snapshot "$V" "$S"
64 | none | invalid option    | vol-snapshot -Z "$V"
64 | none | unrecognized      | vol-snapshot --bogus "$V"
64 | none | invalid -w        | vol-snapshot -w soon "$V"
64 | dirty | invalid -k value | vol-snapshot -k 0 "$V"
64 | dirty | invalid -k value | vol-snapshot -k -1 "$V"
64 | none | invalid -w        | vol-receive -w soon "$V"
64 | none | missing operand   | vol-precache
64 | none | invalid option    | vol-precache -Z "$V"
64 | none | unrecognized      | vol-precache --bogus "$V"
64 | none | invalid -w        | vol-precache -w soon "$V"
64 | none | invalid --precache | vol-commit --precache=soon "$V"
64 | none | invalid --precache | vol-create --precache= -s 1M "$N"
64 | none | invalid --precache | vol-receive --precache=LATER "$V"
64 | none | missing operand   | vol-info
64 | none | invalid option    | vol-info -Z "$V"
64 | none | unrecognized      | vol-info --bogus "$V"
64 | none | invalid -t        | vol-info -t running "$V"
64 | none | invalid -w        | vol-commit -w soon "$V"
64 | none | invalid -w        | vol-prune -w -1 "$V"
64 | none | missing operand   | pool-check
64 | none | extra operand     | pool-check "$W/pool" "$W/pool"
64 | none | invalid option    | pool-check -Z "$W/pool"
64 | none | unrecognized      | pool-check --bogus "$W/pool"
64 | none | invalid --fragmented | pool-check --fragmented=-1 "$W/pool"
64 | none | missing operand   | vol-list
64 | none | invalid option    | vol-list -Z "$W/pool"
64 | none | unrecognized      | vol-list --bogus "$W/pool"
EOF
}

# The SIZE values that must be refused, and every place a SIZE is taken.
BAD_SIZES=('' 12Q -5 1e3 99999999999999999999 16E 1KB 1.5M ' 1M' '1M ' 0x10 8388608T)
SIZE_COMMANDS=(
	'reflink-clone -s %s "$V.img" "$O/copy.img"'
	'vol-create -s %s "$N"'
	'vol-import -s %s "$N" "$V.img"'
	'vol-start --volatile -s %s "$N"'
	'vol-resize -s %s "$V"'
	'vol-resize -s +%s "$V"'
)

@test "hostile: bad SIZE values: 64, \"invalid size\", nothing made" {
	local value command
	for command in "${SIZE_COMMANDS[@]}"; do
		for value in "${BAD_SIZES[@]}"; do
			# shellcheck disable=SC2059 # the commands are formats
			printf "64 | none | invalid size | $command\n" "$(printf '%q' "$value")"
		done
	done >"$BATS_TEST_TMPDIR/table"
	run_table usage <"$BATS_TEST_TMPDIR/table"
}

BAD_KEEPS=(-2 x 99999999999 '' 1.0 ' 1' -1x 2147483648)
KEEP_COMMANDS=(
	'vol-create -k %s -s 1M "$N"'
	'vol-import -k %s "$N" "$V.img"'
	'vol-start -k %s "$V"'
	'vol-commit -k %s "$V"'
	'vol-revert -k %s "$V"'
	'vol-prune -k %s "$V"'
	'vol-resize -k %s -f -s 32K "$V"'
	'vol-receive -k %s "$V"'
	'vol-snapshot -k %s "$V"'
)

@test "hostile: bad -k values: 64, \"invalid -k value\", nothing changed" {
	local value command
	for command in "${KEEP_COMMANDS[@]}"; do
		for value in "${BAD_KEEPS[@]}"; do
			# shellcheck disable=SC2059 # the commands are formats
			printf "64 | dirty | invalid -k value | $command\n" "$(printf '%q' "$value")"
		done
	done >"$BATS_TEST_TMPDIR/table"
	run_table usage <"$BATS_TEST_TMPDIR/table"
}

# Every tool that opens a volume, as it is called on a stopped one.
VOLUME_COMMANDS=(
	'vol-create -f -s 1M "$V"'
	'vol-import "$V"'
	'vol-start "$V"'
	'vol-start -k -1 "$V"'
	'vol-start -S "$S" "$V"'
	'vol-start --volatile -s 1M "$V"'
	'vol-commit "$V"'
	'vol-commit -k 0 "$V"'
	'vol-commit --from "$R1" "$V"'
	'vol-commit --precache=later "$V"'
	'vol-precache "$V"'
	'vol-discard "$V"'
	'vol-discard -S "$S" "$V"'
	'vol-revert -r 1 "$V"'
	'vol-prune -k 0 "$V"'
	'vol-prune -n -k 0 "$V"'
	'vol-resize -f -s 32K "$V"'
	'vol-remove -f "$V"'
	'vol-info "$V"'
	'vol-info -t clean "$V"'
	'vol-info -u -r "$V"'
	'vol-prune -u -k 0 "$V"'
	'vol-prune -n -k 0 --keep-daily 1 "$V"'
	'vol-pin -r 1 "$V"'
	'vol-pin -u -r 1 "$V"'
	'vol-export "$V"'
	'vol-export -r 1 "$V"'
	'vol-export -i 1 "$V"'
	'vol-snapshot "$V"'
)

# clean_dirty_precache_table KIND...: for C, D and P of each KIND, every
# volume command: 65 and a message that names the file.
clean_dirty_precache_table() {
	local kind file name command
	for kind in "$@"; do
		for file in C D P; do
			case $file in
			C) name='private\.img' ;;
			D) name='private-dirty\.img' ;;
			P) name='private-precache\.img' ;;
			esac
			for command in "${VOLUME_COMMANDS[@]}"; do
				echo "65 | $file:$kind | $name: .*(symbolic link|not a regular file) | $command"
			done
		done
	done
}

@test "hostile: C, D or P a symlink: 65, not followed" {
	clean_dirty_precache_table symlink >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

@test "hostile: C, D or P a directory or a FIFO: 65, nothing changed" {
	clean_dirty_precache_table dir fifo >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

@test "hostile: C, D or P a device node: 65, nothing changed" {
	need_root
	clean_dirty_precache_table dev >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

# Every command that acts on revision 2 (listing, pruning, reverting to it,
# removing it).  The man pages give 65 for "a file where an image belongs"
# being a symlink, a directory or another non-regular file.
REVISION_COMMANDS=(
	'65 | dirty | vol-commit -k 1 "$V"'
	'65 | dirty | vol-commit -k 0 "$V"'
	'65 | none  | vol-revert -r 2 "$V"'
	'65 | none  | vol-revert "$V"'
	'65 | none  | vol-prune -k 0 "$V"'
	'65 | none  | vol-prune -k 0 --keep-weekly 2 "$V"'
	'65 | none  | vol-pin -r 1 "$V"'
	'65 | none  | vol-start -k -1 "$V"'
	'65 | none  | vol-create -f -s 1M "$V"'
	'65 | none  | vol-remove "$V"'
	'65 | none  | vol-info -r "$V"'
	'65 | none  | vol-export -r 2 "$V"'
	'65 | none  | vol-export -i 2 "$V"'
	'65 | dirty | vol-snapshot "$V"'
)

revision_table() {
	local kind entry status setup command
	for kind in "$@"; do
		for entry in "${REVISION_COMMANDS[@]}"; do
			IFS='|' read -r status setup command <<<"$entry"
			echo "$status | $setup R2:$kind | private\.img\.2@2020-02-01T00:00:00Z | $command"
		done
	done
}

@test "hostile: a revision a symlink (to a file, or dangling): 65, not followed" {
	revision_table symlink dangling >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

@test "hostile: a revision a directory or a FIFO: 65, nothing changed" {
	revision_table dir fifo >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

@test "hostile: a revision a device node: 65, nothing changed" {
	need_root
	revision_table dev >"$BATS_TEST_TMPDIR/table"
	run_table <"$BATS_TEST_TMPDIR/table"
}

@test "hostile: reflink-clone SRC or DST of the wrong kind" {
	run_table <<'EOF'
65 | none | not a regular file     | reflink-clone "$VM" "$O/copy.img"
65 | none | not a regular file     | reflink-clone /dev/null "$O/copy.img"
65 | P:fifo | not a regular file   | reflink-clone "$V-precache.img" "$O/copy.img"
65 | none | is a directory         | reflink-clone "$V.img" "$O/dir"
65 | none | is a directory         | reflink-clone "$V.img" "$O/dir/"
65 | none | is a directory         | reflink-clone "$V.img" "$O/dir/.."
66 | none | No such file           | reflink-clone "$O/missing.img" "$O/copy.img"
66 | none | No such file           | reflink-clone "$V.img" "$O/no/such/dir/copy.img"
73 | none | already exists         | reflink-clone -n "$V.img" "$V.img"
73 | none | already exists         | reflink-clone -n "$V.img" "$R1"
EOF
}

@test "hostile: reflink-clone replaces a DST symlink, FIFO or device, never writes through it" {
	need_root
	world_fresh clone-dst
	outside=$(dir_state -r "$O")
	for kind in symlink dangling fifo dev; do
		make_kind "$kind" "$VM/dst-$kind"
		run reflink-clone "$V.img" "$VM/dst-$kind"
		[ "$status" -eq 0 ] || { echo "$kind: status $status: $output"; false; }
		[ -f "$VM/dst-$kind" ] && [ ! -L "$VM/dst-$kind" ]
		cmp "$V.img" "$VM/dst-$kind"
	done
	[ "$(dir_state -r "$O")" = "$outside" ]
	[ ! -e "$O/missing.img" ]
}

@test "hostile: odd paths: bad names, too long, a dangling symlinked VM directory" {
	long_base=$(printf 'b%.0s' {1..250})
	long_dir=$(printf '/%s' "$(printf 'd%.0s' {1..200})"{1..21})
	run_table <<EOF
64 | none | not a volume name | vol-create -s 1M "\$VM/.."
64 | none | not a volume name | vol-create -s 1M "\$VM/."
64 | none | not a volume name | vol-start "\$VM/"
64 | none | not a volume name | vol-info "\$VM/"
64 | none | not a volume name | vol-remove -f "\$W/pool/appvms/.."
64 | none | too long          | vol-create -s 1M "\$VM/$long_base"
64 | none | too long          | vol-info "\$VM/$long_base"
65 | none | too long          | vol-create -s 1M "\$W$long_dir/private"
65 | none | too long          | vol-info "\$W$long_dir/private"
66 | none | no such           | vol-info "\$W/pool/appvms/dangling/private"
66 | none | no such           | vol-start "\$W/pool/appvms/dangling/private"
66 | none | no such           | vol-commit "\$W/pool/appvms/dangling/private"
66 | none | no such           | vol-precache "\$W/pool/appvms/dangling/private"
66 | none | no such           | vol-remove -f "\$W/pool/appvms/dangling/private"
66 | none | no such           | vol-snapshot "\$W/pool/appvms/dangling/private"
73 | none | exists            | vol-create -s 1M "\$W/pool/appvms/dangling/private"
73 | none | exists            | vol-import "\$W/pool/appvms/dangling/private" "\$V.img"
73 | none | exists            | vol-start --volatile -s 1M "\$W/pool/appvms/dangling/private"
73 | none | exists            | reflink-clone "\$V.img" "\$W/pool/appvms/dangling/x.img"
66 | none | no such           | vol-list "\$W/pool/appvms/dangling"
65 | none | not a directory   | vol-list -r "\$V.img"
EOF
}

# odd_lifecycle PATH: the whole life of a volume at PATH, each step checked.
odd_lifecycle() {
	local v=$1 d
	vol-create -s 64K "$v"
	[ -f "$v.img" ] && [ -f "$v-precache.img" ]
	d=$(vol-start "$v")
	[ "$d" = "$v-dirty.img" ]
	printf ONE | dd of="$d" conv=notrunc status=none
	vol-commit -k 2 --precache=later "$v"
	[ "$(head_bytes "$v.img" 3)" = ONE ] && [ ! -e "$v-precache.img" ]
	vol-precache "$v"
	cmp "$v.img" "$v-precache.img"
	# The TAB-separated lines cannot carry a newline; JSON can.
	if [[ "$v" != *$'\n'* ]]; then
		[ "$(vol-info "$v" | sed -n 's/^path\t//p')" = "$v.img" ]
		[ "$(vol-info -r "$v" | cut -f1)" = 1 ]
	fi
	vol-info -j -r "$v" | python3 -c '
import json, sys
info = json.load(sys.stdin)[0]
assert info["path"] == sys.argv[1] + ".img", info["path"]
assert [r["id"] for r in info["revision_list"]] == [1], info
assert info["revision_list"][0]["path"].startswith(sys.argv[1] + ".img.1@")
' "$v"
	vol-info -t clean "$v"
	vol-revert "$v"
	[ "$(head_bytes "$v.img" 3 | tr -d '\0')" = "" ]
	vol-resize -s 128K "$v"
	[ "$(stat -c %s "$v.img")" -eq 131072 ]
	vol-prune -k 0 "$v" >/dev/null
	[ -z "$(vol-info -r "$v")" ]
	vol-start -S "$v" "$v-snap" >/dev/null
	[ -f "$v-snap-dirty.img" ]
	vol-discard -S "$v" "$v-snap"
	[ ! -e "$v-snap.img" ] && [ ! -e "$v-snap-dirty.img" ]
	vol-remove "$v" >/dev/null
	[ ! -e "$v.img" ] && [ ! -e "$v-precache.img" ]
}

@test "hostile: names with spaces, newlines, quotes, UTF-8, globs work in every tool" {
	world_fresh odd-names
	outside=$(dir_state -r "$O")
	sibling=$(dir_state -r "$W/pool/appvms/vm2")
	names=('a b' $'new\nline' $'tab\there' "q'uo\"te" 'ütf-8 ☃ ü' '-dash' 'back\slash' '$(touch x)*?[' ' lead' 'trail ')
	for name in "${names[@]}"; do
		odd_lifecycle "$VM/$name" || {
			printf 'failed for the name %q\n' "$name"
			false
		}
	done
	# Only the files of those volumes came and went.
	[ "$(files_in "$VM")" = "$(files_in "$ROOT/template/pool/appvms/vm1")" ]
	[ "$(dir_state -r "$O")" = "$outside" ]
	[ "$(dir_state -r "$W/pool/appvms/vm2")" = "$sibling" ]
	[ ! -e "$VM/x" ] && [ ! -e x ]
}

@test "hostile: a VM directory whose name is odd, and a path of 4000 bytes, work" {
	world_fresh odd-dirs
	odd_lifecycle "$W/pool/appvms/vm ü \"'"$'\n'"x/private"
	# Components of 100 bytes up to 3800-3900 bytes, then a base name
	# short enough for revision names (see the long base name test).
	long=$W
	while [ ${#long} -lt 3800 ]; do
		long=$long/$(printf 'd%.0s' {1..100})
	done
	mkdir -p "$long"
	v=$long/$(printf 'v%.0s' $(seq $((4000 - ${#long} - 1))))
	[ ${#v} -eq 4000 ]
	odd_lifecycle "$v"
}

@test "hostile: .. components and a symlinked VM directory reach the right volume" {
	world_fresh dotdot
	ln -s pool/appvms/vm1 "$W/vm1-link"
	sibling=$(dir_state -r "$W/pool/appvms/vm2")
	outside=$(dir_state -r "$O")
	via_dots=$W/pool/appvms/vm2/../vm1/private
	via_link=$W/vm1-link/private
	d=$(vol-start "$via_dots")
	[ "$d" = "$via_dots-dirty.img" ]
	[ -f "$V-dirty.img" ]
	printf DOTS | dd of="$d" conv=notrunc status=none
	vol-commit -k 5 "$via_link"
	[ "$(head_bytes "$V.img")" = DOTS ]
	[ "$(vol-info -r "$via_link" | cut -f1 | tr '\n' ' ')" = "1 2 3 " ]
	vol-revert -r 3 "$via_dots"
	[ "$(head_bytes "$V.img" 5)" = CLEAN ]
	[ -L "$W/vm1-link" ]
	[ "$(dir_state -r "$W/pool/appvms/vm2")" = "$sibling" ]
	[ "$(dir_state -r "$O")" = "$outside" ]
	# vol-remove of a volume reached through a symlink removes its files
	# but never the symlink nor the directory it points to by another name.
	vol-remove -f "$via_link" >/dev/null
	[ ! -e "$V.img" ] && [ -d "$VM" ] && [ -L "$W/vm1-link" ]
}

@test "hostile: revision-like junk names never make a tool fail, and survive it" {
	world_fresh junk
	junk=(
		'private.img.+1@2020-01-01T00:00:00Z'
		'private.img.-1@2020-01-01T00:00:00Z'
		'private.img. 1@2020-01-01T00:00:00Z'
		'private.img.1 @2020-01-01T00:00:00Z'
		'private.img.1_0@2020-01-01T00:00:00Z'
		'private.img._1@2020-01-01T00:00:00Z'
		'private.img.1@@2020-01-01T00:00:00Z'
		'private.img.1@2020-01-01T00:00:00Z@1'
		'private.img.1@x@2020-01-01T00:00:00Z'
		'private.img.9@2018-02-30T00:00:00Z'
		'private.img.9@2018-01-01T24:00:00Z'
		'private.img.9@2018-01-01T00:00:60Z'
		'private.img.9@2018-1-01T00:00:00Z'
		'private.img.9@2018-01-01 00:00:00Z'
		'private.img.18446744073709551616@2020-01-01T00:00:00Z'
		'private.img.99999999999999999999999@2020-01-01T00:00:00Z'
		'private.img.1@2020-01-01T00:00:00Z~'
		'private.img@2018-02-30T00:00:00Z'
		'private.img.@2020-01-01T00:00:00Z'
	)
	for name in "${junk[@]}"; do
		echo junk >"$VM/$name"
	done
	junk_state=$(cd "$VM" && for name in "${junk[@]}"; do stat -c '%n %i %s %Y' -- "$name"; done)
	d=$(vol-start "$V")
	printf NEW | dd of="$d" conv=notrunc status=none
	vol-commit -k 1 "$V"
	[ "$(vol-info -r "$V" | cut -f1)" = 3 ]
	run vol-revert -r 9 "$V"
	[ "$status" -eq 66 ]
	run vol-revert -r 18446744073709551616 "$V"
	[ "$status" -eq 66 ]
	vol-revert "$V"
	vol-prune -k 0 "$V" >/dev/null
	[ -z "$(vol-info -r "$V")" ]
	vol-start -k -1 "$V" >/dev/null
	vol-commit -k -1 "$V"
	vol-create -f -s 64K "$V"
	run vol-remove "$V"
	[ "$status" -eq 0 ]
	[ "$(cd "$VM" && for name in "${junk[@]}"; do stat -c '%n %i %s %Y' -- "$name"; done)" = "$junk_state" ]
	[ ! -e "$V.img" ]
}

@test "hostile: every volume vol-create accepts can be committed (a long base name)" {
	world_fresh long-base
	# 235 bytes: B-precache.img fits NAME_MAX, B.img.1@...Z (263) does not.
	v=$VM/$(printf 'b%.0s' {1..235})
	if ! vol-create -s 64K "$v"; then
		return 0 # refusing such a base name is fine
	fi
	vol-start "$v" >/dev/null
	run vol-commit "$v"
	[ "$status" -eq 0 ] || {
		echo "vol-create made $v, but vol-commit fails ($status): $output"
		false
	}
}

# Names that need escaping (printf %b formats), and how text output shows
# them: control characters, the backslash and bytes that are not valid
# UTF-8 (bad bytes, an overlong form, a surrogate, a cut sequence) as C
# escapes; valid UTF-8 as it is.
escape_table() {
	cat <<'TABLE'
new\nline               | new\nline
tab\there               | tab\there
cr\rreturn              | cr\x0dreturn
bell\a                  | bell\x07
esc\x1b[31mred          | esc\x1b[31mred
del\x7f                 | del\x7f
c1\xc2\x9bcsi           | c1\xc2\x9bcsi
back\\slash             | back\\slash
not-utf8\xff\xfe        | not-utf8\xff\xfe
overlong\xc0\xaf        | overlong\xc0\xaf
surrogate\xed\xa0\x80   | surrogate\xed\xa0\x80
cut\xe2\x98             | cut\xe2\x98
utf8-é☃                 | utf8-é☃
TABLE
}

# escape_case FORMAT SHOWN: a dirty volume named FORMAT with a revision,
# through vol-info and pool-check, as text and as JSON.  Prints what is
# wrong and fails, or prints nothing.
escape_case() {
	local name shown=$2 v out
	name=$(printf '%b' "$1")
	v=$VM/$name
	image_make "$v.img" CLEAN
	image_make "$v.img.1@2020-01-01T00:00:00Z" REV '2020-01-01 UTC'
	image_make "$v-dirty.img" DIRTY
	out=$(vol-info "$v") || { echo "vol-info failed"; return 1; }
	if [ "$(printf '%s\n' "$out" | head -n 1)" != "path	$VM/$shown.img" ] ||
		[ "$(printf '%s\n' "$out" | wc -l)" -ne 6 ]; then
		echo "vol-info: $out"
		return 1
	fi
	out=$(vol-info -r "$v")
	[ "$out" = "1	2020-01-01T00:00:00Z	65536	$VM/$shown.img.1@2020-01-01T00:00:00Z	$(state_of "$v.img.1@2020-01-01T00:00:00Z")	no" ] ||
		{ echo "vol-info -r: $out"; return 1; }
	out=$(pool-check -q "$W/pool")
	[ "$(printf '%s\n' "$out" | cut -f1-3)" = "warning	$VM/$shown-dirty.img	dirty-detached" ] ||
		{ echo "pool-check: $out"; return 1; }
	# JSON: strict, and each name encoded back with surrogateescape
	# (PEP 383) is the very bytes.
	vol-info -j -r "$v" >"$W.info" || { echo "vol-info -j failed"; return 1; }
	pool-check -q -j "$W/pool" >"$W.pool"
	python3 -c '
import json, os, sys
info = json.load(open(sys.argv[2], encoding="utf-8"))
pool = json.load(open(sys.argv[3], encoding="utf-8"))
back = lambda s: s.encode("utf-8", "surrogateescape")
v = os.fsencode(sys.argv[1])
assert back(info[0]["path"]) == v + b".img", info
assert back(info[0]["revision_list"][0]["path"]) == v + b".img.1@2020-01-01T00:00:00Z", info
assert [back(f["path"]) for f in pool["findings"]] == [v + b"-dirty.img"], pool
' "$v" "$W.info" "$W.pool" || { echo "JSON: $(cat "$W.info" "$W.pool")"; return 1; }
	rm -- "$v.img" "$v.img.1@2020-01-01T00:00:00Z" "$v-dirty.img"
}

@test "hostile: control characters and bytes that are not UTF-8 in names, through vol-info and pool-check" {
	local format shown cases=0 failures=0
	world_fresh escapes
	while IFS='|' read -r format shown; do
		format=${format%% *} shown=${shown# }
		cases=$((cases + 1))
		if ! out=$(escape_case "$format" "$shown" 2>&1); then
			failures=$((failures + 1))
			printf 'FAILED %s: %s\n' "$format" "$out"
		fi
	done < <(escape_table)
	echo "# $cases cases, $failures failed" >&3
	rm -f "$W.info" "$W.pool"
	[ "$cases" -gt 0 ] && [ "$failures" -eq 0 ]
}

@test "hostile: a name with a newline cannot forge a line on stderr or in syslog" {
	need_root
	world_fresh forge
	name=$'x\nAccepted password for root from 10.0.0.1 port 22 ssh2'
	run --separate-stderr syslog_capture "$W.syslog" vol-create -v -s 64K "$VM/$name"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2154 # set by run --separate-stderr
	printf '%s\n' "$stderr" >"$W.stderr"
	# Every line is the tool's own, and the newline shows as \n.
	[ "$(grep -vc '^vol-create: ' "$W.stderr")" -eq 0 ]
	grep -q '^vol-create: created .*/x\\nAccepted password for root from 10.0.0.1 port 22 ssh2\.img' "$W.stderr"
	# One syslog message per line, none of them beginning with the name's
	# second line.
	[ "$(wc -l <"$W.syslog")" -ge 1 ]
	[ "$(grep -vc '^<[0-9]*>' "$W.syslog")" -eq 0 ]
	grep -q 'x\\nAccepted password' "$W.syslog"
	rm -f "$W.syslog" "$W.stderr"
}
