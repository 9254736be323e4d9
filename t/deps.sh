#!/bin/sh
# Install the Debian packages that building, testing and the demo need;
# with the argument "deb", only those that make deb needs.  A no-op
# when all are there; needs root otherwise.

build="gcc make pkg-config libevent-dev libssl-dev clang libclang-rt-14-dev \
mandoc"
lab="openssh-server openssh-client openssl iproute2 perl curl lftp \
inetutils-ftp socat python3 python3-pyftpdlib python3-openssl valgrind \
libsodium23"
# FTP servers conflict with each other as packages: vsftpd gets its own
# apt-get call, which may not remove another server to make room, and
# pure-ftpd is only unpacked, into t/pure-ftpd (libsodium23 is its one
# library a minimal system may lack).
server="vsftpd"
# make deb: debian/control's Build-Depends and Debian's tools to build
# and check a package; t/47-package.t runs make deb, and man -w.
deb="gcc make pkg-config libevent-dev libssl-dev debhelper dpkg-dev lintian"
deb_test="man-db"
here=$(cd "$(dirname "$0")" && pwd)
pure="$here/pure-ftpd"

missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q '^install ok installed$' || printf ' %s' "$p"
	done
}

need_server=
need_pure=
if [ "$1" = deb ]; then
	# sh t/deps.sh deb: only what make deb needs, no lab.
	need=$(missing $deb)
else
	need=$(missing $build $lab $deb $deb_test)
	need_server=$(missing $server)
	[ -x "$pure/usr/sbin/pure-ftpd" ] || need_pure=" pure-ftpd (unpacked)"
fi
[ -z "$need$need_server$need_pure" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "ftpfwd: missing Debian packages:$need$need_server$need_pure" >&2
	echo "ftpfwd: run as root, or: apt-get install$need$need_server" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "ftpfwd: installing:$need$need_server$need_pure"
apt-get update -q || exit 1
if [ -n "$need" ]; then
	apt-get install -y -q --no-install-recommends $need </dev/null ||
	    exit 1
fi
if [ -n "$need_server" ]; then
	apt-get install -y -q --no-install-recommends --no-remove \
	    $need_server </dev/null || {
		echo "ftpfwd: cannot install$need_server next to the FTP" \
		    "server already installed; remove it or install" \
		    "$need_server by hand" >&2
		exit 1
	}
fi
if [ -n "$need_pure" ]; then
	tmp=$(mktemp -d) || exit 1
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root \
	    pure-ftpd </dev/null && rm -rf "$pure" &&
	    dpkg -x pure-ftpd_*.deb "$pure") || {
		rm -rf "$tmp"
		echo "ftpfwd: cannot unpack pure-ftpd into $pure" >&2
		exit 1
	}
	rm -rf "$tmp"
fi
exit 0
