# shellcheck shell=bash
#
# reliability.bash: the driver of tests/crash.bats and tests/inject.bats,
# which prove DESIGN.md section 4 ("whatever happens, C holds the old or the
# new whole image") by interrupting the real tools, with no hook in them.
#
# A case is one command on one prepared directory.  The driver runs the
# command once without interference (the final state) and once under
# strace to list the system calls that change files.  Then, for every such
# call, it runs the command on a fresh copy of the prepared directory with
# strace making that very call deliver SIGKILL (crash.bats) or fail with
# EIO, ENOSPC or EDQUOT (inject.bats), and compares the states: names,
# types, checksums and inodes of everything below the copy.

# The cases, one per line, fields separated by "|":
#   label      what the test names (unique per filesystem)
#   fs         btrfs, xfs or ext4
#   prepare    the function that fills the prepared directory
#   clean      the file that plays C (its "-dirty" sibling plays D); a
#              -dirty.img here plays C for vol-snapshot, whose new revision
#              holds D's data, and the real C must stay as it was
#   status     the exit status of an uninterrupted run
#   no-return  the point of no return: "SYSCALL>NAME" is the first call of
#              SYSCALL (a prefix: "rename" covers renameat2) whose last
#              quoted argument is NAME, "SYSCALL" the first call at all;
#              "-" none, "*" before the first call (every step of a repair
#              stands on its own).  An error injected in a later call may
#              leave the new state, finished or not; one injected up to it
#              must leave the directory exactly as it was.
#   command    run in the copy; a trailing "< FILE" is its standard input
# Past the point of no return the change the command exists for is made
# and visible: the new C or D renamed into place, D truncated in place, a
# first revision or file removed.  What follows is its tail (the fsync of
# the directory after that rename, pruning, the precache refresh, the path
# printed on standard output): an error there cannot be undone, but the
# tool must still exit 74, and a re-run must finish the tail.
# A case for a new tool is one more line here.
RELIABILITY_CASES=(
	"reflink-clone|btrfs|prepare_clone|out/dst.img|0|rename>dst.img|reflink-clone -t src.img out/dst.img"
	"vol-create|btrfs|prepare_nothing|vm/private.img|0|rename>private.img|vol-create -s 256K vm/private"
	"vol-import FILE|btrfs|prepare_import|vm/private.img|0|rename>private.img|vol-import -k 1 vm/private new.img"
	"vol-import -|btrfs|prepare_input|new/private.img|0|rename>private.img|vol-import -s 256K new/private - < input.raw"
	"vol-start|btrfs|prepare_stopped|vm/private.img|0|rename>private-dirty.img|vol-start vm/private"
	"vol-start -S|btrfs|prepare_snapshot|vm/root.img|0|rename>root-dirty.img|vol-start -S tmpl/root vm/root"
	"vol-start --volatile|btrfs|prepare_volatile|vm/volatile.img|0|rename>volatile-dirty.img|vol-start --volatile -s 256K vm/volatile"
	"vol-start -k -1|btrfs|prepare_stopped|vm/private.img|0|rename>private-dirty.img|vol-start -k -1 vm/private"
	"vol-commit -k 1|btrfs|prepare_running|vm/private.img|0|rename>private.img|vol-commit -k 1 vm/private"
	"vol-commit -k 0|btrfs|prepare_running|vm/private.img|0|rename>private.img|vol-commit -k 0 vm/private"
	"vol-commit -k -1|btrfs|prepare_unversioned|vm/private.img|0|rename>private.img|vol-commit -k -1 vm/private"
	"vol-commit --precache=later|btrfs|prepare_running|vm/private.img|0|rename>private.img|vol-commit --precache=later -k 1 vm/private"
	"vol-precache|btrfs|prepare_stopped_without_precache|vm/private.img|0|rename>private-precache.img|vol-precache vm/private"
	"vol-discard|btrfs|prepare_running|vm/private.img|0|rename>private-precache.img|vol-discard vm/private"
	"vol-discard -S|btrfs|prepare_snapshot_running|vm/root.img|0|unlink>root-dirty.img|vol-discard -S tmpl/root vm/root"
	"vol-revert|btrfs|prepare_stopped|vm/private.img|0|rename>private.img|vol-revert -k 1 -r 2 vm/private"
	"vol-revert -k 0|btrfs|prepare_stopped|vm/private.img|0|unlink|vol-revert -k 0 vm/private"
	"vol-prune|btrfs|prepare_three_revisions|vm/private.img|0|unlink|vol-prune -k 1 vm/private"
	"vol-resize|btrfs|prepare_stopped|vm/private.img|0|rename>private.img|vol-resize -s 512K vm/private"
	"vol-resize running|btrfs|prepare_running|vm/private.img|0|ftruncate|vol-resize -s 512K vm/private"
	"vol-remove|btrfs|prepare_stopped|vm/private.img|0|unlink|vol-remove vm/private"
	"vol-receive full|btrfs|prepare_receive_full|vm/private.img|0|rename>private.img|vol-receive vm/private < full.diff"
	"vol-receive -k 1|btrfs|prepare_receive_incremental|vm/private.img|0|rename>private.img|vol-receive -k 1 vm/private < inc.diff"
	"vol-snapshot -k 2|btrfs|prepare_running|vm/private-dirty.img|0|rename>private.img.3@2024-03-02T10:00:00Z|vol-snapshot -k 2 vm/private"
	"vol-snapshot|xfs|prepare_running|vm/private-dirty.img|0|rename>private.img.3@2024-03-02T10:00:00Z|vol-snapshot vm/private"
	"vol-pin|btrfs|prepare_three_revisions|vm/private.img|0|rename>private.img.2@2024-02-02T10:00:00Z.pin|vol-pin -r 2 vm/private"
	"vol-pin -u|btrfs|prepare_pinned_revisions|vm/private.img|0|unlink>private.img.1@2024-02-01T10:00:00Z.pin|vol-pin -u -r 1 vm/private"
	"vol-revert pinned|btrfs|prepare_pinned_revisions|vm/private.img|0|link|vol-revert -k 1 -r 1 vm/private"
	"vol-prune buckets|btrfs|prepare_year_of_revisions|vm/private.img|0|unlink|vol-prune -k 2 --keep-daily 5 --keep-weekly 4 --keep-monthly 3 vm/private"
	"pool-check --repair|btrfs|prepare_pool_leftovers|pool/appvms/vm1/private.img|0|*|pool-check -q --repair pool"
	"reflink-clone|xfs|prepare_clone|out/dst.img|0|rename>dst.img|reflink-clone -t src.img out/dst.img"
	"vol-commit -k 1|xfs|prepare_running|vm/private.img|0|rename>private.img|vol-commit -k 1 vm/private"
	"vol-commit --precache=later|xfs|prepare_running|vm/private.img|0|rename>private.img|vol-commit --precache=later -k 1 vm/private"
	"vol-precache|xfs|prepare_stopped_without_precache|vm/private.img|0|rename>private-precache.img|vol-precache vm/private"
	"vol-revert -r 1|xfs|prepare_stopped|vm/private.img|0|rename>private.img|vol-revert -r 1 vm/private"
	"vol-prune -u|xfs|prepare_three_revisions|vm/private.img|0|unlink|vol-prune -u -k 1 vm/private"
	"vol-remove -f pinned|xfs|prepare_pinned_revisions|vm/private.img|0|unlink|vol-remove -f vm/private"
	"vol-resize -f shrink|xfs|prepare_stopped|vm/private.img|0|rename>private.img|vol-resize -f -k 1 -s 64K vm/private"
	"reflink-clone copy|ext4|prepare_clone|new/dst.img|0|rename>dst.img|reflink-clone src.img new/dst.img"
	"vol-import FILE|ext4|prepare_import|vm/private.img|0|rename>private.img|vol-import -k 1 vm/private new.img"
	"vol-start copy|ext4|prepare_stopped_without_precache|vm/private.img|0|rename>private-dirty.img|vol-start vm/private"
	"vol-commit -k 1|ext4|prepare_running|vm/private.img|0|rename>private.img|vol-commit -k 1 vm/private"
)

