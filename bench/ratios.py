#!/usr/bin/env python3
"""Round-by-round ratios of one benchmark client to another from a run's raw log, as BENCHMARKS.md
quotes those the runner's tables do not print:

    python3 bench/ratios.py target/bench/raw.txt OURS THEIRS [OURS THEIRS ...]

OURS and THEIRS are runner keys (c, c-polled, go-polled, grpc-cpp, ...); THEIRS may also be
GO (the better of grpc-go and grpc-go-1p in each cell, as the runner's "best grpc-go") or TONIC
(the better of tonic and tonic-1t, the "best raw tonic"). For every payload × in-flight cell of the
ANY send path it prints the median over the rounds of ours ÷ theirs within a round: req/s, then
client CPU per request (the better side picked by median req/s for req/s, by median CPU for CPU).
"""
import collections
import re
import statistics as st
import sys

BEST = {"GO": ["grpc-go", "grpc-go-1p"], "TONIC": ["tonic", "tonic-1t"]}


def load(path):
    runs = collections.defaultdict(dict)  # (client, payload, inflight) -> round -> (req/s, CPU µs/req)
    cur = None
    for line in open(path):
        m = re.match(r"## (\S+) payload=(\d+) inflight=(\d+) ANY round=(\d+)", line)
        if m:
            cur = (m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)))
            continue
        if line.startswith("RESULT") and cur:
            f = dict(re.findall(r"(\w+)=([0-9.]+)", line))
            n = float(f["n"])
            runs[cur[:3]][cur[3]] = (n / float(f["wall_s"]), (float(f["user_s"]) + float(f["sys_s"])) / n * 1e6)
            cur = None
    return runs


def main():
    if len(sys.argv) < 4 or len(sys.argv) % 2:
        sys.exit(__doc__)
    runs = load(sys.argv[1])

    def med(k, cell, i):
        return st.median(v[i] for v in runs[(k,) + cell].values())

    def ratio(ours, theirs, cell, i):
        a, b = runs[(ours,) + cell], runs[(theirs,) + cell]
        return st.median(a[r][i] / b[r][i] for r in a if r in b)

    cells = sorted({k[1:] for k in runs})
    for ours, theirs in zip(sys.argv[2::2], sys.argv[3::2]):
        out = []
        for cell in cells:
            cands = [t for t in BEST.get(theirs, [theirs]) if (t,) + cell in runs]
            if (ours,) + cell not in runs or not cands:
                continue
            by_rps = max(cands, key=lambda t: med(t, cell, 0))
            by_cpu = min(cands, key=lambda t: med(t, cell, 1))
            size = "100 B" if cell[0] == 100 else f"{cell[0] // 1048576} MiB"
            out.append(f"{size} × {cell[1]} {ratio(ours, by_rps, cell, 0):.2f} / {ratio(ours, by_cpu, cell, 1):.2f}")
        print(f"{ours} ÷ {theirs} (req/s / CPU): " + ", ".join(out))


if __name__ == "__main__":
    main()
