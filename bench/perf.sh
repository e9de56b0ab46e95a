#!/usr/bin/env bash
# perf's view of one bench client against the echo worker, as BENCHMARKS.md's findings quote it (this
# VM has no hardware counters: software events and cpu-clock samples only).
#
#   bench/perf.sh stat INFLIGHT CLIENT [ARGS...]          task clock, context switches, user and
#                                                         system time over 2 s (after 300 ms warm-up)
#   bench/perf.sh record OUT INFLIGHT CLIENT [ARGS...]    cpu-clock samples at 20 kHz into OUT
#                                                         (`perf report -i OUT --sort dso,sym -n`)
#   e.g. LD_LIBRARY_PATH=target/release bench/perf.sh stat 1 target/bench/c-client pool=driven
#        bench/perf.sh stat 1 target/release/jina-net-floor client kind=tonic tracing=none threads=1
#
# Needs a release build (`cargo build --release --workspace`), the bench clients (target/bench/, made
# by scripts/bench.sh) and perf (Debian's linux-perf). 100 B payload; the client's RESULT line gives
# the request count to divide by.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=$1; shift
case "$mode" in
  stat) perf_args=(stat -e task-clock,context-switches,cpu-migrations,page-faults,user_time,system_time) ;;
  record) perf_args=(record -q ${PERF_G:+-g} -e cpu-clock -F 20000 -o "$1"); shift ;;
  *) echo "usage: bench/perf.sh stat|record ..." >&2; exit 2 ;;
esac
inflight=$1; shift
exec 3< <(target/release/jina-net-test-server echo=perf)
while read -r line <&3; do case "$line" in SERVER*) addr=${line##* };; READY) break;; esac; done
perf "${perf_args[@]}" "$@" mode=send addrs="$addr" polling=any payload=target/bench/payload-100B.bin \
  inflight="$inflight" warmup_ms=300 duration_ms=2000 max_requests=100000000 2>&1 |
  grep -E "RESULT|task-clock|context|migr|faults|user|system" || true
pkill -f "jina-net-test-server echo=perf" || true
