#!/usr/bin/env bash
# bench.sh: how fast tcpstate reads captures, against its own ceiling (the read-only decode
# pass: capture.OpenFiles → Segments, no tracking) and against the peer tools, on the synthetic
# workloads of internal/benchgen:
#   A  100,000 short connections, ~2,000 open at a time, ~1.3 million packets
#   B  1,000,000 SYNs from distinct sources, never answered (SYN flood)
#   C  one bulk transfer, 2 million packets, with losses, SACK dup ACKs, retransmissions
#
# For each workload it times, one run after the other (wall seconds, CPU seconds user+system,
# and peak RSS, from GNU time):
#   tcpstate -r FILE -o json >/dev/null    with GOMAXPROCS=1 and GOMAXPROCS=2
#   readonly FILE                          (internal/benchgen/cmd/readonly)
#   tcptrace -n FILE, tshark -q -z conv,tcp -r FILE, tcpdump -nr FILE    (stdout to /dev/null)
# and prints a table, also written to bin/bench-results.txt. The ratio columns are tcpstate's
# packet rate divided by the tool's: above 1, tcpstate is faster; on the readonly row, the
# share of the decode-only ceiling that tcpstate reaches. Each run reads its file from the page
# cache (it is read once just before), so the numbers are processing speed, not disk speed.
#
# Settings (environment):
#   BENCH_WORKLOADS  workloads to run, e.g. "A" or "A C" (default: A B C)
#   BENCH_TOOLS      subset of: tcpstate-p1 tcpstate-p2 readonly tcptrace tshark tcpdump
#   BENCH_SCALE      size factor for every workload (default 1: the full workloads)
#   BENCH_SEED       generator seed (default 1)
#   BENCH_TIMEOUT    seconds allowed per run before it is reported as "timeout" (default 300)
#   BENCH_RUNS       runs per measurement, the fastest is kept (default 3)
#   BENCH_CACHE      where generated workloads are kept (default /tmp/tcpstate-bench); they are
#                    regenerated only when missing or when the generator's source changed
#
# Run it as `make bench` (builds bin/tcpstate and installs the peers first) or directly:
#   BENCH_WORKLOADS=A BENCH_TOOLS="tcpstate-p1 readonly" ./scripts/bench.sh
# The full run takes about 7 minutes on 2 cores, needs ~2.6 GB in BENCH_CACHE and ~9 GB
# of RAM (tcptrace on B). Wall times are only comparable between runs on an otherwise idle
# machine: the load average is recorded, and the cpu column is less sensitive to it.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
WORKLOADS=${BENCH_WORKLOADS:-A B C}
WORKLOADS=${WORKLOADS//,/ }
TOOLS=${BENCH_TOOLS:-tcpstate-p1 tcpstate-p2 readonly tcptrace tshark tcpdump}
TOOLS=${TOOLS//,/ }
SCALE=${BENCH_SCALE:-1}
SEED=${BENCH_SEED:-1}
TIMEOUT=${BENCH_TIMEOUT:-300}
RUNS=${BENCH_RUNS:-3}
CACHE=${BENCH_CACHE:-/tmp/tcpstate-bench}
RESULTS=bin/bench-results.txt

die() { echo "bench: $*" >&2; exit 2; }

[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is missing: install it with 'sudo apt-get install time' (make peer-deps does)"
command -v timeout >/dev/null || die "timeout (coreutils) is missing"
for w in $WORKLOADS; do
	case $w in A | B | C) ;; *) die "unknown workload '$w' in BENCH_WORKLOADS: use A, B, C" ;; esac
done
for t in $TOOLS; do
	case $t in tcpstate-p1 | tcpstate-p2 | readonly | tcptrace | tshark | tcpdump) ;;
	*) die "unknown tool '$t' in BENCH_TOOLS: use tcpstate-p1 tcpstate-p2 readonly tcptrace tshark tcpdump" ;;
	esac
done

mkdir -p bin
echo "bench: building bin/tcpstate, bin/benchgen, bin/readonly" >&2
$GO build -o bin/tcpstate ./cmd/tcpstate
$GO build -o bin/benchgen ./internal/benchgen/cmd/benchgen
$GO build -o bin/readonly ./internal/benchgen/cmd/readonly

