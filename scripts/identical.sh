#!/usr/bin/env bash
# identical.sh OLD NEW [FILE...]: do two tcpstate binaries write the same bytes? For a change
# that must keep outputs byte-identical (a refactor): every committed and shared capture (or the
# FILEs given), in -o json/events/zeek/table -v on 1 and 2 cores, -o json --at 1, each endpoint's
# own state names (--names auto, table and events), --problems, and the files --html and
# -w --annotate write. Prints the differing runs and a count; exits 1 if any differs.
#
#   git worktree add /tmp/old <rev> && (cd /tmp/old && go build -o /tmp/old.bin ./cmd/tcpstate)
#   go build -o bin/tcpstate ./cmd/tcpstate && ./scripts/identical.sh /tmp/old.bin bin/tcpstate
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
shift 2
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	files=(testdata/pcaps/kernel/*/capture.pcap testdata/pcaps/netstack/*/capture.pcap testdata/pcaps/public/*
		../shared/pcaps/public/*.pcap* ../shared/pcaps/zeek/*.pcap*)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# out BIN GOMAXPROCS FILE ARGS...: the hash of what BIN writes, its stdout and stderr and, for
# --html and -w, the file it wrote (FILE: in the arguments, written under $tmp).
out() {
	local bin=$1 p=$2 f=$3
	shift 3
	rm -f "$tmp/FILE"
	{ GOMAXPROCS=$p "$bin" -r "$f" "$@" 2>&1; [ -f "$tmp/FILE" ] && cat "$tmp/FILE"; } | sha256sum
}
n=0 differ=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue
	runs=()
	for o in json events zeek table; do
		for p in 1 2; do runs+=("$p -o $o -v"); done
	done
	runs+=("1 -o json --at 1" "1 -o table -v --names auto" "1 -o events --names auto" "1 -o table -v --problems"
		"1 -q --html $tmp/FILE" "1 -q -w $tmp/FILE --annotate")
	for r in "${runs[@]}"; do
		p=${r%% *} args=${r#* }
		n=$((n + 1))
		a=$(out "$old" "$p" "$f" $args)
		b=$(out "$new" "$p" "$f" $args)
		if [ "$a" != "$b" ]; then
			echo "DIFF GOMAXPROCS=$p $f $args"
			differ=$((differ + 1))
		fi
	done
done
echo "$n comparisons, $differ differ"
[ "$differ" -eq 0 ]
