#!/usr/bin/env bats
# Concurrency.  Eight processes run 25 rounds each of random vol-start,
# vol-commit (also with --precache=later), vol-precache, vol-revert,
# vol-prune and vol-info calls, some with -w 0 and some waiting, on one
# volume, or on four sibling volumes of one VM directory.  Meanwhile a reader that takes no lock calls vol-info (and
# pool-check, where it is built) in a loop, and a checker takes the VM
# directory's lock now and then to look at a state no tool is changing.
#
# Before each commit a process writes a unique token into the dirty image
# (under the lock, as a VM writes while no tool runs) and records it, so
# every image can be traced to a token that was written for its volume.
#
# Proved: no tool fails, except with 75 under -w 0 and vol-revert with 75
# on a dirty volume; the reader never fails and never sees a half-state; a
# revision id is never reused for another file and new ids only grow; every
# revision, clean, dirty and precache image holds a token of its own
# volume; a precache is always a copy of its clean image; no temporary
# file is seen while nobody holds the lock; and at the end vol-info agrees
# with the files.

load helper

WORKERS=8
ROUNDS=25
SIZE=1048576

setup_file() {
	fs_setup btrfs xfs
}

teardown_file() {
	fs_teardown
}

# Background loops still running after a failure are stopped.
teardown() {
	local pid
	if [ -n "${LOGS:-}" ]; then
		touch "$LOGS/stop"
	fi
	for pid in ${background:-}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# problem TEXT: records something the test must fail on.
problem() {
	printf '%s\n' "$*" >>"$LOGS/problems"
}

# The token stored at offset 0 of an image, without its padding.
token_of() {
	head -c 31 "$1" | tr -d ' \0'
}

# token_write ID NAME TEXT: TEXT, padded to 31 bytes and a newline, at offset
# 0 of the dirty image of volume NAME if there is one, under the VM
# directory's lock, recorded first in ID's token file.
token_write() {
	local image="$VM/$2-dirty.img"
	(
		exec 8<"$(lock_path "$VM")"
		flock 8
		if [ -f "$image" ]; then
			printf '%s %s\n' "$2" "$3" >>"$LOGS/tokens.$1"
			printf '%-31s\n' "$3" | dd of="$image" conv=notrunc status=none
		fi
	)
}

# The tokens recorded for volume NAME, one per line.
tokens_of() {
	cat "$LOGS"/tokens.* | sed -n "s/^$1 //p"
}

# tool_run ID MODE COMMAND...: runs a tool (killed after two minutes, so
# a hang is a failure, not a stuck test) and records an unexpected status.
tool_run() {
	local id=$1 mode=$2 status
	shift 2
	timeout -k 5 120 "$@" >"$LOGS/out.$id" 2>"$LOGS/err.$id"
	status=$?
	echo "$1 $mode $status" >>"$LOGS/ops.$id"
	case $status in
	0)
		if [ "$1" = vol-start ] && [ "$(cat "$LOGS/out.$id")" != "${*: -1}-dirty.img" ]; then
			problem "worker $id: $* printed $(cat "$LOGS/out.$id")"
		fi
		;;
	75)
		if [ "$mode" = nowait ]; then
			:
		elif [ "$1" = vol-revert ] && grep -q 'is dirty' "$LOGS/err.$id"; then
			:
		else
			problem "worker $id: $* exited 75: $(cat "$LOGS/err.$id")"
		fi
		;;
	*)
		problem "worker $id: $* exited $status: $(cat "$LOGS/err.$id")"
		;;
	esac
}

