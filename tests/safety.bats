#!/usr/bin/env bats
# safety: the safety rule of file-reflink(7).  A matrix runs every tool
# that changes files against every volume type, in every state, with every
# type flag it takes, on btrfs and XFS; then one test per defect that the
# rule fixed.

load helper

setup_file() {
	fs_setup btrfs xfs ext4
}

teardown_file() {
	fs_teardown
}

# Background processes and loop devices a test made are recorded in these
# files, so that teardown ends them even when an assertion failed.
teardown() {
	local pid device
	if [ -f "$BATS_TEST_TMPDIR/pids" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null || true
		done <"$BATS_TEST_TMPDIR/pids"
		rm -f "$BATS_TEST_TMPDIR/pids"
	fi
	if [ -f "$BATS_TEST_TMPDIR/loops" ]; then
		while read -r device; do
			losetup -d "$device" 2>/dev/null || true
		done <"$BATS_TEST_TMPDIR/loops"
		rm -f "$BATS_TEST_TMPDIR/loops"
	fi
	if [ -n "${bind_mount:-}" ] && mountpoint -q "$bind_mount"; then
		umount "$bind_mount" || umount -l "$bind_mount"
	fi
}

# attach FILE: a loop device backed by FILE, recorded for teardown; its
# name in $device.
attach() {
	device=$(losetup -f --show "$1")
	echo "$device" >>"$BATS_TEST_TMPDIR/loops"
}

detach() {
	losetup -d "$1"
	sed -i "\|^$1\$|d" "$BATS_TEST_TMPDIR/loops"
}

# hold_open FILE [MODE]: a background process holds FILE open, read-write
# (MODE "<>", the default) or read-only ("<"), as QEMU holds its image.
# FILE is opened here, before the fork, so it is held when this returns.
# The pid in $opener, recorded for teardown.
hold_open() {
	local fd
	if [ "${2:-<>}" = "<" ]; then
		exec {fd}<"$1"
	else
		exec {fd}<>"$1"
	fi
	sleep 600 <&"$fd" >/dev/null 2>&1 3>&- &
	opener=$!
	exec {fd}>&-
	echo "$opener" >>"$BATS_TEST_TMPDIR/pids"
}

release() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	sed -i "/^$1\$/d" "$BATS_TEST_TMPDIR/pids"
}

# write_at FILE TEXT: TEXT at offset 0 of FILE, as a VM writes its disk.
write_at() {
	printf '%s' "$2" | dd of="$1" conv=notrunc status=none
}

# run_vm VOLUME KEEP TEXT: one VM run that writes TEXT, then its commit.
run_vm() {
	local image
	image=$(vol-start -k "$2" "$1")
	write_at "$image" "$3"
	vol-commit -q -k "$2" "$1"
}

# ---- the matrix ------------------------------------------------------------
#
# Volume types: K origin kept with -k 2 (two revisions), Z origin -k 0,
# M origin -k -1 (snapshots disabled), S snapshot of the template t,
# V volatile.  States: stopped, dirty (D exists, nothing uses it), loop (D
# backs a loop device), open (a process holds D open).  A stopped S has no
# file; there is no stopped V.  Each situation is built once per
# filesystem under gold/ and copied (cp -a keeps the hard links between a
# snapshot and its template) for each combination, in a pool holding the
# volume appvms/vm/v, a foreign file appvms/vm/keep, the templates
# vm-templates/t/root (SRC) and vm-templates/u/root (another template,
# WRONG), each with a revision, and in.img for vol-import.

MATRIX_TYPES="K Z M S V"
MATRIX_STATES="stopped dirty loop open"

# The type flags of each tool, one set per line ("-" for none); SRC and
# WRONG stand for the two templates.
matrix_flags() {
	case $1 in
	vol-start) printf '%s\n' - "-k 2" "-k -1" "-S SRC" "-S WRONG" "--volatile -s 1M" ;;
	vol-commit) printf '%s\n' - "-k 2" "-k 0" "-k -1" ;;
	vol-discard) printf '%s\n' - "-S SRC" "-S WRONG" --volatile ;;
	vol-revert) printf '%s\n' - --discard "--discard -k 0" ;;
	vol-prune) printf '%s\n' - "-k 0" "-k -1" ;;
	vol-resize) printf '%s\n' "-s +64K" "-f -s 32K" "-f -k 0 -s 32K" ;;
	vol-remove) printf '%s\n' - -f ;;
	vol-import) printf '%s\n' - "-k 1" "-k -1" ;;
	esac
}

# A template volume with one revision and TEXT in its clean image.
gold_template() {
	vol-create -s 64K "$1"
	run_vm "$1" 1 "$2"
}

gold_one() {
	local pool=$1 type=$2 state=$3 v image
	v=$pool/appvms/vm/v
	mkdir -p "$pool/appvms/vm" "$pool/vm-templates/t" "$pool/vm-templates/u"
	printf keep >"$pool/appvms/vm/keep"
	gold_template "$pool/vm-templates/t/root" TEMPLATE-T
	gold_template "$pool/vm-templates/u/root" TEMPLATE-U
	truncate -s 64K "$pool/in.img"
	write_at "$pool/in.img" IMPORTED
	case $type in
	K)
		vol-create -s 64K "$v"
		run_vm "$v" 2 K-RUN1
		run_vm "$v" 2 K-RUN2
		[ "$state" = stopped ] || image=$(vol-start -k 2 "$v")
		;;
	Z)
		vol-create -s 64K "$v"
		run_vm "$v" 0 Z-RUN1
		[ "$state" = stopped ] || image=$(vol-start -k 0 "$v")
		;;
	M)
		vol-create -k -1 -s 64K "$v"
		run_vm "$v" -1 M-RUN1
		[ "$state" = stopped ] || image=$(vol-start -k -1 "$v")
		;;
	S)
		[ "$state" = stopped ] ||
			image=$(vol-start -S "$pool/vm-templates/t/root" "$v")
		;;
	V)
		image=$(vol-start --volatile -s 1M "$v")
		;;
	esac
	[ "$state" = stopped ] || write_at "$image" "$type-RUNNING"
}

