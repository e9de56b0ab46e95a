#!/usr/bin/env bash
# The ABI check: the C ABI of the library as built now, against the baseline committed for its soname.
#
#   scripts/abi-check.sh            check (part of scripts/test.sh)
#   scripts/abi-check.sh --bless    record the ABI of the library as built now as the baseline
#
# The library is built with full debug info (cargo profile `abi`), linked as it is installed (the
# soname of scripts/soname.sh, only jina_net_* exported), and described with libabigail's abidw
# (Debian package abigail-tools) into target/abi/current.abi. The baseline is abi/<soname>.abi. Then:
#   - no baseline for the soname: fails (the soname changed without a baseline: bless one);
#   - the same ABI: passes;
#   - an incompatible change (a function removed or changed, a struct changed other than by fields
#     appended to the structs that carry their size): fails; an ABI break needs a new version and
#     soname (Cargo.toml: before 1.0 the minor version, see scripts/soname.sh) and a new baseline;
#     --bless refuses to record a break under the old soname;
#   - a compatible change (functions added, fields appended to the sized structs, abi/growth.abignore):
#     fails until blessed, so that the baseline always describes the current ABI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bless=false
case "${1:-}" in
  --bless) bless=true ;;
  "") ;;
  *) echo "usage: scripts/abi-check.sh [--bless]" >&2; exit 2 ;;
esac
command -v abidw >/dev/null 2>&1 || { echo "abi-check: abidw is missing (Debian: abigail-tools; scripts/install-deps.sh installs it)" >&2; exit 1; }

{ read -r version; read -r soname; } < <(scripts/soname.sh)
out=target/abi
mkdir -p "$out"
echo "== cargo build --profile abi --lib (libjina_net $version with full debug info)"
cargo build --locked --profile abi --lib
lib="$out/$soname"
scripts/link-shared.sh target/abi/libjina_net.a "$lib" "$soname"
abidw --no-show-locs --no-comp-dir-path --no-corpus-path --suppressions abi/jina_net.abignore "$lib" >"$out/current.abi"
baseline="abi/$soname.abi"
echo "== ABI of $soname ($version) against $baseline"

diff_with() { # $1 = extra suppressions (or ""); prints the report, returns abidiff's status
  local s=(--suppressions abi/jina_net.abignore)
  [ -n "$1" ] && s+=(--suppressions "$1")
  abidiff --no-show-locs "${s[@]}" "$baseline" "$out/current.abi" >"$out/report.txt" 2>&1 && return 0 || return $?
}

if [ ! -f "$baseline" ]; then
  others="$(ls abi/*.abi 2>/dev/null | tr '\n' ' ' || true)"
  if $bless; then
    git rm -q --ignore-unmatch abi/*.abi 2>/dev/null || rm -f abi/*.abi
    cp "$out/current.abi" "$baseline"
    echo "   blessed: $baseline (a new soname; removed: ${others:-nothing})"
    exit 0
  fi
  echo "abi-check: FAILED: no baseline for $soname (baselines here: ${others:-none})." >&2
  echo "  The version in Cargo.toml gives the soname $soname. If this is a deliberate ABI break, review it and" >&2
  echo "  run scripts/abi-check.sh --bless to record the new baseline (it replaces the old one)." >&2
  exit 1
fi

status=0
diff_with "" || status=$?
if [ "$status" -eq 0 ]; then
  echo "   the same ABI as the baseline"
  exit 0
fi
if [ $((status & 3)) -ne 0 ]; then
  cat "$out/report.txt" >&2
  echo "abi-check: FAILED: abidiff could not compare (status $status)" >&2
  exit 1
fi
# Something changed: is it only growth (abi/growth.abignore) and additions?
grow=0
diff_with abi/growth.abignore || grow=$?
# Incompatible: abidiff says so, or (with growth allowed) a function or variable was removed or changed.
incompatible=false
if [ $((grow & 8)) -ne 0 ]; then
  incompatible=true
elif [ $((grow & 4)) -ne 0 ]; then
  removed_or_changed="$(sed -nE 's/^(Functions|Variables) changes summary: ([0-9]+) Removed, ([0-9]+) Changed.*/\2 \3/p' "$out/report.txt" |
    awk '{ n += $1 + $2 } END { print n + 0 }')"
  [ "$removed_or_changed" -eq 0 ] || incompatible=true
fi
cat "$out/report.txt"
if $incompatible; then
  echo "abi-check: FAILED: an incompatible change of the ABI of $soname." >&2
  echo "  A binary built against $version's header would break. Either undo it, or make it a new ABI:" >&2
  echo "  bump the version in Cargo.toml (before 1.0 the minor version; the soname follows, scripts/soname.sh)," >&2
  echo "  then run scripts/abi-check.sh --bless." >&2
  exit 1
fi
if $bless; then
  cp "$out/current.abi" "$baseline"
  echo "   blessed: $baseline (a compatible change)"
  exit 0
fi
echo "abi-check: FAILED: the ABI grew compatibly (functions added, fields appended to sized structs)." >&2
echo "  Review it and run scripts/abi-check.sh --bless so that the baseline describes it." >&2
exit 1