# worker ID VOLUME_NAME...: ROUNDS rounds of random calls.
worker() {
	local id=$1 round name v keep mode
	local -a wait_option
	shift
	set +e
	trap - ERR
	RANDOM=$((id * 7919 + $$))
	for ((round = 1; round <= ROUNDS; round++)); do
		name=${*:RANDOM % $# + 1:1}
		v=$VM/$name
		keep=$((RANDOM % 3 + 1))
		case $((RANDOM % 3)) in
		0) mode=nowait wait_option=(-w 0) ;;
		1) mode=wait wait_option=() ;;
		2) mode=wait wait_option=(-w 60) ;;
		esac
		case $((RANDOM % 11)) in
		0 | 1) tool_run "$id" "$mode" vol-start "${wait_option[@]}" "$v" ;;
		2 | 3 | 4)
			token_write "$id" "$name" "T-$name-$id-$round"
			tool_run "$id" "$mode" vol-commit "${wait_option[@]}" -k "$keep" "$v"
			;;
		5) tool_run "$id" "$mode" vol-commit "${wait_option[@]}" -k "$keep" "$v" ;;
		6) tool_run "$id" "$mode" vol-revert "${wait_option[@]}" -k "$keep" "$v" ;;
		7) tool_run "$id" "$mode" vol-prune "${wait_option[@]}" -k $((keep % 2 + 1)) "$v" ;;
		8) tool_run "$id" "$mode" vol-info -r "$v" ;;
		9)
			token_write "$id" "$name" "T-$name-$id-$round"
			tool_run "$id" "$mode" vol-commit "${wait_option[@]}" --precache=later -k "$keep" "$v"
			;;
		10) tool_run "$id" "$mode" vol-precache "${wait_option[@]}" -q "$v" ;;
		esac
	done
	return 0
}

# reader VOLUME_NAME...: until told to stop, vol-info and vol-info -r on
# each volume, and pool-check on the pool, without any lock.
reader() {
	local n=0 name out status line previous fields
	set +e
	trap - ERR
	while [ ! -e "$LOGS/stop" ]; do
		for name in "$@"; do
			out=$(vol-info "$VM/$name" 2>&1)
			status=$?
			[ "$status" -eq 0 ] || problem "reader: vol-info $name exited $status: $out"
			case $(printf '%s\n' "$out" | sed -n 's/^state\t//p') in
			clean | dirty) ;;
			*) problem "reader: vol-info $name: $out" ;;
			esac
			[ "$(printf '%s\n' "$out" | sed -n 's/^size\t//p')" = "$SIZE" ] ||
				problem "reader: vol-info $name: $out"
			[ "$(printf '%s\n' "$out" | sed -n 's/^latest\t//p')" -ge 1 ] 2>/dev/null ||
				problem "reader: vol-info $name: $out"
			out=$(vol-info -r "$VM/$name" 2>&1)
			status=$?
			[ "$status" -eq 0 ] || problem "reader: vol-info -r $name exited $status: $out"
			# Ascending ids, each line whole; never no revision.
			previous=0
			while IFS= read -r line; do
				IFS=$'\t' read -r -a fields <<<"$line"
				# The state name is "-" for a revision pruned
				# between its listing and its opening.
				if [ "${#fields[@]}" -ne 6 ] || [[ ! "${fields[0]}" =~ ^[0-9]+$ ]] ||
					[[ ! "${fields[4]}" =~ ^(-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z)$ ]] ||
					[ "${fields[5]}" != no ] ||
					[ "${fields[0]}" -le "$previous" ] || [ "${fields[2]}" != "$SIZE" ] ||
					[ "${fields[3]}" != "$VM/$name.img.${fields[0]}@${fields[1]}" ]; then
					previous=-1
					break
				fi
				previous=${fields[0]}
			done <<<"$out"
			[ "$previous" -gt 0 ] || problem "reader: vol-info -r $name: $out"
		done
		if [ -x "$TOP/bin/pool-check" ]; then
			# The storm's dirty images are findings (attached while
			# a tool or a token writer has one open), and so is
			# what a tool at work is doing when pool-check finds
			# the directory locked (info); anything else is a
			# half-state.
			out=$(pool-check -q "$POOL" 2>&1)
			status=$?
			[ "$status" -le 1 ] || problem "reader: pool-check exited $status: $out"
			out=$(printf '%s\n' "$out" | awk -F '\t' '$3 != "dirty-detached" && $3 != "dirty-attached" &&
				!($1 == "info" && $4 ~ /^a tool is working in this directory now/) && $0 != ""')
			[ -z "$out" ] || problem "reader: pool-check: $out"
		fi
		n=$((n + 1))
		sleep 0.02
	done
	echo "$n" >"$LOGS/reader.count"
}

