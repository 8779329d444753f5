#!/usr/bin/env bats
# lib/systemd: the units make install puts in SYSTEMDUNITDIR, made with the
# BINDIR they run the tools from.  systemd-analyze verify passes on each;
# the check fails while pool-check finds something; the prune and precache
# reach every origin volume of the pool (each-volume).  systemd is not
# PID 1 here: a service's command line is run as systemd would run it, and
# one test boots systemd in a container (systemd-nspawn) where the timers
# fire and start the services on real pools.

load helper

setup_file() {
	# Installed under a prefix of its own, so that each unit names tools
	# that exist, as systemd-analyze verify checks.
	export PREFIX_DIR=$BATS_FILE_TMPDIR/prefix
	# The tools as they were built (with SAN=1 by make check-san): the
	# flags' stamp is not remade, so nothing is compiled again.
	make -s -C "$TOP" -o lib/.build-flags install PREFIX="$PREFIX_DIR" >/dev/null
	export UNITS=$PREFIX_DIR/lib/systemd/system
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
	# The units of the checkout are made again for the default BINDIR.
	make -s -C "$TOP" -o lib/.build-flags all >/dev/null
}

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
}

# verify UNIT: systemd-analyze verify of an installed unit, the man pages
# of its Documentation= looked up in the installed ones.
verify() {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	MANPATH=$PREFIX_DIR/share/man systemd-analyze verify "$UNITS/$1"
}

# command_of UNIT POOL: the ExecStart= command line of the service UNIT for
# the instance that names POOL, as systemd would run it (%f is POOL, %i
# its escaped name; $VARIABLE is split into words).
command_of() {
	local escaped
	escaped=$(systemd-escape --path "$2")
	sed -n 's/^ExecStart=//p' "$UNITS/$1" |
		sed -e "s|%f|/$(systemd-escape --unescape "$escaped")|g" -e "s|%i|$escaped|g"
}

# A pool in pool/ with an origin volume holding 3 revisions, and a snapshot
# volume of it.
pool_with_revisions() {
	"$TOP/bin/pool-check" --init --no-reflink-ok pool 2>/dev/null
	local volume=pool/appvms/work/private
	mkdir -p pool/appvms/work
	"$TOP/bin/vol-create" -s 1M $volume
	for day in monday tuesday wednesday; do
		"$TOP/bin/vol-start" -k 5 $volume >/dev/null
		echo $day | dd of=$volume-dirty.img conv=notrunc status=none
		"$TOP/bin/vol-commit" -k 5 $volume
	done
	"$TOP/bin/vol-start" -S $volume pool/appvms/work/root >/dev/null
	"$TOP/bin/vol-discard" -S $volume pool/appvms/work/root
}

