#!/usr/bin/env bash
# pgo.sh: regenerate cmd/tcpstate/default.pgo, the CPU profile `go build` uses for
# profile-guided optimisation of bin/tcpstate (Go's -pgo=auto picks it up from the main
# package's directory; about 5-8% faster on workload A, measured with scripts/bench.sh).
#
# The profile is taken by internal/benchgen/cmd/profile, which runs tcpstate's file path
# (capture -> tracker -> JSON lines) on the seeded bench workloads: A twice (the common case:
# many short connections), B (SYN flood) and C (bulk transfer), on one core. Workloads are
# taken from scripts/bench.sh's cache (BENCH_CACHE) when it has them, else generated into a
# temporary directory (about 2.6 GB) with the same generator and seed.
#
#   make pgo            (or ./scripts/pgo.sh)
#
# Re-run it after large changes to the hot path; a stale profile is harmless (Go ignores
# what no longer matches) but helps less.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
CACHE=${BENCH_CACHE:-/tmp/tcpstate-bench}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

$GO build -o "$tmp/benchgen" ./internal/benchgen/cmd/benchgen
$GO build -o "$tmp/profile" ./internal/benchgen/cmd/profile
i=0
for w in A A B C; do
	# The files scripts/bench.sh generated, when it has; else generated here (and removed).
	f=$(ls "$CACHE"/gen-*/"$w"-seed1-scale1.pcap 2>/dev/null | head -1 || true)
	if [ -z "$f" ]; then
		f=$tmp/$w.pcap
		if [ ! -s "$f" ]; then
			echo "pgo: generating workload $w into $f" >&2
			"$tmp/benchgen" -workload "$w" -seed 1 -o "$f"
		fi
	fi
	i=$((i + 1))
	GOMAXPROCS=1 "$tmp/profile" -cpuprofile "$tmp/cpu$i.out" "$f"
done
$GO tool pprof -proto "$tmp"/cpu*.out >cmd/tcpstate/default.pgo
echo "pgo: wrote cmd/tcpstate/default.pgo ($(wc -c <cmd/tcpstate/default.pgo) bytes)" >&2
