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
#   BENCH_BASE       a git revision (or a tcpstate binary) to time in the same run, as rows
#                    "base GOMAXPROCS=1/2": before/after ratios that no other load can skew,
#                    e.g. BENCH_BASE=8d6f323 (the revision is built once into BENCH_CACHE)
#
# Live capture (root, tcpreplay): workload A is replayed onto a veth between two network
# namespaces of its own with `tcpreplay`, at full speed (--topspeed) and then at falling fixed
# rates, while one capturer listens on the other end; for each capture path it reports the
# highest rate held without a kernel drop (nothing lost in the capture buffer or ring):
#   tcpstate -i --libpcap, tcpstate -i --workers 1 and --workers 2 (AF_PACKET), and
#   tcpdump -i -B 32768 -w /dev/null (the same 32 MiB buffer as tcpstate's) as the peer.
#   BENCH_LIVE       0 to skip it (default: run it when root and tcpreplay is installed);
#                    BENCH_FILES=0 runs only the live part
#   BENCH_LIVE_LIMIT packets each sender replays per rate (default 300000; 0: all of A, 1.28 million)
#   BENCH_LIVE_SENDERS tcpreplay processes sending at once (default 1; on a 2-core VM one
#                    tcpreplay tops out near 100-190k packets/s, a second one only takes CPU
#                    from the first); the rates below are their sum
#   BENCH_LIVE_RATES fixed rates tried after --topspeed, packets/s, falling (default
#                    "300000 200000 150000 100000 50000")
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
BASE=${BENCH_BASE:-}
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
	case $t in tcpstate-p1 | tcpstate-p2 | base-p1 | base-p2 | readonly | tcptrace | tshark | tcpdump) ;;
	*) die "unknown tool '$t' in BENCH_TOOLS: use tcpstate-p1 tcpstate-p2 readonly tcptrace tshark tcpdump" ;;
	esac
done

mkdir -p bin
echo "bench: building bin/tcpstate, bin/benchgen, bin/readonly" >&2
$GO build -o bin/tcpstate ./cmd/tcpstate
$GO build -o bin/benchgen ./internal/benchgen/cmd/benchgen
$GO build -o bin/readonly ./internal/benchgen/cmd/readonly

# The baseline: a binary, or a revision built once (in a worktree of its own) into the cache.
BASE_BIN=""
if [ -n "$BASE" ]; then
	if [ -x "$BASE" ] && [ -f "$BASE" ]; then
		BASE_BIN=$BASE
	else
		rev=$(git rev-parse --verify "$BASE^{commit}" 2>/dev/null) || die "BENCH_BASE=$BASE is neither a binary nor a git revision"
		BASE_BIN=$CACHE/base-${rev:0:12}/tcpstate
		if [ ! -x "$BASE_BIN" ]; then
			echo "bench: building the baseline $BASE (${rev:0:12}) into $BASE_BIN" >&2
			wt=$(mktemp -d)
			git worktree add --detach "$wt" "$rev" >/dev/null 2>&1 || die "cannot check out $BASE"
			mkdir -p "$(dirname "$BASE_BIN")"
			(cd "$wt" && $GO build -o "$BASE_BIN" ./cmd/tcpstate) || { git worktree remove --force "$wt"; die "cannot build $BASE"; }
			git worktree remove --force "$wt"
		fi
	fi
	# Each tcpstate row gets its base row right after it (unless base rows were asked for).
	case " $TOOLS " in
	*" base-p"*) ;;
	*)
		with=""
		for t in $TOOLS; do
			with+=" $t"
			case $t in tcpstate-p1) with+=" base-p1" ;; tcpstate-p2) with+=" base-p2" ;; esac
		done
		TOOLS=${with# }
		;;
	esac
fi

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
	base-p1) cmd=("$BASE_BIN" -r "$f" -o json) env=(GOMAXPROCS=1) ;;
	base-p2) cmd=("$BASE_BIN" -r "$f" -o json) env=(GOMAXPROCS=2) ;;
	readonly) cmd=(bin/readonly "$f") ;;
	tcptrace) cmd=(tcptrace -n "$f") ;;
	tshark) cmd=(tshark -q -z conv,tcp -r "$f") ;;
	tcpdump) cmd=(tcpdump -nr "$f") ;;
	esac
	if [ -z "${cmd[0]}" ] || ! command -v "${cmd[0]}" >/dev/null; then
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
if [ "${BENCH_FILES:-1}" = 0 ]; then WORKLOADS=""; fi
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

