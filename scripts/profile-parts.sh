#!/usr/bin/env bash
# profile-parts.sh FILE [RUNS]: where one core's time goes on a capture, by part of tcpstate:
# read (capture: files to Segments), flow table (lookup, lifecycle), packing (dormant and closed
# connections to blobs and back), tracker (the TCP engine, reassembly, OS fingerprints), Zeek
# view, output (report), driver (run), and runtime (GC and scheduler work no part called).
# It runs internal/benchgen/cmd/profile (tcpstate -r FILE -o json, under the Go CPU profiler)
# RUNS times (default 3) with GOMAXPROCS=1, merges the profiles and charges each sample to the
# innermost tcpstate function on its stack (allocation and copying to the part that asked for
# it), except that anything under packing or unpacking is packing.
#
#   ./scripts/profile-parts.sh /tmp/tcpstate-bench/gen-*/A-seed1-scale1.pcap
#
# The machine has no hardware counters to count instructions with (a VM), so these are CPU
# samples (10 ms each): shares, stable to a percent or two over 3 runs; absolute times only on
# an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
f=${1:?usage: profile-parts.sh FILE [RUNS]}
runs=${2:-3}
GO=${GO:-go}
$GO build -o bin/profile ./internal/benchgen/cmd/profile
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$runs"); do
	GOMAXPROCS=1 bin/profile -cpuprofile "$tmp/cpu$i.out" "$f" 2>>"$tmp/log"
done
$GO tool pprof -proto "$tmp"/cpu*.out >"$tmp/all.pb" 2>/dev/null
tail -1 "$tmp/log"
$GO tool pprof -traces bin/profile "$tmp/all.pb" 2>/dev/null | awk '
function charge() {
	if (ms == "") return
	p = part
	if (packing) p = "packing"
	if (p == "") p = "runtime"
	t[p] += ms; total += ms
	ms = ""; part = ""; packing = 0
}
/^-----------/ { charge(); next }
/^ +[0-9.]+(ms|s) / {
	charge()
	v = $1; if (v ~ /ms$/) { sub(/ms$/, "", v); ms = v } else { sub(/s$/, "", v); ms = v * 1000 }
	fn = $2
}
/^ +[0-9.]+(ms|s) / || /^  +[^ 0-9-]/ {
	if (!/^ +[0-9.]+(ms|s) /) fn = $1
	if (fn ~ /flowtable\.\(\*codecState\)|flowtable\.\(\*Table\)\.unpack|flowtable\.\(\*stream\)\.(pack|wake)|\.Pack$|\.pack$/) packing = 1
	if (part == "" && fn ~ /^github\.com\/tcpstate\/tcpstate\//) {
		s = fn; sub(/^github\.com\/tcpstate\/tcpstate\//, "", s); sub(/\..*/, "", s)
		if (s == "internal/pack") next
		names["capture"] = "read"; names["flowtable"] = "flow table"; names["tracker"] = "tracker"
		names["reassembly"] = "tracker"; names["osfp"] = "tracker"; names["zeek"] = "Zeek view"
		names["report"] = "output"; names["run"] = "driver"
		part = (s in names) ? names[s] : s
	}
}
END {
	charge()
	n = split("read,flow table,packing,tracker,Zeek view,output,driver,runtime", order, ",")
	printf "%-12s %8s %7s\n", "part", "seconds", "share"
	for (i = 1; i <= n; i++) { p = order[i]; printf "%-12s %8.2f %6.1f%%\n", p, t[p] / 1000, 100 * t[p] / total; seen[p] = 1 }
	for (p in t) if (!(p in seen)) printf "%-12s %8.2f %6.1f%%\n", p, t[p] / 1000, 100 * t[p] / total
	printf "%-12s %8.2f\n", "total", total / 1000
}'
