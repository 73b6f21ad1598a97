#!/bin/bash
# sweep.sh - run percore-bench open loop at a series of offered loads against one
# or more servers (already running), then write the CSV, the raw JSON lines and a
# PNG plot (p99 and p99.9 vs achieved throughput, one line per server).
# usage: bench/sweep.sh --server NAME=HOST:PORT [--server ...] [--rates R1,R2,...]
#          [--duration S] [--out DIR] [--cpus LIST] [-- extra percore-bench options]
# Binaries: $PERCORE_BUILD (default build). Every run is bounded by --duration.
set -euo pipefail
BUILD=${PERCORE_BUILD:-build}
BENCH=$BUILD/percore-bench
here=$(cd "$(dirname "$0")" && pwd)
servers=()
rates=10000,20000,40000
duration=5
out=bench-results/sweep-$(date +%Y%m%d-%H%M%S)
cpus=
extra=()
while [ $# -gt 0 ]; do
    case $1 in
    --server) servers+=(-s "$2"); shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ ${#servers[@]} -gt 0 ] || { echo "sweep.sh: give at least one --server NAME=HOST:PORT" >&2; exit 2; }
[ -x "$BENCH" ] || { echo "sweep.sh: $BENCH not built (make $BENCH)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out/sweep.csv"
pin=()
[ -n "$cpus" ] && pin=(taskset -c "$cpus")
set -x
"${pin[@]}" "$BENCH" "${servers[@]}" --sweep "$rates" --duration "$duration" --quiet --json \
    --csv "$out/sweep.csv" "${extra[@]}" > "$out/sweep.jsonl"
{ set +x; } 2>/dev/null
"$here/plot.sh" "$out/sweep.csv" "$out/sweep.png"
column -s, -t < "$out/sweep.csv" 2>/dev/null || cat "$out/sweep.csv"
echo "sweep.sh: results in $out (sweep.csv, sweep.jsonl, sweep.png)"
