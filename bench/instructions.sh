#!/usr/bin/env bash
# User-space instructions per request of one bench client against the echo worker (callgrind), as
# BENCHMARKS.md quotes them: the client sends 1000 and then 3000 requests (100 B, no warm-up) and the
# difference of the two counts is divided by 2000, so start-up and connection set-up cancel out.
#
#   bench/instructions.sh CLIENT [ARGS...]    e.g. bench/instructions.sh target/bench/c-client pool=driven
#
# Environment: INFLIGHT (default 1); KEEP=DIR keeps the two callgrind files there (cg.1000, cg.3000:
# `bench/cg_by_crate.py DIR [DIR2]` splits the count by crate). Needs a release build (`cargo build --release --workspace`), the
# bench clients (target/bench/, made by scripts/bench.sh) and valgrind; LD_LIBRARY_PATH=target/release
# (or another build's directory) for the C client. Counts repeat to within a few hundred instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3< <(target/release/jina-net-test-server echo=instructions)
while read -r line <&3; do case "$line" in SERVER*) addr=${line##* };; READY) break;; esac; done
out=$(mktemp -d)
for n in 1000 3000; do
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" "$@" mode=send addrs="$addr" polling=any \
    payload=target/bench/payload-100B.bin inflight="${INFLIGHT:-1}" warmup_ms=0 duration_ms=600000 \
    max_requests="$n" >/dev/null 2>"$out/err.$n"
done
pkill -f "jina-net-test-server echo=instructions" || true
total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
echo "== $* (100B, ${INFLIGHT:-1} in flight): $(( ($(total "$out/cg.3000") - $(total "$out/cg.1000")) / 2000 )) instructions per request"
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$out"/cg.1000 "$out"/cg.3000 "$KEEP"/; fi
rm -rf "$out"