# The system calls that change files.  "?" lets strace ignore a name the
# architecture lacks (aarch64 has no rename, link, unlink, mkdir, rmdir).
RELIABILITY_SYSCALLS='openat,?creat,write,pwrite64,?pwritev,?pwritev2,?writev,copy_file_range,ioctl,ftruncate,fsync,fdatasync,?rename,renameat,?renameat2,?link,linkat,?unlink,unlinkat,?mkdir,mkdirat,?rmdir,fallocate,fchmod,utimensat'

# The calls whose failure can mean a full disk as well as a broken one.
RELIABILITY_SPACE_SYSCALLS=' write pwrite64 pwritev pwritev2 writev copy_file_range ioctl fallocate ftruncate '

REVISION_NAME_RE='\.img\.[0-9]+@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# ---- prepared directories (run in the directory to fill) ----

# image FILE DATE: a sparse 256 KiB image of random data in its first and
# third 64 KiB, holes between, so that a copy must find data and holes.
image() {
	truncate -s 256K "$1"
	head -c 64K /dev/urandom | dd of="$1" conv=notrunc status=none
	head -c 64K /dev/urandom | dd of="$1" bs=64K seek=2 conv=notrunc status=none
	chmod 600 "$1"
	touch -d "$2" "$1"
}

# origin BASE ID...: a stopped origin volume, as commits leave it: C, a
# valid precache, and revisions with the given ids, each its own content.
origin() {
	local base=$1 id
	shift
	image "$base.img" '2024-03-01 10:00:00 UTC'
	cp -p --reflink=auto "$base.img" "$base-precache.img"
	for id in "$@"; do
		image "$base.img.$id@2024-02-0${id}T10:00:00Z" "2024-02-0$id 10:00:00 UTC"
	done
}