# ---- live capture: the highest rate each capture path holds without kernel drops ----
LIVE=${BENCH_LIVE:-1}
LIVE_LIMIT=${BENCH_LIVE_LIMIT:-300000}
LIVE_SENDERS=${BENCH_LIVE_SENDERS:-1}
LIVE_RATES=${BENCH_LIVE_RATES:-300000 200000 150000 100000 50000}
live_raw=$(mktemp)
trap 'rm -f "$raw" "$live_raw"' EXIT
if [ "$LIVE" != 0 ] && { [ "$(id -u)" -ne 0 ] || ! command -v tcpreplay >/dev/null || ! command -v ip >/dev/null; }; then
	echo "bench: live capture skipped: needs root, tcpreplay and ip (make peer-deps installs them)" >&2
	LIVE=0
fi
if [ "$LIVE" != 0 ]; then
	lf=$gen_dir/A-seed$SEED-scale$SCALE.pcap
	if [ ! -s "$lf" ]; then
		echo "bench: generating workload A for the live runs" >&2
		bin/benchgen -workload A -seed "$SEED" -scale "$SCALE" -o "$lf" >/dev/null
	fi
	ns=tsbench$$
	tx=${ns}tx rx=${ns}rx
	live_cleanup() { ip netns del "$tx" 2>/dev/null || true; ip netns del "$rx" 2>/dev/null || true; }
	trap 'live_cleanup; rm -f "$raw" "$live_raw"' EXIT
	ip netns add "$tx" && ip netns add "$rx"
	ip link add vtx netns "$tx" type veth peer name vrx netns "$rx"
	ip -n "$tx" link set vtx up && ip -n "$rx" link set vrx up
	ip -n "$tx" link set lo up && ip -n "$rx" link set lo up
	# live_run PATH RATE: LIVE_SENDERS tcpreplays send A (RATE: top, or packets/s in all);
	# prints "pps sent captured kdrops"
	live_run() {
		local path=$1 rate=$2 out err pid sent pps cap drops i cpu
		local -a args spids=()
		err=$(mktemp) out=$(mktemp)
		if [ "$rate" = top ]; then args=(--topspeed); else args=(--pps=$((rate / LIVE_SENDERS))); fi
		[ "$LIVE_LIMIT" != 0 ] && args+=(--limit="$LIVE_LIMIT")
		case $path in
		libpcap) ip netns exec "$rx" bin/tcpstate -i vrx --libpcap -o json >/dev/null 2>"$err" & pid=$! ;;
		afpacket-1) ip netns exec "$rx" bin/tcpstate -i vrx --workers 1 -o json >/dev/null 2>"$err" & pid=$! ;;
		afpacket-2) ip netns exec "$rx" bin/tcpstate -i vrx --workers 2 -o json >/dev/null 2>"$err" & pid=$! ;;
		tcpdump) ip netns exec "$rx" tcpdump -i vrx -n -B 32768 -w /dev/null 2>"$err" & pid=$! ;;
		esac
		for _ in $(seq 50); do grep -q "listening on" "$err" && break; sleep 0.1; done
		for ((i = 0; i < LIVE_SENDERS; i++)); do
			ip netns exec "$tx" tcpreplay -i vtx --preload-pcap "${args[@]}" "$lf" >"$out.$i" 2>&1 &
			spids+=($!)
		done
		for p in "${spids[@]}"; do wait "$p" || true; done
		cat "$out".* >"$out"
		rm -f "$out".*
		sleep 1
		# The capturer's CPU time (ip netns exec execs it: $pid is the capturer itself).
		cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$pid/stat" 2>/dev/null || echo "?")
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		sent=$(awk '/Actual:/ {n += $2} END {print n + 0}' "$out")
		pps=$(awk '/Rated:/ {for (i = 1; i <= NF; i++) if ($(i+1) ~ /^pps/) n += $i} END {printf "%d", n}' "$out")
		if [ "$path" = tcpdump ]; then
			cap=$(awk '/packets captured/ {print $1; exit}' "$err")
			drops=$(awk '/dropped by kernel/ {print $1; exit}' "$err")
		else
			cap=$(grep -o '[0-9]* packets captured' "$err" | awk '{print $1}')
			drops=$(grep -o '[0-9]* dropped by kernel' "$err" | awk '{print $1}')
		fi
		echo "${pps:-0} ${sent:-0} ${cap:-0} ${drops:-?} $cpu"
		rm -f "$err" "$out"
	}
	for path in libpcap afpacket-1 afpacket-2 tcpdump; do
		echo "bench: live $path: --topspeed, then $LIVE_RATES packets/s until no kernel drop ..." >&2
		held="-" first=""
		for rate in top $LIVE_RATES; do
			read -r pps sent cap drops cpu < <(live_run "$path" "$rate")
			echo "bench:   $path $rate: sent $sent at $pps pps, captured $cap, kernel drops $drops, capturer CPU ${cpu}s" >&2
			[ -z "$first" ] && first="$pps $sent $cap $drops $cpu"
			if [ "$drops" = 0 ]; then
				held="$pps $sent $cap $drops $rate"
				break
			fi
		done
		echo "$path $first | $held" >>"$live_raw"
	done
	live_cleanup