# Builds gold/ on filesystem $1 once; sets $GOLD.
gold_build() {
	local type state
	GOLD=$(fs_root "$1")/gold
	[ -e "$GOLD/done" ] && return 0
	rm -rf "$GOLD"
	for type in $MATRIX_TYPES; do
		for state in stopped dirty; do
			[ "$type$state" = Vstopped ] && continue
			gold_one "$GOLD/$type-$state" "$type" "$state"
		done
	done
	touch "$GOLD/done"
}

# state_read DIR PREFIX: every file below DIR into the arrays PREFIX_SHA,
# PREFIX_INO and PREFIX_MTIME (whole seconds), by path relative to DIR.
# shellcheck disable=SC2034,SC2004 # the names refer to the caller's arrays
state_read() {
	local -n sha=$2_SHA ino=$2_INO mtime=$2_MTIME
	local first second third path
	sha=() ino=() mtime=()
	while read -r first second third path; do
		if [ "$first" = I ]; then
			ino[$path]=$second
			mtime[$path]=${third%.*}
		else
			sha[${second#./}]=$first
		fi
	done < <(cd "$1" && find . -type f -printf 'I %i %T@ %P\n' -exec sha256sum {} +)
}

# The expected state E_SHA/E_INO ("?": a new inode) is built from the state
# before (B_*) by these steps, named after what the tool does.
x_rm() {
	unset "E_SHA[$1]" "E_INO[$1]"
}

x_mv() {
	E_SHA[$2]=${E_SHA[$1]}
	E_INO[$2]=${E_INO[$1]}
	x_rm "$1"
}

x_link() {
	E_SHA[$2]=${E_SHA[$1]}
	E_INO[$2]=${E_INO[$1]}
}

x_new() {
	E_SHA[$1]=$2
	E_INO[$1]="?"
}

x_inplace() {
	E_SHA[$1]=$2
}

# The numbered revisions of v in E_SHA, ascending id, into REVISIONS
# (names) and REVISION_IDS.
x_revisions() {
	local path id
	local -a by_id=()
	for path in "${!E_SHA[@]}"; do
		case $path in
		appvms/vm/v.img.*@*) ;;
		*) continue ;;
		esac
		id=${path#appvms/vm/v.img.}
		by_id[${id%%@*}]=$path
	done
	REVISION_IDS=("${!by_id[@]}")
	REVISIONS=("${by_id[@]}")
}

# x_save: the old C becomes the next revision, by hard link.
x_save() {
	local stamp id=1
	x_revisions
	[ ${#REVISION_IDS[@]} -eq 0 ] || id=$((REVISION_IDS[-1] + 1))
	TZ=UTC printf -v stamp '%(%Y-%m-%dT%H:%M:%SZ)T' "${B_MTIME[$C]}"
	x_link "$C" "appvms/vm/v.img.$id@$stamp"
}

# x_prune N: the lowest ids go until N remain (N < 0: none remain).
x_prune() {
	local keep=$1 name count
	[ "$keep" -ge 0 ] || keep=0
	x_revisions
	count=${#REVISIONS[@]}
	for name in "${REVISIONS[@]}"; do
		[ "$count" -gt "$keep" ] || break
		x_rm "$name"
		count=$((count - 1))
	done
}

# x_precache: P made anew, a clone of C.
x_precache() {
	x_new "$P" "${E_SHA[$C]}"
}

# x_finish KEEP: what a run that has nothing to do finishes (file-reflink(7),
# Durability): pruning with -k, and a missing P (none with -k -1).
x_finish() {
	[ "$1" = - ] || x_prune "$1"
	if [ "$1" = -1 ]; then
		x_rm "$P"
	elif [ -n "${E_SHA[$C]:-}" ] && [ -z "${E_SHA[$P]:-}" ]; then
		x_precache
	fi
}

has() {
	[ -n "${B_SHA[$1]:-}" ]
}

# True if the -k value $keep lets the old C become a revision.
saves() {
	[ "$keep" = - ] || [ "$keep" -gt 0 ]
}

# After a new C: prune with -k, and the new P (none with -k -1).
x_after_replace() {
	[ "$keep" = - ] || x_prune "$keep"
	if [ "$keep" = -1 ]; then
		x_rm "$P"
	else
		x_precache
	fi
}

has_revisions() {
	x_revisions
	[ ${#REVISIONS[@]} -gt 0 ]
}

# None of v's files exists: a name with no volume behind it.
no_files() {
	! has "$C" && ! has "$D" && ! has "$P" && ! has_revisions
}

# The -k value in FLAGS into $keep, or "-" without -k.
keep_of() {
	local -a words
	read -ra words <<<"$1"
	keep=-
	while [ ${#words[@]} -gt 1 ]; do
		[ "${words[0]}" != -k ] || keep=${words[1]}
		words=("${words[@]:1}")
	done
}

sha_of() {
	sha256sum | cut -d' ' -f1
}

# What the man page of each tool says for the volume in B_*, given FLAGS
# ($1) and whether D is in use ($2: 1 or 0): sets $expect (the exit
# status) and E_* (the files afterwards).  A refusal leaves E_* as it was,
# the files before, but for what a page says a refused run still finishes.

expect_vol_start() {
	local flags=$1 used=$2 src template
	if [ "$used" = 1 ]; then
		# vol-start(1): "whatever the type, vol-start exits 75"
		expect=75
		return
	fi
	case $flags in
	"-S SRC" | "-S WRONG")
		[ "$flags" = "-S SRC" ] && template=t || template=u
		src=vm-templates/$template/root.img
		# -S: no revision, no precache, own C absent or src's; a D
		# without C is an origin volume's only copy (vol-discard(1)).
		if has_revisions || has "$P" ||
			{ has "$C" && [ "${B_INO[$C]}" != "${B_INO[$src]}" ]; } ||
			{ has "$D" && ! has "$C"; }; then
			expect=65
			return
		fi
		has "$C" || x_link "$src" "$C"
		x_new "$D" "${B_SHA[$src]}"
		;;
	--volatile*)
		if has "$C" || has "$P" || has_revisions; then
			expect=65
			return
		fi
		x_new "$D" "$ZERO_1M"
		;;
	"-k -1")
		if ! has "$D"; then
			if ! has "$C"; then
				expect=66
				return
			fi
			x_mv "$C" "$D"
		fi
		x_rm "$P"
		x_prune 0
		;;
	*)
		if has "$D"; then
			: # resumed
		elif ! has "$C"; then
			expect=66
			return
		elif has "$P"; then
			x_mv "$P" "$D"
		else
			x_new "$D" "${B_SHA[$C]}"
		fi
		;;
	esac
	expect=0
}

expect_vol_commit() {
	local flags=$1 used=$2 keep
	keep_of "$flags"
	if no_files; then
		expect=66
		return
	fi
	if [ "$used" = 1 ]; then
		expect=75
		return
	fi
	expect=0
	if ! has "$D"; then
		x_finish "$keep"
		return
	fi
	if has "$C" && saves; then
		x_save
	fi
	x_mv "$D" "$C"
	x_after_replace
}

expect_vol_discard() {
	local flags=$1 used=$2 template src disagrees=0
	case $flags in
	"-S SRC" | "-S WRONG")
		[ "$flags" = "-S SRC" ] && template=t || template=u
		src=vm-templates/$template/root.img
		if has_revisions || has "$P" ||
			{ has "$C" && [ "${B_INO[$C]}" != "${B_INO[$src]}" ]; }; then
			disagrees=1
		fi
		;;
	--volatile)
		if has "$C" || has "$P" || has_revisions; then
			disagrees=1
		fi
		;;
	*)
		if no_files; then
			expect=66
			return
		fi
		;;
	esac
	# vol-discard(1): a D in use is never removed: 75.
	if [ "$used" = 1 ]; then
		expect=75
		return
	fi
	if [ "$disagrees" = 1 ]; then
		expect=65
		return
	fi
	# vol-discard(1): a D without C is kept (65) unless --volatile.
	if has "$D" && ! has "$C" && [ "$flags" != --volatile ]; then
		expect=65
		return
	fi
	expect=0
	has "$D" || return 0
	x_rm "$D"
	case $flags in
	-S*) x_rm "$C" ;;
	-) x_precache ;;
	esac
}