prepare_nothing() {
	:
}

prepare_clone() {
	image src.img '2024-01-01 00:00:00 UTC'
	mkdir out
	image out/dst.img '2024-01-02 00:00:00 UTC'
}

prepare_stopped() {
	mkdir vm
	origin vm/private 1 2
}

prepare_stopped_without_precache() {
	prepare_stopped
	rm vm/private-precache.img
}

prepare_three_revisions() {
	mkdir vm
	origin vm/private 1 2 3
}

# A running origin volume: vol-start used up the precache.
prepare_running() {
	prepare_stopped_without_precache
	image vm/private-dirty.img '2024-03-02 10:00:00 UTC'
}

# A running volume with snapshots disabled: D only.
prepare_unversioned() {
	mkdir vm
	image vm/private-dirty.img '2024-03-02 10:00:00 UTC'
}

prepare_import() {
	prepare_stopped
	image new.img '2024-03-03 10:00:00 UTC'
}

prepare_input() {
	image input.raw '2024-03-03 10:00:00 UTC'
}

# A template's root volume, and a VM directory whose snapshot of it is
# stopped (vol-discard -S removed its own C).
prepare_snapshot() {
	mkdir tmpl vm
	origin tmpl/root
}

prepare_snapshot_running() {
	prepare_snapshot
	ln tmpl/root.img vm/root.img
	cp --reflink=auto vm/root.img vm/root-dirty.img
	printf RUNNING | dd of=vm/root-dirty.img conv=notrunc status=none
}

# A volatile volume that a VM used before: its old D is stale.
prepare_volatile() {
	mkdir vm
	image vm/volatile-dirty.img '2024-03-02 10:00:00 UTC'
}

# A pool after crashes: a temp file, an import leftover and a stale
# precache beside a clean volume (for pool-check --repair).
prepare_pool_leftovers() {
	mkdir -p pool/appvms/vm1 pool/vm-templates
	origin pool/appvms/vm1/private 1
	touch -d '2024-03-05 10:00:00 UTC' pool/appvms/vm1/private-precache.img
	image pool/appvms/vm1/private-import.img '2024-03-04 10:00:00 UTC'
	image pool/appvms/vm1/private.img~Ab12Cd '2024-03-04 10:00:00 UTC'
}

# A source volume src/data for the streams: revision 1, and C a clone of
# it with one block changed and one punched, so that what they share is
# left out of an incremental stream.
stream_source() {
	mkdir src
	origin src/data 1
	rm src/data.img src/data-precache.img
	cp --reflink=auto src/data.img.1@* src/data.img
	head -c 4K /dev/urandom | dd of=src/data.img bs=4K seek=3 conv=notrunc status=none
	fallocate -p -o 160K -l 8K src/data.img
	touch -d '2024-03-01 10:00:00 UTC' src/data.img
	cp -p --reflink=auto src/data.img src/data-precache.img
}

# A stopped volume, and full.diff: all of the source's revision 1.
prepare_receive_full() {
	prepare_stopped
	stream_source
	vol-export -q -r 1 src/data >full.diff
}

# A volume that received the source's revision 1 (its C is that state),
# and inc.diff: the changes from there to the source's C.
prepare_receive_incremental() {
	prepare_receive_full
	vol-receive -q -k 1 vm/private <full.diff
	vol-export -q -i 1 -r clean src/data >inc.diff
}

# A stopped volume whose revision 1 is pinned (vol-pin's empty marker).
prepare_pinned_revisions() {
	prepare_three_revisions
	touch vm/private.img.1@2024-02-01T10:00:00Z.pin
	chmod 600 vm/private.img.1@2024-02-01T10:00:00Z.pin
}

