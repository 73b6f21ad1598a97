#!/bin/sh
# Run the integration suite against BUILD_DIR/percore.
#   tests/run-integration.sh BUILD_DIR [pytest args...]
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
"$py" -m pytest ${PERCORE_TESTS:-"$here/integration"} -p no:cacheprovider --durations=15 "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "$0: no tests were collected" >&2
    exit 1
fi
exit "$rc"
