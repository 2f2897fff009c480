#!/usr/bin/env bash
# identical.sh OLD NEW [FILE...]: do two tcpstate binaries write the same bytes? For a change
# that must keep outputs byte-identical (a refactor): every committed and shared capture (or the
# FILEs given), in -o json/events/zeek/table -v on 1 and 2 cores, and -o json --at 1. Prints
# the differing runs and a count; exits 1 if any differs.
#
#   git worktree add /tmp/old <rev> && (cd /tmp/old && go build -o /tmp/old.bin ./cmd/tcpstate)
#   go build -o bin/tcpstate ./cmd/tcpstate && ./scripts/identical.sh /tmp/old.bin bin/tcpstate
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
shift 2
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	files=(testdata/pcaps/kernel/*/capture.pcap testdata/pcaps/public/* ../shared/pcaps/public/*.pcap* ../shared/pcaps/zeek/*.pcap*)
fi
n=0 differ=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	runs=()
	for o in json events zeek table; do
		for p in 1 2; do runs+=("$p -o $o -v"); done
	done
	runs+=("1 -o json --at 1")
	for r in "${runs[@]}"; do
		p=${r%% *} args=${r#* }
		n=$((n + 1))
		a=$(GOMAXPROCS=$p "$old" -r "$f" $args 2>&1 | sha256sum)
		b=$(GOMAXPROCS=$p "$new" -r "$f" $args 2>&1 | sha256sum)
		if [ "$a" != "$b" ]; then
			echo "DIFF GOMAXPROCS=$p $f $args"
			differ=$((differ + 1))
		fi
	done
done
echo "$n comparisons, $differ differ"
[ "$differ" -eq 0 ]
