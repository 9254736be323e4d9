#!/bin/sh
# make deb: ftpfwd_VERSION_ARCH.deb, built by dpkg-buildpackage -b in a
# copy of the tree, and put in DEBDIR.
#
#	sh debian/mkdeb.sh VERSION DATE DEBDIR
#
# A copy, because dpkg-buildpackage works in place: it first runs
# make clean (throwing away what the tree was built with, make check
# SANITIZE=1's objects say), writes below debian/, and puts the .deb,
# .buildinfo and .changes in the parent directory.  The copy gets a
# debian/changelog written from the Makefile's VERSION and DATE, so the
# package's version is the one ftpfwd -V prints, set in one place.
set -e

[ $# -eq 3 ] || { echo "usage: $0 version date debdir" >&2; exit 1; }
version=$1
date=$2
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$3"
debdir=$(cd "$3" && pwd)
arch=$(dpkg --print-architecture)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ftpfwd-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/ftpfwd-$version
mkdir "$src"
# All of the tree, uncommitted changes too, but git's store and earlier
# packages; the build's make clean drops the objects.
(cd "$top" && tar -cf - --exclude=./.git --exclude='./ftpfwd_*.deb' .) |
    (cd "$src" && tar -xf -)

maint=$(sed -n 's/^Maintainer: *//p' "$src/debian/control")
when=$(LC_ALL=C date -u -R -d "$date 12:00")
cat >"$src/debian/changelog" <<END
ftpfwd ($version) unstable; urgency=medium

  * ftpfwd $version, packaged by make deb.

 -- $maint  $when
END

# A make above us (make check SANITIZE=1 running t/47) passes its
# command-line variables down in MAKEFLAGS: the package's build gets
# none of them, and Debian's build flags.
(cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE \
    dpkg-buildpackage -b -us -uc)
cp "$tmp/ftpfwd_${version}_$arch.deb" "$debdir/"
echo "$debdir/ftpfwd_${version}_$arch.deb"
