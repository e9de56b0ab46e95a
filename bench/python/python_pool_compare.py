"""jina 3.1.0's own GrpcConnectionPool and jina_net's (bindings/python) side by side, from Python,
against the same echo worker (the project's jina-net-test-server, role echo).

    python python_pool_compare.py [--server=BIN] [--rounds=3] [--duration-ms=2000] [--warmup-ms=300]
                                  [--inflight=1,16,256] [--payload=100] [--quick]

Runs every cell (pool x in-flight) in its own client process, `rounds` times interleaved, against
one echo worker process started here, and prints a markdown table of the median run per cell: req/s,
p50 and p99 latency, CPU per request (user + system time of the client process, the library's
threads included, divided by the requests). The requests are what a gateway sends: a new
DataRequest built from the payload bytes per send (`pool.send_request(DataRequest(payload), ...)`),
awaited by `inflight` asyncio workers on the event loop jina's runtimes use
(jina.helper.get_or_reuse_loop: uvloop when installed).

Client mode (run by the above): python python_pool_compare.py --client=jina|jina_net --addr=A
    --payload-file=F --inflight=N --warmup-ms=W --duration-ms=D  -> prints one RESULT line.
"""
import asyncio
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))

LABELS = {'jina': 'jina 3.1.0 GrpcConnectionPool', 'jina_net': 'jina_net GrpcConnectionPool (libjina_net)'}


def parse_args(argv):
    out = {}
    for a in argv:
        if not a.startswith('--'):
            raise SystemExit(f'unknown argument {a}')
        k, _, v = a[2:].partition('=')
        out[k.replace('-', '_')] = v if v else '1'
    return out


# --- client ---------------------------------------------------------------------------------------


def pct(sorted_ns, p):
    n = len(sorted_ns)
    if n == 0:
        return 0.0
    return sorted_ns[min(max(int(math.ceil(p * n)), 1), n) - 1] / 1e3


async def phase(pool, payload, inflight, duration_ms, min_len):
    from jina.types.request.data import DataRequest

    lat = []
    state = {'errors': 0, 'first': None}
    t0 = time.perf_counter_ns()
    deadline = t0 + duration_ms * 1_000_000

    async def worker():
        while True:
            t = time.perf_counter_ns()
            if t >= deadline:
                return
            try:
                [task] = pool.send_request(DataRequest(payload), 'bench')
                response, _metadata = await task
                if response.buffer is None or len(response.buffer) < min_len:
                    raise AssertionError('short response')
                lat.append(time.perf_counter_ns() - t)
            except Exception as e:  # noqa: BLE001 (counted and reported)
                state['errors'] += 1
                if state['first'] is None:
                    state['first'] = repr(e)

    await asyncio.gather(*(worker() for _ in range(inflight)))
    return lat, state, (time.perf_counter_ns() - t0) / 1e9


async def client(a):
    if a['client'] == 'jina_net':
        from jina_net.networking import GrpcConnectionPool
    else:
        from jina.serve.networking import GrpcConnectionPool
    with open(a['payload_file'], 'rb') as f:
        payload = f.read()
    pool = GrpcConnectionPool()
    pool.add_connection(deployment='bench', address=a['addr'])
    inflight = int(a['inflight'])
    _, state, _ = await phase(pool, payload, inflight, int(a['warmup_ms']), len(payload))
    if state['first']:
        print(f'warm-up error: {state["first"]}', file=sys.stderr)
    before = resource.getrusage(resource.RUSAGE_SELF)
    lat, state, wall = await phase(pool, payload, inflight, int(a['duration_ms']), len(payload))
    after = resource.getrusage(resource.RUSAGE_SELF)
    await pool.close()
    if state['first']:
        print(f'error: {state["first"]}', file=sys.stderr)
    lat.sort()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f'RESULT n={len(lat)} errors={state["errors"]} wall_s={wall:.6f} cpu_s={cpu:.6f} '
          f'p50_us={pct(lat, 0.5):.1f} p99_us={pct(lat, 0.99):.1f}', flush=True)


def client_main(a):
    os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')
    import jina  # noqa: F401  (first: jina sets up its environment on import)
    from jina.helper import get_or_reuse_loop

    get_or_reuse_loop().run_until_complete(client(a))


# --- driver ---------------------------------------------------------------------------------------


def payload_bytes(size):
    """A DataRequest with one document, serialized to about `size` bytes."""
    from docarray import Document, DocumentArray
    from jina.types.request.data import DataRequest

    text = ''
    while True:
        r = DataRequest()
        r.header.request_id = 'bench-request'
        r.data.docs = DocumentArray([Document(id='doc-0', text=text)])
        raw = r.proto.SerializeToString()
        if len(raw) >= size:
            return raw
        text += 'x' * max(1, size - len(raw))


