#!/usr/bin/env bats
# lib/completion/file-reflink, the bash completion of every tool, loaded
# with bash-completion: the options of each tool's getopt_long table,
# volume base names for volume operands, revision ids after -r, the values
# a usage lists, nothing for sizes; and what make install puts where
# bash-completion finds it.

load helper

BASH_COMPLETION=/usr/share/bash-completion/bash_completion

setup() {
	[ -r "$BASH_COMPLETION" ] || skip "bash-completion is not installed"
	[ -r "$TOP/lib/completion/file-reflink" ] || skip "not built: run make"
	cd "$BATS_TEST_TMPDIR" || return 1
}

# candidates LINE: the completions offered for the last word of LINE (the
# cursor at its end), one per line, in the order of COMPREPLY.  The line is
# cut into words as readline does, "=" being a word of its own.
candidates() {
	# shellcheck disable=SC2016 # expanded by that bash
	PATH="${CANDIDATES_PATH:-$TOP/bin:$PATH}" bash -c '
		source "$1"
		source "$2"
		compopt() { :; }
		COMP_LINE=$3
		COMP_POINT=${#COMP_LINE}
		read -ra split <<<"${COMP_LINE//=/ = }"
		COMP_WORDS=()
		for word in "${split[@]}"; do COMP_WORDS+=("$word"); done
		[[ $COMP_LINE == *[\ =] ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_file_reflink
		[ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' candidates "$BASH_COMPLETION" "$TOP/lib/completion/file-reflink" "$1"
}

# sorted_candidates LINE: the same, sorted, on one line.
sorted_candidates() {
	candidates "$1" | LC_ALL=C sort | tr '\n' ' '
}

# A volume with revisions 1 and 2, in d/.
two_revisions() {
	mkdir -p d
	"$TOP/bin/vol-create" -s 1M d/private
	for day in monday tuesday; do
		"$TOP/bin/vol-start" -k 3 d/private >/dev/null
		echo "$day" | dd of=d/private-dirty.img conv=notrunc status=none
		"$TOP/bin/vol-commit" -k 3 d/private
	done
}

# source_options TOOL: the options of bin/TOOL.c as the compiler sees
# them (the preprocessor expands the common ones of frame.h), "-x" and
# "--name" (with "=" when it takes an argument), sorted, on one line.
source_options() {
	cc -E -P -I"$TOP/lib/core" -I"$TOP/lib/frame" "$TOP/bin/$1.c" |
		python3 -c '
import re, sys
text = sys.stdin.read()
call = re.findall(r"getopt_long\(\s*\w+\s*,\s*\w+\s*,\s*((?:\"[^\"]*\"\s*)+),", text)
assert len(call) == 1, "one getopt_long call"
short = "".join(re.findall(r"\"([^\"]*)\"", call[0]))
table = re.search(r"long_options\[\]\s*=\s*\{(.*?)\};", text, re.S).group(1)
options = ["-" + c for c in short if c != ":"]
for name, argument in re.findall(r"\{\s*\"([^\"]+)\"\s*,\s*(\w+)", table):
	# no_argument is a macro for 0.
	options.append("--" + name + ("" if argument in ("0", "no_argument") else "="))
print(" ".join(sorted(options)) + " ")
'
}

@test "completion: vol-prune - offers the short and long options of its table" {
	run candidates "vol-prune -"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "-k -n -u -w -h -q -V -v --dry-run --keep= --keep-daily= --keep-hourly= --keep-monthly= --keep-weekly= --keep-yearly= --local --usage --wait= --help --progress --quiet --unsafe-dirs --version --verbose " ]
	run candidates "vol-prune --dr"
	[ "$output" = "--dry-run" ]
}

@test "completion: for every bin/*.c, the options offered are exactly those of its getopt_long call and table" {
	command -v cc >/dev/null || skip "no C compiler"
	local source tool tools=0
	for source in "$TOP"/bin/*.c; do
		tool=$(basename "$source" .c)
		expected=$(source_options "$tool")
		offered=$(sorted_candidates "$tool -")
		if [ "$offered" != "$expected" ]; then
			printf '%s:\n  source:  %s\n  offered: %s\n' "$tool" "$expected" "$offered" >&2
			return 1
		fi
		tools=$((tools + 1))
	done
	[ "$tools" -ge 15 ]
}

@test "completion: every option offered is one the tool accepts" {
	local source tool option out
	for source in "$TOP"/bin/*.c; do
		tool=$(basename "$source" .c)
		for option in $(candidates "$tool -"); do
			# Without an operand, no tool does anything: it prints its
			# usage, its version, or a usage error.
			out=$("$TOP/bin/$tool" "${option%=}" 2>&1 </dev/null) || true
			case $out in
			*"unrecognized option"* | *"invalid option"*)
				echo "$tool $option: $out" >&2
				return 1
				;;
			esac
		done
	done
}

@test "completion: a path completes to directories and volume base names, unique and sorted" {
	mkdir -p d/sub
	touch d/private.img d/private-dirty.img d/private-precache.img \
		d/private.img.1@2026-01-02T03:04:05Z d/private.img.2@2026-01-02T03:04:06Z~k3Jd9q \
		d/root-import.img d/volatile-dirty.img d/old.img@2018-01-02T03:04:05Z \
		d/private.img~Ab12Cd d/notes.txt d/vm.conf
	run candidates "vol-start d/"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "d/old d/private d/root d/sub d/volatile " ]
	run candidates "vol-commit d/pr"
	[ "$output" = "d/private" ]
	run candidates "vol-info -j d/private d/v"
	[ "$output" = "d/volatile" ]
	run candidates "vol-start d/notes"
	[ "$output" = "" ]
}

@test "completion: every tool completes its first operand from its usage: a volume, a directory or a file" {
	mkdir -p d/sub
	touch d/private.img d/private.img.1@2026-01-02T03:04:05Z
	local source tool expected
	for source in "$TOP"/bin/*.c; do
		tool=$(basename "$source" .c)
		case $("$TOP/bin/$tool" --help | tr '\n' ' ' | sed 's/\[[^]]*\]//g; s/ -[a-zA-Z] [^ ]*//g; s/[<>] [^ ]*//g' | awk '{ print $3 }') in
		VOLUME*) expected="d/private d/sub " ;;
		*POOL* | *DIR*) expected="d/sub " ;;
		*) expected="d/private.img d/private.img.1@2026-01-02T03:04:05Z d/sub " ;;
		esac
		run sorted_candidates "$tool d/"
		[ "$status" -eq 0 ]
		[ "$output" = "$expected" ] || {
			echo "$tool d/: [$output], expected [$expected]" >&2
			return 1
		}
	done
}