expect_vol_revert() {
	local flags=$1 used=$2 keep
	keep_of "$flags"
	if has "$D" && { [ "$flags" = - ] || [ "$used" = 1 ]; }; then
		expect=75
		return
	fi
	x_revisions
	if [ ${#REVISIONS[@]} -eq 0 ]; then
		# No revision: 66.  Only a stopped volume can be one that an
		# interrupted revert left without its precache.
		expect=66
		if has "$C" && ! has "$D"; then
			x_finish "$keep"
		fi
		return
	fi
	expect=0
	x_rm "$D"
	! saves || x_save
	x_mv "${REVISIONS[-1]}" "$C"
	x_after_replace
}

expect_vol_prune() {
	local flags=$1 keep
	if no_files; then
		expect=66
		return
	fi
	expect=0
	keep_of "$flags"
	# vol-prune(1): without -k, one revision is kept.
	[ "$keep" != - ] || keep=1
	x_prune "$keep"
}

expect_vol_resize() {
	local flags=$1 file keep
	expect=0
	if has "$D"; then
		file=$D
	elif has "$C"; then
		file=$C
	else
		expect=66
		return
	fi
	case $flags in
	*+64K*)
		NEW_SHA=$( { cat "$WORK/$file"; head -c 64K /dev/zero; } | sha_of)
		;;
	*)
		NEW_SHA=$(head -c 32K "$WORK/$file" | sha_of)
		;;
	esac
	if [ "$file" = "$D" ]; then
		# A running volume: D changes length in place.
		x_inplace "$D" "$NEW_SHA"
		return
	fi
	keep_of "$flags"
	# A shrink saves the old C first, unless -k 0.
	case $flags in
	-f*) ! saves || x_save ;;
	esac
	x_new "$C" "$NEW_SHA"
	x_after_replace
}

expect_vol_remove() {
	local flags=$1 used=$2 path
	if [ "$used" = 1 ]; then
		expect=75
		return
	fi
	if has "$D" && [ "$flags" != -f ]; then
		expect=75
		return
	fi
	if no_files; then
		expect=66
		return
	fi
	expect=0
	for path in "${!E_SHA[@]}"; do
		case $path in
		appvms/vm/v.img | appvms/vm/v-*.img | appvms/vm/v.img.*@*) x_rm "$path" ;;
		esac
	done
}

expect_vol_import() {
	local flags=$1 keep
	keep_of "$flags"
	if has "$D"; then
		expect=75
		return
	fi
	expect=0
	if has "$C" && saves; then
		x_save
	fi
	x_new "$C" "${B_SHA[in.img]}"
	x_after_replace
}

