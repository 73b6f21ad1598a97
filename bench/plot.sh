#!/bin/bash
# plot.sh - draw a percore-bench sweep CSV (server,offered,achieved,p50,p90,p99,
# p999,p9999,max,errors,timeouts; latencies in microseconds) as a PNG with gnuplot:
# p99 (solid) and p99.9 (dashed) latency against achieved throughput, one colour
# per server. Closed-loop rows (offered = 0) are left out.
# usage: bench/plot.sh SWEEP.csv OUT.png [TITLE]
set -euo pipefail
csv=${1:?usage: plot.sh SWEEP.csv OUT.png [TITLE]}
png=${2:?usage: plot.sh SWEEP.csv OUT.png [TITLE]}
title=${3:-percore-bench: tail latency vs throughput (open loop)}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
servers=$(awk -F, 'NR>1 && $2>0 {print $1}' "$csv" | awk '!seen[$0]++')
[ -n "$servers" ] || { echo "plot.sh: no open-loop rows in $csv" >&2; exit 1; }
plots=()
i=0
while IFS= read -r s; do
    i=$((i + 1))
    f="$tmp/s$i.dat"
    awk -F, -v s="$s" 'NR>1 && $1==s && $2>0 {print $3, $6, $7}' "$csv" | sort -n > "$f"
    t=${s//\"/}
    plots+=("'$f' using 1:2 with linespoints lc $i lw 2 pt 7 dt 1 title '$t p99'")
    plots+=("'$f' using 1:3 with linespoints lc $i lw 2 pt 5 dt 2 title '$t p99.9'")
done <<< "$servers"
joined=$(IFS=,; echo "${plots[*]}")
gnuplot <<GP
set terminal pngcairo size 1000,640 noenhanced
set output '$png'
set title '$title'
set xlabel 'achieved throughput (requests/s)'
set ylabel 'latency (microseconds, log scale)'
set logscale y
set grid
set key top left
plot $joined
GP
echo "plot.sh: wrote $png"