# A year of revisions, one every 6 days at varying hours, revision 5
# pinned, for bucket prunes: 60 revisions, hard links of two images.
prepare_year_of_revisions() {
	local id when
	mkdir vm
	origin vm/private
	image vm/odd '2024-01-01 00:00:00 UTC'
	image vm/even '2024-01-02 00:00:00 UTC'
	for ((id = 1; id <= 60; id++)); do
		when=$(date -u -d "@$((1704067200 + id * 518400 + id * 7919 % 86400))" +%Y-%m-%dT%H:%M:%SZ)
		if ((id % 2)); then
			ln vm/odd "vm/private.img.$id@$when"
		else
			ln vm/even "vm/private.img.$id@$when"
		fi
	done
	rm vm/odd vm/even
	for when in vm/private.img.5@*Z; do
		: >"$when.pin"
		chmod 600 "$when.pin"
	done
}

# ---- the case being run ----

# case_load LABEL FS: sets the CASE_* variables from the table.
case_load() {
	local line label fs
	CASE_LABEL=
	for line in "${RELIABILITY_CASES[@]}"; do
		IFS='|' read -r label fs CASE_PREPARE CASE_CLEAN CASE_STATUS \
			CASE_NO_RETURN CASE_COMMAND <<<"$line"
		if [ "$label" = "$1" ] && [ "$fs" = "$2" ]; then
			CASE_LABEL=$label
			break
		fi
	done
	[ -n "$CASE_LABEL" ] || {
		echo "no case \"$1\" on $2 in RELIABILITY_CASES" >&2
		return 1
	}
	CASE_FS=$2
	CASE_DIRTY=${CASE_CLEAN%.img}-dirty.img
	CASE_INPUT=/dev/null
	if [[ $CASE_COMMAND == *' < '* ]]; then
		CASE_INPUT=${CASE_COMMAND##* < }
		CASE_COMMAND=${CASE_COMMAND% < *}
	fi
	read -ra CASE_ARGV <<<"$CASE_COMMAND"
	# The statuses a re-run may end with.  vol-create refuses a volume
	# that exists (73), also the very one an interrupted run finished
	# making (vol-create(1)); vol-remove finds no volume (66) once an
	# interrupted run removed the last of it, and vol-revert -r no
	# revision (66) once an interrupted run consumed it.  What counts
	# then is that the files are those of an uninterrupted run.
	CASE_RERUN_STATUS=$CASE_STATUS
	# A line of the files a re-run may leave beyond an uninterrupted
	# run's: the VM directory that a vol-remove cut short after its last
	# unlink leaves empty, which vol-remove then no longer tells from a
	# typo (pool-check --repair removes it).
	CASE_RERUN_MAY_LEAVE=
	case $CASE_LABEL in
	vol-remove*) CASE_RERUN_MAY_LEAVE="vm d -" ;;
	esac
	case $CASE_LABEL in
	vol-create) CASE_RERUN_STATUS="$CASE_STATUS 73" ;;
	vol-remove* | vol-revert*) CASE_RERUN_STATUS="$CASE_STATUS 66" ;;
	esac
}

# case_exec DIR [PREFIX...]: runs the case's command in DIR behind PREFIX
# (strace and its options); its output goes to DIR.out and DIR.err.
case_exec() {
	local dir=$1
	shift
	# The outer redirection silences the shell's notice of a killed job.
	{
		(
			cd "$dir" || exit 1
			# In a make check-san build: LeakSanitizer cannot
			# work under ptrace, so a traced run is checked for all
			# but leaks; and its reports go to stderr, where they
			# fail the case, so that the runtime makes no log
			# directory among the calls the case counts.
			if [ "${1:-}" = strace ]; then
				export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:log_path=stderr"
				export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=stderr"
			fi
			# A process namespace of its own: the tools look at
			# every process's open files before they change a
			# dirty image, and the opens of that look must be as
			# many in each run for "the Nth call" to be the same
			# call; there they see only themselves.
			exec unshare --pid --fork --mount-proc \
				"$@" "${CASE_ARGV[@]}" <"$CASE_INPUT" >"$dir.out" 2>"$dir.err"
		)
	} 2>/dev/null
}

# state DIR: one line per entry below DIR, sorted: "path type md5 inode"
# (type f or d; md5 "-" for a directory): the fields of dir_state that
# the checks below compare.
state() {
	dir_state -r "$1" | awk '{ print $1, $2, $7, $3 }'
}

# same_files STATE: names (revision times replaced by TIME) and checksums,
# for comparing runs whose files are new inodes.
same_files() {
	sed -E 's/@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z /@TIME /' "$1" |
		cut -d' ' -f1-3 | LC_ALL=C sort
}

temp_files() {
	awk '$1 ~ /~/ { print $1 }' "$1"
}