# Runs one combination; on a mismatch appends its record to $LOG.
combo() {
	local tool=$1 flags=$2 type=$3 state=$4 gold used=0 status=0 device='' pid=''
	local -a args=() words=()
	local word path verdict same
	N=$((N + 1))
	gold=$type-$state
	case $state in loop | open) gold=$type-dirty used=1 ;; esac
	WORK=$MATRIX_DIR/$N
	cp -a --reflink=always "$GOLD/$gold" "$WORK"
	C=appvms/vm/v.img D=appvms/vm/v-dirty.img P=appvms/vm/v-precache.img
	case $state in
	loop) attach "$WORK/$D" ;;
	open) hold_open "$WORK/$D" && pid=$opener ;;
	esac
	state_read "$WORK" B
	E_SHA=() E_INO=()
	for path in "${!B_SHA[@]}"; do
		E_SHA[$path]=${B_SHA[$path]}
		E_INO[$path]=${B_INO[$path]}
	done
	"expect_${tool//-/_}" "$flags" "$used"
	[ "$flags" = - ] || read -ra words <<<"$flags"
	for word in "${words[@]}"; do
		case $word in
		SRC) args+=("$WORK/vm-templates/t/root") ;;
		WRONG) args+=("$WORK/vm-templates/u/root") ;;
		*) args+=("$word") ;;
		esac
	done
	args+=("$WORK/appvms/vm/v")
	[ "$tool" = vol-import ] && args+=("$WORK/in.img")
	"$tool" -w 5 "${args[@]}" >"$MATRIX_DIR/out" 2>"$MATRIX_DIR/err" </dev/null || status=$?
	[ -z "$device" ] || detach "$device"
	[ -z "$pid" ] || release "$pid"
	state_read "$WORK" A
	same=1
	for path in "${!E_SHA[@]}" "${!A_SHA[@]}"; do
		if [ "${E_SHA[$path]:-}" != "${A_SHA[$path]:-}" ] ||
			{ [ "${E_INO[$path]:-}" != "?" ] &&
				[ "${E_INO[$path]:-}" != "${A_INO[$path]:-}" ]; }; then
			same=0
			break
		fi
	done
	verdict=ok
	if [ "$status" != "$expect" ] || [ "$same" = 0 ] || [ -n "${MATRIX_LOG_ALL:-}" ]; then
		verdict=FAIL
		if [ "$status" = "$expect" ] && [ "$same" = 1 ]; then
			verdict=ok
		else
			FAILED=$((FAILED + 1))
		fi
		{
			echo "== $tool $flags, type $type, $state ($FS): $verdict"
			echo "   $tool -w 5 ${args[*]#"$WORK/"}"
			echo "   exit $status, expected $expect"
			sed 's/^/   stderr: /' "$MATRIX_DIR/err"
			echo "   files (expected -, actual +: path, sha256, inode; ? any new inode):"
			for path in "${!E_SHA[@]}"; do
				echo "$path ${E_SHA[$path]:0:16} ${E_INO[$path]}"
			done | LC_ALL=C sort >"$MATRIX_DIR/expected"
			for path in "${!A_SHA[@]}"; do
				if [ "${E_INO[$path]:-}" = "?" ]; then
					echo "$path ${A_SHA[$path]:0:16} ?"
				else
					echo "$path ${A_SHA[$path]:0:16} ${A_INO[$path]}"
				fi
			done | LC_ALL=C sort >"$MATRIX_DIR/actual"
			if [ "$same" = 1 ]; then
				sed 's/^/    /' "$MATRIX_DIR/expected"
			else
				diff -U 100 "$MATRIX_DIR/expected" "$MATRIX_DIR/actual" | sed -n '3,$s/^/   /p'
			fi
		} >>"$LOG"
	fi
	rm -rf "$WORK"
}

# matrix TOOL FS: every type x state x flag combination of TOOL on FS.
matrix() {
	local tool=$1 type state flags start
	# shellcheck disable=SC2034 # A_MTIME is filled by state_read
	declare -gA B_SHA B_INO B_MTIME A_SHA A_INO A_MTIME E_SHA E_INO
	# bats traces every command with a DEBUG trap, which costs more than
	# the tools themselves in these loops; a failure prints the log below.
	trap - DEBUG
	FS=$2
	fs_dir "$FS"
	gold_build "$FS"
	MATRIX_DIR=$DIR
	LOG=$BATS_TEST_TMPDIR/matrix.log
	: >"$LOG"
	N=0 FAILED=0 start=$SECONDS
	ZERO_1M=$(head -c 1M /dev/zero | sha_of)
	while read -r flags; do
		for type in $MATRIX_TYPES; do
			for state in $MATRIX_STATES; do
				[ "$type$state" = Vstopped ] && continue
				combo "$tool" "$flags" "$type" "$state"
			done
		done
	done < <(matrix_flags "$tool")
	echo "$tool $FS $N $FAILED $((SECONDS - start))" >>"$BATS_FILE_TMPDIR/matrix.counts"
	echo "# $tool on $FS: $N combinations, $FAILED failed ($((SECONDS - start)) s)" >&3
	[ -z "${MATRIX_LOG_ALL:-}" ] || sed 's/^/# /' "$LOG" >&3
	[ "$FAILED" -eq 0 ] || cat "$LOG"
	[ "$FAILED" -eq 0 ]
}

@test "safety matrix: vol-start on btrfs" {
	matrix vol-start btrfs
}

@test "safety matrix: vol-start on xfs" {
	matrix vol-start xfs
}

@test "safety matrix: vol-commit on btrfs" {
	matrix vol-commit btrfs
}

@test "safety matrix: vol-commit on xfs" {
	matrix vol-commit xfs
}

@test "safety matrix: vol-discard on btrfs" {
	matrix vol-discard btrfs
}

@test "safety matrix: vol-discard on xfs" {
	matrix vol-discard xfs
}

@test "safety matrix: vol-revert on btrfs" {
	matrix vol-revert btrfs
}

@test "safety matrix: vol-revert on xfs" {
	matrix vol-revert xfs
}

@test "safety matrix: vol-prune on btrfs" {
	matrix vol-prune btrfs
}

@test "safety matrix: vol-prune on xfs" {
	matrix vol-prune xfs
}

@test "safety matrix: vol-resize on btrfs" {
	matrix vol-resize btrfs
}

@test "safety matrix: vol-resize on xfs" {
	matrix vol-resize xfs
}

@test "safety matrix: vol-remove on btrfs" {
	matrix vol-remove btrfs
}

@test "safety matrix: vol-remove on xfs" {
	matrix vol-remove xfs
}

@test "safety matrix: vol-import on btrfs" {
	matrix vol-import btrfs
}

@test "safety matrix: vol-import on xfs" {
	matrix vol-import xfs
}

