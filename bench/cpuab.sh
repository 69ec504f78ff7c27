#!/usr/bin/env bash
# cpuab.sh: one Go benchmark in two test binaries (A = before, B = after), run alternately on a
# shared machine, compared by CPU time per op (steadier than wall time under load) and by
# Go's own ns/op. Prints each run and the medians and the B/A ratios.
#
#   go test -c -o /tmp/ab/a/pkg.test ./pkg   # at the old commit
#   go test -c -o /tmp/ab/b/pkg.test ./pkg   # at the new one
#   bench/cpuab.sh /tmp/ab/a/pkg.test /tmp/ab/b/pkg.test ./pkg '^BenchmarkX$' 1000000 7
#
# CPU per op = (CPU time of the run - CPU time of a run that benchmarks nothing) / iterations,
# CPU time from `perf stat -e task-clock` (ms resolution) where perf is installed, else from
# /usr/bin/time (10 ms resolution: use more iterations).
set -euo pipefail
a=$1 b=$2 dir=$3 bench=$4 n=$5 runs=${6:-7}
cd "$dir"
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.perf"' EXIT

# run CMD...: runs it, its output to stdout, its CPU seconds into $tmp.
if command -v perf >/dev/null; then
	run() { perf stat -x, -e task-clock -o "$tmp.perf" "$@"; awk -F, '/task-clock/ {print $1 / 1000}' "$tmp.perf" >"$tmp"; }
else
	run() { /usr/bin/time -f '%U %S' -o "$tmp.perf" "$@"; awk '{print $1 + $2}' "$tmp.perf" >"$tmp"; }
fi
cpu() { run "$@" >/dev/null; cat "$tmp"; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

declare -A cpus walls last
ratios=""
for ((r = 0; r < runs; r++)); do
	order="a b"
	((r % 2)) && order="b a" # ABBA: neither binary always runs second
	for v in $order; do
		bin=${!v}
		base=$(cpu "$bin" -test.run '^$' -test.bench '^$')
		out=$(run "$bin" -test.run '^$' -test.bench "$bench" -test.benchtime "${n}x" -test.benchmem)
		c=$(awk -v base="$base" -v n="$n" '{printf "%.1f", ($1 - base) * 1e9 / n}' "$tmp")
		w=$(echo "$out" | awk '/^Benchmark/ {print $3; exit}')
		allocs=$(echo "$out" | awk '/^Benchmark/ {for (i = 1; i <= NF; i++) if ($i == "allocs/op") print $(i-1); exit}')
		echo "run $r $v: cpu ${c} ns/op, wall ${w} ns/op, ${allocs} allocs/op"
		cpus[$v]+="$c "
		walls[$v]+="$w "
		last[$v]=$c
	done
	ratios+="$(awk -v a="${last[a]}" -v b="${last[b]}" 'BEGIN {print b / a}') "
done
ca=$(echo ${cpus[a]} | tr ' ' '\n' | median) cb=$(echo ${cpus[b]} | tr ' ' '\n' | median)
wa=$(echo ${walls[a]} | tr ' ' '\n' | median) wb=$(echo ${walls[b]} | tr ' ' '\n' | median)
pr=$(echo $ratios | tr ' ' '\n' | median)
awk -v ca="$ca" -v cb="$cb" -v wa="$wa" -v wb="$wb" -v pr="$pr" -v bench="$bench" -v runs="$runs" 'BEGIN {
	printf "%s (%d runs each): cpu ns/op median A %.1f B %.1f B/A %.2f (median of paired B/A %.2f); wall ns/op A %.1f B %.1f B/A %.2f\n", bench, runs, ca, cb, cb / ca, pr, wa, wb, wb / wa
}'
