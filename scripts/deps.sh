#!/bin/bash
# Install the Debian 12 packages percore needs, only when missing. Runs as
# root (or via sudo when available).
#   deps.sh run    what building and running the server needs (make run)
#   deps.sh test   that plus the test tool chain (make test)
set -e
# Compiler and make; liburing (io_uring backend); clang, llvm, bpftool,
# libbpf, libelf and zlib for the eBPF steering program (without them the
# server still builds, with software steering only); Cyrus SASL for -S
# (libsasl2-dev; the PLAIN and SCRAM-SHA-* mechanisms are in
# libsasl2-modules, the sasldb password store in libsasl2-modules-db); libssl-dev for TLS (-Z).
RUN_PKGS="build-essential pkg-config liburing-dev libssl-dev clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
libsasl2-dev libsasl2-modules libsasl2-modules-db"
# Unit tests (cmocka), the reference server and clients the integration
# tests drive (Python, C, Ruby's Dalli, Perl's Cache::Memcached::Fast and
# Cache::Memcached), pytest-xdist (integration tests in parallel
# processes), and the tools the benchmarks and soak use.
TEST_PKGS="libcmocka-dev memcached python3 python3-pytest python3-pytest-xdist python3-pymemcache python3-pylibmc python3-cryptography openssl
libmemcached-tools gnuplot-nox valgrind iproute2 ethtool nutcracker ruby ruby-dalli sasl2-bin
libcache-memcached-fast-perl libcache-memcached-perl python3-prometheus-client curl"
case "${1:-test}" in
run)  PKGS="$RUN_PKGS" ;;
test) PKGS="$RUN_PKGS $TEST_PKGS" ;;
*)    echo "usage: $0 run|test" >&2; exit 64 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Node's memjs (binary protocol; not in Debian) for test_clients_other.py,
# only where npm already is (nodejs and npm are not installed for it: too
# many packages) and only once: under build/npm, from the npm registry,
# bounded in time; without it those tests are skipped.
cd "$(dirname "$0")/.."
if [ "${1:-test}" = test ] && command -v npm >/dev/null && [ ! -d build/npm/node_modules/memjs ]; then
    mkdir -p build/npm
    timeout 120 npm install --prefix build/npm --no-audit --no-fund --no-save \
        --fetch-retries=1 --fetch-timeout=30000 memjs@1.3.2 >/dev/null 2>&1 \
        || echo "deps: npm install memjs failed; its tests will be skipped"
fi