@test "safety matrix: the number of combinations tried" {
	local n total=0
	[ -f "$BATS_FILE_TMPDIR/matrix.counts" ] || skip "no matrix test ran"
	while read -r _ _ n _; do
		total=$((total + n))
	done <"$BATS_FILE_TMPDIR/matrix.counts"
	echo "# safety matrix: $total combinations tried" >&3
	[ "$total" -gt 0 ]
}

# ---- the defects the safety rule fixed, one test each -----------------------

# files_state DIR: every file below DIR: path, inode, size and sha256.
files_state() {
	(
		cd "$1" || exit 1
		find . -type f -printf '%P %i %s\n' | LC_ALL=C sort
		find . -type f -exec sha256sum {} + | LC_ALL=C sort -k 2
	)
}

# A template volume $SRC (vm-templates/t/root) with TEMPLATE in its C.
# shellcheck disable=SC2153 # POOL is set by vol_setup
template_setup() {
	SRC=$POOL/vm-templates/t/root
	mkdir -p "$POOL/vm-templates/t"
	vol-create -s 1M "$SRC"
	run_vm "$SRC" 1 TEMPLATE
}

# crashed_origin V KEEP: origin volume V started and written with -k KEEP
# after one committed run: a host that crashed while its VM ran.
crashed_origin() {
	vol-create -k "$2" -s 1M "$1"
	run_vm "$1" "$2" COMMITTED
	write_at "$(vol-start -k "$2" "$1")" RUNNING
}

@test "vol-discard: -S of a missing template exits 66 and keeps a -k -1 volume's image" {
	vol_setup btrfs
	cd "$POOL"
	mkdir vm
	vol-create -k -1 -s 1M vm/data
	img=$(vol-start -k -1 vm/data)
	echo important | dd of="$img" conv=notrunc status=none
	vol-commit -k -1 vm/data
	before=$(files_state .)
	run vol-discard -S no/such/template vm/data
	[ "$status" -eq 66 ]
	[ "$(files_state .)" = "$before" ]
	[ "$(head -c 9 vm/data.img)" = important ]
}

@test "vol-discard: -S of an unrelated template exits 65 and keeps a -k -1 volume's image" {
	vol_setup btrfs
	cd "$POOL"
	mkdir vm
	vol-create -k -1 -s 1M vm/data
	img=$(vol-start -k -1 vm/data)
	echo important | dd of="$img" conv=notrunc status=none
	vol-commit -k -1 vm/data
	template_setup
	before=$(files_state .)
	run vol-discard -S vm-templates/t/root vm/data
	[ "$status" -eq 65 ]
	[[ "$output" == *"not a snapshot of"* ]]
	[ "$(files_state .)" = "$before" ]
	[ "$(head -c 9 vm/data.img)" = important ]
}

@test "vol-discard: -S on a running -k 0 volume exits 65; C and D stay" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" 0
	[ "$(stat -c %h "$B.img")" -eq 1 ]
	before=$(files_state "$POOL")
	run vol-discard -S "$SRC" "$B"
	[ "$status" -eq 65 ]
	[ "$(files_state "$POOL")" = "$before" ]
	[ "$(head_bytes "$B-dirty.img" 7)" = RUNNING ]
	[ "$(head_bytes "$B.img" 9)" = COMMITTED ]
}

@test "vol-discard: -S on a running -k -1 volume (D, no C) exits 65 and keeps D" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" -1
	[ ! -e "$B.img" ]
	before=$(files_state "$POOL")
	run vol-discard -S "$SRC" "$B"
	[ "$status" -eq 65 ]
	[ "$(files_state "$POOL")" = "$before" ]
	[ "$(head_bytes "$B-dirty.img" 7)" = RUNNING ]
}

@test "vol-start: -S on a crashed origin volume with revisions exits 65; C and D byte-identical" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" 2
	[ -n "$(revision_ids "$VM" private)" ]
	before=$(files_state "$POOL")
	run vol-start -S "$SRC" "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"an origin volume (it has revisions)"* ]]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "vol-start: -S on a crashed origin volume without revisions exits 65; C and D byte-identical" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" 0
	[ -z "$(revision_ids "$VM" private)" ]
	[ ! -e "$B-precache.img" ]
	before=$(files_state "$POOL")
	run vol-start -S "$SRC" "$B"
	[ "$status" -eq 65 ]
	[[ "$output" == *"not a snapshot of"* ]]
	[ "$(files_state "$POOL")" = "$before" ]
	[ "$(head_bytes "$B-dirty.img" 7)" = RUNNING ]
}

@test "vol-start: -S on a crashed -k -1 volume (D, no C) exits 65 and keeps D" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" -1
	before=$(files_state "$POOL")
	run vol-start -S "$SRC" "$B"
	[ "$status" -eq 65 ]
	[ "$(files_state "$POOL")" = "$before" ]
	[ "$(head_bytes "$B-dirty.img" 7)" = RUNNING ]
}

@test "vol-start: --volatile on a running origin volume exits 65; D stays" {
	local keep
	for keep in 2 0; do
		vol_setup btrfs
		crashed_origin "$B" "$keep"
		before=$(files_state "$POOL")
		run vol-start --volatile -s 1M "$B"
		[ "$status" -eq 65 ]
		[[ "$output" == *"not a volatile volume"* ]]
		[ "$(files_state "$POOL")" = "$before" ]
		[ "$(head_bytes "$B-dirty.img" 7)" = RUNNING ]
	done
}

