#!/usr/bin/env bats
# A real QEMU guest, started by libvirtd with tests/hooks/libvirt-qemu as
# its qemu hook, on pools on loop-mounted btrfs and XFS.
#
# setup_file builds the guest (the newest kernel of /boot with its own
# modules, and a busybox initramfs made by tests/guest/mkinitramfs: it
# writes the "marker=" of its command line at offset 0 of /dev/vda, then
# powers off, or with "hold=1" waits to be destroyed), installs a wrapper
# of the hook as /etc/libvirt/hooks/qemu, and starts virtlogd and libvirtd
# itself (there is no systemd here).  teardown_file destroys the guests,
# stops the daemons it started by their pids, and puts back the hook that
# was there before.  The file skips when not root, when the packages that
# tests/run installs are missing, or when a libvirtd already runs: the hook
# must be in place before libvirtd starts, and this file does not stop a
# daemon it did not start.

load helper

# Every guest of this file has a name with this prefix: teardown_file
# destroys what is left of them.
GUEST_PREFIX=file-reflink-test-
HOOK=/etc/libvirt/hooks/qemu
# Where a hook that was installed before this file waits to be put back.
HOOK_SAVED=/etc/libvirt/hooks/.qemu.saved-by-libvirt.bats
HOOK_TAG="installed by file-reflink's tests/libvirt.bats"

virsh() {
	command virsh -q -c qemu:///system "$@"
}

# Why this file cannot run here, or nothing.
libvirt_unavailable_reason() {
	local command pids
	if [ "$(id -u)" -ne 0 ]; then
		echo "not root: libvirtd, its hook and loop devices need root"
		return
	fi
	for command in virsh libvirtd virtlogd qemu-system-x86_64 busybox cpio; do
		if ! command -v "$command" >/dev/null; then
			echo "$command is not installed (tests/run installs it as root)"
			return
		fi
	done
	if ! compgen -G '/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null &&
		! compgen -G '/usr/lib64/libvirt/connection-driver/libvirt_driver_qemu.so' >/dev/null; then
		echo "libvirt's QEMU driver is not installed (tests/run installs it as root)"
		return
	fi
	if [ -z "$(guest_kernel_version)" ]; then
		echo "no guest kernel: /boot/vmlinuz-V with /lib/modules/V (tests/run installs linux-image-amd64 as root)"
		return
	fi
	pids=$(live_pids libvirtd virtqemud)
	if [ -n "$pids" ]; then
		echo "a libvirtd or virtqemud already runs (pid $pids):" \
			"this file starts its own, after installing the hook, and stops only what it started"
		return
	fi
	if compgen -G '/etc/libvirt/qemu/autostart/*.xml' >/dev/null; then
		echo "this machine has libvirt guests set to autostart, which a libvirtd started here would start"
		return
	fi
	if [ -e "$HOOK_SAVED" ]; then
		echo "$HOOK_SAVED exists: a run of this file ended without putting back the hook it saved there"
		return
	fi
}

