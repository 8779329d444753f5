#!/usr/bin/env bats
# The parsers: revision names, SIZE, -k, -w and -r values.  Tables of
# valid and invalid input run through the real tools, and the fuzz
# targets of tests/fuzz/ replayed on their seed corpus and on every crash
# fuzzing found (tests/fuzz/crashes/), without libFuzzer.

load helper

setup_file() {
	fs_setup btrfs
	local target flags
	for target in revision_name size stream usage; do
		# With the sanitizers when the compiler has them, else plain.
		for flags in "-fsanitize=address,undefined -fno-sanitize-recover=undefined" ""; do
			# shellcheck disable=SC2086 # flags is a list of words
			if cc -std=c11 -D_GNU_SOURCE -g -O1 -I"$TOP/lib/core" $flags \
				-o "$BATS_FILE_TMPDIR/replay-$target" "$TOP/tests/fuzz/replay.c" \
				"$TOP/tests/fuzz/$target.c" "$TOP"/lib/core/*.c 2>"$BATS_FILE_TMPDIR/cc-$target.log"; then
				break
			fi
		done
	done
}

teardown_file() {
	fs_teardown
}

# A scratch directory: on btrfs if there is one, else in the test's own.
scratch() {
	if [ -n "${FS_btrfs:-}" ]; then
		fs_dir btrfs
	else
		DIR=$BATS_TEST_TMPDIR/scratch
		mkdir -p "$DIR"
	fi
}

# The argument without leading and trailing spaces (table cells).
trim() {
	local text=${1#"${1%%[! ]*}"}
	printf '%s' "${text%"${text##*[! ]}"}"
}

# replay TARGET FILE...: runs the fuzz target's checks on the files.
replay() {
	local target=$1
	shift
	[ -x "$BATS_FILE_TMPDIR/replay-$target" ] || {
		cat "$BATS_FILE_TMPDIR/cc-$target.log"
		false
	}
	run "$BATS_FILE_TMPDIR/replay-$target" "$@"
	[ "$status" -eq 0 ] || {
		echo "$output" | tail -5
		false
	}
}

@test "parsers: the revision_name seed corpus passes the fuzz target's checks" {
	replay revision_name "$TOP"/tests/fuzz/corpus/revision_name/*
}

@test "parsers: the size seed corpus passes the fuzz target's checks" {
	replay size "$TOP"/tests/fuzz/corpus/size/*
}

@test "parsers: the stream seed corpus passes the fuzz target's checks" {
	replay stream "$TOP"/tests/fuzz/corpus/stream/*
}

# Fuzz crash: revision_time_format() writes the year with %Y, which has
# fewer than four digits before 1000 and more after 9999, so a revision
# named from such a time does not parse back.
@test "parsers: fuzz crash: a revision of year 0999 formats back to its own name" {
	replay revision_name "$TOP/tests/fuzz/crashes/revision_name/year-before-1000"
}

@test "parsers: fuzz crash: times of year 999 and 10000 never format to a non-revision" {
	replay revision_name "$TOP"/tests/fuzz/crashes/revision_name/mtime-year-*
}

# Fuzz crash: a time so early that gmtime() fails was written as the
# latest time a name can hold instead of the earliest.
@test "parsers: fuzz crash: a time before year 0 formats as year 0000" {
	replay revision_name "$TOP/tests/fuzz/crashes/revision_name/time-before-year-0"
}

# The same defect through the tools: C's mtime names the revision.
@test "vol-commit: C with an mtime in year 999 makes a revision vol-info lists" {
	scratch
	B=$DIR/private
	vol-create -s 64K "$B"
	touch -d '0999-12-31 12:00:00 UTC' "$B.img"
	printf RUN | dd of="$(vol-start "$B")" conv=notrunc status=none
	vol-commit -k 2 "$B"
	run vol-info -r "$B"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | cut -f1)" = 1 ] || {
		echo "revisions listed: '$output'; files: $(files_in "$DIR")"
		false
	}
	# And the volume can be committed again.
	vol-start "$B" >/dev/null
	touch -d '0999-12-31 12:00:00 UTC' "$B.img"
	run vol-commit -k 2 "$B"
	[ "$status" -eq 0 ] || {
		echo "second commit: $status: $output"
		false
	}
}

@test "vol-info -r: a table of revision-like names, listed or not" {
	scratch
	# name | listed as "id<TAB>time", or "-" for not a revision
	table=$(
		cat <<'EOF'
private.img.1@2018-01-02T03:04:05Z                      | 1	2018-01-02T03:04:05Z
private.img.0042@2020-02-29T23:59:59Z                   | 42	2020-02-29T23:59:59Z
private.img.000000000000000000000000007@2000-02-29T00:00:00Z | 7	2000-02-29T00:00:00Z
private.img.18446744073709551615@1970-01-01T00:00:00Z   | 18446744073709551615	1970-01-01T00:00:00Z
private.img.0@9999-12-31T23:59:59Z                      | 0	9999-12-31T23:59:59Z
private.img.5@1000-01-01T00:00:00Z                      | 5	1000-01-01T00:00:00Z
private.img@2018-01-02T03:04:05Z                        | legacy	2018-01-02T03:04:05Z
private.img.18446744073709551616@2020-01-01T00:00:00Z   | -
private.img.99999999999999999999999@2020-01-01T00:00:00Z | -
private.img.+3@2020-01-01T00:00:00Z                     | -
private.img.-3@2020-01-01T00:00:00Z                     | -
private.img. 3@2020-01-01T00:00:00Z                     | -
private.img.3 @2020-01-01T00:00:00Z                     | -
private.img.3_0@2020-01-01T00:00:00Z                    | -
private.img._3@2020-01-01T00:00:00Z                     | -
private.img.0x3@2020-01-01T00:00:00Z                    | -
private.img.3@@2020-01-01T00:00:00Z                     | -
private.img.3@x@2020-01-01T00:00:00Z                    | -
private.img.3@2020-01-01T00:00:00Z@                     | -
private.img.@2020-01-01T00:00:00Z                       | -
private.img.3@2018-02-30T00:00:00Z                      | -
private.img.3@2019-02-29T00:00:00Z                      | -
private.img.3@1900-02-29T00:00:00Z                      | -
private.img.3@2018-04-31T00:00:00Z                      | -
private.img.3@2018-13-01T00:00:00Z                      | -
private.img.3@2018-00-01T00:00:00Z                      | -
private.img.3@2018-01-00T00:00:00Z                      | -
private.img.3@2018-01-01T24:00:00Z                      | -
private.img.3@2018-01-01T00:60:00Z                      | -
private.img.3@2016-12-31T23:59:60Z                      | -
private.img.3@2018-01-01T00:00:00                       | -
private.img.3@2018-01-01t00:00:00Z                      | -
private.img.3@2018-01-01T00:00:00z                      | -
private.img.3@2018-01-01 00:00:00Z                      | -
private.img.3@18-01-01T00:00:00Z                        | -
private.img.3@+2018-01-01T00:00:00Z                     | -
private.img.3@2018-01-01T00:00:00Z~tmp123               | -
private.img.3@2018-01-01T00:00:00Z~                     | -
private.img.3                                           | -
private.img.bak                                         | -
private2.img.3@2018-01-01T00:00:00Z                     | -
EOF
	)
	expected=
	while IFS='|' read -r name listed; do
		name=$(trim "$name")
		listed=$(trim "$listed")
		echo data >"$DIR/$name"
		if [ "$listed" != - ]; then
			expected+="$listed	$DIR/$name"$'\n'
		fi
	done <<<"$table"
	truncate -s 64K "$DIR/private.img"
	run vol-info -r "$DIR/private"
	[ "$status" -eq 0 ]
	# Listed: legacy first, then by id; the size column is dropped.
	got=$(printf '%s\n' "$output" | cut -f1,2,4)
	want=$(
		printf '%s' "$expected" | awk -F'\t' '$1 == "legacy"'
		printf '%s' "$expected" | awk -F'\t' '$1 != "legacy"' | sort -t"$(printf '\t')" -k1,1n
	)
	[ "$got" = "$want" ] || {
		diff <(echo "$want") <(echo "$got")
		false
	}
}

@test "vol-create -s: a table of SIZE values" {
	scratch
	n=0 failures=0
	# SIZE | exit status ("!64": anything but a usage error) | size in bytes
	while IFS='|' read -r value expected size; do
		value=$(trim "$value")
		expected=${expected// /} size=${size// /}
		n=$((n + 1))
		status=0
		vol-create -s "$value" "$DIR/v$n" 2>"$DIR/err" || status=$?
		if [ "$expected" = '!64' ]; then
			# Parsed; whether the filesystem takes a file that large
			# (0) or not (65) is not the parser's business.
			if [ "$status" -eq 64 ]; then
				echo "-s '$value': refused as a usage error: $(cat "$DIR/err")"
				failures=$((failures + 1))
			fi
		elif [ "$status" -ne "$expected" ]; then
			echo "-s '$value': status $status, expected $expected: $(cat "$DIR/err")"
			failures=$((failures + 1))
		elif [ "$expected" -eq 0 ] && [ "$(stat -c %s "$DIR/v$n.img")" != "$size" ]; then
			echo "-s '$value': size $(stat -c %s "$DIR/v$n.img"), expected $size"
			failures=$((failures + 1))
		elif [ "$expected" -eq 64 ] && ! grep -q "invalid size" "$DIR/err"; then
			echo "-s '$value': no \"invalid size\": $(cat "$DIR/err")"
			failures=$((failures + 1))
		fi
	done <<'EOF'
0                      | 0  | 0
1                      | 0  | 1
512                    | 0  | 512
0001                   | 0  | 1
1K                     | 0  | 1024
1k                     | 0  | 1024
4KiB                   | 0  | 4096
3M                     | 0  | 3145728
3MiB                   | 0  | 3145728
2G                     | 0  | 2147483648
2GiB                   | 0  | 2147483648
1T                     | 0  | 1099511627776
1TiB                   | 0  | 1099511627776
0T                     | 0  | 0
9223372036854775807    | !64 | -
8388607T               | !64 | -
9223372036854775808    | 64 | -
8388608T               | 64 | -
99999999999999999999   | 64 | -
16E                    | 64 | -
1P                     | 64 | -
12Q                    | 64 | -
1e3                    | 64 | -
-5                     | 64 | -
+5                     | 64 | -
1.5M                   | 64 | -
1KB                    | 64 | -
1Kib                   | 0  | 1024
1KIB                   | 0  | 1024
1kib                   | 0  | 1024
1iB                    | 64 | -
M                      | 64 | -
0x10                   | 64 | -
EOF
	# The empty value cannot be a table line.
	n=$((n + 1))
	run vol-create -s '' "$DIR/v$n"
	[ "$status" -eq 64 ] || failures=$((failures + 1))
	echo "$n values, $failures failed"
	[ "$failures" -eq 0 ]
}

@test "vol-prune -n -k: a table of -k values" {
	scratch
	B=$DIR/private
	truncate -s 64K "$B.img"
	for i in 1 2 3; do
		ln "$B.img" "$DIR/private.img.$i@2020-01-0${i}T00:00:00Z"
	done
	failures=0
	# -k value | exit status | revisions it would remove (of 3)
	while IFS='|' read -r value expected lines; do
		value=${value// /} expected=${expected// /} lines=${lines// /}
		status=0
		out=$(vol-prune -n -k "$value" "$B" 2>"$DIR/err") || status=$?
		count=$(printf '%s' "$out" | grep -c . || true)
		if [ "$status" -ne "$expected" ] || { [ "$expected" -eq 0 ] && [ "$count" -ne "$lines" ]; }; then
			echo "-k '$value': status $status (expected $expected), $count lines (expected $lines): $(cat "$DIR/err")"
			failures=$((failures + 1))
		fi
	done <<'EOF'
-1          | 0  | 3
0           | 0  | 3
-0          | 0  | 3
1           | 0  | 2
2           | 0  | 1
3           | 0  | 0
0003        | 0  | 0
2147483647  | 0  | 0
2147483648  | 64 | -
99999999999 | 64 | -
-2          | 64 | -
x           | 64 | -
1x          | 64 | -
+1          | 64 | -
--1         | 64 | -
-           | 64 | -
EOF
	[ "$failures" -eq 0 ]
}

@test "vol-revert -r and vol-commit -w: tables of values" {
	scratch
	B=$DIR/private
	failures=0
	while IFS='|' read -r option value expected; do
		option=${option// /} value=${value// /} expected=${expected// /}
		# A fresh volume with revisions 1 and 2 for each line.
		rm -f "$DIR"/private*
		truncate -s 64K "$B.img"
		truncate -s 64K "$DIR/private.img.1@2020-01-01T00:00:00Z" "$DIR/private.img.2@2020-01-02T00:00:00Z"
		status=0
		case $option in
		-r) vol-revert -r "$value" "$B" 2>"$DIR/err" || status=$? ;;
		-w) vol-commit -w "$value" "$B" 2>"$DIR/err" || status=$? ;;
		esac
		if [ "$status" -ne "$expected" ]; then
			echo "$option '$value': status $status, expected $expected: $(cat "$DIR/err")"
			failures=$((failures + 1))
		fi
	done <<'EOF'
-r | latest               | 0
-r | 1                    | 0
-r | 01                   | 0
-r | 000002               | 0
-r | 3                    | 66
-r | 0                    | 66
-r | 18446744073709551616 | 66
-r | +1                   | 64
-r | -1                   | 64
-r | 1x                   | 64
-r | LATEST               | 64
-w | 0                    | 0
-w | 31536000             | 0
-w | 31536001             | 64
-w | -1                   | 64
-w | 1.5                  | 64
-w | x                    | 64
EOF
	[ "$failures" -eq 0 ]
}

@test "vol-commit: after revision 18446744073709551615 no id is left: refused, nothing changed" {
	scratch
	B=$DIR/private
	truncate -s 64K "$B.img"
	truncate -s 64K "$DIR/private.img.18446744073709551615@2020-01-01T00:00:00Z"
	[ "$(vol-info "$B" | sed -n 's/^latest\t//p')" = 18446744073709551615 ]
	printf NEW >"$B-dirty.img"
	before=$(dir_state "$DIR")
	run vol-commit "$B"
	[ "$status" -ne 0 ]
	[[ "$output" == *"no revision id is left"* ]]
	[ "$(dir_state "$DIR")" = "$before" ]
}
