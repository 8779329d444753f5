#!/usr/bin/env bats
# Retention: vol-prune's time buckets and -k against an independent
# computation (Python, grouping revisions by bucket) on a year of
# revisions, with pins, a clock that went backwards and ties; pins kept by
# every combination.  Kills and errors during a bucket prune are a case
# of reliability.bash, run by crash.bats and inject.bats.

load helper

setup_file() {
	fs_setup btrfs
}

teardown_file() {
	fs_teardown
}

# year_setup: $VM holds the volume $B with 400 revisions from 2026-01-01
# to early 2027 at irregular gaps (bursts of minutes, hours, days), each
# an empty file whose name and mtime carry its time; revision 150 is dated
# back to 2025 (a clock set wrong), 300 and 301 share their second, and
# revisions 10, 200 and 333 are pinned.
year_setup() {
	fs_dir btrfs
	VM=$DIR/vm1
	B=$VM/private
	mkdir "$VM"
	truncate -s 64K "$B.img"
	python3 - "$B" <<'EOF'
import calendar, os, random, sys, time
base = sys.argv[1]
random.seed(15)
when = calendar.timegm((2026, 1, 1, 0, 0, 0))
for id in range(1, 401):
    gap = random.choice([60 * random.randint(1, 50),
                         3600 * random.randint(1, 30),
                         86400 * random.randint(1, 4)])
    if id == 301:
        gap = 0
    when += gap
    stamp = when if id != 150 else calendar.timegm((2025, 6, 1, 12, 0, 0))
    name = "%s.img.%d@%s" % (base, id,
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)))
    open(name, "w").close()
    os.utime(name, (stamp, stamp))
EOF
	vol-pin -r 10 "$B"
	vol-pin -r 200 "$B"
	vol-pin -r 333 "$B"
}

# The independent computation: a revision is kept if pinned, if among the
# KEEP highest unpinned ids, or if it is the newest (time, then id) of one
# of the COUNT latest buckets of a kind, the buckets being the distinct
# labels of the unpinned revisions, ordered by their newest revision.  It
# writes the expected schedule lines to stdout.  Arguments: VM directory,
# base name, local (0/1), KEEP, then the five counts.
EXPECTED=$(
	cat <<'EOF'
import datetime, os, re, sys
vm, base, local, keep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
counts = [int(c) for c in sys.argv[5:10]]
kinds = ["hourly", "daily", "weekly", "monthly", "yearly"]
names = set(os.listdir(vm))
revisions = []
for name in names:
    m = re.fullmatch(re.escape(base) + r"\.img\.(\d+)@(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z", name)
    if m:
        fields = [int(x) for x in m.groups()]
        t = int(datetime.datetime(*fields[1:], tzinfo=datetime.timezone.utc).timestamp())
        revisions.append((fields[0], t, name + ".pin" in names, name[len(base) + 5 + len(str(fields[0])) + 1:]))
revisions.sort()
def label(t, kind):
    d = datetime.datetime.fromtimestamp(t) if local else \
        datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if kind == "hourly":
        return "%04d-%02d-%02dT%02d" % (d.year, d.month, d.day, d.hour)
    if kind == "daily":
        return "%04d-%02d-%02d" % (d.year, d.month, d.day)
    if kind == "weekly":
        y, w, _ = d.isocalendar()
        return "%04d-W%02d" % (y, w)
    if kind == "monthly":
        return "%04d-%02d" % (d.year, d.month)
    return "%04d" % d.year
reasons = {r[0]: [] for r in revisions}
unpinned = [r for r in revisions if not r[2]]
for r in revisions:
    if r[2]:
        reasons[r[0]].append("pinned")
for rank, r in enumerate(sorted(unpinned, key=lambda r: -r[0])[:max(keep, 0)]):
    reasons[r[0]].append("newest %d" % (rank + 1))
for kind, count in zip(kinds, counts):
    newest = {}
    for r in unpinned:
        l = label(r[1], kind)
        if l not in newest or (r[1], r[0]) > (newest[l][1], newest[l][0]):
            newest[l] = r
    latest = sorted(newest.values(), key=lambda r: (r[1], r[0]), reverse=True)[:count]
    for r in latest:
        reasons[r[0]].append("%s %s" % (kind, label(r[1], kind)))
for r in revisions:
    why = reasons[r[0]]
    print("%d\t%s\t%s\t%s" % (r[0], r[3], "keep" if why else "remove",
                              ", ".join(why) if why else "no rule keeps it"))
EOF
)

# expected LOCAL KEEP HOURLY DAILY WEEKLY MONTHLY YEARLY
expected() {
	python3 -c "$EXPECTED" "$VM" private "$@"
}

@test "retention: every combination of -k and the five buckets (UTC) matches the independent computation" {
	year_setup
	local keep hourly daily weekly monthly yearly combinations=0 failures=0
	for keep in 0 1 5; do
		for hourly in 0 3 30; do
			for daily in 0 7 40; do
				for weekly in 0 4 60; do
					for monthly in 0 6 13; do
						for yearly in 0 1 5; do
							combinations=$((combinations + 1))
							if ! diff <(expected 0 "$keep" "$hourly" "$daily" "$weekly" "$monthly" "$yearly") \
								<(vol-prune -n -k "$keep" --keep-hourly "$hourly" --keep-daily "$daily" \
									--keep-weekly "$weekly" --keep-monthly "$monthly" \
									--keep-yearly "$yearly" "$B") >"$BATS_TEST_TMPDIR/diff"; then
								failures=$((failures + 1))
								echo "-k $keep $hourly $daily $weekly $monthly $yearly:"
								head -5 "$BATS_TEST_TMPDIR/diff"
							fi
						done
					done
				done
			done
		done
	done
	echo "# $combinations combinations, $failures differ" >&3
	[ "$combinations" -eq 729 ]
	[ "$failures" -eq 0 ]
	# The dry runs changed nothing.
	[ "$(revision_ids "$VM" private | wc -w)" -eq 400 ]
}