@test "units: systemd-analyze verify passes on the check service and its timer" {
	run verify file-reflink-check@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run verify file-reflink-check@.timer
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "units: systemd-analyze verify passes on the prune service and its timer" {
	run verify file-reflink-prune@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run verify file-reflink-prune@.timer
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "units: systemd-analyze verify passes on the precache service and its timer" {
	[ -e "$TOP/bin/vol-precache.c" ] || skip "no vol-precache in bin/"
	run verify file-reflink-precache@.service
	echo "$output" >&2
	[ "$status" -eq 0 ]
	run verify file-reflink-precache@.timer
	[ "$status" -eq 0 ]
}

@test "units: a verify that cannot pass fails (a timer with no time)" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	sed 's/^OnCalendar=daily$/OnCalendar=someday/' "$UNITS/file-reflink-check@.timer" \
		>"file-reflink-check@.timer"
	run systemd-analyze --man=no verify "$PWD/file-reflink-check@.timer"
	[ "$status" -ne 0 ]
}

@test "units: every timer is daily, persistent and randomly delayed, and wanted by timers.target" {
	local timer
	for timer in "$UNITS"/*.timer; do
		grep -qx 'OnCalendar=daily' "$timer"
		grep -qx 'Persistent=true' "$timer"
		grep -q '^RandomizedDelaySec=' "$timer"
		grep -qx 'WantedBy=timers.target' "$timer"
	done
	[ "$(find "$UNITS" -name '*.timer' | wc -l)" -ge 2 ]
}

@test "units: the check service is a oneshot pool-check of the instance's path, from BINDIR" {
	grep -qx 'Type=oneshot' "$UNITS/file-reflink-check@.service"
	[ "$(command_of file-reflink-check@.service /var/lib/qubes)" = "$PREFIX_DIR/bin/pool-check -- /var/lib/qubes" ]
	[ -x "$PREFIX_DIR/bin/pool-check" ]
}

@test "units: the check's command exits 0 on a healthy pool and 1 while findings remain, so the unit fails" {
	fs_dir btrfs
	cd "$DIR" || return 1
	pool_with_revisions
	run sh -c "$(command_of file-reflink-check@.service "$PWD/pool")"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	touch pool/appvms/work/private.img~k3Jd9q
	run sh -c "$(command_of file-reflink-check@.service "$PWD/pool")"
	[ "$status" -eq 1 ]
	[[ "$output" == *"private.img~k3Jd9q	temp-leftover	"* ]]
}

@test "units: the prune service reads PRUNE_OPTIONS from /etc/file-reflink/prune/POOL.conf, which must exist" {
	grep -qx 'EnvironmentFile=/etc/file-reflink/prune/%I.conf' "$UNITS/file-reflink-prune@.service"
	[ "$(command_of file-reflink-prune@.service /var/lib/qubes)" = \
		"$PREFIX_DIR/libexec/file-reflink/each-volume /var/lib/qubes $PREFIX_DIR/bin/vol-prune \$PRUNE_OPTIONS" ]
}

@test "units: the prune's command prunes every origin volume of the pool to PRUNE_OPTIONS" {
	pool_with_revisions
	local PRUNE_OPTIONS="-k 1"
	# shellcheck disable=SC2086 # split into words, as systemd does
	run $(command_of file-reflink-prune@.service "$PWD/pool" | sed "s|\$PRUNE_OPTIONS|$PRUNE_OPTIONS|")
	echo "$output" >&2
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 2 ]
	[[ "${lines[0]}" == "$PWD/pool/appvms/work/private.img.1@"* ]]
	[ "$("$TOP/bin/vol-info" -r pool/appvms/work/private | cut -f1)" = 3 ]
}

@test "units: each-volume runs the command once with every origin volume, after --" {
	pool_with_revisions
	mkdir -p pool/vm-templates/fedora
	"$TOP/bin/vol-create" -s 1M pool/vm-templates/fedora/root
	printf '#!/bin/sh\nprintf "%%s\\n" "$@"\n' >"$BATS_TEST_TMPDIR/show"
	chmod 755 "$BATS_TEST_TMPDIR/show"
	cp "$TOP/bin/vol-list" "$BATS_TEST_TMPDIR/"
	run "$TOP/lib/systemd/each-volume" pool "$BATS_TEST_TMPDIR/show" -k 2
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "-k 2 -- pool/appvms/work/private.img pool/vm-templates/fedora/root.img " ]
}

@test "units: each-volume exits with vol-list's status when the pool is missing, 0 when it has no origin volume" {
	run "$TOP/lib/systemd/each-volume" missing "$TOP/bin/vol-prune"
	[ "$status" -eq 66 ]
	mkdir empty
	run "$TOP/lib/systemd/each-volume" empty "$TOP/bin/vol-prune"
	[ "$status" -eq 0 ]
	[ "$output" = "each-volume: empty: no origin volume" ]
	run "$TOP/lib/systemd/each-volume" empty
	[ "$status" -eq 64 ]
}

# boot_and_run SCRIPT: boots systemd as PID 1 in a container whose root is
# an empty tmpfs with this machine's /usr (systemd-nspawn --volatile), the
# installed prefix and $DIR bound in at their own paths, runs SCRIPT there
# as the one unit it boots into, and powers it off.  SCRIPT writes what it
# found to /probe/out.
boot_and_run() {
	command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed"
	PROBE=$BATS_TEST_TMPDIR/probe
	mkdir -p "$PROBE"
	cp "$1" "$PROBE/run"
	printf '%s\n' '[Unit]' 'Description=file-reflink units test' \
		'[Service]' 'Type=oneshot' 'ExecStart=/bin/bash /probe/run' \
		>"$PROBE/probe.service"
	# tmp.mount would hide what is bound below /tmp.
	run timeout 120 systemd-nspawn --quiet --register=no --keep-unit \
		--machine=file-reflink-units --volatile=yes --directory=/ \
		--bind="$PROBE:/probe" --bind="$PREFIX_DIR" --bind="$DIR" \
		--bind-ro="$PROBE/probe.service:/etc/systemd/system/probe.service" \
		--boot systemd.unit=probe.service systemd.firstboot=off \
		systemd.mask=tmp.mount </dev/null
	echo "systemd-nspawn: status $status" >&2
	[ -s "$PROBE/out" ] || { echo "$output" | tail -40 >&2; false; }
	cat "$PROBE/out" >&2
	# It powered itself off.
	[ "$status" -eq 0 ]
}

@test "units: booted under systemd, timers that missed a day fire at once and their services run on the pools" {
	fs_dir btrfs
	cd "$DIR" || return 1
	pool_with_revisions
	mv pool healthy
	rm healthy/appvms/work/private-precache.img
	pool_with_revisions
	mv pool broken
	touch broken/appvms/work/private.img~k3Jd9q
	cat >"$BATS_TEST_TMPDIR/script" <<SCRIPT
#!/bin/bash
# In the container: the installed units as runtime units, without their
# random delay; every timer's last run three days ago, as after a machine
# that was off; the timers started; each service awaited.
trap 'systemctl --no-block poweroff 2>/dev/null' EXIT
exec 2>>/probe/out
set -u
healthy=\$(systemd-escape --path "$DIR/healthy")
broken=\$(systemd-escape --path "$DIR/broken")
cp "$UNITS"/file-reflink-*@.* /run/systemd/system/
mkdir -p "/etc/file-reflink/prune$DIR" /var/lib/systemd/timers
echo 'PRUNE_OPTIONS=-k 1' >"/etc/file-reflink/prune$DIR/healthy.conf"
units="check@\$healthy check@\$broken prune@\$healthy precache@\$healthy"
for unit in \$units; do
	mkdir -p "/run/systemd/system/file-reflink-\${unit%%@*}@.timer.d"
	printf '[Timer]\nRandomizedDelaySec=0\n' \\
		>"/run/systemd/system/file-reflink-\${unit%%@*}@.timer.d/test.conf"
	touch -d '3 days ago' "/var/lib/systemd/timers/stamp-file-reflink-\$unit.timer"
done
systemctl daemon-reload
for unit in \$units; do
	systemctl start "file-reflink-\$unit.timer"
done
for unit in \$units; do
	for _ in \$(seq 600); do
		[ "\$(systemctl show -P ExecMainExitTimestampMonotonic "file-reflink-\$unit.service")" = 0 ] || break
		sleep 0.1
	done
	if [ "\${unit#*@}" = "\$healthy" ]; then
		name=\${unit%%@*}-healthy
	else
		name=\${unit%%@*}-broken
	fi
	{
		echo "\$name result \$(systemctl show -P Result "file-reflink-\$unit.service")"
		echo "\$name status \$(systemctl show -P ExecMainStatus "file-reflink-\$unit.service")"
		echo "\$name triggered \$(systemctl show -P LastTriggerUSecMonotonic "file-reflink-\$unit.timer")"
		echo "\$name stamp \$(stat -c %Y "/var/lib/systemd/timers/stamp-file-reflink-\$unit.timer")"
	} >>/probe/out
done
systemctl list-units --failed --plain --no-legend | sed 's/^/failed /' >>/probe/out
for unit in \$units; do
	journalctl -u "file-reflink-\$unit.service" -o cat --no-pager |
		sed "s|^|journal \${unit%%@*}-\${unit#*@} |" >>/probe/out
done
SCRIPT
	started=$(date +%s)
	boot_and_run "$BATS_TEST_TMPDIR/script"
	out=$PROBE/out
	for name in check-healthy check-broken prune-healthy precache-healthy; do
		# Each timer fired, and marked it (its stamp is of this run).
		grep -qE "^$name triggered [1-9]" "$out"
		[ "$(sed -n "s/^$name stamp //p" "$out")" -ge "$started" ]
	done
	grep -qx 'check-healthy result success' "$out"
	grep -qx 'check-broken result exit-code' "$out"
	grep -qx 'check-broken status 1' "$out"
	grep -qx 'prune-healthy result success' "$out"
	grep -qx 'precache-healthy result success' "$out"
	# The failed check is what systemctl --failed shows, the finding in
	# its journal; nothing else failed.
	[ "$(grep -c '^failed ' "$out")" -eq 1 ]
	grep -qF "failed file-reflink-check@$(systemd-escape --path "$DIR/broken").service " "$out"
	grep -q "^journal .*private.img~k3Jd9q	temp-leftover	" "$out"
	# The prune kept one revision, the precache is back; the broken pool
	# was only looked at.
	[ "$("$TOP/bin/vol-info" -r healthy/appvms/work/private | cut -f1)" = 3 ]
	cmp healthy/appvms/work/private.img healthy/appvms/work/private-precache.img
	[ "$("$TOP/bin/vol-info" -r broken/appvms/work/private | wc -l)" -eq 3 ]
	[ -e broken/appvms/work/private.img~k3Jd9q ]
}
