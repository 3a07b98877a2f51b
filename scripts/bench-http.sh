#!/usr/bin/env bash
# bench-http.sh runs the HTTP load harness (careflow bench) against a fresh
# `careflow serve --demo` per run, and reports throughput, latency and the
# server's CPU per request. Given two binaries it alternates them, run by
# run, so both see the same machine: on a shared machine, runs minutes
# apart compare the neighbours, not the code (docs/performance.md).
#
#   scripts/bench-http.sh [-n RUNS] [-d DURATION] [-r READS] [-c CLIENTS] BIN [BIN2]
#
# Linux only (the server's CPU time is read from /proc). Each run uses a new
# temporary directory and port, and stops its server afterwards.
set -euo pipefail

runs=3 duration=20s reads=0 clients=32
while getopts "n:d:r:c:h" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	d) duration=$OPTARG ;;
	r) reads=$OPTARG ;;
	c) clients=$OPTARG ;;
	*) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
bins=()
for b in "$@"; do
	[ -x "$b" ] && [ -f "$b" ] || { echo "bench-http: $b is not an executable" >&2; exit 2; }
	bins+=("$(readlink -f "$b")") # each server runs in a directory of its own
done
[ -r /proc/self/stat ] || { echo "bench-http: needs /proc (Linux)" >&2; exit 2; }

ticks_per_s=$(getconf CLK_TCK)
work=$(mktemp -d)
server=""
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# cpu_ticks PID: user+system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# field LINE N: the Nth whitespace-separated field of a report line.
field() { awk -v n="$2" '{print $n}' <<<"$1"; }

results="$work/results"
printf '%-24s %4s %10s %9s %10s %9s %14s\n' binary run "cmd/s" "cmd p99" "reads/s" "read p99" "server us/req"
port=18400
# label I: how binary I is named in the report (its position and file name,
# so two builds both called careflow stay apart).
label() { echo "$(($1 + 1)):$(basename "${bins[$1]}")"; }

for run in $(seq 1 "$runs"); do
	for i in "${!bins[@]}"; do
		b=${bins[$i]}
		port=$((port + 1))
		dir="$work/run-$run-$port"
		mkdir -p "$dir"
		(cd "$dir" && CAREFLOW_ADMIN_USERNAME=bench-admin CAREFLOW_ADMIN_PASSWORD=bench-admin-password \
			exec "$b" serve --demo --addr "127.0.0.1:$port" >"$dir/serve.log" 2>&1) &
		server=$!
		ready=""
		for _ in $(seq 1 150); do
			if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready=1; break; fi
			kill -0 "$server" 2>/dev/null || break
			sleep 0.2
		done
		if [ -z "$ready" ]; then
			echo "bench-http: $b did not become ready; its log:" >&2
			tail -20 "$dir/serve.log" >&2
			exit 1
		fi
		before=$(cpu_ticks "$server")
		"$b" bench --url "http://127.0.0.1:$port" --clients "$clients" --duration "$duration" --reads "$reads" \
			>"$dir/bench.out" 2>&1 || { echo "bench-http: the harness failed:" >&2; tail -20 "$dir/bench.out" >&2; exit 1; }
		after=$(cpu_ticks "$server")
		kill "$server"; wait "$server" 2>/dev/null || true; server=""
		cmd=$(grep -E '^ *all commands ' "$dir/bench.out")
		rd=$(grep -E '^ *all reads ' "$dir/bench.out")
		requests=$(( $(field "$cmd" 4) + $(field "$rd" 4) ))
		us=$(( (after - before) * 1000000 / ticks_per_s / (requests > 0 ? requests : 1) ))
		row=$(printf '%-24s %4s %10s %9s %10s %9s %14s' "$(label "$i")" "$run" "$(field "$cmd" 6)" \
			"$(field "$cmd" 8)" "$(field "$rd" 6)" "$(field "$rd" 8)" "$us")
		echo "$row"
		echo "$row" >>"$results"
	done
done

# Medians per binary (the middle run; the lower middle of an even count).
echo
echo "medians:"
for i in "${!bins[@]}"; do
	name=$(label "$i")
	for col in 3 4 5 6 7; do
		awk -v n="$name" -v c="$col" '$1 == n {print $c}' "$results" | sort -n | awk '{v[NR]=$1} END {printf "%s ", v[int((NR+1)/2)]}'
	done | awk -v n="$name" '{printf "%-24s      %10s %9s %10s %9s %14s\n", n, $1, $2, $3, $4, $5}'
done
