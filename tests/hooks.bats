#!/usr/bin/env bats
# The hook scripts of tests/hooks, run as a hypervisor would run them, on a
# pool made by pool-check --init on btrfs.

load helper

setup_file() {
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
}

teardown() {
	local device
	for device in ${loop_devices:-}; do
		losetup -d "$device"
	done
}

# A pool with a template fedora (a root of 1 MiB starting with TEMPLATE),
# an AppVM vm1 (an empty private of 1 MiB) and a volatile size of 4 MiB;
# sets $POOL, $VM, $TEMPLATE_ROOT.
pool_setup() {
	fs_dir btrfs
	POOL=$DIR/pool
	VM=$POOL/appvms/vm1
	TEMPLATE_ROOT=$POOL/vm-templates/fedora/root
	pool-check --init "$POOL"
	truncate -s 1M "$DIR/fedora.raw"
	printf TEMPLATE | dd of="$DIR/fedora.raw" conv=notrunc status=none
	vol-import "$TEMPLATE_ROOT" "$DIR/fedora.raw"
	vol-create -s 1M "$VM/private"
	# The precache made by the stop itself, so that a test sees the
	# stop's whole work when the hook returns; the default, "later", has
	# tests of its own.
	export POOL VOLATILE_SIZE=4M PRECACHE=now
	unset TEMPLATE REVISIONS_TO_KEEP KEEP
	loop_devices=
}

qubes_style() {
	"$TOP/tests/hooks/qubes-style" "$@"
}

# libvirt_qemu GUEST OPERATION: the hook as libvirtd runs it, with the
# domain XML of GUEST (disks: the three dirty images) on standard input.
libvirt_qemu() {
	domain_xml "$1" | "$TOP/tests/hooks/libvirt-qemu" "$1" "$2" begin -
}

domain_xml() {
	local dir=$POOL/appvms/$1 name device
	printf "<domain type='kvm'>\n  <name>%s</name>\n  <devices>\n" "$1"
	for name in root:vda private:vdb volatile:vdc; do
		device=${name#*:}
		printf "    <disk type='file' device='disk'>\n"
		printf "      <driver name='qemu' type='raw' discard='unmap'/>\n"
		printf "      <source file='%s'/>\n" "$dir/${name%:*}-dirty.img"
		printf "      <target dev='%s' bus='virtio'/>\n    </disk>\n" "$device"
	done
	printf "  </devices>\n</domain>\n"
}

@test "qubes-style: start prints private, root and volatile dirty images" {
	pool_setup
	precache=$(inode "$VM/private-precache.img")
	run --separate-stderr qubes_style vm1 start
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[0]}" = "$VM/private-dirty.img" ]
	[ "${lines[1]}" = "$VM/root-dirty.img" ]
	[ "${lines[2]}" = "$VM/volatile-dirty.img" ]
	[ "$(inode "$VM/private-dirty.img")" = "$precache" ]
	[ "$(inode "$VM/root.img")" = "$(inode "$TEMPLATE_ROOT.img")" ]
	[ "$(head_bytes "$VM/root-dirty.img" 8)" = TEMPLATE ]
	[ "$(stat -c %s "$VM/volatile-dirty.img")" -eq $((4 * 1024 * 1024)) ]
	[ "$(allocated "$VM/volatile-dirty.img")" -eq 0 ]
}

@test "qubes-style: stop commits private as revision 1, drops root and volatile" {
	pool_setup
	template_before=$(dir_state "$POOL/vm-templates/fedora")
	qubes_style vm1 start >/dev/null
	printf RUN1 | dd of="$VM/private-dirty.img" conv=notrunc status=none
	printf ROOT | dd of="$VM/root-dirty.img" conv=notrunc status=none
	run qubes_style vm1 stop
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	revision=$(revision_of "$VM" private 1)
	[ "$(files_in "$VM")" = "private-precache.img private.img $revision" ]
	[ "$(head_bytes "$VM/private.img")" = RUN1 ]
	[ "$(dir_state "$POOL/vm-templates/fedora")" = "$template_before" ]
	run pool-check "$POOL"
	[ "$status" -eq 0 ]
}