@test "retention: --local cuts the buckets in TZ (New York, across both DST changes)" {
	year_setup
	local keep hourly daily weekly monthly combinations=0
	export TZ=America/New_York
	for keep in 0 2; do
		for hourly in 0 50; do
			for daily in 0 200; do
				for weekly in 0 30; do
					for monthly in 0 12; do
						combinations=$((combinations + 1))
						diff <(expected 1 "$keep" "$hourly" "$daily" "$weekly" "$monthly" 3) \
							<(vol-prune -n --local -k "$keep" --keep-hourly "$hourly" \
								--keep-daily "$daily" --keep-weekly "$weekly" \
								--keep-monthly "$monthly" --keep-yearly 3 "$B")
					done
				done
			done
		done
	done
	[ "$combinations" -eq 32 ]
	# Local and UTC days differ somewhere in a year of evening revisions.
	[ "$(vol-prune -n -k 0 --keep-daily 300 --local "$B" | md5sum)" != \
		"$(vol-prune -n -k 0 --keep-daily 300 "$B" | md5sum)" ]
}

@test "retention: a real bucket prune removes exactly what -n said would go, and keeps every pin" {
	year_setup
	local args=(-k 3 --keep-daily 14 --keep-weekly 8 --keep-monthly 6 --keep-yearly 2)
	vol-prune -n "${args[@]}" "$B" >"$BATS_TEST_TMPDIR/schedule"
	awk -F '\t' -v vm="$VM" '$3 == "remove" { print $1 }' "$BATS_TEST_TMPDIR/schedule" >"$BATS_TEST_TMPDIR/gone"
	run --separate-stderr vol-prune "${args[@]}" "$B"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | sed 's/.*private\.img\.\([0-9]*\)@.*/\1/')" = "$(cat "$BATS_TEST_TMPDIR/gone")" ]
	[ "$(revision_ids "$VM" private)" = "$(awk -F '\t' '$3 == "keep" { printf "%s%s", sep, $1; sep = " " }' "$BATS_TEST_TMPDIR/schedule")" ]
	# Pruning again with the same rules removes nothing more.
	run vol-prune "${args[@]}" "$B"
	[ "$status" -eq 0 ] && [ -z "$output" ]
	for id in 10 200 333; do
		[ -e "$VM/$(revision_of "$VM" private "$id").pin" ]
	done
}

@test "retention: pins survive -k 0 with every single bucket, and do not take a bucket's place" {
	year_setup
	local option
	for option in --keep-hourly --keep-daily --keep-weekly --keep-monthly --keep-yearly; do
		vol-prune -n -k 0 "$option" 1000 "$B" >"$BATS_TEST_TMPDIR/schedule"
		[ "$(awk -F '\t' '$4 == "pinned" { print $1 }' "$BATS_TEST_TMPDIR/schedule" | tr '\n' ' ')" = "10 200 333 " ]
	done
	# The day of a pinned revision keeps its newest unpinned one as well.
	local day found=0
	for id in 10 200 333; do
		day=$(revision_of "$VM" private "$id" | sed 's/.*@\(..........\).*/\1/')
		if [ "$(find "$VM" -name "private.img.*@${day}T*Z" | wc -l)" -gt 1 ]; then
			vol-prune -n -k 0 --keep-daily 1000 "$B" | grep -q "	keep	daily $day\$"
			found=$((found + 1))
		fi
	done
	[ "$found" -gt 0 ]
	vol-prune -k 0 "$B" >/dev/null
	[ "$(revision_ids "$VM" private)" = "10 200 333" ]
}

@test "retention: -n with a --keep-* option of 0 shows the schedule of a plain -k" {
	year_setup
	run vol-prune -n -k 2 --keep-daily 0 "$B"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 400 ]
	[ "${lines[399]}" = "400	$(revision_of "$VM" private 400 | sed 's/.*@//')	keep	newest 1" ]
	[ "${lines[9]}" = "10	$(revision_of "$VM" private 10 | sed 's/.*@//')	keep	pinned" ]
	[ "${lines[0]}" = "1	$(revision_of "$VM" private 1 | sed 's/.*@//')	remove	no rule keeps it" ]
	# Without a --keep-* option -n prints the paths that would go.
	run vol-prune -n -k 395 "$B"
	[ "$output" = "$VM/$(revision_of "$VM" private 1)
$VM/$(revision_of "$VM" private 2)" ]
}

@test "retention: bad bucket counts are usage errors (64)" {
	year_setup
	for value in -1 x '' 1.5 99999999999; do
		run --separate-stderr vol-prune --keep-weekly "$value" "$B"
		[ "$status" -eq 64 ]
		# shellcheck disable=SC2154 # set by run --separate-stderr
		[[ "$stderr" == *"invalid --keep-weekly value"*"usage: vol-prune"* ]]
	done
	[ "$(revision_ids "$VM" private | wc -w)" -eq 400 ]
}
