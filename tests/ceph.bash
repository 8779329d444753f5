# shellcheck shell=bash
#
# ceph.bash: a one-node Ceph cluster (one monitor, one OSD, no manager) for
# the tests, everything of it under one directory.
#
#   ceph_start DIR   makes and starts the cluster in DIR (its ceph.conf,
#                    monitor and OSD data, run dir, admin sockets, logs)
#                    and returns once the OSD is up and in and pool "rbd"
#                    takes writes; on a failure or time-out it prints the
#                    daemons' logs and returns 1.  Exports CEPH_CONF.
#   ceph_stop DIR    stops the daemons that ceph_start started, by the
#                    pids it recorded in DIR/pids, and waits until they
#                    are gone.  Safe to call more than once, or after a
#                    ceph_start that failed half way.
#   ceph_unavailable_reason
#                    why a cluster cannot be started here, or nothing.
#   rbd_write POOL/IMAGE OFFSET FILE, rbd_discard POOL/IMAGE OFFSET LENGTH
#                    change an image in place (librbd's Python binding),
#                    which the rbd command cannot.
#
# With CEPH_CONF exported, "ceph", "rbd" and "rados" use this cluster and
# nothing else; the functions below also pass it with -c, so that a
# CEPH_CONF the caller had does not matter.  The OSD keeps its objects in
# memory (memstore, 1 GiB at most): nothing but small files goes to disk.

# Seconds that ceph_start waits for the cluster, and ceph_stop for the
# daemons to end after SIGTERM (then SIGKILL).
CEPH_START_TIMEOUT=${CEPH_START_TIMEOUT:-90}
CEPH_STOP_TIMEOUT=${CEPH_STOP_TIMEOUT:-20}

ceph_unavailable_reason() {
	local command
	if [ "$(id -u)" -ne 0 ]; then
		echo "not root: the Ceph daemons are run as root here"
		return
	fi
	for command in ceph rbd monmaptool ceph-mon ceph-osd; do
		if ! command -v "$command" >/dev/null; then
			echo "$command is not installed (tests/run installs ceph-mon, ceph-osd and ceph-common as root)"
			return
		fi
	done
	if [ -z "$(ceph_python)" ]; then
		echo "Python's rados and rbd modules are not installed (tests/run installs python3-rbd as root)"
	fi
}

# ceph_python: a Python that has the rados and rbd modules: the system's,
# which the packages put them in, before another one first in PATH.
ceph_python() {
	local python
	for python in /usr/bin/python3 python3; do
		if "$python" -c 'import rados, rbd' 2>/dev/null; then
			echo "$python"
			return
		fi
	done
}

# rbd_io OP POOL/IMAGE OFFSET ARG: OP "write" writes file ARG at OFFSET,
# "discard" discards ARG bytes there, in the cluster of CEPH_CONF.
rbd_io() {
	timeout 60 "$(ceph_python)" - "$@" <<'PY'
import os, sys
import rados, rbd
op, spec, offset, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
pool, name = spec.split("/", 1)
with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
    with cluster.open_ioctx(pool) as ioctx:
        with rbd.Image(ioctx, name) as image:
            if op == "write":
                with open(arg, "rb") as f:
                    data = f.read()
                if image.write(data, offset) != len(data):
                    sys.exit("short write")
            else:
                image.discard(offset, int(arg))
PY
}

rbd_write() {
	rbd_io write "$@"
}

rbd_discard() {
	rbd_io discard "$@"
}