@test "completion: -r offers the revision ids vol-info -r lists for the volume on the line" {
	two_revisions
	run candidates "vol-revert d/private -r "
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "1 2 " ]
	run candidates "vol-export d/private --revision="
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "1 2 " ]
	run candidates "vol-revert -k 1 d/private -r 2"
	[ "$output" = "2" ]
	# No volume on the line yet: nothing to offer.
	run candidates "vol-revert -r "
	[ "$output" = "" ]
}

@test "completion: a tool typed with its path asks the vol-info beside it for -r" {
	two_revisions
	CANDIDATES_PATH=/usr/bin:/bin run candidates "$TOP/bin/vol-revert d/private -r "
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "1 2 " ]
}

@test "completion: vol-export -i offers revision ids, state names and clean" {
	two_revisions
	run candidates "vol-export d/private -i "
	[ "$(printf '%s\n' "$output" | sed -n '1p;$p' | tr '\n' ' ')" = "1 clean " ]
	[ "$(printf '%s\n' "$output" | wc -l)" -eq 5 ]
}

@test "completion: -S completes volumes; sizes, counts and seconds complete to nothing" {
	two_revisions
	run candidates "vol-start -S d/p"
	[ "$output" = "d/private" ]
	local line
	for line in "vol-create -s " "vol-resize --size=" "vol-commit -k " "vol-prune --keep=" \
		"vol-start -w " "pool-check --fragmented="; do
		run candidates "$line"
		[ "$status" -eq 0 ]
		[ "$output" = "" ] || {
			echo "$line: $output" >&2
			return 1
		}
	done
}

@test "completion: an option's values come from the tool's usage" {
	run candidates "reflink-clone --reflink="
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "auto always never " ]
	run candidates "reflink-clone --reflink=al"
	[ "$output" = "always" ]
	run candidates "vol-info -t "
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "dirty clean missing outdated " ]
}

@test "completion: the operands are those of the usage: directories for vol-list and pool-check, a file after vol-import's volume" {
	two_revisions
	touch d/disk.raw
	run sorted_candidates "vol-list "
	[ "$output" = "d " ]
	run sorted_candidates "pool-check --repair "
	[ "$output" = "d " ]
	run sorted_candidates "vol-import d/private d/"
	[ "$output" = "$(printf '%s ' d/*)" ]
	[[ "$output" == *"d/disk.raw "* ]]
	# One operand only: nothing after it.
	run candidates "vol-remove d/private "
	[ "$output" = "" ]
}

@test "completion: after --, a word that starts with - is an operand" {
	mkdir -- -odd
	touch -- -odd/x.img
	run candidates "vol-info -- -odd/"
	[ "$output" = "-odd/x" ]
}

@test "completion: make install links every tool's name to the script, and bash-completion loads it" {
	local stage=$BATS_TEST_TMPDIR/stage tool
	# The tools as they were built (with SAN=1 by make check-san): the
	# flags' stamp is not remade, so nothing is compiled again.
	make -s -C "$TOP" -o lib/.build-flags install DESTDIR="$stage" PREFIX=/usr/local >/dev/null
	local dir=$stage/usr/local/share/bash-completion/completions
	[ -f "$dir/file-reflink" ]
	for tool in "$TOP"/bin/*.c; do
		tool=$(basename "$tool" .c)
		[ "$(readlink "$dir/$tool")" = file-reflink ]
	done
	# bash-completion looks in XDG_DATA_DIRS, where /usr/local/share is.
	# shellcheck disable=SC2016 # expanded by that bash
	run env XDG_DATA_DIRS="$stage/usr/local/share" bash -c '
		source "$1"
		__load_completion vol-start && complete -p vol-start' \
		load "$BASH_COMPLETION"
	[ "$status" -eq 0 ]
	[ "$output" = "complete -F _file_reflink vol-start" ]
	make -s -C "$TOP" -o lib/.build-flags uninstall DESTDIR="$stage" PREFIX=/usr/local >/dev/null
	[ -z "$(find "$dir" -mindepth 1)" ]
}

@test "completion: the tools of pins, precaches, snapshots, discards and streams" {
	two_revisions
	run candidates "vol-pin d/private -r "
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "1 2 " ]
	run candidates "vol-pin -"
	words=" $(printf '%s\n' "$output" | tr '\n' ' ') "
	[[ $words == *" -r "* && $words == *" -u "* && $words == *" --unpin "* ]]
	run candidates "vol-precache d/pri"
	[ "$output" = "d/private" ]
	run candidates "vol-snapshot --k"
	[ "$output" = "--keep=" ]
	run candidates "vol-discard --precache="
	[ "$(printf '%s\n' "$output" | tr '\n' ' ')" = "now later " ]
	run candidates "vol-receive --precache=l"
	[ "$output" = "later" ]
	run candidates "vol-receive d/"
	[ "$output" = "d/private" ]
}