# The newest kernel version V with a /boot/vmlinuz-V and modules in
# /lib/modules/V, or nothing.
guest_kernel_version() {
	local kernel version
	for kernel in $(compgen -G '/boot/vmlinuz-*' | sort -V -r); do
		version=${kernel#/boot/vmlinuz-}
		if [ -f "/lib/modules/$version/modules.dep" ]; then
			echo "$version"
			return
		fi
	done
}

# sq STRING: STRING quoted for sh.
sq() {
	printf "'%s'" "${1//\'/\'\\\'\'}"
}

# The user QEMU runs as must reach the images, the kernel and the log:
# the directories of this run are made searchable; those above must be.
make_reachable() {
	local dir=$BATS_FILE_TMPDIR
	while [ "$dir" != / ]; do
		case $dir/ in
		"$BATS_RUN_TMPDIR"/*) chmod o+x "$dir" ;;
		*)
			if [ "$((8#$(stat -c '%a' "$dir") & 1))" -eq 0 ]; then
				echo "$dir is not searchable by others: QEMU could not reach the images (set TMPDIR elsewhere)"
				return 1
			fi
			;;
		esac
		dir=$(dirname "$dir")
	done
}

# start_daemon PIDFILE COMMAND...: runs COMMAND (a daemon that forks into
# the background) with no file descriptor of bats, waits for PIDFILE, and
# prints the daemon's pid.
start_daemon() {
	local pidfile=$1 tries=0 pid
	shift
	rm -f "$pidfile"
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec "$@"
	) </dev/null >>"$BATS_FILE_TMPDIR/daemons.log" 2>&1 || return 1
	while [ "$tries" -lt 100 ]; do
		pid=$(cat "$pidfile" 2>/dev/null)
		if [ -n "$pid" ] && [ -e "/proc/$pid" ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.1
		tries=$((tries + 1))
	done
	return 1
}

# live_pids NAME...: the pids of the processes named NAME that are not
# zombies (here a daemon that exited may stay one for a while), on one line.
live_pids() {
	local name pid pids=""
	for name in "$@"; do
		for pid in $(pgrep -x "$name"); do
			running "$pid" && pids="$pids $pid"
		done
	done
	echo "${pids# }"
}

# running PID: the process PID exists and is not a zombie.
running() {
	[ -n "$1" ] && [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_daemon PID: SIGTERM, then SIGKILL after 20 seconds.
stop_daemon() {
	local tries=0
	running "$1" || return 0
	kill "$1" 2>/dev/null
	while running "$1" && [ "$tries" -lt 200 ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
	if running "$1"; then
		echo "# pid $1 did not stop in 20 s: SIGKILL" >&3
		kill -KILL "$1" 2>/dev/null
	fi
}

# The wrapper installed as libvirt's qemu hook: libvirtd gives hooks none
# of the test's environment, so the wrapper sets it.  POOL is the pool of
# this file that has a directory for the guest.  It runs the real hook,
# its standard error going to hook-GUEST.err for the guests of this file,
# then appends "GUEST OPERATION STATUS" to hook.log, which tells a test
# that the hook is done (libvirt forgets a transient guest before its
# release hook ends).
hook_wrapper() {
	local pools="" kind
	for kind in btrfs xfs; do
		[ -n "$(pool_dir "$kind")" ] && pools="$pools $(sq "$(pool_dir "$kind")")"
	done
	cat <<EOF
#!/bin/sh
# $HOOK_TAG for the time of its run:
# tests/hooks/libvirt-qemu with the test's pools and tools.
PATH=$(sq "$TOP/bin"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
POOL=$(sq "$(pool_dir btrfs)")
for pool in$pools; do
	[ -d "\$pool/appvms/\$1" ] && POOL=\$pool
done
KEEP=3
WAIT=60
TEMPLATE=
VOLATILE_SIZE=
export PATH POOL KEEP WAIT TEMPLATE VOLATILE_SIZE
EOF
	# Under make check-san, the tools that the hook runs report too.
	if [ -n "${ASAN_OPTIONS:-}" ]; then
		echo "ASAN_OPTIONS=$(sq "$ASAN_OPTIONS"); export ASAN_OPTIONS"
	fi
	if [ -n "${UBSAN_OPTIONS:-}" ]; then
		echo "UBSAN_OPTIONS=$(sq "$UBSAN_OPTIONS"); export UBSAN_OPTIONS"
	fi
	cat <<EOF
case \$1 in
$GUEST_PREFIX*) errors=$(sq "$BATS_FILE_TMPDIR")/hook-\$1.err ;;
*) errors=$(sq "$BATS_FILE_TMPDIR")/hook.err ;;
esac
$(sq "$TOP/tests/hooks/libvirt-qemu") "\$@" 2>>"\$errors"
status=\$?
echo "\$1 \$2 \$status" >>$(sq "$BATS_FILE_TMPDIR/hook.log")
exit "\$status"
EOF
}

# pool_dir KIND: the pool on KIND, or nothing if KIND is not set up.
pool_dir() {
	local mount_var="FS_$1"
	[ -n "${!mount_var:-}" ] && echo "${!mount_var}/pool"
}

hook_install() {
	if [ ! -d /etc/libvirt/hooks ]; then
		mkdir -p /etc/libvirt/hooks
		touch "$BATS_FILE_TMPDIR/hooks-dir-made"
	fi
	if [ -e "$HOOK" ] && ! grep -qF "$HOOK_TAG" "$HOOK"; then
		mv "$HOOK" "$HOOK_SAVED"
	fi
	hook_wrapper >"$HOOK.new" && chmod 755 "$HOOK.new" && mv "$HOOK.new" "$HOOK"
}

hook_remove() {
	if [ -f "$HOOK" ] && grep -qF "$HOOK_TAG" "$HOOK"; then
		rm -f "$HOOK"
	fi
	rm -f "$HOOK.new"
	if [ -e "$HOOK_SAVED" ]; then
		mv "$HOOK_SAVED" "$HOOK"
	fi
	if [ -e "$BATS_FILE_TMPDIR/hooks-dir-made" ]; then
		rmdir /etc/libvirt/hooks 2>/dev/null
		rm -f "$BATS_FILE_TMPDIR/hooks-dir-made"
	fi
}

setup_failed() {
	LIBVIRT_FAIL=$1
	export LIBVIRT_FAIL
}

# Sets up everything; on a problem exports LIBVIRT_SKIP (cannot run here)
# or LIBVIRT_FAIL (should run, but the set-up failed), which every test
# reports; never fails itself, so that teardown_file always cleans up.
setup_file() {
	local reason version guest=$BATS_FILE_TMPDIR/guest pid kind
	reason=$(libvirt_unavailable_reason)
	if [ -n "$reason" ]; then
		export LIBVIRT_SKIP=$reason
		return 0
	fi
	fs_setup btrfs xfs
	if [ -n "${FS_SKIP_btrfs:-}" ]; then
		export LIBVIRT_SKIP="btrfs: $FS_SKIP_btrfs"
		return 0
	fi
	if ! reason=$(make_reachable); then
		export LIBVIRT_SKIP=$reason
		return 0
	fi
	for kind in btrfs xfs; do
		if [ -n "$(pool_dir "$kind")" ] &&
			! pool-check --init "$(pool_dir "$kind")" 2>"$BATS_FILE_TMPDIR/pool.err"; then
			setup_failed "pool-check --init on $kind failed: $(cat "$BATS_FILE_TMPDIR/pool.err")"
			return 0
		fi
	done

	version=$(guest_kernel_version)
	mkdir -p "$guest"
	if ! cp "/boot/vmlinuz-$version" "$guest/vmlinuz" ||
		! "$TOP/tests/guest/mkinitramfs" "$version" "$guest/initrd" 2>"$guest/mkinitramfs.err"; then
		setup_failed "the guest of kernel $version could not be built: $(cat "$guest/mkinitramfs.err")"
		return 0
	fi
	export GUEST_KERNEL_VERSION=$version

	hook_install

	pid=$(live_pids virtlogd)
	if [ -n "$pid" ]; then
		echo "# virtlogd already runs (pid $pid): used, not stopped" >&3
	elif pid=$(start_daemon /run/virtlogd.pid virtlogd -d); then
		echo "$pid" >"$BATS_FILE_TMPDIR/virtlogd.pid"
	else
		setup_failed "virtlogd -d did not start: $(cat "$BATS_FILE_TMPDIR/daemons.log")"
		return 0
	fi
	if pid=$(LIBVIRT_LOG_OUTPUTS="3:file:$BATS_FILE_TMPDIR/libvirtd.log" \
		start_daemon /run/libvirtd.pid libvirtd -d); then
		echo "$pid" >"$BATS_FILE_TMPDIR/libvirtd.pid"
	else
		setup_failed "libvirtd -d did not start: $(cat "$BATS_FILE_TMPDIR/daemons.log")"
		return 0
	fi
	if ! wait_for 60 virsh version; then
		setup_failed "libvirtd does not answer: $(tail -n 5 "$BATS_FILE_TMPDIR/libvirtd.log" 2>/dev/null)"
		return 0
	fi
	guests_destroy
}

teardown_file() {
	local pid
	if [ -f "$BATS_FILE_TMPDIR/libvirtd.pid" ]; then
		guests_destroy
		pid=$(cat "$BATS_FILE_TMPDIR/libvirtd.pid")
		stop_daemon "$pid"
		rm -f "$BATS_FILE_TMPDIR/libvirtd.pid"
	fi
	guest_processes_kill
	if [ -f "$BATS_FILE_TMPDIR/virtlogd.pid" ]; then
		stop_daemon "$(cat "$BATS_FILE_TMPDIR/virtlogd.pid")"
		rm -f "$BATS_FILE_TMPDIR/virtlogd.pid"
	fi
	hook_remove
	rm -f /var/log/libvirt/qemu/"$GUEST_PREFIX"*.log
	bind_teardown
	fs_teardown
}

teardown() {
	bind_teardown
	# A test that stopped virtlogd starts it again for the next ones.
	if [ -f "$BATS_FILE_TMPDIR/virtlogd.pid" ] &&
		! running "$(cat "$BATS_FILE_TMPDIR/virtlogd.pid")"; then
		start_daemon /run/virtlogd.pid virtlogd -d >"$BATS_FILE_TMPDIR/virtlogd.pid"
	fi
}

# Destroys (and undefines) every guest of this file that libvirtd knows,
# waiting for the release hook of each.
guests_destroy() {
	local name
	for name in $(virsh list --all --name 2>/dev/null); do
		case $name in
		"$GUEST_PREFIX"*) ;;
		*) continue ;;
		esac
		if [ "$(virsh domstate "$name" 2>/dev/null)" != "shut off" ]; then
			virsh destroy "$name" >/dev/null 2>&1
			wait_for 60 hook_done "$name" release
		fi
		virsh undefine "$name" >/dev/null 2>&1
	done
}

# A QEMU of this file that outlived libvirtd is killed by its pid.
guest_processes_kill() {
	local pidfile pid
	for pidfile in /run/libvirt/qemu/"$GUEST_PREFIX"*.pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		if [ -n "$pid" ] && running "$pid" &&
			grep -qF "guest=$(basename "$pidfile" .pid)" "/proc/$pid/cmdline" 2>/dev/null; then
			stop_daemon "$pid"
		fi
	done
}

# loop_detached DEVICE: DEVICE has no backing file any more.
loop_detached() {
	[ ! -e "/sys/block/${1#/dev/}/loop/backing_file" ]
}

bind_teardown() {
	local device
	if [ -f "$BATS_FILE_TMPDIR/loops" ]; then
		while read -r device; do
			losetup -d "$device" 2>/dev/null
			# The kernel lets the file go a little after.
			wait_for 10 loop_detached "$device"
		done <"$BATS_FILE_TMPDIR/loops"
	fi
	rm -f "$BATS_FILE_TMPDIR/loops"
	if mountpoint -q "$BATS_FILE_TMPDIR/bind" 2>/dev/null; then
		umount "$BATS_FILE_TMPDIR/bind" || umount -l "$BATS_FILE_TMPDIR/bind"
	fi
}

# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# fails after SECONDS.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# hook_done GUEST OPERATION: the hook has finished OPERATION for GUEST.
hook_done() {
	grep -q "^$1 $2 [0-9]*\$" "$BATS_FILE_TMPDIR/hook.log" 2>/dev/null
}

# hook_status GUEST OPERATION: the exit status of the last such call.
hook_status() {
	grep "^$1 $2 [0-9]*\$" "$BATS_FILE_TMPDIR/hook.log" | tail -n 1 | cut -d' ' -f3
}

# domain_gone GUEST: libvirt knows no running guest of that name (an
# error other than that, such as no answer from libvirtd, is not "gone").
domain_gone() {
	local state
	if ! state=$(virsh domstate "$1" 2>&1); then
		case $state in
		*"failed to get domain"* | *"Domain not found"*) return 0 ;;
		*) return 1 ;;
		esac
	fi
	[ "$state" = "shut off" ]
}

# guest_ready KIND NAME: skips or fails as setup_file decided, else sets
# GUEST (the guest's name), POOL, VM (its directory, not made yet) and B
# (its private volume) on the pool on KIND.
guest_ready() {
	if [ -n "${LIBVIRT_SKIP:-}" ]; then
		skip "$LIBVIRT_SKIP"
	fi
	if [ -n "${LIBVIRT_FAIL:-}" ]; then
		echo "set-up failed: $LIBVIRT_FAIL" >&2
		return 1
	fi
	local skip_var="FS_SKIP_$1"
	if [ -n "${!skip_var:-}" ]; then
		skip "$1: ${!skip_var}"
	fi
	GUEST=$GUEST_PREFIX$2
	POOL=$(pool_dir "$1")
	VM=$POOL/appvms/$GUEST
	B=$VM/private
	if ! domain_gone "$GUEST"; then
		echo "a guest $GUEST already runs" >&2
		return 1
	fi
}

# domain_xml GUEST CMDLINE [QEMU-ARGUMENT]: the guest on the private volume
# of its directory, under TCG (a guest under KVM hung here), its serial
# console in guest/GUEST.console; with QEMU-ARGUMENT, QEMU is also given
# that argument.
domain_xml() {
	local guest=$BATS_FILE_TMPDIR/guest
	printf "<domain type='qemu'%s>\n" \
		"${3:+ xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'}"
	cat <<EOF
  <name>$1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$guest/vmlinuz</kernel>
    <initrd>$guest/initrd</initrd>
    <cmdline>console=ttyS0 panic=-1 $2</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='$POOL/appvms/$1/private-dirty.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$guest/$1.console'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path='$guest/$1.console'/>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
EOF
	if [ -n "${3:-}" ]; then
		printf "  <qemu:commandline>\n    <qemu:arg value='%s'/>\n  </qemu:commandline>\n" "$3"
	fi
	echo "</domain>"
}

# What a failed test shows: $GUEST's console, the hook's log and errors,
# libvirtd's errors.
diagnostics() {
	show "console of $GUEST (last lines)" tail -n 15 "$BATS_FILE_TMPDIR/guest/$GUEST.console"
	show "hook.log" cat "$BATS_FILE_TMPDIR/hook.log"
	show "hook-$GUEST.err" cat "$BATS_FILE_TMPDIR/hook-$GUEST.err"
	show "libvirtd.log (last lines)" tail -n 10 "$BATS_FILE_TMPDIR/libvirtd.log"
	show "/var/log/libvirt/qemu/$GUEST.log (last lines)" \
		tail -n 10 "/var/log/libvirt/qemu/$GUEST.log"
}

# show TITLE COMMAND...: COMMAND's output under a title, on standard error;
# never fails.
show() {
	echo "--- $1" >&2
	shift
	"$@" >&2 2>/dev/null || true
}

# guest_start CMDLINE: virsh create of $GUEST; fails if libvirt refuses.
guest_start() {
	domain_xml "$GUEST" "$1" >"$BATS_FILE_TMPDIR/$GUEST.xml"
	if ! virsh create "$BATS_FILE_TMPDIR/$GUEST.xml" >"$BATS_FILE_TMPDIR/virsh.out" 2>&1; then
		cat "$BATS_FILE_TMPDIR/virsh.out" >&2
		diagnostics
		return 1
	fi
}

# guest_wait_end: waits (at most 120 s) for $GUEST to end, then (60 s) for
# its release hook to finish.
guest_wait_end() {
	if ! wait_for 120 domain_gone "$GUEST"; then
		echo "$GUEST still runs after 120 s" >&2
		diagnostics
		return 1
	fi
	if ! wait_for 60 hook_done "$GUEST" release; then
		echo "the release hook of $GUEST did not finish in 60 s" >&2
		diagnostics
		return 1
	fi
}

sha() {
	sha256sum <"$1" | cut -d' ' -f1
}

# file_starts_with FILE TEXT
file_starts_with() {
	[ "$(head -c "${#2}" "$1" 2>/dev/null)" = "$2" ]
}

# A marker that no other run writes: letters and digits only, as the
# kernel command line takes it.
new_marker() {
	printf '%s%s%s' "$1" "$$" "$RANDOM"
}

# cycle KIND: the whole hook cycle of a guest that writes and powers off.
cycle() {
	guest_ready "$1" "cycle-$1"
	vol-create -s 4M "$B"
	before=$(sha "$B.img")
	marker=$(new_marker CYCLE)

	guest_start "marker=$marker"
	[ "$(hook_status "$GUEST" prepare)" = 0 ] || { diagnostics; false; }
	guest_wait_end
	[ "$(hook_status "$GUEST" release)" = 0 ] || { diagnostics; false; }
	# What the hook left to the background (prune, precache) is done.
	precache_awaited "$B" || { diagnostics; false; }
	# The hook said nothing: no warning about the domain XML either.
	[ ! -s "$BATS_FILE_TMPDIR/hook-$GUEST.err" ] || { diagnostics; false; }

	file_starts_with "$B.img" "$marker" || { diagnostics; false; }
	revision=$(revision_of "$VM" private 1)
	[ "$(sha "$VM/$revision")" = "$before" ]
	[ "$(revision_ids "$VM" private)" = 1 ]
	[ ! -e "$B-dirty.img" ]
	run --separate-stderr pool-check "$POOL"
	echo "pool-check: $output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "libvirt: a guest's run is committed by the release hook, the old image revision 1 (btrfs)" {
	cycle btrfs
}

@test "libvirt: a guest's run is committed by the release hook, the old image revision 1 (XFS)" {
	cycle xfs
}

# The state of the files of a volume's directory and of the template's:
# per file its name, inode, link count, size, mtime and sha256 (shortened).
busy_state() {
	local dir f
	for dir in "$VM" "$SRC_DIR"; do
		(
			cd "$dir" 2>/dev/null || exit 0
			find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | while IFS= read -r f; do
				printf '%s %s %s\n' "${dir#"$POOL"/}/$f" "$(stat -c 'inode %i links %h size %s mtime %.9Y' -- "$f")" \
					"$([ -f "$f" ] && sha256sum <"$f" | cut -c1-16)"
			done
		)
	done
}

# busy_changes BEFORE AFTER: the lines of AFTER not in BEFORE and the other
# way round, as "gone: ...; new: ...".
busy_changes() {
	local gone new
	gone=$(LC_ALL=C comm -23 <(echo "$1") <(echo "$2") | sed 's/$/;/' | tr '\n' ' ')
	new=$(LC_ALL=C comm -13 <(echo "$1") <(echo "$2") | sed 's/$/;/' | tr '\n' ' ')
	echo "gone: ${gone:-nothing;} new: ${new:-nothing;}"
}

# After a tool changed the files of $VM, which it must not while the
# guest runs, the directory is made again from hard links kept in $LINKS
# (the dirty image keeps QEMU's inode), so that the next tool is tried on
# the same state.
busy_restore() {
	rm -rf "$VM"
	mkdir "$VM"
	ln "$LINKS"/* "$VM"/
}

@test "libvirt: while QEMU runs on the dirty image, the tools refuse (75) and change nothing" {
	guest_ready btrfs busy
	SRC_DIR=$POOL/vm-templates/${GUEST_PREFIX}template
	SRC=$SRC_DIR/root
	vol-create -s 4M "$B"
	vol-create -s 1M "$SRC"
	# A revision, for vol-revert --discard.
	vol-start "$B" >/dev/null
	printf FIRST | dd of="$B-dirty.img" conv=notrunc status=none
	vol-commit -k 3 "$B"
	[ "$(revision_ids "$VM" private)" = 1 ]
	clean_before=$(sha "$B.img")
	revision1=$(revision_of "$VM" private 1)
	revision1_sha=$(sha "$VM/$revision1")
	marker=$(new_marker BUSY)

	guest_start "marker=$marker hold=1"
	if ! wait_for 120 file_starts_with "$B-dirty.img" "$marker"; then
		echo "the guest did not write its marker in 120 s" >&2
		diagnostics
		false
	fi
	domain_gone "$GUEST" && { echo "the guest ended; it should hold" >&2; diagnostics; false; }

	LINKS=$(fs_root btrfs)/links-busy
	rm -rf "$LINKS"
	mkdir "$LINKS"
	ln "$VM"/* "$LINKS"/
	dirty_inode=$(inode "$B-dirty.img")
	baseline=$(busy_state)
	failures=()
	# command:accepted statuses
	for check in \
		"vol-commit -k 3 B:75" \
		"vol-discard B:75" \
		"vol-revert --discard B:75" \
		"vol-start B:75" \
		"vol-start --volatile -s 1M B:75 65" \
		"vol-start -S SRC B:75 65" \
		"vol-remove -f B:75" \
		"vol-discard -S SRC B:75 65"; do
		command=${check%%:*}
		accepted=${check#*:}
		args=()
		for word in $command; do
			case $word in
			B) args+=("$B") ;;
			SRC) args+=("$SRC") ;;
			*) args+=("$word") ;;
			esac
		done
		run timeout 60 "${args[@]}"
		case " $accepted " in
		*" $status "*) ;;
		*) failures+=("$command: exit $status, expected ${accepted// / or }${output:+ (said: ${output//$'\n'/ / })}") ;;
		esac
		after=$(busy_state)
		if [ "$after" != "$baseline" ]; then
			failures+=("$command: changed the files: $(busy_changes "$baseline" "$after")")
			busy_restore
			[ "$(busy_state)" = "$baseline" ]
		fi
	done
	rm -rf "$LINKS"
	[ "$(inode "$B-dirty.img")" = "$dirty_inode" ]

	run --separate-stderr pool-check "$POOL"
	if ! printf '%s\n' "$output" | cut -f2,3 | grep -qxF "$B-dirty.img	dirty-attached"; then
		failures+=("pool-check does not report $B-dirty.img as dirty-attached: $output")
	fi

	# The guest is destroyed: the release hook commits what it wrote.
	virsh destroy "$GUEST" >/dev/null
	guest_wait_end
	[ "$(hook_status "$GUEST" release)" = 0 ] || { diagnostics; false; }
	# What the hook left to the background (prune, precache) is done.
	precache_awaited "$B" || { diagnostics; false; }
	file_starts_with "$B.img" "$marker"
	[ "$(revision_ids "$VM" private)" = "1 2" ]
	[ "$(sha "$VM/$revision1")" = "$revision1_sha" ]
	[ "$(sha "$VM/$(revision_of "$VM" private 2)")" = "$clean_before" ]
	[ ! -e "$B-dirty.img" ]
	run --separate-stderr pool-check "$POOL"
	echo "pool-check after the release hook: $output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]

	if [ ${#failures[@]} -gt 0 ]; then
		printf 'while the guest ran: %s\n' "${failures[@]}" >&2
		false
	fi
}

# No QEMU here: a loop device is how Xen (or a script) runs a guest on an
# image, and the path the kernel shows for it is the one it was made
# through, not the pool's.
@test "libvirt: a loop device made through a bind mount of the pool stops vol-commit (75)" {
	guest_ready btrfs bind
	vol-create -s 1M "$B"
	vol-start "$B" >/dev/null
	printf LOOP | dd of="$B-dirty.img" conv=notrunc status=none
	mkdir -p "$BATS_FILE_TMPDIR/bind"
	mount --bind "$POOL" "$BATS_FILE_TMPDIR/bind"
	device=$(losetup -f --show "$BATS_FILE_TMPDIR/bind/appvms/$GUEST/private-dirty.img")
	echo "$device" >>"$BATS_FILE_TMPDIR/loops"
	before=$(dir_state "$VM")
	run vol-commit -k 3 "$B"
	echo "vol-commit: $output"
	[ "$status" -eq 75 ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "libvirt: a start that QEMU fails makes no revision" {
	guest_ready btrfs qemu-fails
	vol-create -s 4M "$B"
	before=$(sha "$B.img")
	domain_xml "$GUEST" "marker=$(new_marker FAIL)" -no-such-option >"$BATS_FILE_TMPDIR/$GUEST.xml"
	run virsh create "$BATS_FILE_TMPDIR/$GUEST.xml"
	[ "$status" -ne 0 ]
	[[ "$output" == *"-no-such-option"* ]]
	wait_for 60 hook_done "$GUEST" release || { diagnostics; false; }
	[ "$(hook_status "$GUEST" prepare)" = 0 ] || { diagnostics; false; }
	echo "after the release hook: $(files_in "$VM")"
	[ "$(sha "$B.img")" = "$before" ]
	[ ! -e "$B-dirty.img" ]
	[ "$(revision_ids "$VM" private)" = "" ]
}

@test "libvirt: a start that fails for want of virtlogd makes no revision" {
	guest_ready btrfs no-virtlogd
	if [ ! -f "$BATS_FILE_TMPDIR/virtlogd.pid" ]; then
		skip "virtlogd ran before this file: it is not this test's to stop"
	fi
	vol-create -s 4M "$B"
	before=$(sha "$B.img")
	stop_daemon "$(cat "$BATS_FILE_TMPDIR/virtlogd.pid")"
	domain_xml "$GUEST" "marker=$(new_marker FAIL)" >"$BATS_FILE_TMPDIR/$GUEST.xml"
	run virsh create "$BATS_FILE_TMPDIR/$GUEST.xml"
	[ "$status" -ne 0 ]
	[[ "$output" == *virtlogd* ]]
	wait_for 60 hook_done "$GUEST" release || { diagnostics; false; }
	[ "$(hook_status "$GUEST" prepare)" = 0 ] || { diagnostics; false; }
	echo "after the release hook: $(files_in "$VM")"
	[ "$(sha "$B.img")" = "$before" ]
	[ ! -e "$B-dirty.img" ]
	[ "$(revision_ids "$VM" private)" = "" ]
}
