#!/usr/bin/env bash
# fuzz.sh: run every fuzz target in the module, one after the other, for a while each.
#
#   ./scripts/fuzz.sh [DURATION] [REGEX]
#
# DURATION is per target, as go test -fuzztime takes it (default 60s; "1000x" counts runs).
# REGEX, if given, keeps only the targets whose name matches it (grep -E), e.g. 'Classify|Tracker'.
# Targets are found with `go test -list '^Fuzz'`, so a new Fuzz function is picked up without
# editing this script. Each target starts from its committed seed corpus (testdata/fuzz/<Name>
# and its f.Add seeds) plus whatever earlier runs left in Go's fuzz cache.
#
# A crash stops that target; go test writes the input that caused it to the package's
# testdata/fuzz/<Name>/ directory. Commit it once fixed: `go test` (and `make test`) run every
# file there as a regression test. The remaining targets still run; the script exits 1 if any
# target failed, after a summary of each target's time and result.
#
# `make fuzz` runs it with 60s per target. Settings (environment): GO (default go),
# FUZZ_PARALLEL (go test -parallel: fuzzing workers, default GOMAXPROCS).
set -uo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DURATION=${1:-60s}
FILTER=${2:-}
PARALLEL=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
	PARALLEL=(-parallel "$FUZZ_PARALLEL")
fi

# go test -list prints a package's matching names, then "ok <package> <time>" for it.
if ! listing=$("$GO" test -list '^Fuzz' ./... 2>&1); then
	echo "fuzz.sh: listing the fuzz targets failed:" >&2
	echo "$listing" >&2
	exit 2
fi
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{print $2}' <<<"$line")
		for n in "${names[@]}"; do
			if [[ -z "$FILTER" ]] || grep -qE -- "$FILTER" <<<"$n"; then
				targets+=("$pkg $n")
			fi
		done
		names=()
		;;
	esac
done <<<"$listing"

if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets found${FILTER:+ matching '$FILTER'}" >&2
	exit 2
fi
echo "fuzz.sh: ${#targets[@]} target(s), $DURATION each"

failed=0
summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	dir=${pkg#github.com/tcpstate/tcpstate/}
	echo "== $dir $name"
	start=$(date +%s)
	"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$DURATION" "${PARALLEL[@]}" "./$dir" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	# The last progress line has the exec count: "fuzz: elapsed: 1m0s, execs: 123 (..."
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	if [[ $rc -eq 0 ]]; then
		result="ok"
		tail -n 2 "$log" | sed 's/^/   /'
	else
		result="FAIL"
		failed=1
		sed 's/^/   /' "$log" | tail -n 40
		if crasher=$(grep -oE 'testdata/fuzz/[^ ]+' "$log" | tail -1) && [[ -n "$crasher" ]]; then
			result="FAIL (input: $dir/$crasher)"
		fi
	fi
	line=$(printf '%-12s %-24s %5ss  %10s execs  %s' "$dir" "$name" "$secs" "${execs:-?}" "$result")
	echo "$line"
	summary+=("$line")
done

echo
echo "fuzz.sh summary ($DURATION per target):"
printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
	echo "fuzz.sh: a target failed; its input is in the package's testdata/fuzz (reproduce with go test -run '<Name>/<file>' ./<package>)" >&2
	exit 1
fi