# state_problems BEFORE FINAL AFTER: every way the state AFTER (left by an
# interrupted run) breaks DESIGN.md section 4, given the state BEFORE the
# command and the FINAL one of an uninterrupted run.  Prints nothing if
# AFTER is consistent.  Temp files are not judged here.
state_problems() {
	local -A B F A before_sums final_sums after_sums
	local path type sum c=$CASE_CLEAN d=$CASE_DIRTY file
	while read -r path type sum _; do
		B[$path]=$sum
		[ "$type" != f ] || before_sums[$sum]=1
	done <"$1"
	while read -r path type sum _; do
		F[$path]=$sum
		[ "$type" != f ] || final_sums[$sum]=1
	done <"$2"
	while read -r path type sum _; do
		A[$path]=$sum
		[ "$type" != f ] || [[ $path == *~* ]] || after_sums[$sum]=1
	done <"$3"
	# C holds the old or the new image; D is unchanged, or what it becomes.
	for file in "$c" "$d"; do
		sum=${A[$file]:-absent}
		[ "$sum" = "${B[$file]:-absent}" ] || [ "$sum" = "${F[$file]:-absent}" ] ||
			echo "$file holds neither its old nor its new content"
	done
	for path in "${!A[@]}"; do
		sum=${A[$path]}
		if [[ $path == *~* ]]; then
			continue
		elif [ "$sum" = - ]; then
			[ -n "${B[$path]+1}${F[$path]+1}" ] ||
				echo "$path: a directory that neither run has"
		elif [[ $path =~ $REVISION_NAME_RE ]]; then
			if [ -n "${B[$path]+1}" ]; then
				[ "$sum" = "${B[$path]}" ] ||
					echo "$path: a revision whose content changed"
			else
				[ "$sum" = "${B[$c]:-absent}" ] ||
					echo "$path: a new revision that is not the old C"
			fi
		elif [ -z "${before_sums[$sum]+1}${final_sums[$sum]+1}" ]; then
			echo "$path: neither an old nor a new file (half-written?)"
		fi
	done
	for path in "${!B[@]}"; do
		if [[ $path =~ $REVISION_NAME_RE ]] && [ -z "${A[$path]+1}" ] &&
			[ -n "${F[$path]+1}" ]; then
			echo "$path: a revision the command keeps is gone"
		fi
	done
	# A case whose C is played by D (vol-snapshot: a new revision holds
	# D's data): the real clean image never changes.
	if [[ $c == *-dirty.img ]]; then
		file=${c%-dirty.img}.img
		[ "${A[$file]:-absent}" = "${B[$file]:-absent}" ] ||
			echo "$file: the clean image changed"
	fi
	# A pinned revision keeps its marker as long as it is there, unless
	# the command unpins it (its final state has the revision alone).
	for path in "${!B[@]}"; do
		[[ $path == *.pin ]] || continue
		file=${path%.pin}
		if [ -n "${A[$file]+1}" ] && [ -z "${A[$path]+1}" ] &&
			! { [ -n "${F[$file]+1}" ] && [ -z "${F[$path]+1}" ]; }; then
			echo "$file: a pinned revision without its marker"
		fi
	done
	# Whatever both the old and the new state hold must still be somewhere.
	for path in "${!B[@]}"; do
		sum=${B[$path]}
		if [ "$sum" != - ] && [ -n "${final_sums[$sum]+1}" ] &&
			[ -z "${after_sums[$sum]+1}" ]; then
			echo "$path: its data, kept by the command, is lost"
		fi
	done
	return 0
}

