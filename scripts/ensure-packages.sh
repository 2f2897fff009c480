#!/usr/bin/env bash
# ensure-packages.sh [--optional] PKG...: install the Debian packages that are missing.
# As root, missing packages come from apt (one `apt-get update` first). Not root: a required
# package that is missing is an error telling what to run; an --optional one is only mentioned
# (the tests that need it skip with a reason).
set -euo pipefail
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing missing packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
if [ $optional -eq 1 ]; then
  echo "note: not installed (tests needing them will skip): ${missing[*]}" >&2
  exit 0
fi
echo "error: missing packages: ${missing[*]}" >&2
echo "  install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