@test "vol-start: with -S or --volatile that disagree with the files, a D in use still exits 75" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" 2
	hold_open "$B-dirty.img"
	before=$(files_state "$POOL")
	run vol-start -S "$SRC" "$B"
	[ "$status" -eq 75 ]
	run vol-start --volatile -s 1M "$B"
	[ "$status" -eq 75 ]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "vol-discard: with -S or --volatile that disagree with the files, a D in use still exits 75" {
	vol_setup btrfs
	template_setup
	crashed_origin "$B" 2
	attach "$B-dirty.img"
	before=$(files_state "$POOL")
	run vol-discard -S "$SRC" "$B"
	[ "$status" -eq 75 ]
	run vol-discard --volatile "$B"
	[ "$status" -eq 75 ]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "vol-commit: a loop device set up through a bind mount of the pool makes it exit 75" {
	vol_setup btrfs
	crashed_origin "$B" 2
	bind_mount=$DIR/other
	mkdir "$bind_mount"
	mount --bind "$POOL" "$bind_mount"
	attach "$bind_mount/appvms/vm1/private-dirty.img"
	before=$(files_state "$POOL")
	run vol-commit -k 2 "$B"
	[ "$status" -eq 75 ]
	[[ "$output" == *"in use by $device"* ]]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "vol-commit: a process that opened D through a bind mount makes it exit 75" {
	vol_setup btrfs
	crashed_origin "$B" 2
	bind_mount=$DIR/other
	mkdir "$bind_mount"
	mount --bind "$POOL" "$bind_mount"
	hold_open "$bind_mount/appvms/vm1/private-dirty.img" "<"
	before=$(files_state "$POOL")
	run vol-commit -k 2 "$B"
	[ "$status" -eq 75 ]
	[[ "$output" == *"in use by process $opener"* ]]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "safety: a process holding D open read-only makes commit, discard, revert --discard, start and remove -f exit 75" {
	local command
	vol_setup btrfs
	crashed_origin "$B" 2
	hold_open "$B-dirty.img" "<"
	before=$(files_state "$POOL")
	for command in "vol-commit -k 2" vol-discard "vol-revert --discard" \
		"vol-start -k 2" "vol-remove -f"; do
		# shellcheck disable=SC2086 # the command and its options
		run $command "$B"
		echo "$command: $status $output"
		[ "$status" -eq 75 ]
		[[ "$output" == *"in use by process $opener"* ]]
		[ "$(files_state "$POOL")" = "$before" ]
	done
}

@test "vol-revert: --discard of a running snapshot (no revisions) exits 66 and changes nothing" {
	vol_setup btrfs
	template_setup
	write_at "$(vol-start -S "$SRC" "$VM/root")" RUNNING
	before=$(files_state "$POOL")
	run vol-revert --discard "$VM/root"
	[ "$status" -eq 66 ]
	[ "$(files_state "$POOL")" = "$before" ]
	run vol-discard -S "$SRC" "$VM/root"
	[ "$status" -eq 0 ]
}

@test "vol-discard: with nothing to discard, a stopped -k -1 volume is left as it is" {
	vol_setup btrfs
	vol-create -k -1 -s 1M "$B"
	run_vm "$B" -1 DATA
	before=$(files_state "$POOL")
	run vol-discard "$B"
	[ "$status" -eq 0 ]
	[ "$(files_state "$POOL")" = "$before" ]
}

# open_path_to DIR: every directory from the filesystem's root down to DIR
# becomes 755, and those above it searchable, so that user 65534 reaches DIR.
open_path_to() {
	local dir
	dir=$(realpath "$1")
	while [ "$dir" != / ]; do
		if [ "${dir#"$(realpath "$BATS_RUN_TMPDIR")"}" = "$dir" ]; then
			break
		fi
		case $dir in
		"$(realpath "$POOL")"*) chmod 755 "$dir" ;;
		*) chmod o+x "$dir" ;;
		esac
		dir=$(dirname "$dir")
	done
	chmod o+x "$(realpath "$BATS_RUN_TMPDIR")"
}

@test "safety: a user without write permission who flocks the VM directory cannot block the tools" {
	local w=$BATS_TEST_TMPDIR/locked word pid
	vol_setup btrfs
	W=$POOL/appvms/w
	mkdir -p "$W"
	vol-create -s 1M "$W/private"
	write_at "$(vol-start -k 1 "$W/private")" RUN1
	open_path_to "$W"
	setpriv --reuid=65534 --regid=65534 --clear-groups \
		flock -x "$W" sh -c 'echo locked $$; exec sleep 1000' >"$w" 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/pids"
	for _ in $(seq 100); do
		[ ! -s "$w" ] || break
		sleep 0.05
	done
	# The unprivileged process does hold an flock of the directory.
	# The command flock runs holds the lock too: teardown ends it as well.
	read -r word pid <"$w"
	echo "$pid" >>"$BATS_TEST_TMPDIR/pids"
	[ "$word" = locked ]
	run flock -n -x "$W" true
	[ "$status" -ne 0 ]
	SECONDS=0
	run timeout 10 vol-commit -k 1 "$W/private"
	[ "$status" -eq 0 ]
	run timeout 10 vol-start -k 1 "$W/private"
	[ "$status" -eq 0 ]
	[ "$SECONDS" -lt 10 ]
	[ "$(revision_ids "$W" private)" = 1 ]
}

@test "safety: a root script holding /run/file-reflink/lock/DEV-INO.lock makes vol-commit -w 0 exit 75" {
	local w=$BATS_TEST_TMPDIR/locked word pid
	vol_setup btrfs
	crashed_origin "$B" 1
	flock "/run/file-reflink/lock/$(stat -c %d-%i "$VM").lock" \
		sh -c 'echo locked $$; exec sleep 1000' >"$w" 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/pids"
	for _ in $(seq 100); do
		[ ! -s "$w" ] || break
		sleep 0.05
	done
	# The command flock runs holds the lock too: teardown ends it as well.
	read -r word pid <"$w"
	echo "$pid" >>"$BATS_TEST_TMPDIR/pids"
	[ "$word" = locked ]
	before=$(files_state "$POOL")
	run vol-commit -w 0 -k 1 "$B"
	[ "$status" -eq 75 ]
	[[ "$output" == *"busy"* ]]
	[ "$(files_state "$POOL")" = "$before" ]
}

@test "vol-remove: a name with no file in an empty VM directory exits 66; the directory stays" {
	vol_setup btrfs
	mkdir -p "$POOL/appvms"
	run vol-remove "$POOL/appvms/typo"
	[ "$status" -eq 66 ]
	[ -d "$POOL/appvms" ]
	mkdir -p "$DIR/some/empty/dir"
	run vol-remove "$DIR/some/empty/dir/private"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no such volume"* ]]
	[ -d "$DIR/some/empty/dir" ]
}

# fsyncs_before LOG NAME: the number of fsync calls in the strace LOG
# before the first rename onto NAME; fails if there is no such rename.
fsyncs_before() {
	awk -v name="\"$2\"" '
		/fsync\(/ { n++ }
		/rename/ && index($0, ", " name) { print n + 0; found = 1; exit }
		END { exit !found }' "$1"
}

# kill_after_replace NAME COMMAND...: runs COMMAND on a copy of $VM under
# strace to find the rename onto NAME, then runs it for real and kills it
# (SIGKILL) at the first fsync after that rename: NAME was replaced, and
# nothing after.
kill_after_replace() {
	local name=$1 n copy=$DIR/trace-copy
	shift
	rm -rf "$copy"
	cp -a --reflink=always "$VM" "$copy"
	strace -f -o "$DIR/trace" -e trace=fsync,rename,renameat,renameat2 \
		"${@/#"$VM"/"$copy"}" >/dev/null 2>&1
	rm -rf "$copy"
	n=$(fsyncs_before "$DIR/trace" "$name")
	run strace -f -o /dev/null -e trace=fsync \
		-e inject=fsync:signal=KILL:when=$((n + 1)) "$@"
	[ "$status" -ne 0 ]
}

resize_killed_then_rerun() {
	vol_setup "$1"
	vol-create -s 1M "$B"
	run_vm "$B" 1 DATA
	kill_after_replace private.img vol-resize -s +1M "$B"
	# The rename happened: C has the new size, the precache the old one.
	[ "$(stat -c %s "$B.img")" -eq $((2 * 1024 * 1024)) ]
	[ "$(stat -c %s "$B-precache.img")" -eq $((1024 * 1024)) ]
	run vol-resize -s +1M "$B"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$B.img")" -eq $((2 * 1024 * 1024)) ]
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	no_temp_files "$VM"
	run vol-resize -s +1M "$B"
	[ "$status" -eq 0 ]
	[ "$(stat -c %s "$B.img")" -eq $((3 * 1024 * 1024)) ]
	[ "$(head_bytes "$B.img")" = DATA ]
}

@test "vol-resize: btrfs: +SIZE killed after C was replaced, run again, grows once; a third run grows again" {
	resize_killed_then_rerun btrfs
}

@test "vol-resize: xfs: +SIZE killed after C was replaced, run again, grows once; a third run grows again" {
	resize_killed_then_rerun xfs
}

@test "safety: a volume named disk.img.old has its own revisions, beside a volume disk" {
	vol_setup btrfs
	mkdir -p "$POOL/vm"
	cd "$POOL"
	for v in vm/disk.img.old vm/disk; do
		vol-create -s 1M "$v"
		run_vm "$v" 2 RUN1
		run_vm "$v" 2 RUN2
	done
	run vol-info -r vm/disk.img.old
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | grep -c 'disk\.img\.old\.img\.[12]@')" -eq 2 ]
	run --separate-stderr pool-check "$POOL"
	[ "$status" -eq 0 ]
	[[ "$output" != *malformed* ]]
	[[ "$stderr" != *malformed* ]]
	run --separate-stderr vol-remove -n vm/disk
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "$output" != *disk.img.old* ]]
	[ "$(printf '%s\n' "$output" | grep -c 'disk\.img\.[0-9]*@')" -eq 2 ]
}

