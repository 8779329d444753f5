#!/usr/bin/env bats
# make deb and make rpm (lib/packaging): a Debian package built by
# dpkg-buildpackage in a copy of the tree, with lib/packaging/debian as
# its debian/, that lintian passes without errors and that installs and
# removes with dpkg; and an RPM built by rpmbuild -bb from a tarball of
# the tree.  Both hold every tool, man page, completion link and unit.
# Each build takes 20 to 60 seconds (the compiler), in a scratch
# directory, never in the checkout.

load helper

setup_file() {
	export PACKAGES=$BATS_FILE_TMPDIR/packages
	mkdir -p "$PACKAGES"
}

# The names make install gives the tools, from bin/*.c.
tools() {
	local source
	for source in "$TOP"/bin/*.c; do
		basename "$source" .c
	done
}

# need_deb: skips unless a Debian package can be built and installed here.
need_deb() {
	[ "$(id -u)" -eq 0 ] || skip "not root: dpkg -i needs root"
	command -v dpkg-buildpackage >/dev/null || skip "dpkg-dev is not installed"
	command -v dh >/dev/null || skip "debhelper is not installed"
	dpkg-checkbuilddeps "$TOP/lib/packaging/debian/control" >/dev/null 2>&1 ||
		skip "build dependencies missing: $(dpkg-checkbuilddeps "$TOP/lib/packaging/debian/control" 2>&1)"
}

# deb_build: builds the .deb once per file, into $PACKAGES; sets DEB.
deb_build() {
	if [ ! -e "$PACKAGES/deb.log" ]; then
		# No debug symbols package; the compiler on every CPU.
		DEB_BUILD_OPTIONS="noddebs parallel=$(nproc)" \
			make -s -C "$TOP" deb PACKAGE_DIR="$PACKAGES" >"$PACKAGES/deb.log" 2>&1 ||
			echo "make deb failed" >>"$PACKAGES/deb.log"
	fi
	DEB=$(find "$PACKAGES" -maxdepth 1 -name 'file-reflink_*.deb')
	[ -n "$DEB" ] || {
		cat "$PACKAGES/deb.log" >&2
		return 1
	}
}

@test "packaging: the Debian changelog, the RPM spec and the tools' --version agree on the version" {
	local version
	version=$("$TOP/bin/vol-create" --version)
	version=${version##* }
	[ -n "$version" ]
	[[ "$(head -n 1 "$TOP/lib/packaging/debian/changelog")" == "file-reflink ($version-"*") "* ]]
	[ "$(sed -n 's/^Version: *//p' "$TOP/lib/packaging/file-reflink.spec")" = "$version" ]
}

@test "packaging: make deb builds a .deb with every tool, man page, completion and unit, outside the checkout" {
	need_deb
	local before
	before=$(git -C "$TOP" status --porcelain --ignored 2>/dev/null || true)
	deb_build
	[ "$(git -C "$TOP" status --porcelain --ignored 2>/dev/null || true)" = "$before" ]
	run dpkg-deb -c "$DEB"
	[ "$status" -eq 0 ]
	local tool
	for tool in $(tools); do
		[[ "$output" == *" ./usr/bin/$tool"$'\n'* ]]
		[[ "$output" == *" ./usr/share/man/man1/$tool.1.gz"$'\n'* ]]
		[[ "$output" == *" ./usr/share/bash-completion/completions/$tool -> file-reflink"* ]]
	done
	[[ "$output" == *" ./usr/share/man/man7/file-reflink.7.gz"$'\n'* ]]
	[[ "$output" == *"/systemd/system/file-reflink-check@.service"$'\n'* ]]
	[[ "$output" == *"/systemd/system/file-reflink-check@.timer"$'\n'* ]]
	[[ "$output" == *"/systemd/system/file-reflink-prune@.timer"$'\n'* ]]
	[[ "$output" == *" ./usr/libexec/file-reflink/each-volume"$'\n'* ]]
	[[ "$output" == *" ./usr/share/doc/file-reflink/copyright"$'\n'* ]]
}

@test "packaging: lintian finds no error in the .deb" {
	need_deb
	command -v lintian >/dev/null || skip "lintian is not installed"
	deb_build
	run lintian --allow-root "$DEB"
	echo "$output" >&2
	[[ "$output" != *"E: "* ]]
}

@test "packaging: the .deb installs with dpkg -i, its tools and man pages work, and it removes cleanly" {
	need_deb
	if dpkg-query -W -f '${Status}' file-reflink 2>/dev/null | grep -q installed; then
		skip "a file-reflink package is installed here already"
	fi
	deb_build
	run dpkg -i "$DEB"
	echo "$output" >&2
	[ "$status" -eq 0 ]
	run /usr/bin/vol-create --version
	dpkg -r file-reflink >/dev/null 2>&1 || true
	[ "$status" -eq 0 ]
	[[ "$output" == "vol-create (file-reflink) "* ]]
	dpkg -i "$DEB" >/dev/null
	run man -w vol-start
	local man_status=$status man_output=$output
	# The units are templates: nothing is enabled at install time.
	run find /etc/systemd/system -name 'file-reflink-*'
	local enabled=$output
	run dpkg -r file-reflink
	[ "$status" -eq 0 ]
	[ "$man_status" -eq 0 ]
	[ "$man_output" = /usr/share/man/man1/vol-start.1.gz ]
	[ -z "$enabled" ]
	[ ! -e /usr/bin/vol-create ]
	[ ! -e /usr/share/bash-completion/completions/vol-start ]
	dpkg --purge file-reflink >/dev/null
}

@test "packaging: make rpm builds an RPM whose file list has every tool, man page, completion and unit" {
	command -v rpmbuild >/dev/null || skip "rpmbuild is not installed"
	make -s -C "$TOP" rpm PACKAGE_DIR="$PACKAGES" >"$PACKAGES/rpm.log" 2>&1 || {
		tail -n 30 "$PACKAGES/rpm.log" >&2
		return 1
	}
	local rpm
	rpm=$(find "$PACKAGES" -maxdepth 1 -name 'file-reflink-*.rpm')
	[ -n "$rpm" ]
	run rpm -qlp "$rpm"
	[ "$status" -eq 0 ]
	local tool
	for tool in $(tools); do
		[[ "$output" == *"/usr/bin/$tool"$'\n'* ]]
		[[ "$output" == *"/usr/share/man/man1/$tool.1"* ]]
		[[ "$output" == *"/usr/share/bash-completion/completions/$tool"$'\n'* ]]
	done
	[[ "$output" == *"/usr/lib/systemd/system/file-reflink-check@.service"$'\n'* ]]
	[[ "$output" == *"/usr/lib/systemd/system/file-reflink-prune@.timer"$'\n'* ]]
	[[ "$output" == *"/usr/libexec/file-reflink/each-volume"* ]]
	run rpm -qp --qf '%{VERSION}' "$rpm"
	[ "$output" = "$(sed -n 's/^Version: *//p' "$TOP/lib/packaging/file-reflink.spec")" ]
}
