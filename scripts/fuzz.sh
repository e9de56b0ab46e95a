#!/usr/bin/env bash
# Fuzzes address parsing, the C ABI send path and the parsing of responses (what a server may send:
# HTTP status, headers, DATA frames, trailers) for a bounded time (default 60 s per target):
#   scripts/fuzz.sh [SECONDS]
# Uses cargo-fuzz (installed from crates.io if missing) with libFuzzer and AddressSanitizer. The
# machine's stable toolchain is used with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz needs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in address ffi_send response; do
  echo "== fuzz $target for ${seconds}s"
  cargo fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done|.*ERROR)" || true
  if [ -d "fuzz/artifacts/$target" ] && [ -n "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ]; then
    echo "findings in fuzz/artifacts/$target"; exit 1
  fi
done