# case_points TRACE MODE: the calls of TRACE that change files, one per
# line: "SYSCALL N CLASS", N counting every call of SYSCALL from exec on
# (as strace's when= does).  CLASS is "after" for a call past the point of
# no return, else "before".  MODE "error" leaves out writes to standard
# error: a tool cannot report that its report failed.
case_points() {
	awk -v spec="$CASE_NO_RETURN" -v mode="$2" -v list="$RELIABILITY_SYSCALLS" '
		BEGIN {
			gsub(/\?/, "", list)
			n = split(list, names, ",")
			for (i = 1; i <= n; i++) mutating[names[i]] = 1
			split(spec, parts, ">")
			want_call = parts[1]; want_name = parts[2]
			# -1: no point of no return; -2: every call is past it.
			no_return = spec == "-" ? -1 : spec == "*" ? -2 : 0
		}
		match($0, /^[0-9]+ +[a-z0-9_]+\(/) {
			call = substr($0, RSTART, RLENGTH - 1)
			sub(/^[0-9]+ +/, "", call)
			count[call]++
			if (no_return == 0 && index(call, want_call) == 1) {
				# The last quoted argument: the name made or removed.
				target = ""
				if (match($0, /"[^"]*"[^"]*$/)) {
					target = substr($0, RSTART + 1)
					sub(/".*/, "", target)
				}
				if (want_name == "" || target == want_name)
					no_return = NR
			}
			if (!(call in mutating)) next
			if (call == "openat" && $0 !~ /O_CREAT/) next
			if (call == "ioctl" && $0 ~ /TC[GS]ETS|TIOC|LOOP_GET_STATUS/) next
			if (mode == "error" && call ~ /^write/ && $0 ~ /^[0-9]+ +[a-z]+\(2,/) next
			past = no_return == -2 || no_return > 0 && NR > no_return
			print call, count[call], past ? "after" : "before"
		}
		END { if (no_return == 0) print "no-return-not-found", 0, "-" }
	' "$1"
}

# case_setup LABEL FS: loads the case, makes its prepared directory, the
# final state of an uninterrupted run, and the trace of a traced one.
# Below $DIR: prepared/ and its state, final/ and its state, trace.
case_setup() {
	local status skip_var mount_var
	case_load "$1" "$2"
	skip_var="FS_SKIP_$2"
	mount_var="FS_$2"
	if [ -n "${!skip_var:-}" ] || [ -z "${!mount_var:-}" ]; then
		echo "$CASE_LABEL ($CASE_FS): skipped" >>"$BATS_FILE_TMPDIR/coverage"
	fi
	fs_dir "$2"
	mkdir "$DIR/prepared"
	(cd "$DIR/prepared" && "$CASE_PREPARE")
	state "$DIR/prepared" >"$DIR/prepared.state"
	cp -a --reflink=auto "$DIR/prepared" "$DIR/final"
	status=0
	case_exec "$DIR/final" || status=$?
	[ "$status" -eq "$CASE_STATUS" ] || {
		echo "${CASE_ARGV[*]}: exit status $status, not $CASE_STATUS" >&2
		cat "$DIR/final.err" >&2
		return 1
	}
	state "$DIR/final" >"$DIR/final.state"
	same_files "$DIR/final.state" >"$DIR/final.files"
	[ -z "$(temp_files "$DIR/final.state")" ] || {
		echo "an uninterrupted run leaves temp files" >&2
		return 1
	}
	cp -a --reflink=auto "$DIR/prepared" "$DIR/traced"
	status=0
	case_exec "$DIR/traced" strace -f -o "$DIR/trace" -e trace="$RELIABILITY_SYSCALLS" ||
		status=$?
	state "$DIR/traced" >"$DIR/traced.state"
	if [ "$status" -ne "$CASE_STATUS" ] ||
		[ "$(same_files "$DIR/traced.state")" != "$(same_files "$DIR/final.state")" ]; then
		echo "the traced run (status $status) differs from the uninterrupted one:" >&2
		diff "$DIR/final.state" "$DIR/traced.state" >&2
		cat "$DIR/traced.err" >&2
		return 1
	fi
	rm -rf "$DIR/traced"
}

# ---- the points ----

# Each point runs in a copy of its own, $RUN, made afresh from prepared/;
# beside it $RUN.problems gathers what went wrong there, $RUN.failures
# the report, and $RUN.out, $RUN.err, $RUN.before, $RUN.after and
# $RUN.rerun the tool's output and the states.
point_begin() {
	rm -rf "$RUN"
	cp -a --reflink=auto "$DIR/prepared" "$RUN"
	: >"$RUN.problems"
}

problem() {
	echo "$*" >>"$RUN.problems"
}

# point_end NAME: files the problems of the point under NAME.
point_end() {
	if [ -s "$RUN.problems" ]; then
		echo "$1:"
		sed 's/^/    /' "$RUN.problems"
	fi >>"$RUN.failures"
}

# rerun_problems: runs the command again on $RUN and prints how the result
# differs from the uninterrupted run's, if it does.
rerun_problems() {
	local status=0
	case_exec "$RUN" || status=$?
	case " $CASE_RERUN_STATUS " in
	*" $status "*) ;;
	*) echo "re-run: exit status $status, not $CASE_RERUN_STATUS: $(head -c 300 "$RUN.err")" ;;
	esac
	state "$RUN" >"$RUN.rerun"
	same_files "$RUN.rerun" | {
		if [ -n "$CASE_RERUN_MAY_LEAVE" ]; then
			grep -vxF "$CASE_RERUN_MAY_LEAVE" || true
		else
			cat
		fi
	} >"$RUN.rerun.files"
	if ! cmp -s "$DIR/final.files" "$RUN.rerun.files"; then
		echo "re-run: the files differ from an uninterrupted run's (< expected, > found):"
		diff "$DIR/final.files" "$RUN.rerun.files" | sed -n 's/^[<>] .*/  &/p'
	fi
	return 0
}