@test "qubes-style: PRECACHE=later (the default): the commit clones nothing, vol-precache does" {
	pool_setup
	unset PRECACHE
	qubes_style vm1 start >/dev/null
	printf RUN1 | dd of="$VM/private-dirty.img" conv=notrunc status=none
	# One trace file per process: vol-commit's and vol-precache's apart.
	run strace -f -ff -o "$DIR/trace" -e trace=ioctl,execve \
		"$TOP/tests/hooks/qubes-style" vm1 stop
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	commit=$(grep -l 'execve("[^"]*/vol-commit", .*= 0$' "$DIR"/trace.*)
	precache=$(grep -l 'execve("[^"]*/vol-precache", .*= 0$' "$DIR"/trace.*)
	[ "$(ficlone_count "$commit")" -eq 0 ]
	[ "$(ficlone_count "$precache")" -eq 1 ]
	precache_awaited "$VM/private"
	[ "$(head_bytes "$VM/private.img")" = RUN1 ]
	cmp "$VM/private.img" "$VM/private-precache.img"
	[ "$(mtime_ns "$VM/private-precache.img")" = "$(mtime_ns "$VM/private.img")" ]
	# The next start is a rename of it.
	precache_inode=$(inode "$VM/private-precache.img")
	qubes_style vm1 start >/dev/null
	[ "$(inode "$VM/private-dirty.img")" = "$precache_inode" ]
	# The stop keeps every revision; the background prunes to
	# REVISIONS_TO_KEEP (1), before it makes the precache.
	printf RUN2 | dd of="$VM/private-dirty.img" conv=notrunc status=none
	run strace -f -ff -o "$DIR/trace2" -e trace=unlinkat,execve \
		"$TOP/tests/hooks/qubes-style" vm1 stop
	[ "$status" -eq 0 ]
	commit=$(grep -l 'execve("[^"]*/vol-commit", .*= 0$' "$DIR"/trace2.*)
	[ "$(grep -c 'unlinkat(.*private\.img\.1@' "$commit")" -eq 0 ]
	precache_awaited "$VM/private"
	revision=$(revision_of "$VM" private 2)
	[ "$(files_in "$VM")" = "private-precache.img private.img $revision" ]
	[ "$(head_bytes "$VM/$revision")" = RUN1 ]
	[ "$(head_bytes "$VM/private.img")" = RUN2 ]
}

@test "libvirt-qemu: PRECACHE=later (the default): release returns, the precache follows" {
	pool_setup
	unset PRECACHE
	libvirt_qemu vm1 prepare
	printf GUEST | dd of="$VM/private-dirty.img" conv=notrunc status=none
	run libvirt_qemu vm1 release
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	precache_awaited "$VM/private"
	revision=$(revision_of "$VM" private 1)
	[ "$(files_in "$VM")" = "private-precache.img private.img $revision" ]
	cmp "$VM/private.img" "$VM/private-precache.img"
	[ "$(mtime_ns "$VM/private-precache.img")" = "$(mtime_ns "$VM/private.img")" ]
}

@test "qubes-style: between start and stop, pool-check sees a running VM" {
	pool_setup
	for image in $(qubes_style vm1 start); do
		loop_devices="$loop_devices $(losetup -f --show "$image")"
	done
	run --separate-stderr pool-check "$POOL"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | cut -f1-3)" = "info	$VM/private-dirty.img	dirty-attached
info	$VM/root-dirty.img	dirty-attached
info	$VM/volatile-dirty.img	dirty-attached" ]
}

@test "qubes-style: stop while the VM still uses private exits 75, keeping it" {
	pool_setup
	qubes_style vm1 start >/dev/null
	printf LIVE | dd of="$VM/private-dirty.img" conv=notrunc status=none
	loop_devices=$(losetup -f --show "$VM/private-dirty.img")
	run qubes_style vm1 stop
	[ "$status" -eq 75 ]
	[ "$(head_bytes "$VM/private-dirty.img")" = LIVE ]
	[ ! -e "$VM/volatile-dirty.img" ]
	losetup -d "$loop_devices"
	loop_devices=
	qubes_style vm1 stop
	[ "$(head_bytes "$VM/private.img")" = LIVE ]
}

@test "qubes-style: REVISIONS_TO_KEEP=2 keeps the two newest revisions" {
	pool_setup
	export REVISIONS_TO_KEEP=2
	for run in 1 2 3 4; do
		qubes_style vm1 start >/dev/null
		printf "RUN%s" "$run" | dd of="$VM/private-dirty.img" conv=notrunc status=none
		qubes_style vm1 stop
	done
	[ "$(revision_ids "$VM" private)" = "3 4" ]
	[ "$(head_bytes "$VM/private.img")" = RUN4 ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 4)")" = RUN3 ]
}

