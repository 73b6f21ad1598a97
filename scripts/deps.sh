#!/bin/bash
# Install the Debian 12 packages percore needs to build and test, only when
# missing. Runs as root (or via sudo when available).
set -e
PKGS="build-essential pkg-config clang llvm libcmocka-dev liburing-dev libbpf-dev libelf-dev
zlib1g-dev bpftool memcached python3 python3-pytest python3-pymemcache python3-pylibmc
libmemcached-tools gnuplot-nox valgrind iproute2 nutcracker ruby ruby-dalli"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