# for_each_point MODE FUNCTION: calls FUNCTION CALL N CLASS for every
# point of the trace (see case_points), RELIABILITY_JOBS (default 3) at a
# time: most of a point's time is spent waiting for fsync.  Gathers the
# failures, in the order of the trace, in $DIR/failures.
for_each_point() {
	local mode=$1 function=$2 call n class index=0 i
	: >"$DIR/failures"
	while read -r call n class; do
		if [ "$call" = no-return-not-found ]; then
			echo "no call matches the point of no return $CASE_NO_RETURN" >>"$DIR/failures"
			continue
		fi
		index=$((index + 1))
		while [ "$(jobs -pr | wc -l)" -ge "${RELIABILITY_JOBS:-3}" ]; do
			wait -n || true
		done
		(
			RUN=$DIR/run.$index
			"$function" "$call" "$n" "$class"
			rm -rf "$RUN"
			echo "$call #$n" >"$RUN.done"
		) &
	done < <(case_points "$DIR/trace" "$mode")
	wait || true
	for ((i = 1; i <= index; i++)); do
		if [ -f "$DIR/run.$i.failures" ]; then
			cat "$DIR/run.$i.failures" >>"$DIR/failures"
		fi
		# A check that failed itself (set -e) must not pass unseen.
		if [ ! -f "$DIR/run.$i.done" ]; then
			echo "point $i of the trace: the check did not finish" >>"$DIR/failures"
		fi
	done
}

# report_failures: prints the failures gathered in $DIR/failures and
# fails, or succeeds if there are none.
report_failures() {
	local input=
	[ -s "$DIR/failures" ] || return 0
	[ "$CASE_INPUT" = /dev/null ] || input=" < $CASE_INPUT"
	echo "To reproduce a point: in a copy of a directory filled by $CASE_PREPARE, run" >&2
	echo "  strace -f -e trace=SYSCALL -e inject=SYSCALL:signal=KILL:when=N ${CASE_ARGV[*]}$input" >&2
	echo "(or inject=SYSCALL:error=ERRNO:when=N).  Failing points:" >&2
	cat "$DIR/failures" >&2
	return 1
}

# ---- item 1: kill at every call ----

# kill_point CALL N CLASS: SIGKILL just before call N of CALL; the state
# left must be consistent, and a re-run must finish the job.
kill_point() {
	local call=$1 n=$2 status=0
	point_begin
	case_exec "$RUN" strace -f -o /dev/null -e trace="$call" \
		-e inject="$call:signal=KILL:when=$n" || status=$?
	if [ "$status" -ne 137 ]; then
		problem "not killed (exit status $status): the call was not reached"
	else
		state "$RUN" >"$RUN.after"
		state_problems "$DIR/prepared.state" "$DIR/final.state" "$RUN.after" >>"$RUN.problems"
		rerun_problems >>"$RUN.problems"
		touch "$DIR/rerun.$call.$n"
	fi
	point_end "$call #$n, killed"
}

# crash_case LABEL FS: kill_point at every call that changes a file.
crash_case() {
	local points reruns summary
	case_setup "$1" "$2"
	for_each_point kill kill_point
	points=$(case_points "$DIR/trace" kill | grep -cv '^no-return-not-found' || true)
	reruns=$(find "$DIR" -maxdepth 1 -name 'rerun.*' | wc -l)
	summary="$CASE_LABEL ($CASE_FS): $points kill points, $reruns re-runs"
	echo "# $summary" >&3
	echo "$summary" >>"$BATS_FILE_TMPDIR/coverage"
	[ "$points" -gt 0 ]
	report_failures
}

# ---- item 2: an error at every call ----