fi

version() { "$@" 2>&1 | grep -v -m1 '^Running as' || true; }
{
	echo "tcpstate benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ) — $(git describe --always --dirty 2>/dev/null || echo unknown)"
	echo "host: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM; load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$($GO version); $(version tcptrace -v | sed 's/.*tcptrace -- version \([^ ]*\).*/tcptrace \1/'); $(version tshark --version); $(version tcpdump --version)"
	for w in $WORKLOADS; do
		echo "workload $w: ${FILE[$w]} ($(($(stat -c %s "${FILE[$w]}") / 1000000)) MB, ${PACKETS[$w]} packets)"
	done
	echo "per-run timeout ${TIMEOUT}s, fastest of $RUNS run(s), total ${elapsed}s"
	[ -n "$WORKLOADS" ] && echo && awk '
	function rate(t, w) { return (t SUBSEP w in secs) && secs[t, w] > 0 ? pk[w] / secs[t, w] : 0 }
	{
		tool[NR] = $1; wl[NR] = $2; pk[$2] = $3
		if ($4 ~ /^[0-9.]+$/) { secs[$1, $2] = $4; rss[$1, $2] = $5; cpu[$1, $2] = $6 } else { status[$1, $2] = $4 }
	}
	END {
		names["tcpstate-p1"] = "tcpstate GOMAXPROCS=1"; names["tcpstate-p2"] = "tcpstate GOMAXPROCS=2"
		names["base-p1"] = "base GOMAXPROCS=1"; names["base-p2"] = "base GOMAXPROCS=2"
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
	}' "$raw" && cat <<-EOF

	seconds: wall clock; cpu s: user+system. P1/P2 ratio: tcpstate's packets/s (GOMAXPROCS=1 / =2)
	divided by the row's, on wall time; >1 means tcpstate is faster. On the read-only row it is the
	share of the decode-only ceiling that tcpstate reaches; on the base rows (BENCH_BASE: $BASE),
	the speed-up over that revision.
	EOF
	if [ -s "$live_raw" ]; then
		echo
		echo "live capture: workload A replayed by $LIVE_SENDERS tcpreplay --preload-pcap at once onto a veth between two namespaces (limit per sender: $LIVE_LIMIT, 0: all)"
		awk -F'|' '
		BEGIN {
			names["libpcap"] = "tcpstate --libpcap"; names["afpacket-1"] = "tcpstate --workers 1"
			names["afpacket-2"] = "tcpstate --workers 2"; names["tcpdump"] = "tcpdump -w /dev/null"
			fmt = "%-22s %13s %12s %15s %16s %14s\n"
			printf fmt, "capture path", "topspeed pps", "drops there", "CPU s/M pkts", "held (0 drops)", "captured/sent"
		}
		{
			split($1, a, " "); split($2, b, " ")
			held = "none"
			if (b[1] != "-" && b[1] != "") held = (b[5] == "top" ? ">= " : "") b[1]
			printf fmt, names[a[1]], a[2], a[5], (a[6] ~ /^[0-9.]+$/ && a[3] > 0 ? sprintf("%.2f", a[6] / a[3] * 1e6) : "?"), held,
				(b[1] == "-" || b[1] == "") ? "-" : b[3] "/" b[2]
		}' "$live_raw"
		echo "topspeed pps: what the tcpreplays reached at full speed (they share the cores with the capturer: a"
		echo "capturer that takes more CPU leaves them less); drops there: the kernel's drops at that rate; CPU s/M"
		echo "pkts: the capturer's CPU seconds per million packets sent at top speed; held: the highest rate tried"
		echo "without a kernel drop (\">=\": top speed itself, the senders are the limit); captured/sent: what the"
		echo "capturer counted (a few more: the veth's own IPv6 neighbour discovery)."
	fi
} | tee "$RESULTS"
echo "bench: results written to $RESULTS" >&2