# all_runs HOOK STOP VARIABLE: four runs of HOOK (its start and STOP
# operations) with VARIABLE=all, now and later: every revision stays, and
# no vol-prune runs, so that a timer's retention is the only one.
all_runs() {
	local run precache
	pool_setup
	export "$3=all"
	for precache in now later; do
		export PRECACHE=$precache
		for run in 1 2; do
			"$TOP/tests/hooks/$1" vm1 "${4:-start}" >/dev/null
			printf "RUN%s" "$run" | dd of="$VM/private-dirty.img" conv=notrunc status=none
			strace -f -o "$DIR/trace.$precache.$run" -e trace=execve \
				"$TOP/tests/hooks/$1" vm1 "$2"
			[ "$precache" = now ] || precache_awaited "$VM/private"
			[ "$(grep -c 'execve("[^"]*/vol-prune"' "$DIR/trace.$precache.$run")" -eq 0 ]
			[ "$(grep -c 'execve("[^"]*/vol-commit", .*"-k"' "$DIR/trace.$precache.$run")" -eq 0 ]
		done
	done
	[ "$(revision_ids "$VM" private)" = "1 2 3 4" ]
	[ "$(head_bytes "$VM/private.img")" = RUN2 ]
	cmp "$VM/private.img" "$VM/private-precache.img"
}

@test "qubes-style: REVISIONS_TO_KEEP=all removes no revision, now or later" {
	all_runs qubes-style stop REVISIONS_TO_KEEP
}

@test "libvirt-qemu: KEEP=all removes no revision, now or later" {
	all_runs libvirt-qemu release KEEP prepare
}

@test "qubes-style: a second start resumes private's dirty image" {
	pool_setup
	qubes_style vm1 start >/dev/null
	printf CRASH | dd of="$VM/private-dirty.img" conv=notrunc status=none
	run --separate-stderr qubes_style vm1 start
	[ "$status" -eq 0 ]
	[ "$(head_bytes "$VM/private-dirty.img" 5)" = CRASH ]
	qubes_style vm1 stop
	[ "$(head_bytes "$VM/private.img" 5)" = CRASH ]
}

@test "qubes-style: a second stop changes nothing and exits 0" {
	pool_setup
	qubes_style vm1 start >/dev/null
	qubes_style vm1 stop
	before=$(dir_state "$VM")
	run qubes_style vm1 stop
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "qubes-style: a TemplateVM's root is an origin volume, committed at stop" {
	pool_setup
	vol-create -s 1M "$POOL/vm-templates/fedora/private"
	run --separate-stderr qubes_style fedora start
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "$TEMPLATE_ROOT-dirty.img" ]
	printf UPDATED | dd of="$TEMPLATE_ROOT-dirty.img" conv=notrunc status=none
	printf SETTINGS | dd of="$POOL/vm-templates/fedora/private-dirty.img" conv=notrunc status=none
	qubes_style fedora stop
	[ "$(head_bytes "$TEMPLATE_ROOT.img" 7)" = UPDATED ]
	[ "$(revision_ids "$POOL/vm-templates/fedora" root)" = 1 ]
	[ "$(revision_ids "$POOL/vm-templates/fedora" private)" = 1 ]
	[ ! -e "$POOL/vm-templates/fedora/volatile-dirty.img" ]
}

@test "qubes-style: an AppVM started after a template update sees the new root" {
	pool_setup
	vol-create -s 1M "$POOL/vm-templates/fedora/private"
	qubes_style fedora start >/dev/null
	printf UPDATED | dd of="$TEMPLATE_ROOT-dirty.img" conv=notrunc status=none
	qubes_style fedora stop
	qubes_style vm1 start >/dev/null
	[ "$(head_bytes "$VM/root-dirty.img" 7)" = UPDATED ]
	[ "$(inode "$VM/root.img")" = "$(inode "$TEMPLATE_ROOT.img")" ]
}

@test "qubes-style: a missing template fails the start with 66" {
	pool_setup
	export TEMPLATE=nosuch
	run --separate-stderr qubes_style vm1 start
	[ "$status" -eq 66 ]
	[ ! -e "$VM/root-dirty.img" ]
	[ ! -e "$VM/volatile-dirty.img" ]
}

@test "qubes-style: stop goes on after a failure and exits with its status" {
	pool_setup
	qubes_style vm1 start >/dev/null
	# A private dirty image that is a directory cannot be committed (65).
	rm "$VM/private-dirty.img"
	mkdir "$VM/private-dirty.img"
	run qubes_style vm1 stop
	[ "$status" -eq 65 ]
	[ ! -e "$VM/root-dirty.img" ]
	[ ! -e "$VM/root.img" ]
	[ ! -e "$VM/volatile-dirty.img" ]
}

@test "qubes-style: usage errors exit 64" {
	run qubes_style vm1
	[ "$status" -eq 64 ]
	[[ "$output" == "usage: qubes-style VM start|stop" ]]
	run qubes_style vm1 pause
	[ "$status" -eq 64 ]
	run qubes_style ../vm1 start
	[ "$status" -eq 64 ]
	run qubes_style "" start
	[ "$status" -eq 64 ]
}

@test "libvirt-qemu: prepare starts the guest's volumes and prints nothing" {
	pool_setup
	run --separate-stderr libvirt_qemu vm1 prepare
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	[ -f "$VM/private-dirty.img" ]
	[ -f "$VM/root-dirty.img" ]
	[ "$(inode "$VM/root.img")" = "$(inode "$TEMPLATE_ROOT.img")" ]
	[ "$(stat -c %s "$VM/volatile-dirty.img")" -eq $((4 * 1024 * 1024)) ]
}

@test "libvirt-qemu: release commits private, drops root and volatile" {
	pool_setup
	libvirt_qemu vm1 prepare
	printf GUEST | dd of="$VM/private-dirty.img" conv=notrunc status=none
	run libvirt_qemu vm1 release
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	revision=$(revision_of "$VM" private 1)
	[ "$(files_in "$VM")" = "private-precache.img private.img $revision" ]
	[ "$(head_bytes "$VM/private.img" 5)" = GUEST ]
	run pool-check "$POOL"
	[ "$status" -eq 0 ]
}

@test "libvirt-qemu: KEEP=1 keeps one revision over three runs" {
	pool_setup
	export KEEP=1
	for run in 1 2 3; do
		libvirt_qemu vm1 prepare
		printf "RUN%s" "$run" | dd of="$VM/private-dirty.img" conv=notrunc status=none
		libvirt_qemu vm1 release
	done
	[ "$(revision_ids "$VM" private)" = 3 ]
	[ "$(head_bytes "$VM/$(revision_of "$VM" private 3)")" = RUN2 ]
}

@test "libvirt-qemu: the other operations change nothing and print nothing" {
	pool_setup
	before=$(dir_state "$VM")
	for operation in start started stopped reconnect attach migrate restore; do
		run --separate-stderr libvirt_qemu vm1 "$operation"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
		[ -z "$stderr" ]
	done
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "libvirt-qemu: a guest without a directory in the pool is left alone" {
	pool_setup
	before=$(dir_state "$POOL/appvms")
	run libvirt_qemu other prepare
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run libvirt_qemu other release
	[ "$status" -eq 0 ]
	[ "$(dir_state "$POOL/appvms")" = "$before" ]
}

@test "libvirt-qemu: an XML that gives QEMU a clean image stops the start (65)" {
	pool_setup
	before=$(dir_state "$VM")
	run --separate-stderr "$TOP/tests/hooks/libvirt-qemu" vm1 prepare begin - \
		< <(domain_xml vm1 | sed 's/private-dirty\.img/private.img/')
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"uses $VM/private.img"* ]]
	[ "$(dir_state "$VM")" = "$before" ]
}

@test "libvirt-qemu: an XML without a dirty image is warned about" {
	pool_setup
	run --separate-stderr "$TOP/tests/hooks/libvirt-qemu" vm1 prepare begin - \
		< <(domain_xml vm1 | grep -v volatile-dirty)
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"does not use $VM/volatile-dirty.img"* ]]
	[ -f "$VM/volatile-dirty.img" ]
}

@test "libvirt-qemu: a failed start exits non-zero, so libvirt does not start" {
	pool_setup
	export TEMPLATE=nosuch
	run --separate-stderr libvirt_qemu vm1 prepare
	[ "$status" -eq 66 ]
	[ ! -e "$VM/root-dirty.img" ]
}

@test "libvirt-qemu: without a TEMPLATE, root is an origin volume of its own" {
	pool_setup
	export TEMPLATE='' VOLATILE_SIZE=''
	vol-create -s 1M "$VM/root"
	libvirt_qemu vm1 prepare 2>/dev/null
	[ -f "$VM/root-dirty.img" ]
	[ ! -e "$VM/volatile-dirty.img" ]
	printf OWN | dd of="$VM/root-dirty.img" conv=notrunc status=none
	libvirt_qemu vm1 release
	[ "$(head_bytes "$VM/root.img" 3)" = OWN ]
	[ "$(revision_ids "$VM" root)" = 1 ]
}

@test "libvirt-qemu: too few arguments exit 64" {
	run "$TOP/tests/hooks/libvirt-qemu" vm1 </dev/null
	[ "$status" -eq 64 ]
}
