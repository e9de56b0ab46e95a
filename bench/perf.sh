#!/usr/bin/env bash
# perf's view of one bench client against the echo worker, as BENCHMARKS.md's findings quote it (this
# VM has no hardware counters: software events and cpu-clock samples only).
#
#   bench/perf.sh stat INFLIGHT CLIENT [ARGS...]          task clock, context switches, user and
#                                                         system time over 2 s (after 300 ms warm-up)
#   bench/perf.sh record OUT INFLIGHT CLIENT [ARGS...]    cpu-clock samples at 20 kHz into OUT
#                                                         (`perf report -i OUT --sort dso,sym -n`);
#                                                         PERF_G=1 records call graphs too (-g)
#   bench/perf.sh gaps INFLIGHT CLIENT [ARGS...]          the client's system calls (1 s): median
#                                                         time in user space between one call's
#                                                         return and the next call, per pair (e.g.
#                                                         recvfrom -> writev: from reading an answer
#                                                         to writing the next request), and inside
#                                                         each call (tracepoints slow both a little;
#                                                         the events of all threads in one order:
#                                                         meant for one-thread clients, as the
#                                                         caller-driven pool and the floor)
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
  gaps) gaps=$(mktemp); duration=1000
    perf_args=(record -q -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -o "$gaps") ;;
  *) echo "usage: bench/perf.sh stat|record|gaps ..." >&2; exit 2 ;;
esac
inflight=$1; shift
exec 3< <(target/release/jina-net-test-server echo=perf)
while read -r line <&3; do case "$line" in SERVER*) addr=${line##* };; READY) break;; esac; done
perf "${perf_args[@]}" "$@" mode=send addrs="$addr" polling=any payload=target/bench/payload-100B.bin \
  inflight="$inflight" warmup_ms=300 duration_ms="${duration:-2000}" max_requests=100000000 2>&1 |
  grep -E "RESULT|task-clock|context|migr|faults|user|system" || true
pkill -f "jina-net-test-server echo=perf" || true
[ -z "${gaps:-}" ] && exit 0
perf script -i "$gaps" -F tid,time,trace 2>/dev/null | python3 -c '
import re, sys, statistics as st, collections
names = {0: "read", 1: "write", 3: "close", 20: "writev", 44: "sendto", 45: "recvfrom", 46: "sendmsg",
         47: "recvmsg", 202: "futex", 232: "epoll_wait", 233: "epoll_ctl"}
ev = []
for line in sys.stdin:
    m = re.search(r"(\d+)\s+([\d.]+):\s+NR (\d+)( = |\s*\()", line)
    if m:
        ev.append((float(m.group(2)) * 1e6, m.group(4).strip() == "=", names.get(int(m.group(3)), m.group(3))))
ev = ev[len(ev) // 4: 3 * len(ev) // 4]  # the middle half: no start-up, no shutdown
gap, inside = collections.defaultdict(list), collections.defaultdict(list)
for (t0, exit0, n0), (t1, exit1, n1) in zip(ev, ev[1:]):
    (gap[(n0, n1)] if exit0 and not exit1 else inside[n0] if not exit0 and exit1 and n0 == n1 else [])\
        .append(t1 - t0)
print("user space between calls (median us, count):")
for (a, b), v in sorted(gap.items(), key=lambda kv: -len(kv[1]))[:8]:
    print(f"  {a:>10} -> {b:<10} {st.median(v):6.1f} {len(v):7d}")
print("inside the call (median us, count):")
for a, v in sorted(inside.items(), key=lambda kv: -len(kv[1]))[:6]:
    print(f"  {a:>10} {st.median(v):6.1f} {len(v):7d}")
'
rm -f "$gaps"