@test "vol-commit: a normal -k -1 stop prints nothing on stderr" {
	vol_setup btrfs
	vol-create -k -1 -s 1M "$B"
	run --separate-stderr vol-start -k -1 "$B"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	write_at "$output" DATA
	run --separate-stderr vol-commit -k -1 "$B"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ -z "$output" ]
	[ "$(files_in "$VM")" = private.img ]
}

# import_big FS: a 20 GiB sparse image with one byte at its end is
# imported in a few seconds (a clone, or on ext4 a copy of its one data
# block); the same import run again imports nothing.
import_big() {
	local start elapsed inode
	vol_setup "$1"
	truncate -s 20G "$DIR/in.img"
	printf Z | dd of="$DIR/in.img" bs=1 seek=$((20 * 1024 * 1024 * 1024 - 1)) \
		conv=notrunc status=none
	start=$EPOCHREALTIME
	run timeout 60 vol-import "$B" "$DIR/in.img"
	elapsed=$(echo "$EPOCHREALTIME - $start" | bc)
	echo "# $1: 20 GiB import in $elapsed s" >&3
	[ "$status" -eq 0 ]
	[ "$(echo "$elapsed < 10" | bc)" -eq 1 ]
	[ "$(stat -c %s "$B.img")" -eq $((20 * 1024 * 1024 * 1024)) ]
	[ "$(tail -c 1 "$B.img")" = Z ]
	[ "$(allocated "$B.img")" -lt $((1024 * 1024)) ]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	inode=$(inode "$B.img")
	# vol-import(1): the same data as C: nothing imported, no revision.
	start=$EPOCHREALTIME
	run --separate-stderr timeout 60 vol-import "$B" "$DIR/in.img"
	elapsed=$(echo "$EPOCHREALTIME - $start" | bc)
	[ "$status" -eq 0 ]
	[ "$(echo "$elapsed < 10" | bc)" -eq 1 ]
	[[ "$stderr" == *"holds this data already: nothing to import"* ]]
	[ "$(files_in "$VM")" = "private-precache.img private.img" ]
	[ "$(inode "$B.img")" = "$inode" ]
}

@test "vol-import: btrfs: a 20 GiB sparse image imports in seconds; the same import again imports nothing" {
	import_big btrfs
}

@test "vol-import: xfs: a 20 GiB sparse image imports in seconds; the same import again imports nothing" {
	import_big xfs
}

@test "vol-import: ext4: a 20 GiB sparse image imports in seconds; the same import again imports nothing" {
	import_big ext4
}

