#!/bin/bash
# Run every cmocka unit test binary in BUILD_DIR/tests. Prints one closing
# summary line; exit status non-zero if any failed.
O=${1:-build}
pass=0; fail=0; failed=""
for t in "$O"/tests/test_*; do
    [ -x "$t" ] || continue
    if "$t" > "$t.log" 2>&1; then
        pass=$((pass+1))
    else
        fail=$((fail+1)); failed="$failed $(basename "$t")"
        echo "---- $(basename "$t") FAILED"; tail -30 "$t.log"
    fi
done
echo "unit: $pass passed, $fail failed"
[ -z "$failed" ] || { echo "failed:$failed"; exit 1; }