# error_point CALL N CLASS [ERRNO...]: makes call N of CALL fail, with
# each ERRNO in turn (default: EIO, and ENOSPC for a call that may need
# space).  The tool must exit 74 with a message naming a file and the
# reason, and leave no temp file of its own.  Up to the point of no return
# the directory must be exactly as before; past it, consistent, and a
# re-run must finish the job.
error_point() {
	local call=$1 n=$2 class=$3 errno status reason line word words named left
	shift 3
	if [ $# -eq 0 ]; then
		set -- EIO
		# pool-check's only writes are its reflink probe, which a
		# full disk only skips (an info finding).
		[[ $RELIABILITY_SPACE_SYSCALLS != *" $call "* || $CASE_LABEL == "pool-check --repair" ]] ||
			set -- EIO ENOSPC
	fi
	for errno; do
		point_begin
		state "$RUN" >"$RUN.before"
		status=0
		case_exec "$RUN" strace -f -o /dev/null -e trace="$call" \
			-e inject="$call:error=$errno:when=$n" || status=$?
		case $errno in
		EIO) reason='Input/output error' ;;
		ENOSPC) reason='No space left on device' ;;
		EDQUOT) reason='Disk quota exceeded' ;;
		esac
		[ "$status" -eq 74 ] || problem "exit status $status, not 74"
		# The message names the file (or standard output) and the reason.
		named=
		while IFS= read -r line; do
			[[ $line == "${CASE_ARGV[0]}: "*": $reason"* ]] || continue
			line=${line#"${CASE_ARGV[0]}: "}
			[[ $line != *"standard output"* ]] || named=1
			read -ra words <<<"${line%%": $reason"*}"
			for word in "${words[@]}"; do
				word=${word%:}
				if [[ $word == */* || $word == *.img* ]] || [ -e "$DIR/prepared/$word" ] ||
					[ -e "$DIR/final/$word" ]; then
					named=1
				fi
			done
		done <"$RUN.err"
		[ -n "$named" ] ||
			problem "no message naming a file and \"$reason\": $(head -c 300 "$RUN.err")"
		state "$RUN" >"$RUN.after"
		# A temp file the command made must be gone (one it found may stay).
		left=$(comm -13 <(temp_files "$RUN.before" | LC_ALL=C sort) \
			<(temp_files "$RUN.after" | LC_ALL=C sort))
		[ -z "$left" ] || problem "temp files left: $(echo "$left" | tr '\n' ' ')"
		if [ "$class" = before ]; then
			if ! cmp -s "$RUN.before" "$RUN.after"; then
				problem "the directory changed (< before, > after):"
				diff "$RUN.before" "$RUN.after" |
					sed -n 's/^\([<>]\) \([^ ]*\) [^ ]* \([^ ]*\) \([^ ]*\)$/  \1 \2 (inode \4, md5 \3)/p' >>"$RUN.problems"
			fi
		else
			state_problems "$DIR/prepared.state" "$DIR/final.state" "$RUN.after" >>"$RUN.problems"
			rerun_problems >>"$RUN.problems"
		fi
		point_end "$call #$n, $errno ($class the point of no return)"
	done
}

# inject_case LABEL FS: error_point at every call that changes a file.
inject_case() {
	local eio after enospc summary
	case_setup "$1" "$2"
	for_each_point error error_point
	case_points "$DIR/trace" error | grep -v '^no-return-not-found' >"$DIR/points" || true
	eio=$(wc -l <"$DIR/points")
	after=$(grep -c ' after$' "$DIR/points" || true)
	enospc=$(while read -r call _; do
		[[ $RELIABILITY_SPACE_SYSCALLS != *" $call "* ]] || echo "$call"
	done <"$DIR/points" | wc -l)
	summary="$CASE_LABEL ($CASE_FS): $eio EIO points ($after past the point of no return), $enospc ENOSPC points"
	echo "# $summary" >&3
	echo "$summary" >>"$BATS_FILE_TMPDIR/coverage"
	[ "$eio" -gt 0 ]
	report_failures
}

# coverage_summary: prints what every case of the file tried, and fails if
# a case of the table did not report.
coverage_summary() {
	local line label fs missing=0
	[ -f "$BATS_FILE_TMPDIR/coverage" ] || touch "$BATS_FILE_TMPDIR/coverage"
	sed 's/^/# /' "$BATS_FILE_TMPDIR/coverage" >&3
	for line in "${RELIABILITY_CASES[@]}"; do
		IFS='|' read -r label fs _ <<<"$line"
		if ! grep -qF "$label ($fs): " "$BATS_FILE_TMPDIR/coverage"; then
			echo "no report from case $label ($fs)" >&2
			missing=$((missing + 1))
		fi
	done
	[ "$missing" -eq 0 ]
}

# edquot_case: a quota error on the first data write of a copying import
# (ext4 cannot clone): exit 74, "Disk quota exceeded", nothing changed.
edquot_case() {
	local call n class
	case_setup "vol-import FILE" ext4
	read -r call n class < <(case_points "$DIR/trace" error | grep '^pwrite64 ')
	[ "$call" = pwrite64 ]
	[ "$class" = before ]
	: >"$DIR/failures"
	RUN=$DIR/run.edquot
	error_point "$call" "$n" "$class" EDQUOT
	if [ -f "$RUN.failures" ]; then
		cat "$RUN.failures" >>"$DIR/failures"
	fi
	echo "# vol-import FILE (ext4): 1 EDQUOT point ($call #$n)" >&3
	report_failures
}
