#!/bin/bash
# Run every cmocka unit test: one binary BUILD_DIR/tests/test_X per source
# tests/unit/<layer>/test_X.c. Going by the sources, not by what happens to
# be built, means a test that was not built counts as a failure instead of
# silently shrinking the suite. Prints one line per layer and a closing
# summary; exit status non-zero if any failed.
#   tests/run-unit.sh [BUILD_DIR]   (default build; TSan/ASan: build-tsan, build-asan)
O=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
pass=0; fail=0; failed=""
for dir in "$here"/unit/*/; do
    layer=$(basename "$dir"); n=0
    for src in "$dir"test_*.c; do
        [ -e "$src" ] || continue
        name=$(basename "$src" .c); t=$O/tests/$name; n=$((n+1))
        if [ ! -x "$t" ]; then
            fail=$((fail+1)); failed="$failed $name"
            echo "---- $name: $t not built"
        elif "$t" > "$t.log" 2>&1; then
            pass=$((pass+1))
        else
            fail=$((fail+1)); failed="$failed $name"
            echo "---- $name FAILED"; tail -30 "$t.log"
        fi
    done
    echo "unit/$layer: $n program(s)"
done
echo "unit ($O): $pass passed, $fail failed"
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
