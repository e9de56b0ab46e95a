#!/usr/bin/env bash
# System calls per request of one bench client against the echo worker (strace -f -c), as
# BENCHMARKS.md quotes them ("Findings of this stage").
#
#   bench/syscalls.sh CLIENT [ARGS...]      e.g. bench/syscalls.sh target/bench/c-client pool=driven
#
# Environment: SIZE=100B|1MiB (payload, default 100B), INFLIGHT (default 16), N (requests, default
# 20000). Needs a release build (`cargo build --release --workspace`) and the bench clients
# (target/bench/, made by scripts/bench.sh); LD_LIBRARY_PATH=target/release for the C client.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-20000}
exec 3< <(target/release/jina-net-test-server echo=syscalls)
while read -r line <&3; do case "$line" in SERVER*) addr=${line##* };; READY) break;; esac; done
out=$(mktemp)
strace -f -c -o "$out" "$@" mode=send addrs="$addr" polling=any payload="target/bench/payload-${SIZE:-100B}.bin" \
  inflight="${INFLIGHT:-16}" warmup_ms=0 duration_ms=600000 max_requests="$n" >/dev/null
pkill -f "jina-net-test-server echo=syscalls" || true
echo "== $* (${SIZE:-100B}, ${INFLIGHT:-16} in flight): system calls per request over $n requests"
awk -v n="$n" 'NR>2 && $4 ~ /^[0-9]+$/ {printf "  %-14s %.2f\n", $NF, $4/n} NR>2 && $3 ~ /^[0-9]+$/ && $4 !~ /^[0-9]+$/ {printf "  %-14s %.2f\n", $NF, $3/n}' "$out" | sort -k2 -rn | head -8
rm -f "$out"
