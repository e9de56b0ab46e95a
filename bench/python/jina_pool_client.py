"""The jina 3.1.0 column of jina-net-bench: jina's own GrpcConnectionPool, run with the interop venv.

    python jina_pool_client.py mode=send addrs=A[,B...] polling=any|all payload=FILE inflight=N \
        warmup_ms=W duration_ms=D max_requests=M
    python jina_pool_client.py mode=scale replicas=N routes=M

send: `inflight` asyncio tasks, each awaiting `GrpcConnectionPool.send_request(...)` (the tasks it
returns; ALL: one per shard, gathered) and then sending the next request, on the event loop jina's
runtimes use (jina.helper.get_or_reuse_loop: uvloop when installed). Every request is a new
DataRequest built from the payload bytes, as a gateway receives it; jina serializes it back to the
same bytes without re-encoding, and the response is deserialized lazily (as in jina).
Prints the same RESULT line as the other clients (CPU: getrusage(RUSAGE_SELF); peak RSS: VmHWM).

scale: time and memory to add N replicas to one shard (grpc.aio channels, no traffic) and the cost
of jina's routing step (get_replicas(...).get_next_connection()).
"""
import asyncio
import math
import os
import resource
import sys
import time

os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')

import jina  # noqa: E402,F401  (first: jina sets up its environment on import)
from jina.enums import PollingType  # noqa: E402
from jina.helper import get_or_reuse_loop  # noqa: E402
from jina.serve.networking import GrpcConnectionPool  # noqa: E402
from jina.types.request.data import DataRequest  # noqa: E402


def _args():
    out = {}
    for a in sys.argv[1:]:
        k, _, v = a.partition('=')
        out[k] = v
    return out


def _pct(sorted_ns, p):
    n = len(sorted_ns)
    if n == 0:
        return 0.0
    rank = min(max(int(math.ceil(p * n)), 1), n)
    return sorted_ns[rank - 1] / 1e3


async def _phase(pool, payload, polling, expected, inflight, duration_ms, max_requests):
    state = {'started': 0, 'errors': 0, 'first': None}
    lat = []
    t0 = time.perf_counter_ns()
    deadline = t0 + duration_ms * 1_000_000
    min_len = len(payload)

    async def worker():
        while True:
            if state['started'] >= max_requests:
                return
            state['started'] += 1
            t = time.perf_counter_ns()
            if t >= deadline:
                return
            try:
                tasks = pool.send_request(DataRequest(payload), 'bench', polling_type=polling)
                if len(tasks) == 1:
                    results = [await tasks[0]]
                else:
                    results = await asyncio.gather(*tasks)
                ok = len(results) == expected and all(
                    r[0].buffer is not None and len(r[0].buffer) >= min_len for r in results
                )
                err = None if ok else f'{len(results)} results or short response'
            except Exception as e:  # noqa: BLE001 (counted and reported)
                ok, err = False, repr(e)
            if ok:
                lat.append(time.perf_counter_ns() - t)
            else:
                state['errors'] += 1
                if state['first'] is None:
                    state['first'] = err

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return lat, state['errors'], state['first'], (time.perf_counter_ns() - t0) / 1e9


async def _send(a):
    with open(a['payload'], 'rb') as f:
        payload = f.read()
    addrs = a['addrs'].split(',')
    all_shards = a['polling'] == 'all'
    pool = GrpcConnectionPool()
    if all_shards:
        for i, addr in enumerate(addrs):
            pool.add_connection(deployment='bench', address=addr, shard_id=i)
        polling, expected = PollingType.ALL, len(addrs)
    else:
        pool.add_connection(deployment='bench', address=addrs[0])
        polling, expected = PollingType.ANY, 1
    inflight = max(1, int(a['inflight']))
    _, _, first, _ = await _phase(pool, payload, polling, expected, inflight, int(a['warmup_ms']), float('inf'))
    if first:
        print(f'warm-up error: {first}', file=sys.stderr)
    before = resource.getrusage(resource.RUSAGE_SELF)
    lat, errors, first, wall = await _phase(
        pool, payload, polling, expected, inflight, int(a['duration_ms']), int(a['max_requests'])
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    await pool.close()
    if first:
        print(f'error: {first}', file=sys.stderr)
    lat.sort()
    mean = sum(lat) / len(lat) / 1e3 if lat else 0.0
    print(
        f'RESULT n={len(lat)} errors={errors} wall_s={wall:.6f} '
        f'user_s={after.ru_utime - before.ru_utime:.6f} sys_s={after.ru_stime - before.ru_stime:.6f} '
        f'maxrss_kib={_peak_rss_kib()} p50_us={_pct(lat, 0.5):.1f} p99_us={_pct(lat, 0.99):.1f} '
        f'p999_us={_pct(lat, 0.999):.1f} mean_us={mean:.1f}',
        flush=True,
    )


def _status_kib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _rss_kib():
    return _status_kib('VmRSS:')


def _peak_rss_kib():
    """VmHWM, not ru_maxrss (which Linux carries over fork + exec from the parent)."""
    return _status_kib('VmHWM:')


def _address(i):
    return f'127.{1 + i // 62500}.{(i // 250) % 250}.{1 + i % 250}:9'


async def _scale(a):
    n = int(a['replicas'])
    routes = max(1, int(a['routes']))
    pool = GrpcConnectionPool()
    pool.add_connection(deployment='warm', address='127.0.0.1:9')
    await asyncio.sleep(0.2)
    before = _rss_kib()
    t = time.perf_counter()
    for i in range(n):
        pool.add_connection(deployment='scale', address=_address(i))
    add_s = time.perf_counter() - t
    await asyncio.sleep(0.3)
    after = _rss_kib()
    connections = pool._connections
    t = time.perf_counter_ns()
    for _ in range(routes):
        connections.get_replicas('scale', False, None).get_next_connection()
    route_ns = (time.perf_counter_ns() - t) / routes
    print(
        f'RESULT replicas={n} add_s={add_s:.6f} rss_before_kib={before} rss_after_kib={after} '
        f'per_replica_kib={(after - before) / max(n, 1):.2f} route_ns={route_ns:.1f} '
        f'maxrss_kib={_peak_rss_kib()}',
        flush=True,
    )
    await pool.close()


def main():
    a = _args()
    loop = get_or_reuse_loop()
    if a.get('mode', 'send') == 'scale':
        loop.run_until_complete(_scale(a))
    else:
        loop.run_until_complete(_send(a))


if __name__ == '__main__':
    main()
