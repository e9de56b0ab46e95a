#!/usr/bin/env python3
"""User-space instructions per request by crate, from the callgrind files that
`KEEP=DIR bench/instructions.sh CLIENT ...` keeps (DIR/cg.1000 and DIR/cg.3000): the difference of
the two runs, per function, divided by 2000, summed by crate. With two directories, both columns
and their difference (second minus first), largest first.

    KEEP=/tmp/cg/driven INFLIGHT=16 bench/instructions.sh target/bench/c-client pool=driven
    KEEP=/tmp/cg/lib INFLIGHT=16 bench/instructions.sh target/bench/c-client
    python3 bench/cg_by_crate.py /tmp/cg/driven /tmp/cg/lib
"""
import collections
import re
import subprocess
import sys

LINE = re.compile(r"\s*([\d,]+) \([^)]*\)\s+(.*)$")


def functions(path):
    """Self cost per function (file:function) of one callgrind file."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path],
                         check=True, capture_output=True, text=True).stdout
    cost = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if not m or "PROGRAM TOTALS" in line or "=>" in line:
            continue
        cost[re.sub(r" \[.*\]$", "", m.group(2))] += int(m.group(1).replace(",", ""))
    return cost


def crate(name):
    """The crate a function's cost is counted under (std code inlined into a crate counts there)."""
    where, _, function = name.partition(":")
    if where.startswith("./") or "sysdeps" in where:
        if re.search(r"malloc|free|_int_|tcache|consolidate", function):
            return "glibc malloc/free"
        if "mem" in function:
            return "glibc memcpy/memmove"
        if "tls_get_addr" in function:
            return "glibc __tls_get_addr"
        return "glibc other"
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.", where)
    if m:
        return m.group(1)
    m = re.match(r"<?\W*([a-z_][a-z0-9_]*)::", function)
    if m:
        return m.group(1)
    return "other"


def per_request(directory):
    small, large = functions(f"{directory}/cg.1000"), functions(f"{directory}/cg.3000")
    by_crate = collections.Counter()
    for name in set(small) | set(large):
        by_crate[crate(name)] += (large[name] - small[name]) / 2000
    return by_crate


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    columns = [per_request(d) for d in sys.argv[1:]]
    names = set().union(*columns)
    if len(columns) == 1:
        for name in sorted(names, key=lambda n: -columns[0][n]):
            print(f"{columns[0][name]:9.0f}  {name}")
        print(f"{sum(columns[0].values()):9.0f}  total")
        return
    a, b = columns
    for name in sorted(names, key=lambda n: -(b[n] - a[n])):
        print(f"{a[name]:9.0f} {b[name]:9.0f} {b[name] - a[name]:+8.0f}  {name}")
    print(f"{sum(a.values()):9.0f} {sum(b.values()):9.0f} {sum(b.values()) - sum(a.values()):+8.0f}  total")


if __name__ == "__main__":
    main()