# snapshot_check NAME: under the lock, volume NAME's files are consistent
# with each other and with the previous snapshots (ID_INODE, MAX_ID).
snapshot_check() {
	local name=$1 tokens ids id file ino token
	tokens=$(tokens_of "$name")
	ids=$(revision_ids "$VM" "$name")
	[ -n "$ids" ] || problem "checker: $name has no revision"
	[ -z "$(tr ' ' '\n' <<<"$ids" | uniq -d)" ] || problem "checker: $name: ids twice: $ids"
	for id in $ids; do
		file=$(revision_of "$VM" "$name" "$id") || {
			problem "checker: $name: revision $id: not one file"
			continue
		}
		ino=$(inode "$VM/$file")
		if [ -n "${ID_INODE[$name:$id]:-}" ]; then
			[ "${ID_INODE[$name:$id]}" = "$ino" ] ||
				problem "checker: $name: id $id reused for another file"
		elif [ "$id" -le "${MAX_ID[$name]:-0}" ]; then
			problem "checker: $name: new id $id is not above ${MAX_ID[$name]}"
		fi
		ID_INODE[$name:$id]=$ino
		[ "$id" -le "${MAX_ID[$name]:-0}" ] || MAX_ID[$name]=$id
		token=$(token_of "$VM/$file")
		grep -qxF -- "$token" <<<"$tokens" || problem "checker: $name: $file holds '$token'"
	done
	for file in "$name.img" "$name-dirty.img" "$name-precache.img"; do
		[ -e "$VM/$file" ] || continue
		token=$(token_of "$VM/$file")
		grep -qxF -- "$token" <<<"$tokens" || problem "checker: $file holds '$token'"
		[ "$(stat -c %s "$VM/$file")" = "$SIZE" ] || problem "checker: $file: size"
	done
	[ -e "$VM/$name.img" ] || problem "checker: $name.img is missing"
	if [ -e "$VM/$name-precache.img" ]; then
		if ! cmp -s "$VM/$name.img" "$VM/$name-precache.img" ||
			[ "$(mtime_ns "$VM/$name.img")" != "$(mtime_ns "$VM/$name-precache.img")" ]; then
			problem "checker: $name-precache.img is not a copy of $name.img"
		fi
	fi
}

# checker VOLUME_NAME...: until told to stop, takes the VM directory's
# lock every 200 ms and checks each volume.
checker() {
	local n=0 name temps
	declare -A ID_INODE MAX_ID
	set +e
	trap - ERR
	while [ ! -e "$LOGS/stop" ]; do
		exec 8<"$(lock_path "$VM")"
		if flock -w 120 8; then
			for name in "$@"; do
				snapshot_check "$name"
			done
			temps=$(find "$VM" -name '*~*')
			[ -z "$temps" ] || problem "checker: temporary files while no tool runs: $temps"
			n=$((n + 1))
		else
			problem "checker: no lock in 120 s"
		fi
		exec 8<&-
		sleep 0.2
	done
	echo "$n" >"$LOGS/checker.count"
}

