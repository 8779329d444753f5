#!/usr/bin/env bats
# The library's two layers (README.md, "Layout of the source"), checked on
# the objects make built: the core uses nothing of the frame, and no
# files use each other in a circle.  tests/layers reads their symbols.

load helper

# The objects are those make built for this run (make check builds them
# first; make check-san with the sanitizers): never rebuilt here.
setup_file() {
	local object
	for object in "$TOP"/lib/core/array.o "$TOP"/lib/frame/log.o; do
		[ -f "$object" ] || {
			echo "$object is not built: run make" >&2
			return 1
		}
	done
}

@test "layers: no core object uses the frame, no circle" {
	cd "$TOP"
	run tests/layers lib/core/*.o -- lib/frame/*.o
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "layers: a frame object counted as core is caught" {
	cd "$TOP"
	run tests/layers lib/core/*.o lib/frame/options.o -- lib/frame/log.o
	[ "$status" -eq 1 ]
	[[ $output == *"lib/frame/options.o (core) uses lib/frame/log.o (frame)"* ]]
}

@test "layers: a circle of objects is caught" {
	local dir=$BATS_TEST_TMPDIR
	# Two objects that use each other.
	printf 'int b(void);\nint a(void) { return b(); }\n' >"$dir/a.c"
	printf 'int a(void);\nint b(void) { return a(); }\n' >"$dir/b.c"
	cc -c -o "$dir/a.o" "$dir/a.c"
	cc -c -o "$dir/b.o" "$dir/b.c"
	run tests/layers "$dir/a.o" "$dir/b.o" --
	[ "$status" -eq 1 ]
	[[ $output == *"a circle of files"* ]]
}

@test "layers: nothing of the core prints, exits or includes the frame" {
	cd "$TOP"
	run grep -lE '(^|[^a-z_])(printf|fprintf|puts|fputs|exit|perror|log_[a-z]+)\(|frame\.h' lib/core/*.c
	# output.c writes records to the stream it is given; nothing else
	# of the core writes anywhere.
	[ "$output" = "lib/core/output.c" ]
}
