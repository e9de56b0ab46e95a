#!/usr/bin/env bash
# Alternating runs (3 s, or DURATION_MS) of bench clients against a fresh echo worker each: req/s, client CPU per
# request and p50 latency, then the median per client, and for each client after the first the median
# of its per-round ratios to the first (paired rounds), as BENCHMARKS.md's by-hand A/B figures ("Findings").
#
#   bench/rate.sh ROUNDS LABEL=CLIENT [ARGS...] -- LABEL=CLIENT [ARGS...] -- ...
#   e.g. bench/rate.sh 4 c=target/bench/c-client -- cpp=target/bench/grpc-cpp-client
#
# Environment: SIZE=100B|1MiB (default 100B), INFLIGHT (default 16), DURATION_MS (default 3000),
# ROLE (the echo worker's role, default echo; e.g. slow:2, an answer after 2 ms); CLIENT may be
# `env VAR=x prog`.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1; shift
specs=(); cur=""
for a in "$@"; do if [ "$a" = "--" ]; then specs+=("$cur"); cur=""; else cur+="${cur:+ }$a"; fi; done
[ -n "$cur" ] && specs+=("$cur")
results=$(mktemp)
for _ in $(seq "$rounds"); do
  for spec in "${specs[@]}"; do
    label=${spec%%=*}; cmd=${spec#*=}
    exec 3< <(target/release/jina-net-test-server "${ROLE:-echo}=rate")
    while read -r line <&3; do case "$line" in SERVER*) addr=${line##* };; READY) break;; esac; done
    # shellcheck disable=SC2086
    r=$($cmd mode=send addrs="$addr" polling=any payload="target/bench/payload-${SIZE:-100B}.bin" inflight="${INFLIGHT:-16}" \
      warmup_ms=300 duration_ms=${DURATION_MS:-3000} max_requests=100000000 2>&1 | grep RESULT)
    pkill -f "jina-net-test-server ${ROLE:-echo}=rate" || true
    echo "$label $r" >> "$results"
  done
done
python3 - "$results" <<'PY'
import re, sys, statistics as st, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label = line.split()[0]
    f = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    n, wall, cpu = float(f["n"]), float(f["wall_s"]), float(f["user_s"]) + float(f["sys_s"])
    runs[label].append((n / wall, cpu / n * 1e6, float(f["p50_us"])))
for label, v in runs.items():
    print(f"{label:12} median {st.median(r for r, _, _ in v):8.0f} req/s {st.median(c for _, c, _ in v):7.1f} us CPU/req"
          f" {st.median(p for _, _, p in v):8.1f} us p50   runs (req/s/CPU/p50): " + " ".join("%.0f/%.1f/%.0f" % x for x in v))
# Paired: each later client against the first, the ratio taken within each round, then the median.
labels = list(runs)
for label in labels[1:]:
    pairs = list(zip(runs[label], runs[labels[0]]))
    print(f"{label:12} / {labels[0]}: median of per-round ratios {st.median(a[0] / b[0] for a, b in pairs):.3f} req/s"
          f" {st.median(a[1] / b[1] for a, b in pairs):.3f} CPU/req over {len(pairs)} rounds")
PY
rm -f "$results"