# Generated files live under a directory named after the generator's source, so a changed
# generator never serves stale files; directories of older generators are removed.
gen_hash=$(cat internal/benchgen/*.go internal/benchgen/cmd/benchgen/*.go | sha256sum | cut -c1-12)
gen_dir=$CACHE/gen-$gen_hash
mkdir -p "$gen_dir"
for old in "$CACHE"/gen-*; do
	[ "$old" = "$gen_dir" ] || rm -rf "$old"
done

declare -A PACKETS FILE
for w in $WORKLOADS; do
	f=$gen_dir/$w-seed$SEED-scale$SCALE.pcap
	if [ ! -s "$f" ] || [ ! -s "$f.packets" ]; then
		echo "bench: generating workload $w (seed $SEED, scale $SCALE) into $f" >&2
		line=$(bin/benchgen -workload "$w" -seed "$SEED" -scale "$SCALE" -o "$f")
		echo "bench:   $line" >&2
		awk '{for (i = 1; i < NF; i++) if ($(i+1) == "packets,") print $i}' <<<"$line" >"$f.packets"
	fi
	FILE[$w]=$f
	PACKETS[$w]=$(cat "$f.packets")
done

# measure TOOL WORKLOAD: prints "seconds rssKB cpuSeconds" of the fastest of RUNS runs, or "timeout",
# "missing" or "failed(rc)".
measure() {
	local tool=$1 w=$2 f=${FILE[$2]} best="" rss="" cpu="" tfile errf rc
	local -a cmd env=()
	case $tool in
	tcpstate-p1) cmd=(bin/tcpstate -r "$f" -o json) env=(GOMAXPROCS=1) ;;
	tcpstate-p2) cmd=(bin/tcpstate -r "$f" -o json) env=(GOMAXPROCS=2) ;;
	readonly) cmd=(bin/readonly "$f") ;;
	tcptrace) cmd=(tcptrace -n "$f") ;;
	tshark) cmd=(tshark -q -z conv,tcp -r "$f") ;;
	tcpdump) cmd=(tcpdump -nr "$f") ;;
	esac
	if ! command -v "${cmd[0]}" >/dev/null; then
		echo missing
		return
	fi
	tfile=$(mktemp) errf=$(mktemp)
	for ((i = 0; i < RUNS; i++)); do
		# From the page cache, every time: a big run of a previous tool may have evicted it.
		cat "$f" >/dev/null
		rc=0
		env "${env[@]}" /usr/bin/time -f '%e %M %U %S' -o "$tfile" \
			timeout -k 5 "$TIMEOUT" "${cmd[@]}" >/dev/null 2>"$errf" || rc=$?
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo timeout
			rm -f "$tfile" "$errf"
			return
		elif [ $rc -ne 0 ]; then
			echo "bench: $tool on $w failed (exit $rc): $(tail -3 "$errf")" >&2
			echo "failed($rc)"
			rm -f "$tfile" "$errf"
			return
		fi
		read -r secs kb usr sys < <(tail -1 "$tfile")
		if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$secs rss=$kb cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
		fi
	done
	rm -f "$tfile" "$errf"
	echo "$best $rss $cpu"
}

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
for w in $WORKLOADS; do
	for t in $TOOLS; do
		echo "bench: workload $w: $t ..." >&2
		r=$(measure "$t" "$w")
		echo "$t $w ${PACKETS[$w]} $r" >>"$raw"
		echo "bench:   $r" >&2
	done
done
elapsed=$(($(date +%s) - start))

version() { "$@" 2>&1 | grep -v -m1 '^Running as' || true; }
{
	echo "tcpstate benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ) — $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$($GO version); $(version tcptrace -v | sed 's/.*tcptrace -- version \([^ ]*\).*/tcptrace \1/'); $(version tshark --version); $(version tcpdump --version)"
	for w in $WORKLOADS; do
		echo "workload $w: ${FILE[$w]} ($(($(stat -c %s "${FILE[$w]}") / 1000000)) MB, ${PACKETS[$w]} packets)"
	done
	echo "per-run timeout ${TIMEOUT}s, fastest of $RUNS run(s), total ${elapsed}s"
	echo
	awk '
	function rate(t, w) { return (t SUBSEP w in secs) && secs[t, w] > 0 ? pk[w] / secs[t, w] : 0 }
	{
		tool[NR] = $1; wl[NR] = $2; pk[$2] = $3
		if ($4 ~ /^[0-9.]+$/) { secs[$1, $2] = $4; rss[$1, $2] = $5; cpu[$1, $2] = $6 } else { status[$1, $2] = $4 }
	}
	END {
		names["tcpstate-p1"] = "tcpstate GOMAXPROCS=1"; names["tcpstate-p2"] = "tcpstate GOMAXPROCS=2"
		names["readonly"] = "read-only pass"; names["tcptrace"] = "tcptrace -n"
		names["tshark"] = "tshark -z conv,tcp"; names["tcpdump"] = "tcpdump -nr"
		fmt = "%-22s %-3s %9s %9s %8s %11s %8s %9s %9s\n"
		printf fmt, "tool", "wl", "packets", "seconds", "cpu s", "packets/s", "RSS MB", "P1 ratio", "P2 ratio"
		for (i = 1; i <= NR; i++) {
			t = tool[i]; w = wl[i]
			if (w != lastw && i > 1) printf "\n"
			lastw = w
			if ((t SUBSEP w) in status) {
				printf fmt, names[t], w, pk[w], status[t, w], "-", "-", "-", "-", "-"
				continue
			}
			r = rate(t, w); r1 = rate("tcpstate-p1", w); r2 = rate("tcpstate-p2", w)
			printf fmt, names[t], w, pk[w], sprintf("%.2f", secs[t, w]), cpu[t, w], sprintf("%.0f", r),
				sprintf("%.0f", rss[t, w] / 1024),
				(r1 > 0 ? sprintf("%.2f", r1 / r) : "-"), (r2 > 0 ? sprintf("%.2f", r2 / r) : "-")
		}
	}' "$raw"
	echo
	echo "seconds: wall clock; cpu s: user+system. P1/P2 ratio: tcpstate's packets/s (GOMAXPROCS=1 / =2)"
	echo "divided by the row's, on wall time; >1 means tcpstate is faster. On the read-only row it is the"
	echo "share of the decode-only ceiling that tcpstate reaches."
} | tee "$RESULTS"
echo "bench: results written to $RESULTS" >&2