@test "vol-import: killed once C was replaced, run again, it makes no second revision" {
	vol_setup btrfs
	vol-create -s 1M "$B"
	run_vm "$B" 2 OLD
	truncate -s 1M "$DIR/new.img"
	write_at "$DIR/new.img" NEW
	kill_after_replace private.img vol-import -k 2 "$B" "$DIR/new.img"
	# Revision 1 is the empty image of vol-create, 2 the one of run_vm.
	[ "$(head_bytes "$B.img" 3)" = NEW ]
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	run --separate-stderr vol-import -k 2 "$B" "$DIR/new.img"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"nothing to import"* ]]
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 2)" 3)" = OLD ]
	[ "$(head_bytes "$B.img" 3)" = NEW ]
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	no_temp_files "$VM"
	[ ! -e "$B-import.img" ]
}

# unwritten_runs FS PRECACHE: three runs that write nothing (from the
# precache, or with PRECACHE "no" from a clone or copy of C) keep the
# revisions as they were; a run that writes one byte makes one.
unwritten_runs() {
	local before
	vol_setup "$1"
	vol-create -s 1M "$B"
	run_vm "$B" 3 RUN1
	run_vm "$B" 3 RUN2
	before=$(files_state "$VM" | grep -v precache)
	for _ in 1 2 3; do
		[ "$2" = yes ] || rm -f "$B-precache.img"
		vol-start -k 3 "$B" >/dev/null
		run --separate-stderr vol-commit -k 3 "$B"
		[ "$status" -eq 0 ]
		[[ "$stderr" == *"never written since the start made it"* ]]
	done
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(files_state "$VM" | grep -v precache)" = "$before" ]
	[ "$(mtime_ns "$B-precache.img")" = "$(mtime_ns "$B.img")" ]
	image=$(vol-start -k 3 "$B")
	printf X | dd of="$image" bs=1 seek=100 conv=notrunc status=none
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(revision_ids "$VM" private)" = "1 2 3" ]
}

@test "vol-commit: btrfs: runs that wrote nothing (started from the precache) make no revision" {
	unwritten_runs btrfs yes
}

@test "vol-commit: btrfs: runs that wrote nothing (D cloned from C) make no revision" {
	unwritten_runs btrfs no
}

@test "vol-commit: xfs: runs that wrote nothing (D cloned from C) make no revision" {
	unwritten_runs xfs no
}

@test "vol-commit: ext4: runs that wrote nothing (started from the copied precache) make no revision" {
	unwritten_runs ext4 yes
}

@test "vol-commit: ext4: runs that wrote nothing (D copied from C) make no revision" {
	unwritten_runs ext4 no
}

# rewritten_run FS: a run that rewrites the whole of D (no block shared
# with C any more) and sets its size and mtime back to C's still makes a
# revision: whoever may write D can set its mtime, so a copy's bytes
# decide, not its mtime.
rewritten_run() {
	vol_setup "$1"
	vol-create -s 1M "$B"
	run_vm "$B" 3 RUN1
	image=$(vol-start -k 3 "$B")
	head -c 1M /dev/urandom | dd of="$image" conv=notrunc,fsync status=none
	touch -r "$B.img" "$image"
	run --separate-stderr vol-commit -k 3 "$B"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 2)")" = RUN1 ]
	[ "$(head_bytes "$B.img")" != RUN1 ]
}

@test "vol-commit: btrfs: D rewritten whole, its size and mtime set back to C's, makes a revision" {
	rewritten_run btrfs
}

@test "vol-commit: ext4: D rewritten whole, its size and mtime set back to C's, makes a revision" {
	rewritten_run ext4
}

@test "reflink-clone: --reflink=always from btrfs to XFS exits 69 naming two filesystems" {
	fs_dir xfs
	to=$DIR
	fs_dir btrfs
	random_file "$DIR/src" 64K
	run reflink-clone --reflink=always "$DIR/src" "$to/dst"
	[ "$status" -eq 69 ]
	[[ "$output" == *"two different filesystems"* ]]
	[ ! -e "$to/dst" ]
	[ -z "$(find "$to" -name '*~*')" ]
}

@test "vol-info: -S of a mistyped source exits 66" {
	vol_setup btrfs
	template_setup
	vol-start -S "$SRC" "$VM/root" >/dev/null
	run vol-info -S "$POOL/vm-templates/t/typo" -t outdated "$VM/root"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no such volume"* ]]
	run vol-info -S "$POOL/vm-templates/typo/root" -t outdated "$VM/root"
	[ "$status" -eq 66 ]
	run vol-info -S "$SRC" -t outdated "$VM/root"
	[ "$status" -eq 1 ]
}

@test "vol-discard: a name with no file exits 66; -S of a stopped snapshot exits 0" {
	vol_setup btrfs
	template_setup
	run vol-discard "$VM/nosuch"
	[ "$status" -eq 66 ]
	[[ "$output" == *"no such volume"* ]]
	# A stopped snapshot has no file at all: nothing to discard.
	run vol-discard -S "$SRC" "$VM/nosuch"
	[ "$status" -eq 0 ]
	[ "$(files_in "$VM")" = "" ]
}

@test "vol-import: a terminal on standard input exits 64 at once, creating nothing" {
	vol_setup btrfs
	SECONDS=0
	run timeout 20 script -qec "vol-import '$VM/new/private'" /dev/null
	[ "$status" -eq 64 ]
	[[ "$output" == *"standard input is a terminal"* ]]
	[ "$SECONDS" -lt 10 ]
	[ ! -e "$VM/new" ]
	[ "$(files_in "$VM")" = "" ]
}

@test "vol-create: sizes 1kib and 1KIB are 1024 bytes" {
	vol_setup btrfs
	vol-create -s 1kib "$VM/a"
	vol-create -s 1KIB "$VM/b"
	[ "$(stat -c %s "$VM/a.img")" -eq 1024 ]
	[ "$(stat -c %s "$VM/b.img")" -eq 1024 ]
}
