#!/bin/bash
# Run every cmocka unit test: one binary BUILD_DIR/tests/test_X per source
# tests/unit/<layer>/test_X.c. Going by the sources, not by what happens to
# be built, means a test that was not built counts as a failure instead of
# silently shrinking the suite. Prints one line per layer and a closing
# summary; exit status non-zero if any failed.
#   tests/run-unit.sh [BUILD_DIR]   (default build; TSan/ASan: build-tsan, build-asan)
# UNIT_JOBS=N programs run at once (default: the CPU count); each is a
# separate process with its own log, and the report comes in source order
# once all have finished (some wait on timeouts, some are CPU-bound).
O=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
jobs=${UNIT_JOBS:-$(nproc)}
pass=0; fail=0; failed=""
srcs=()
for dir in "$here"/unit/*/; do
    for src in "$dir"test_*.c; do
        [ -e "$src" ] && srcs+=("$src")
    done
done
# Start each built program, at most $jobs at a time; its exit status goes
# to BIN.rc next to its BIN.log.
running=0
for src in "${srcs[@]}"; do
    t=$O/tests/$(basename "$src" .c)
    rm -f "$t.rc"
    [ -x "$t" ] || continue
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    ( "$t" > "$t.log" 2>&1; echo $? > "$t.rc" ) &
    running=$((running + 1))
done
wait
layer_prev=""; n=0
report_layer() { [ -n "$layer_prev" ] && echo "unit/$layer_prev: $n program(s)"; }
for src in "${srcs[@]}"; do
    layer=$(basename "$(dirname "$src")")
    if [ "$layer" != "$layer_prev" ]; then
        report_layer; layer_prev=$layer; n=0
    fi
    name=$(basename "$src" .c); t=$O/tests/$name; n=$((n+1))
    if [ ! -x "$t" ]; then
        fail=$((fail+1)); failed="$failed $name"
        echo "---- $name: $t not built"
    elif [ "$(cat "$t.rc" 2>/dev/null)" = 0 ]; then
        pass=$((pass+1))
    else
        fail=$((fail+1)); failed="$failed $name"
        echo "---- $name FAILED"; tail -30 "$t.log"
    fi
done
report_layer
echo "unit ($O): $pass passed, $fail failed"
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