def start_server(binary):
    proc = subprocess.Popen([binary, '--exit-on-stdin-eof', 'echo=bench'], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    addr = None
    for line in proc.stdout:
        if line.startswith('SERVER'):
            addr = line.split()[3]
        if line.startswith('READY'):
            break
    if addr is None:
        raise SystemExit(f'{binary} did not start')
    return proc, addr


def run_cell(kind, inflight, addr, payload_file, warmup_ms, duration_ms):
    cmd = [sys.executable, os.path.abspath(__file__), f'--client={kind}', f'--addr={addr}',
           f'--payload-file={payload_file}', f'--inflight={inflight}', f'--warmup-ms={warmup_ms}',
           f'--duration-ms={duration_ms}']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + duration_ms / 1000)
    line = next((l for l in r.stdout.splitlines() if l.startswith('RESULT ')), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f'{kind} at {inflight} in flight failed ({r.returncode}):\n{r.stdout}\n{r.stderr[-2000:]}')
    kv = dict(w.split('=', 1) for w in line.split()[1:])
    res = {k: float(v) for k, v in kv.items()}
    if res['errors'] > 0 or res['n'] == 0:
        raise RuntimeError(f'{kind} at {inflight} in flight: {int(res["errors"])} errors, {int(res["n"])} ok\n{r.stderr[-2000:]}')
    res['rps'] = res['n'] / res['wall_s']
    res['cpu_us'] = res['cpu_s'] / res['n'] * 1e6
    return res


def fmt(x, digits=0):
    return f'{x:,.{digits}f}'


def driver(a):
    quick = 'quick' in a
    rounds = int(a.get('rounds', 1 if quick else 3))
    duration_ms = int(a.get('duration_ms', 300 if quick else 2000))
    warmup_ms = int(a.get('warmup_ms', 100 if quick else 300))
    inflights = [int(x) for x in a.get('inflight', '1,16,256').split(',')]
    size = int(a.get('payload', 100))
    binary = a.get('server') or os.environ.get('JINA_NET_TEST_SERVER') or os.path.join(
        ROOT, 'target', 'release', 'jina-net-test-server')
    os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')
    payload = payload_bytes(size)
    kinds = ['jina', 'jina_net']
    cells = [(k, n) for n in inflights for k in kinds]
    runs = {c: [] for c in cells}
    with tempfile.TemporaryDirectory() as d:
        payload_file = os.path.join(d, 'payload.bin')
        with open(payload_file, 'wb') as f:
            f.write(payload)
        proc, addr = start_server(binary)
        try:
            print(f'echo worker {addr} ({binary}); {len(payload)} B requests; {rounds} round(s) of '
                  f'{duration_ms} ms per cell; libjina_net: {os.environ.get("JINA_NET_LIBRARY", "(loader)")}',
                  file=sys.stderr, flush=True)
            for r in range(rounds):
                # interleaved, starting one further along each round: slow drifts hit every cell alike
                for i in range(len(cells)):
                    cell = cells[(i + r) % len(cells)]
                    res = run_cell(cell[0], cell[1], addr, payload_file, warmup_ms, duration_ms)
                    runs[cell].append(res)
                    print(f'  round {r + 1}: {cell[0]:8} in flight {cell[1]:3}: {fmt(res["rps"])} req/s, '
                          f'p50 {res["p50_us"]:.0f} us, p99 {res["p99_us"]:.0f} us, CPU {res["cpu_us"]:.0f} us/req',
                          file=sys.stderr, flush=True)
        finally:
            proc.stdin.close()
            proc.wait()

    def median(cell):
        rs = sorted(runs[cell], key=lambda x: x['rps'])
        return rs[len(rs) // 2], rs[0]['rps'], rs[-1]['rps']

    print(f'\n{len(payload)} B requests, one echo worker, median of {rounds} run(s) of {duration_ms} ms per cell\n')
    print('| in flight | pool | req/s (range) | p50 µs | p99 µs | CPU µs per request |')
    print('|---|---|---|---|---|---|')
    for n in inflights:
        for k in kinds:
            m, lo, hi = median((k, n))
            rng = f' ({fmt(lo)}–{fmt(hi)})' if rounds > 1 else ''
            print(f'| {n} | {LABELS[k]} | {fmt(m["rps"])}{rng} | {fmt(m["p50_us"])} | {fmt(m["p99_us"])} | '
                  f'{fmt(m["cpu_us"], 1)} |')
    print('\n| in flight | jina_net ÷ jina req/s | jina_net ÷ jina CPU per request |')
    print('|---|---|---|')
    for n in inflights:
        ours, theirs = median(('jina_net', n))[0], median(('jina', n))[0]
        print(f'| {n} | {ours["rps"] / theirs["rps"]:.2f} | {ours["cpu_us"] / theirs["cpu_us"]:.2f} |')


def main():
    a = parse_args(sys.argv[1:])
    if 'client' in a:
        client_main(a)
    else:
        driver(a)


if __name__ == '__main__':
    main()
