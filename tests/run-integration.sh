#!/bin/sh
# Run the integration suite against BUILD_DIR/percore.
#   tests/run-integration.sh BUILD_DIR [pytest args...]
#   PERCORE_JOBS=2 tests/run-integration.sh BUILD_DIR ...   (in 2 processes, see below)
#   PERCORE_SERVER=memcached /usr/bin/python3 -m pytest tests/integration   (reference run)
# Exit status is pytest's; "no tests collected" (5) counts as a failure.
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [pytest args...]" >&2
    exit 2
fi
build=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/percore"
if [ ! -x "$bin" ]; then
    echo "$0: $bin not found or not executable (build it first)" >&2
    exit 2
fi
PERCORE_SERVER=$(cd "$(dirname "$bin")" && pwd)/percore
export PERCORE_SERVER
# Debian's interpreter has pytest, pymemcache and pylibmc; another python3
# may come first on PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# PERCORE_TESTS narrows the run to some test files (space separated).
# PERCORE_JOBS=N (N > 1, pytest-xdist installed) runs the tests in N
# processes, a file per process at a time (a file's module-scoped servers
# stay in one process), then the tests marked `serial` (latency and
# throughput bounds, kernel-wide TCP memory pressure) alone. Every test
# starts its own servers on ports the kernel hands out, so the processes
# share nothing else.
run() {
    "$py" -m pytest ${PERCORE_TESTS:-"$here/integration"} -p no:cacheprovider --durations=15 "$@"
}
jobs=${PERCORE_JOBS:-1}
if [ "$jobs" -gt 1 ] && ! "$py" -c "import xdist" 2>/dev/null; then
    echo "$0: PERCORE_JOBS=$jobs but pytest-xdist is missing (scripts/deps.sh test): one process" >&2
    jobs=1
fi
if [ "$jobs" -le 1 ]; then
    run "$@"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "$0: no tests were collected" >&2
        exit 1
    fi
    exit "$rc"
fi
PERCORE_SERIAL=skip run -n "$jobs" --dist loadfile "$@"
rc1=$?
echo "---- the tests marked serial, one at a time"
PERCORE_SERIAL=only run "$@"
rc2=$?
# A pass that selects nothing (5) is fine when the other ran tests.
if [ "$rc1" -eq 5 ] && [ "$rc2" -eq 5 ]; then
    echo "$0: no tests were collected" >&2
    exit 1
fi
[ "$rc1" -eq 5 ] && rc1=0
[ "$rc2" -eq 5 ] && rc2=0
[ "$rc1" -ne 0 ] && exit "$rc1"
exit "$rc2"