# ceph_port_free PORT: nothing listens on 127.0.0.1:PORT.
ceph_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ceph_free_port: 6789, Ceph's own port, if free, else a free one above
# 20000 (not in the OSDs' range 6800-7300).
ceph_free_port() {
	local port tries
	if ceph_port_free 6789; then
		echo 6789
		return
	fi
	for ((tries = 0; tries < 100; tries++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ceph_port_free "$port"; then
			echo "$port"
			return
		fi
	done
	return 1
}

# ceph_in DIR ARG...: "ceph ARG..." against the cluster in DIR (whose
# ceph.conf ceph_start wrote), whatever CEPH_CONF says, for 30 s at most.
ceph_in() {
	local dir=$1
	shift
	timeout 30 ceph -c "$dir/ceph.conf" "$@"
}

# ceph_logs DIR: the daemons' logs (their last lines) on stderr.
ceph_logs() {
	local log
	for log in "$1"/log/*.log "$1"/log/*.out; do
		[ -s "$log" ] || continue
		echo "--- $log (last 40 lines)" >&2
		tail -n 40 "$log" >&2
	done
}

# ceph_daemon DIR NAME COMMAND...: starts COMMAND in the foreground of a
# background process, its output in DIR/log/NAME.out, and records its pid
# in DIR/pids as "NAME PID".
ceph_daemon() {
	local dir=$1 name=$2
	shift 2
	# No descriptor of the caller (bats's 3 among them) stays open in the
	# daemon: a test runner waits for those to close.
	"$@" </dev/null >"$dir/log/$name.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
	echo "$name $!" >>"$dir/pids"
}

# ceph_alive DIR: every daemon recorded in DIR/pids still runs.
ceph_alive() {
	local name pid
	while read -r name pid; do
		if ! ceph_pid_ours "$1" "$pid"; then
			echo "ceph: $name (pid $pid) has ended" >&2
			return 1
		fi
	done <"$1/pids"
}

# ceph_pid_ours DIR PID: PID runs (is not a zombie) and is a daemon of the
# cluster in DIR (its command line names DIR/ceph.conf), not another
# process that got the pid since.
ceph_pid_ours() {
	local stat state
	stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	state=${state%% *}
	[ "$state" != Z ] || return 1
	tr '\0' '\n' <"/proc/$2/cmdline" 2>/dev/null | grep -qxF "$1/ceph.conf"
}

# ceph_wait DIR SECONDS WHAT COMMAND...: runs COMMAND every half second
# until it succeeds; fails with the logs after SECONDS or when a daemon
# has ended.
ceph_wait() {
	local dir=$1 seconds=$2 what=$3 end
	shift 3
	end=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		if ! ceph_alive "$dir"; then
			echo "ceph: waiting for: $what" >&2
			ceph_logs "$dir"
			return 1
		fi
		if [ "$SECONDS" -ge "$end" ]; then
			echo "ceph: $what: not after ${seconds}s" >&2
			ceph_logs "$dir"
			return 1
		fi
		sleep 0.5
	done
}

# ceph_osd_up DIR: 1 OSD, up and in.
ceph_osd_up() {
	local stat
	stat=$(ceph_in "$1" osd stat -f json) || return 1
	printf '%s' "$stat" | python3 -c '
import json, sys
s = json.load(sys.stdin)
s = s.get("osdmap", s)
sys.exit(0 if (s["num_osds"], s["num_up_osds"], s["num_in_osds"]) == (1, 1, 1) else 1)'
}

# ceph_pool_usable DIR: an object written to pool rbd reads back.
ceph_pool_usable() {
	local probe=$1/probe
	echo "probe $$" >"$probe.in"
	timeout 20 rados -c "$1/ceph.conf" -p rbd put probe "$probe.in" &&
		timeout 20 rados -c "$1/ceph.conf" -p rbd get probe "$probe.out" &&
		cmp -s "$probe.in" "$probe.out" &&
		timeout 20 rados -c "$1/ceph.conf" -p rbd rm probe
}

ceph_start() {
	local dir=$1 port fsid osd_uuid start=$SECONDS
	mkdir -p "$dir" || return 1
	dir=$(cd "$dir" && pwd) || return 1
	if [ -e "$dir/pids" ]; then
		echo "ceph: $dir/pids exists: a cluster of $dir may still run" >&2
		return 1
	fi
	mkdir -p "$dir/mon" "$dir/osd/0" "$dir/run" "$dir/log" "$dir/crash" || return 1
	: >"$dir/pids"
	port=$(ceph_free_port) || {
		echo "ceph: no free port for the monitor" >&2
		return 1
	}
	fsid=$(cat /proc/sys/kernel/random/uuid) &&
		osd_uuid=$(cat /proc/sys/kernel/random/uuid) || return 1
	cat >"$dir/ceph.conf" <<EOF
# A one-node test cluster, made by tests/ceph.bash.
[global]
fsid = $fsid
mon host = [v1:127.0.0.1:$port]
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
keyring = $dir/keyring
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
crash dir = $dir/crash
mon data = $dir/mon/\$id
osd data = $dir/osd/\$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon data avail warn = 1
mon data avail crit = 0
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon warn on msgr2 not enabled = false
# The CRUSH map is made by ceph_start.  The OSD's own commands to the
# monitor at start can go out before it has the monitor map, with no fsid,
# and be refused ("wrong fsid"), which ends the OSD.
osd crush update on start = false
osd class update on start = false
# The tests never wait forever on a cluster that went away.
rados osd op timeout = 60
rados mon op timeout = 60
client mount timeout = 30
[client]
admin socket =
log file = $dir/log/client.log
EOF
	: >"$dir/keyring"
	# Everything that uses CEPH_CONF from here on (rbd, ceph, rados in
	# the tests) reaches this cluster.
	export CEPH_CONF=$dir/ceph.conf
	if ! monmaptool --create --addv a "[v1:127.0.0.1:$port]" --fsid "$fsid" \
		"$dir/monmap" >"$dir/log/monmaptool.out" 2>&1 ||
		! ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
			>"$dir/log/mon-mkfs.out" 2>&1; then
		echo "ceph: making the monitor failed" >&2
		ceph_logs "$dir"
		return 1
	fi
	ceph_daemon "$dir" mon.a ceph-mon -c "$dir/ceph.conf" -f -i a
	ceph_wait "$dir" "$CEPH_START_TIMEOUT" "monitor on port $port answers" \
		ceph_in "$dir" mon stat || return 1
	if ! [ "$(ceph_in "$dir" osd create "$osd_uuid" 2>>"$dir/log/setup.out")" = 0 ] ||
		! ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" \
			>"$dir/log/osd-mkfs.out" 2>&1; then
		echo "ceph: making osd.0 failed" >&2
		ceph_logs "$dir"
		return 1
	fi
	ceph_daemon "$dir" osd.0 ceph-osd -c "$dir/ceph.conf" -f -i 0
	if ! {
		ceph_in "$dir" osd crush add-bucket h host &&
			ceph_in "$dir" osd crush move h root=default &&
			ceph_in "$dir" osd crush add osd.0 1.0 host=h &&
			ceph_in "$dir" osd pool create rbd 8 &&
			ceph_in "$dir" osd pool application enable rbd rbd
	} >>"$dir/log/setup.out" 2>&1; then
		echo "ceph: setting up the CRUSH map and pool rbd failed" >&2
		ceph_logs "$dir"
		return 1
	fi
	ceph_wait "$dir" "$CEPH_START_TIMEOUT" "osd.0 up and in" ceph_osd_up "$dir" &&
		ceph_wait "$dir" "$CEPH_START_TIMEOUT" "pool rbd takes writes" \
			ceph_pool_usable "$dir" || return 1
	echo "ceph: cluster up on 127.0.0.1:$port in $((SECONDS - start))s" >"$dir/log/started"
}

# ceph_left DIR PID...: those of the PIDs that are still daemons of DIR.
ceph_left() {
	local dir=$1 pid
	shift
	for pid in "$@"; do
		if ceph_pid_ours "$dir" "$pid"; then
			echo "$pid"
		fi
	done
	return 0
}

# ceph_wait_gone DIR SECONDS PID...: waits until none of the PIDs is left;
# fails with those still there after SECONDS.
ceph_wait_gone() {
	local dir=$1 end=$((SECONDS + $2)) left
	shift 2
	left=("$@")
	while [ ${#left[@]} -gt 0 ]; do
		mapfile -t left < <(ceph_left "$dir" "${left[@]}")
		[ ${#left[@]} -gt 0 ] || return 0
		if [ "$SECONDS" -ge "$end" ]; then
			echo "${left[*]}"
			return 1
		fi
		sleep 0.2
	done
}

# ceph_stop_one DIR NAME PID: SIGTERM, then after CEPH_STOP_TIMEOUT
# seconds SIGKILL, and waits until it is gone.
ceph_stop_one() {
	local dir=$1 name=$2 pid=$3
	ceph_pid_ours "$dir" "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	ceph_wait_gone "$dir" "$CEPH_STOP_TIMEOUT" "$pid" >/dev/null && return 0
	echo "ceph: $name (pid $pid) still there ${CEPH_STOP_TIMEOUT}s after SIGTERM: SIGKILL" >&2
	kill -KILL "$pid" 2>/dev/null
	ceph_wait_gone "$dir" 10 "$pid" >/dev/null && return 0
	echo "ceph: $name (pid $pid) still there after SIGKILL" >&2
	return 1
}

ceph_stop() {
	local dir=$1 name pid names=() pids=() i status=0
	[ -f "$dir/pids" ] || return 0
	dir=$(cd "$dir" && pwd) || return 1
	while read -r name pid; do
		names+=("$name")
		pids+=("$pid")
	done <"$dir/pids"
	# The OSD before the monitor: an OSD that stops tells the monitor,
	# and waits for it a while when it is gone.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		ceph_stop_one "$dir" "${names[i]}" "${pids[i]}" || status=1
	done
	[ "$status" -eq 0 ] || return 1
	# Reaps those that were children of this shell.
	[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" 2>/dev/null
	rm -f "$dir/pids"
}