# final_check NAME: vol-info and vol-info -r on volume NAME say what its
# files say.
final_check() {
	local name=$1 v=$VM/$1 image state expected id file
	if [ -e "$v-dirty.img" ]; then
		image=$v-dirty.img state=dirty
	else
		image=$v.img state=clean
	fi
	ids=$(revision_ids "$VM" "$name")
	expected=$(printf 'path\t%s\nstate\t%s\nsize\t%s\nusage\t%s\nrevisions\t%s\nlatest\t%s' \
		"$v.img" "$state" "$(stat -c %s "$image")" "$(allocated "$image")" \
		"$(wc -w <<<"$ids")" "${ids##* }")
	[ "$(vol-info "$v")" = "$expected" ] || {
		printf 'vol-info %s:\n%s\nexpected:\n%s\n' "$name" "$(vol-info "$v")" "$expected" >&2
		return 1
	}
	expected=$(for id in $ids; do
		file=$(revision_of "$VM" "$name" "$id")
		printf '%s\t%s\t%s\t%s\t%s\tno\n' "$id" "${file##*@}" "$(stat -c %s "$VM/$file")" "$VM/$file" \
			"$(state_of "$VM/$file")"
	done)
	[ "$(vol-info -r "$v")" = "$expected" ]
}

# storm VOLUME_NAME...: the whole test on volumes made in $VM.
storm() {
	local name id pid watchers
	local -a workers
	LOGS=$BATS_TEST_TMPDIR/logs
	mkdir -p "$LOGS"
	: >"$LOGS/problems"
	# Each volume starts with revision 1 and a committed C, so that a
	# revert always has a revision to go to.
	for name in "$@"; do
		truncate -s "$SIZE" "$VM/$name.img"
		printf '%-31s\n' "T-$name-0-0" | dd of="$VM/$name.img" conv=notrunc status=none
		vol-start "$VM/$name" >/dev/null
		printf '%s T-%s-0-0\n' "$name" "$name" >>"$LOGS/tokens.0"
		token_write 0 "$name" "T-$name-0-1"
		vol-commit -k 3 "$VM/$name"
	done
	background=
	reader "$@" &
	watchers=$!
	checker "$@" &
	watchers="$watchers $!"
	background=$watchers
	for ((id = 1; id <= WORKERS; id++)); do
		worker "$id" "$@" &
		workers+=("$!")
		background="$background $!"
	done
	for pid in "${workers[@]}"; do
		wait "$pid"
	done
	touch "$LOGS/stop"
	for pid in $watchers; do
		wait "$pid"
	done
	background=
	cat "$LOGS"/ops.* | awk '{ n[$1 " " $3]++ } END { for (k in n) print k, n[k] }' | sort >&2
	echo "reader rounds: $(cat "$LOGS/reader.count"), checker snapshots: $(cat "$LOGS/checker.count")" >&2
	if [ -s "$LOGS/problems" ]; then
		cat "$LOGS/problems" >&2
		return 1
	fi
	# The storm did its work: commits happened, -w 0 met a held lock,
	# and the reader and checker ran during it.
	[ "$(cat "$LOGS"/ops.* | grep -c '^vol-commit .* 0$')" -gt 0 ]
	[ "$(cat "$LOGS"/ops.* | grep -c ' nowait 75$')" -gt 0 ]
	[ "$(cat "$LOGS"/ops.* | wc -l)" -eq $((WORKERS * ROUNDS)) ]
	[ "$(cat "$LOGS/reader.count")" -ge 3 ]
	[ "$(cat "$LOGS/checker.count")" -ge 3 ]
	# The state at the end, with no tool running.
	no_temp_files "$VM"
	declare -A ID_INODE=() MAX_ID=()
	for name in "$@"; do
		snapshot_check "$name"
		final_check "$name"
	done
	if [ -s "$LOGS/problems" ]; then
		cat "$LOGS/problems" >&2
		return 1
	fi
}

@test "concurrency: btrfs: 8 processes x 25 rounds on one volume" {
	vol_setup btrfs
	storm private
}

@test "concurrency: xfs: 8 processes x 25 rounds on one volume" {
	vol_setup xfs
	storm private
}

# Names that begin alike: each volume's temp-file cleanup and revision
# listing must keep to its own files.
@test "concurrency: btrfs: 8 processes x 25 rounds on sibling volumes of one VM directory" {
	vol_setup btrfs
	storm priv private private2 root
}

@test "concurrency: xfs: 8 processes x 25 rounds on sibling volumes of one VM directory" {
	vol_setup xfs
	storm priv private private2 root
}
