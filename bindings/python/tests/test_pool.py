"""jina_net.Pool and the one-shot helpers (bytes level, no jina) against the project's test servers."""
import asyncio
import base64
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import unittest

from helpers import ROOT, TestServers, freeze, rss_kib

import jina_net
from jina_net import _core, _ffi

SERVERS = None


def setUpModule():
    global SERVERS
    SERVERS = TestServers(
        'echo=a', 'echo=b', 'echo=s0', 'echo=s1', 'error=err', 'unavailable=down', 'flaky:2=flaky',
        'flaky:2=flaky1', 'slow:5000=slow', 'head:ranker=head', 'echo=w0', 'flaky:2=flaky2', 'flaky:1=flaky-count',
        # gray failures: a replica that never answers (a hung runtime), a slow one, a brown-out
        'hostile:silent=silent', 'slow:3000=slow3', 'echo=live', 'unavailable=u1', 'unavailable=u2', 'unavailable=u3',
    )


def tearDownModule():
    SERVERS.close()


def A(name):
    return SERVERS.addr[name]


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload: bytes):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def data_request(request_id: str, padding: int = 0) -> bytes:
    """DataRequestProto{header{request_id}, parameters-free padding in header.target_executor}."""
    header = _field(1, request_id.encode())  # HeaderProto.request_id
    if padding:
        header += _field(4, b"x" * padding)  # HeaderProto.target_executor (a string field)
    return _field(1, header)


def meta(target):
    """The worker's own trailing metadata (``replica``, ``endpoint``, ``request-count``...), without the
    ``seen-*`` entries that echo the request's headers (see ``seen``)."""
    return dict((k, v.decode()) for k, v in target.metadata if not k.startswith('seen-'))


# HTTP/2 request headers that are not gRPC metadata but that the test server reports as `seen-*`
# (the library's HTTP/2 client sends the length of a unary request body).
TRANSPORT_HEADERS = {'content-length'}


def seen(target):
    """The request metadata the echo worker saw: its `seen-<key>` trailers by key (values as on the
    wire: base64 without padding for `-bin` keys). The server keeps the order of a key's values, not
    the order between keys (HTTP/2 headers of different names have none)."""
    out = []
    for k, v in target.metadata:
        if k.startswith('seen-') and k[len('seen-'):] not in TRANSPORT_HEADERS:
            out.append((k[len('seen-'):], v))
    return by_key(out)


def by_key(pairs):
    """`pairs` sorted by key, a repeated key's values in their order (a stable sort)."""
    return sorted(pairs, key=lambda kv: kv[0])


TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'


class PoolTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.pool = jina_net.Pool()

    async def asyncTearDown(self):
        self.pool.close()
        self.assertEqual(_core._pending, {}, 'every send completed and was handed to its loop')

    async def send(self, deployment, *reqs, **kw):
        return await self.pool.send_async(jina_net.REQUEST_DATA, list(reqs) or [data_request('r')], deployment, **kw)

    async def test_round_robin_over_replicas_in_call_order(self):
        self.assertTrue(self.pool.add_connection('enc', A('a')))
        self.assertTrue(self.pool.add_connection('enc', A('b')))
        self.assertFalse(self.pool.add_connection('enc', A('b')), 'a known address is not added again')
        seen = [meta((await self.send('enc'))[0])['replica'] for _ in range(4)]
        self.assertEqual(seen, ['a', 'b', 'a', 'b'])
        self.assertEqual(self.pool.routes(), f'enc\tshard 0\t{A("a")},{A("b")}\tready,ready\n')
        self.assertEqual(self.pool.route_table(), [
            jina_net.Route('enc', False, 0, [jina_net.Replica(A('a'), 'ready'), jina_net.Replica(A('b'), 'ready')])])

    async def test_body_endpoint_and_process_data(self):
        self.pool.add_connection('enc', A('a'))
        [t] = await self.send('enc', data_request('id-1'), endpoint='/index')
        self.assertTrue(t.ok)
        self.assertEqual(t.address, A('a'))
        self.assertEqual(meta(t), {'replica': 'a', 'endpoint': '/index', 'request-count': '1'})
        self.assertEqual(seen(t), [], 'no request metadata unless the send gives some')
        self.assertIn(b'id-1', t.body)
        [t] = await self.send('enc', data_request('x'), data_request('y'), data_request('z'))
        self.assertEqual(meta(t)['request-count'], '3', 'several data requests go in one process_data call')

    async def test_polling_all_one_target_per_shard_in_shard_order(self):
        self.pool.add_connection('idx', A('s1'), shard_id=1)
        self.pool.add_connection('idx', A('s0'), shard_id=0)
        ts = await self.send('idx', polling=jina_net.POLLING_ALL)
        self.assertEqual((jina_net.POLLING_ANY, jina_net.POLLING_ALL), (jina_net.SHARDS_ANY, jina_net.SHARDS_ALL))
        self.assertEqual([(t.shard_id, meta(t)['replica']) for t in ts], [(0, 's0'), (1, 's1')])
        [t] = await self.send('idx', shard_id=1)
        self.assertEqual(meta(t)['replica'], 's1')

    async def test_head_and_control_plane(self):
        self.pool.add_connection('ranker', A('head'), head=True)
        # ACTIVATE w0 at the head (blocking helper, as jina's activate_worker_sync), then route through it
        r = await asyncio.to_thread(jina_net.worker_control_sync, True, '127.0.0.1', SERVERS.port('w0'), A('head'))
        self.assertEqual(r.address, A('head'))
        self.assertIn(b'127.0.0.1', r.body, "the head echoes the control request")
        [t] = await self.send('ranker', head=True)
        self.assertTrue(t.head)
        self.assertEqual(meta(t)['replica'], 'w0')
        self.assertEqual(meta(t)['head'], 'head')
        # DEACTIVATE without blocking; the head has no worker left and answers with an error
        r = await jina_net.worker_control(False, '127.0.0.1', SERVERS.port('w0'), A('head'))
        self.assertEqual(r.address, A('head'))
        [t] = await self.send('ranker', head=True)
        self.assertFalse(t.ok)
        self.assertEqual(t.status, _ffi.RPC_ERROR)
        self.assertEqual(t.grpc_code, 2, t.error_message)  # UNKNOWN, as a jina head raises

    async def test_in_band_error_is_a_response_with_is_error(self):
        self.pool.add_connection('bad', A('err'))
        [t] = await self.send('bad')
        self.assertTrue(t.ok)
        self.assertEqual(meta(t)['is-error'], 'true')

    async def test_unavailable_after_three_attempts_and_retry_succeeds(self):
        self.pool.add_connection('down', A('down'))
        [t] = await self.send('down')
        self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14))
        self.assertIn(A('down'), t.error_message)
        e = t.error()
        self.assertEqual((e.result_name, e.grpc_code, e.address), ('JINA_NET_RPC_ERROR', 14, A('down')))
        # flaky:2 fails twice with UNAVAILABLE: the third attempt (jina's default policy) answers
        self.pool.add_connection('flaky', A('flaky'))
        [t] = await self.send('flaky')
        self.assertTrue(t.ok, t.error_message)
        # with max_attempts=1 the first UNAVAILABLE is final
        one = jina_net.Pool(max_attempts=1)
        try:
            one.add_connection('flaky', A('flaky1'))
            [t] = await one.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'flaky')
            self.assertEqual(t.grpc_code, 14)
        finally:
            one.close()

    async def test_errors_before_sending(self):
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await self.send('nowhere')
        self.assertEqual(cm.exception.result, _ffi.UNKNOWN_DEPLOYMENT)
        self.pool.add_connection('enc', A('a'))
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await self.send('enc', head=True)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_NO_REPLICAS')
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await self.send('enc', b'\xff\xff\xff')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_REQUEST')
        with self.assertRaises(jina_net.JinaNetError) as cm:
            self.pool.add_connection('enc', 'not an address')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ADDRESS')
        self.assertIn('not an address', str(cm.exception))
        with self.assertRaises(TypeError):
            jina_net.Pool(no_such_option=1)
        with self.assertRaises(ValueError):
            jina_net.Pool(caller_driven=True)  # nothing in the binding would poll it
        with self.assertRaises(ValueError) as cm:
            jina_net.Pool(callbacks_in_poll=True)  # the same
        self.assertIn('callbacks_in_poll', str(cm.exception))

    async def test_request_metadata_reaches_the_replica(self):
        self.pool.add_connection('enc', A('a'))
        # a dict: str values as they are, bytes for -bin keys (base64 without padding on the wire)
        [t] = await self.send('enc', metadata={'authorization': 'Bearer t0k3n', 'traceparent': TRACEPARENT,
                                               'trace-bin': bytes([0, 1, 2, 0xff]), 'x-empty': ''})
        self.assertTrue(t.ok, t)
        self.assertEqual(seen(t), by_key([('authorization', b'Bearer t0k3n'), ('traceparent', TRACEPARENT.encode()),
                                   ('trace-bin', b'AAEC/w'), ('x-empty', b'')]))
        # (key, value) pairs repeat a key, in order; bytes values on other keys are printable ASCII
        [t] = await self.send('enc', metadata=[('x-id', '1'), ('x-id', '2'), ('x-raw', b'plain bytes')])
        self.assertEqual(seen(t), by_key([('x-id', b'1'), ('x-id', b'2'), ('x-raw', b'plain bytes')]))
        # with an endpoint, several requests (process_data) and a timeout: all still apply
        [t] = await self.send('enc', data_request('x'), data_request('y'), endpoint='/index', timeout_ms=5000,
                              metadata={'x-id': '3'})
        self.assertEqual(meta(t)['endpoint'], '/index')
        self.assertEqual(meta(t)['request-count'], '2')
        self.assertEqual(seen(t), by_key([('x-id', b'3')]))
        # `endpoint` is a key like others when the send sets no endpoint (the worker sees it as one)
        [t] = await self.send('enc', metadata={'endpoint': '/from-metadata'})
        self.assertEqual(meta(t)['endpoint'], '/from-metadata')
        # none, {} and [] are no metadata (jina_net_pool_send, not _ex)
        for none in (None, {}, []):
            [t] = await self.send('enc', metadata=none)
            self.assertEqual(seen(t), [])
        # a RequestMetadata is prepared once and used by any number of sends
        md = jina_net.RequestMetadata({'x-id': 'shared'})
        for _ in range(3):
            [t] = await self.send('enc', metadata=md)
            self.assertEqual(seen(t), by_key([('x-id', b'shared')]))

    async def test_request_metadata_goes_with_every_attempt_and_every_shard(self):
        # flaky:2 fails twice with UNAVAILABLE; the third attempt (same replica) carries the metadata too
        self.pool.add_connection('flaky', A('flaky2'))
        [t] = await self.send('flaky', metadata={'x-id': 'retried'})
        self.assertTrue(t.ok, t.error_message)
        self.assertEqual(seen(t), by_key([('x-id', b'retried')]))
        # fail-over from a replica that is down to the next one
        resilient = jina_net.Pool(resilient=True)
        try:
            resilient.add_connection('enc', A('down'))
            resilient.add_connection('enc', A('b'))
            for _ in range(2):  # whichever replica the turn starts at
                [t] = await resilient.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'enc',
                                                 metadata={'x-id': 'failed-over'})
                self.assertEqual((t.address, seen(t)), (A('b'), [('x-id', b'failed-over')]))
        finally:
            resilient.close()
        # polling ALL: each shard gets it
        self.pool.add_connection('idx', A('s0'), shard_id=0)
        self.pool.add_connection('idx', A('s1'), shard_id=1)
        ts = await self.send('idx', polling=jina_net.SHARDS_ALL, metadata=[('x-id', 'all')])
        self.assertEqual([(meta(t)['replica'], seen(t)) for t in ts],
                         [('s0', [('x-id', b'all')]), ('s1', [('x-id', b'all')])])

    async def test_invalid_request_metadata_raises_before_anything_is_sent(self):
        # flaky:1 fails its first call: if any refused send had reached it, the first real one would pass
        one = jina_net.Pool(max_attempts=1)
        self.addCleanup(one.close)
        one.add_connection('count', A('flaky-count'))
        done = []
        bad = {
            'upper-case key': {'Authorization': 'x'},
            'grpc-* name': {'grpc-timeout': '1S'},
            'te': {'te': 'trailers'},
            'content-type': {'content-type': 'application/grpc'},
            'user-agent': {'user-agent': 'me'},
            'connection header': {'connection': 'close'},
            'host': {'host': 'example.com'},
            'empty key': {'': 'v'},
            'space in key': {'sp ace': 'v'},
            'colon key': {':path': '/'},
            'non-ASCII key': {'clé': 'v'},
            'NUL in key': {'a\0b': 'v'},
            'newline in value': {'x': 'a\nb'},
            'non-ASCII value': {'x': 'é'},
            'binary value, key without -bin': {'x': b'\x00\x01'},
            'one bad entry among good ones': [('x-ok', '1'), ('X-Bad', '2')],
        }
        for why, metadata in bad.items():
            with self.subTest(why):
                with self.assertRaises(jina_net.JinaNetError) as cm:
                    one.send(jina_net.REQUEST_DATA, [data_request('r')], 'count', metadata=metadata, on_done=done.append)
                self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ARGUMENT', cm.exception)
                self.assertIn('metadata', str(cm.exception))
        # `endpoint` is refused when the send sets one
        with self.assertRaises(jina_net.JinaNetError) as cm:
            one.send(jina_net.REQUEST_DATA, [data_request('r')], 'count', endpoint='/x', metadata={'endpoint': '/y'},
                     on_done=done.append)
        self.assertEqual(cm.exception.result, _ffi.INVALID_ARGUMENT)
        # send_async raises at the call, not through its future
        with self.assertRaises(jina_net.JinaNetError):
            one.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'count', metadata={'Bad': 'x'})
        # wrong Python types: TypeError
        for metadata in ({'x': 1}, {1: 'x'}, {'x': ['a', 'b']}, 'x: y', b'x', [('x',)], [('x', 'y', 'z')], 5):
            with self.subTest(metadata=metadata):
                with self.assertRaises(TypeError):
                    one.send(jina_net.REQUEST_DATA, [data_request('r')], 'count', metadata=metadata, on_done=done.append)
        await asyncio.sleep(0.2)
        self.assertEqual(done, [], 'no callback fired for a refused send')
        self.assertEqual(_core._pending, {})
        [t] = await one.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'count')
        self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14), 'this is the first call the server sees')
        [t] = await one.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'count', metadata={'x-id': 'ok'})
        self.assertEqual(seen(t), by_key([('x-id', b'ok')]))

    async def test_concurrent_sends_each_carry_their_own_metadata(self):
        self.pool.add_connection('enc', A('a'))
        self.pool.add_connection('enc', A('b'))

        async def one(i):
            md = {'x-id': str(i), 'x-bin': i.to_bytes(4, 'big')}
            [t] = await self.send('enc', data_request(f'req-{i}'), metadata=md)
            self.assertIn(f'req-{i}'.encode(), t.body)
            return dict(seen(t))

        got = await asyncio.gather(*(one(i) for i in range(500)))
        for i, s in enumerate(got):
            self.assertEqual(s['x-id'], str(i).encode())
            raw = s['x-bin']
            self.assertEqual(base64.b64decode(raw + b'=' * (-len(raw) % 4)), i.to_bytes(4, 'big'))

    async def test_remove_connection(self):
        self.assertFalse(self.pool.remove_connection('enc', A('a')), 'nothing to remove in an empty pool')
        self.pool.add_connection('enc', A('a'))
        self.pool.add_connection('enc', A('b'))
        self.assertTrue(self.pool.remove_connection('enc', A('a')))
        self.assertFalse(self.pool.remove_connection('enc', A('a')))
        self.assertEqual({meta((await self.send('enc'))[0])['replica'] for _ in range(3)}, {'b'})
        self.assertTrue(self.pool.remove_connection('enc', A('b')))
        self.assertEqual(self.pool.routes(), '')

    async def test_cancel_deadline_and_close(self):
        self.pool.add_connection('slow', A('slow'))
        fut = self.send('slow')
        task = asyncio.ensure_future(fut)
        await asyncio.sleep(0.2)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        # the library completes the cancelled send (CANCELLED) and hands it back: nothing pending
        for _ in range(100):
            if not _core._pending:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(_core._pending, {})

        [t] = await self.send('slow', timeout_ms=200)
        self.assertEqual(t.status, _ffi.DEADLINE_EXCEEDED)

        pending = self.pool.send_async(jina_net.REQUEST_DATA, [data_request('r')], 'slow')
        await asyncio.sleep(0.1)
        self.pool.close()
        [t] = await asyncio.wait_for(pending, 5)
        self.assertEqual(t.status, _ffi.POOL_CLOSED, t)
        self.assertEqual(t.address, A('slow'))
        # after close the pool stays closed, as a C pool does
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await self.send('slow')
        self.assertEqual(cm.exception.result, _ffi.POOL_CLOSED, cm.exception)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            self.pool.add_connection('enc', A('a'))
        self.assertEqual(cm.exception.result, _ffi.POOL_CLOSED, cm.exception)

    async def test_many_concurrent_sends_complete_exactly_once(self):
        self.pool.add_connection('enc', A('a'))
        self.pool.add_connection('enc', A('b'))
        counts = {}

        async def one(i):
            [t] = await self.send('enc', data_request(f'req-{i}'))
            self.assertIn(f'req-{i}'.encode(), t.body)
            counts[i] = counts.get(i, 0) + 1

        sem = asyncio.Semaphore(64)

        async def limited(i):
            async with sem:
                await one(i)

        await asyncio.gather(*(limited(i) for i in range(3000)))
        self.assertEqual(len(counts), 3000)
        self.assertEqual(set(counts.values()), {1})

    async def test_responses_are_not_leaked(self):
        # 4,000 responses of 64 KiB: 250 MiB if any were kept (the library's are freed, or never retained)
        self.pool.add_connection('enc', A('a'))
        req = data_request('big', padding=64 * 1024)

        async def batch(n):
            sem = asyncio.Semaphore(32)

            async def one():
                async with sem:
                    [t] = await self.send('enc', req)
                    self.assertGreaterEqual(len(t.body), 64 * 1024)

            await asyncio.gather(*(one() for _ in range(n)))

        await batch(500)
        before = rss_kib()
        await batch(4000)
        grown = rss_kib() - before
        self.assertLess(grown, 64 * 1024, f'RSS grew by {grown} KiB over 4,000 64 KiB responses')

    async def test_loops_in_two_threads(self):
        self.pool.add_connection('enc', A('a'))

        def other_thread(out):
            async def main():
                pool = jina_net.Pool()
                pool.add_connection('enc', A('b'))
                ts = [await pool.send_async(jina_net.REQUEST_DATA, [data_request('t')], 'enc') for _ in range(50)]
                pool.close()
                return {meta(t[0])['replica'] for t in ts}

            out.append(asyncio.run(main()))

        out = []
        th = threading.Thread(target=other_thread, args=(out,))
        th.start()
        mine = {meta((await self.send('enc'))[0])['replica'] for _ in range(50)}
        await asyncio.to_thread(th.join)
        self.assertEqual(mine, {'a'})
        self.assertEqual(out, [{'b'}])


def attempts(target) -> int:
    """The attempts a failed send made, from its message (the library appends "(after N attempts)"
    when there was more than one)."""
    m = re.search(r'\(after (\d+) attempts\)', target.error_message)
    return int(m.group(1)) if m else 1


def requests_total(pool) -> int:
    """The calls a pool made (retries and hedges included), summed over its replicas, from its metrics."""
    total = 0.0
    for line in pool.metrics_text().splitlines():
        if line.startswith('jina_net_requests_total{'):
            total += float(line.rsplit(' ', 1)[1])
    return int(total)


# The new fields of C ABI 0.2.1 and their defaults (include/jina_net.h): init, init_resilient.
GRAY_DEFAULTS = {
    'connect_timeout_ms': (5000, 5000),
    'tcp_user_timeout_ms': (20000, 20000),
    'keepalive_interval_ms': (300000, 300000),
    'keepalive_timeout_ms': (20000, 20000),
    'probe_after_ms': (2000, 500),
    'probe_timeout_ms': (5000, 1000),
    'fail_over_unanswered': (False, False),
    'eject_on_deadline': (False, True),
    'per_attempt_timeout_ms': (0, 0),
    'retry_budget_max_tokens': (0, 10),
    'retry_budget_token_ratio': (0.1, 0.1),
}


def library_preset(resilient: bool) -> dict:
    """What the library's _init function writes into this binding's struct, field by field."""
    o = _ffi.PoolOptions()
    init = _ffi.lib.jina_net_pool_options_init_resilient if resilient else _ffi.lib.jina_net_pool_options_init
    assert init(ctypes.byref(o), ctypes.sizeof(o)) == _ffi.OK
    # (the PEM buffers and the server name are NULL in the presets: None, as Pool.options shows them)
    return {name: getattr(o, name) for name, _ in _ffi.PoolOptions._fields_
            if name != 'struct_size' and not name.endswith('_pem_len')}


class PoolOptionsTest(unittest.IsolatedAsyncioTestCase):
    """The pool options of C ABI 0.2.1 as keyword options: presets, types, ranges, the library's rules."""

    def test_presets_are_the_librarys(self):
        for resilient in (False, True):
            with self.subTest(resilient=resilient):
                options = jina_net.Pool(resilient=resilient).options
                self.assertEqual(options, dict(library_preset(resilient), root_certificates_pem=None))
                self.assertEqual({k: options[k] for k in GRAY_DEFAULTS},
                                 {k: v[resilient] for k, v in GRAY_DEFAULTS.items()}, 'the header\'s defaults')
        self.assertEqual(set(GRAY_DEFAULTS) - set(jina_net.POOL_OPTIONS), set(), 'every new field is an option')
        self.assertNotIn('caller_driven', jina_net.POOL_OPTIONS)
        self.assertNotIn('callbacks_in_poll', jina_net.POOL_OPTIONS)
        # keyword options change the preset they start from, and nothing else
        new = {'connect_timeout_ms': 1500, 'tcp_user_timeout_ms': 7000, 'keepalive_interval_ms': 10000,
               'keepalive_timeout_ms': 900, 'probe_after_ms': 250, 'probe_timeout_ms': 400,
               'fail_over_unanswered': True, 'eject_on_deadline': False, 'per_attempt_timeout_ms': 300,
               'retry_budget_max_tokens': 1000, 'retry_budget_token_ratio': 2}
        options = jina_net.Pool(resilient=True, **new).options
        self.assertEqual(options, dict(library_preset(True), root_certificates_pem=None, **dict(new, retry_budget_token_ratio=2.0)))
        self.assertIsInstance(options['retry_budget_token_ratio'], float)

    async def test_invalid_options_are_refused_here_as_the_library_refuses_them(self):
        # Python types: ctypes would wrap a negative or too large int and take any object as a bool.
        for opts in ({'probe_after_ms': 0.5}, {'per_attempt_timeout_ms': '200'}, {'connect_timeout_ms': None},
                     {'retry_budget_max_tokens': True}, {'fail_over_unanswered': 'no'},
                     {'eject_on_deadline': 2}, {'retry_budget_token_ratio': '0.5'}, {'no_such_option': 1}):
            with self.subTest(opts=opts):
                with self.assertRaises(TypeError) as cm:
                    jina_net.Pool(**opts)
                self.assertIn(next(iter(opts)), str(cm.exception))
        for opts in ({'probe_after_ms': -1}, {'connect_timeout_ms': 1 << 64}, {'retry_budget_max_tokens': 1 << 32},
                     {'keepalive_timeout_ms': -20000}):
            with self.subTest(opts=opts):
                with self.assertRaisesRegex(ValueError, f'{next(iter(opts))}=.*out of range'):
                    jina_net.Pool(**opts)
        # The library's rules (jina_net_pool_new): refused by Pool(...) at once, naming the option, and
        # by the library too (so that the binding's check is not stricter or looser than the library's).
        invalid = [
            (False, {'keepalive_interval_ms': 9999}, 'keepalive_interval_ms'),
            (False, {'keepalive_interval_ms': 1}, 'keepalive_interval_ms'),
            (False, {'probe_timeout_ms': 0}, 'probe_timeout_ms'),
            (True, {'probe_after_ms': 100, 'probe_timeout_ms': 0}, 'probe_timeout_ms'),
            (False, {'retry_budget_max_tokens': 1001}, 'retry_budget_max_tokens'),
            (True, {'retry_budget_token_ratio': 0}, 'retry_budget_token_ratio'),
            (False, {'retry_budget_max_tokens': 5, 'retry_budget_token_ratio': -0.5}, 'retry_budget_token_ratio'),
            (True, {'retry_budget_token_ratio': float('nan')}, 'retry_budget_token_ratio'),
            (True, {'retry_budget_token_ratio': float('inf')}, 'retry_budget_token_ratio'),
            (False, {'max_attempts': 0}, 'max_attempts'),
            (False, {'backoff_multiplier': 0.5}, 'backoff_multiplier'),
            (False, {'max_ejection_percent': 101}, 'max_ejection_percent'),
            (False, {'balance': 2}, 'balance'),
            (False, {'balance': jina_net.BALANCE_P2C_PEAK_EWMA, 'p2c_decay_ms': 0}, 'p2c_decay_ms'),
        ]
        for resilient, opts, name in invalid:
            with self.subTest(resilient=resilient, opts=opts):
                with self.assertRaises(ValueError) as cm:
                    jina_net.Pool(resilient=resilient, **opts)
                self.assertIn(name, str(cm.exception))
                self.assertEqual(self.library_refuses(resilient, opts), 'JINA_NET_INVALID_ARGUMENT')
        # values at the limits: taken by both
        valid = [
            (False, {'keepalive_interval_ms': 10000, 'keepalive_timeout_ms': 0}),
            (False, {'keepalive_interval_ms': 0}),
            (False, {'probe_after_ms': 0, 'probe_timeout_ms': 0}),
            (False, {'probe_after_ms': 1, 'probe_timeout_ms': 1}),
            (False, {'retry_budget_max_tokens': 1000, 'retry_budget_token_ratio': 0.001}),
            (False, {'retry_budget_max_tokens': 0, 'retry_budget_token_ratio': 0}),
            (True, {'connect_timeout_ms': 0, 'tcp_user_timeout_ms': 0, 'per_attempt_timeout_ms': 1}),
            (False, {'connect_timeout_ms': (1 << 64) - 1, 'retry_budget_max_tokens': 1}),
        ]
        for resilient, opts in valid:
            with self.subTest(resilient=resilient, opts=opts):
                pool = jina_net.Pool(resilient=resilient, **opts)
                try:
                    self.assertTrue(pool.add_connection('d', A('a')), 'the library made the pool')
                finally:
                    pool.close()
                self.assertIsNone(self.library_refuses(resilient, opts))

    def test_an_older_library_of_the_abi_refuses_the_new_options_by_name(self):
        # A 0.2.0 library (the same ABI: accepted at import) fills the fields of 0.2.1 with zeros and
        # refuses a pool that sets one; the binding says so at once, naming the option.
        self.assertEqual(_ffi.library_version, tuple(int(x) for x in jina_net.version().split('.')))
        real = _ffi.library_version
        _ffi.library_version = (0, 2, 0)
        try:
            for name, value in (('probe_after_ms', 500), ('fail_over_unanswered', True),
                                ('retry_budget_token_ratio', 0.5), ('per_attempt_timeout_ms', 1)):
                with self.subTest(option=name):
                    with self.assertRaises(jina_net.JinaNetError) as cm:
                        jina_net.Pool(**{name: value})
                    self.assertEqual(cm.exception.result_name, 'JINA_NET_UNSUPPORTED')
                    self.assertIn(f'pool option {name} needs libjina_net 0.2.1 or newer', str(cm.exception))
                    self.assertIn('is 0.2.0', str(cm.exception))
            jina_net.Pool(probe_after_ms=0, fail_over_unanswered=False, max_attempts=1)  # unset: fine
        finally:
            _ffi.library_version = real

    @staticmethod
    def library_refuses(resilient, opts):
        """The result name of jina_net_pool_new with these options, unchecked by the binding (None: made)."""
        o = _core._options(resilient, opts, check=False)
        _core._uses_runtime()
        out = ctypes.c_void_p()
        r = _ffi.lib.jina_net_pool_new(ctypes.byref(o), ctypes.byref(out))
        if r == _ffi.OK:
            _ffi.lib.jina_net_pool_free(out)
            return None
        return _ffi.result_name(r)

    async def test_idempotent_and_metrics_arguments(self):
        pool = jina_net.Pool()
        self.addCleanup(pool.close)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.metrics_text()
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ARGUMENT')
        pool.add_connection('enc', A('a'))
        with self.assertRaises(TypeError):
            pool.send(jina_net.REQUEST_DATA, [data_request('r')], 'enc', idempotent='yes')
        self.assertEqual(_core._pending, {})
        # idempotent alone and with metadata (jina_net_pool_send_ex): answered as any send
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('i1')], 'enc', idempotent=True)
        self.assertTrue(t.ok, t)
        self.assertEqual(seen(t), [])
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('i2')], 'enc', endpoint='/e',
                                    idempotent=True, metadata={'x-id': 'idem'})
        self.assertEqual((meta(t)['endpoint'], seen(t)), ('/e', [('x-id', b'idem')]))
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.metrics_text()
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ARGUMENT')
        counted = jina_net.Pool(metrics=True)
        self.addCleanup(counted.close)
        self.assertEqual(counted.metrics_text(), '')
        counted.add_connection('enc', A('a'))
        for _ in range(3):
            await counted.send_async(jina_net.REQUEST_DATA, [data_request('m')], 'enc')
        self.assertEqual(requests_total(counted), 3)
        self.assertIn(f'address="{A("a")}"', counted.metrics_text())


class GrayFailureTest(unittest.IsolatedAsyncioTestCase):
    """Each new pool option has its effect, against the project's test servers: a silent replica
    (``hostile:silent``: takes calls and never answers, as a hung runtime), a slow one, a brown-out."""

    def pool(self, **options):
        pool = jina_net.Pool(**options)
        self.addCleanup(pool.close)
        return pool

    async def asyncTearDown(self):
        # every send completed (pools are closed by the cleanups, after this)
        for _ in range(200):
            if not _core._pending:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(_core._pending, {})

    async def sends(self, pool, n, deployment='d', **kw):
        """n sends at once (round robin: one per replica of a two-replica list), their targets."""
        started = time.monotonic()
        results = await asyncio.gather(*(pool.send_async(jina_net.REQUEST_DATA, [data_request(f'r{i}')],
                                                         deployment, **kw) for i in range(n)))
        return [t for [t] in results], time.monotonic() - started

    def assert_stopped_answering(self, t, address):
        self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14), t)  # UNAVAILABLE
        self.assertIn('stopped answering', t.error_message)
        self.assertIn(address, t.error_message)
        self.assertEqual(t.address, address)

    async def test_probes_end_a_call_pending_on_a_silent_replica(self):
        pool = self.pool(probe_after_ms=200, probe_timeout_ms=300)
        pool.add_connection('d', A('silent'))
        [t], took = await self.sends(pool, 1)
        self.assert_stopped_answering(t, A('silent'))
        self.assertIn('300ms', t.error_message, 'the message gives the probe timeout')
        self.assertEqual(attempts(t), 1, 'a send not marked idempotent does not run again')
        self.assertLess(took, 2.0, 'ended after probe_after_ms + probe_timeout_ms, not at a deadline')
        e = t.error()
        self.assertEqual((e.result_name, e.grpc_code, e.address), ('JINA_NET_RPC_ERROR', 14, A('silent')))
        # probes off: the call waits on the silent replica until the send's deadline
        off = self.pool(probe_after_ms=0)
        off.add_connection('d', A('silent'))
        [t], took = await self.sends(off, 1, timeout_ms=1500)
        self.assertEqual(t.status, _ffi.DEADLINE_EXCEEDED, t)
        self.assertNotIn('stopped answering', t.error_message)
        self.assertGreaterEqual(took, 1.4)

    async def test_unanswered_sends_go_on_when_idempotent_or_with_fail_over_unanswered(self):
        probes = {'probe_after_ms': 200, 'probe_timeout_ms': 300}
        # default: the send that went to the silent replica ends (the replica may have its request)
        pool = self.pool(**probes)
        pool.add_connection('d', A('silent'))
        pool.add_connection('d', A('live'))
        targets, took = await self.sends(pool, 2)
        failed = [t for t in targets if not t.ok]
        self.assertEqual(len(failed), 1, targets)
        self.assert_stopped_answering(failed[0], A('silent'))
        self.assertLess(took, 2.0)
        # the replica is avoided until it answers a probe: the next sends go to the live one at once
        targets, took = await self.sends(pool, 4)
        self.assertEqual([meta(t)['replica'] for t in targets], ['live'] * 4)
        self.assertLess(took, 1.0)
        # fail_over_unanswered: sends not marked idempotent go on to the live replica too
        pool = self.pool(fail_over_unanswered=True, **probes)
        pool.add_connection('d', A('silent'))
        pool.add_connection('d', A('live'))
        targets, took = await self.sends(pool, 2, metadata={'x-id': 'moved'})
        self.assertEqual([(t.ok, meta(t).get('replica'), seen(t)) for t in targets],
                         [(True, 'live', [('x-id', b'moved')])] * 2, targets)
        self.assertLess(took, 2.0)
        # idempotent sends always go on (without fail_over_unanswered)
        pool = self.pool(**probes)
        pool.add_connection('d', A('silent'))
        pool.add_connection('d', A('live'))
        targets, took = await self.sends(pool, 2, idempotent=True)
        self.assertEqual([(t.ok, meta(t).get('replica')) for t in targets], [(True, 'live')] * 2, targets)
        self.assertLess(took, 2.0)

    async def test_a_per_attempt_timeout_moves_an_idempotent_send_from_a_slow_replica(self):
        pool = self.pool(resilient=True, per_attempt_timeout_ms=200)
        pool.add_connection('d', A('slow3'))  # answers after 3 s
        pool.add_connection('d', A('live'))
        targets, took = await self.sends(pool, 2, idempotent=True)
        self.assertEqual([(t.ok, meta(t).get('replica')) for t in targets], [(True, 'live')] * 2, targets)
        self.assertLess(took, 1.5, 'the attempt at the slow replica was given up after 200 ms')
        # not idempotent: the attempt's timeout ends the send (it is not run twice)
        pool = self.pool(resilient=True, per_attempt_timeout_ms=200)
        pool.add_connection('d', A('slow3'))
        pool.add_connection('d', A('live'))
        targets, took = await self.sends(pool, 2)
        failed = [t for t in targets if not t.ok]
        self.assertEqual(len(failed), 1, targets)
        self.assertEqual(failed[0].status, _ffi.DEADLINE_EXCEEDED, failed[0])
        self.assertIn('attempt timeout', failed[0].error_message)
        self.assertEqual(failed[0].address, A('slow3'))
        self.assertLess(took, 1.5)
        # without it, the idempotent send waits at the slow replica until its deadline
        pool = self.pool(resilient=True)
        pool.add_connection('d', A('slow3'))
        pool.add_connection('d', A('live'))
        targets, _ = await self.sends(pool, 2, idempotent=True, timeout_ms=1000)
        self.assertEqual(sorted(t.status for t in targets), [_ffi.OK, _ffi.DEADLINE_EXCEEDED], targets)

    async def test_eject_on_deadline(self):
        # An attempt timeout ejects the slow replica with eject_on_deadline (5 s, so that it lasts the
        # test); without it, the next sends still go there.
        for eject in (True, False):
            with self.subTest(eject_on_deadline=eject):
                pool = self.pool(resilient=True, per_attempt_timeout_ms=200, eject_on_deadline=eject,
                                 base_ejection_ms=5000, max_ejection_ms=5000)
                pool.add_connection('d', A('slow3'))
                pool.add_connection('d', A('live'))
                targets, _ = await self.sends(pool, 2, idempotent=True)
                self.assertTrue(all(t.ok for t in targets), targets)
                targets, _ = await self.sends(pool, 2)
                timed_out = [t for t in targets if t.status == _ffi.DEADLINE_EXCEEDED]
                if eject:
                    self.assertEqual([meta(t).get('replica') for t in targets], ['live'] * 2, targets)
                else:
                    self.assertEqual(len(timed_out), 1, targets)
                    self.assertEqual(timed_out[0].address, A('slow3'))

    async def test_the_retry_budget_stops_retrying_against_unavailable_replicas(self):
        async def brown_out(n, **options):
            pool = self.pool(resilient=True, metrics=True, **options)
            for u in ('u1', 'u2', 'u3'):
                pool.add_connection('d', A(u))
            tries = []
            for i in range(n):
                [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request(f'b{i}')], 'd')
                self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14), t)
                tries.append(attempts(t))
            self.assertEqual(requests_total(pool), sum(tries), 'the metrics count the same calls')
            return tries

        # no budget: every send tries the 3 replicas (fail-over)
        self.assertEqual(await brown_out(12, retry_budget_max_tokens=0), [3] * 12)
        # the resilient preset's budget (10 tokens): a failed send costs one, at half no send retries
        self.assertEqual(await brown_out(12), [3] * 5 + [1] * 7)
        # a smaller budget stops sooner
        self.assertEqual(await brown_out(6, retry_budget_max_tokens=2), [3] + [1] * 5)

    async def test_the_retry_budget_token_ratio_refills_it(self):
        # Empty the budget (12 failed sends), then 6 sends succeed: each gives the ratio back. With 1.0
        # the 10-token budget is above half again (6 > 5) and a failing send fails over; with 0.1 (0.6)
        # it is not.
        for ratio, want in ((1.0, 3), (0.1, 1)):
            with self.subTest(retry_budget_token_ratio=ratio):
                pool = self.pool(resilient=True, retry_budget_token_ratio=ratio)
                us = [A(u) for u in ('u1', 'u2', 'u3')]
                for u in us:
                    pool.add_connection('d', u)
                for i in range(12):
                    await pool.send_async(jina_net.REQUEST_DATA, [data_request(f'b{i}')], 'd')
                # the same shard (its budget) with a live replica only
                pool.add_connection('d', A('live'))
                for u in us:
                    pool.remove_connection('d', u)
                targets, _ = await self.sends(pool, 6)
                self.assertTrue(all(t.ok for t in targets), targets)
                for u in us:
                    pool.add_connection('d', u)
                pool.remove_connection('d', A('live'))
                [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('after')], 'd')
                self.assertEqual((t.grpc_code, attempts(t)), (14, want), t)

    async def test_connect_timeout(self):
        # A listener whose accept queue is full: the kernel drops new SYNs, a connect hangs.
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(('127.0.0.1', 0))
        listener.listen(0)
        address = '127.0.0.1:%d' % listener.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            self.addCleanup(filler.close)
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        await asyncio.sleep(0.1)
        pool = self.pool(connect_timeout_ms=300)
        pool.add_connection('d', address)
        [t], took = await self.sends(pool, 1, timeout_ms=5000)
        self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14), t)
        self.assertIn('connect', t.error_message)
        self.assertEqual(attempts(t), 3, 'jina\'s 3 attempts, each given up after 300 ms')
        self.assertLess(took, 3.0)
        # no connect timeout: the send's deadline ends it
        pool = self.pool(connect_timeout_ms=0)
        pool.add_connection('d', address)
        [t], took = await self.sends(pool, 1, timeout_ms=1500)
        self.assertEqual(t.status, _ffi.DEADLINE_EXCEEDED, t)
        self.assertGreaterEqual(took, 1.4)

    async def test_tcp_user_timeout_is_set_on_the_connection(self):
        port = SERVERS.port('live')

        def user_timeouts():
            """TCP_USER_TIMEOUT of this process's TCP connections to the live server."""
            found = []
            for fd in os.listdir('/proc/self/fd'):
                try:
                    s = socket.socket(fileno=os.dup(int(fd)))
                except OSError:
                    continue  # not a socket (or gone)
                try:
                    if s.family == socket.AF_INET and s.type == socket.SOCK_STREAM and s.getpeername()[1] == port:
                        found.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
                except OSError:
                    pass  # a listener, or not connected
                finally:
                    s.close()
            return found

        async def none_left():
            # a closed pool's connections are dropped on a library thread, shortly after
            for _ in range(100):
                if not user_timeouts():
                    return
                await asyncio.sleep(0.05)
            self.fail(f'connections to the live server left: {user_timeouts()}')

        await none_left()  # (those of earlier tests' pools)
        for value in (1234, 0):
            with self.subTest(tcp_user_timeout_ms=value):
                pool = self.pool(tcp_user_timeout_ms=value)
                pool.add_connection('d', A('live'))
                targets, _ = await self.sends(pool, 1)
                self.assertTrue(targets[0].ok)
                self.assertEqual(user_timeouts(), [value])
                pool.close()
                await none_left()

    async def test_keepalive_closes_a_connection_to_a_frozen_replica(self):
        # A frozen process (SIGSTOP): its kernel keeps the connection and acknowledges the bytes, nothing
        # answers. Probes off: only the keepalive PING (10 s, the smallest interval) finds it. Without
        # keepalive the call waits for its deadline. ~12 s.
        frozen = TestServers('echo=frozen')
        self.addCleanup(frozen.close)
        with_keepalive = self.pool(probe_after_ms=0, max_attempts=1, keepalive_interval_ms=10000,
                                   keepalive_timeout_ms=500)
        without = self.pool(probe_after_ms=0, max_attempts=1, keepalive_interval_ms=0)
        for pool in (with_keepalive, without):
            pool.add_connection('d', frozen.addr['frozen'])
            [t], _ = await self.sends(pool, 1)
            self.assertTrue(t.ok, t)
        self.addCleanup(os.kill, frozen.proc.pid, signal.SIGCONT)  # before frozen.close (cleanups run LIFO)
        freeze(frozen.proc.pid)
        started = time.monotonic()

        async def timed(pool, timeout_ms):
            [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('k')], 'd', timeout_ms=timeout_ms)
            return t, time.monotonic() - started

        (t, took), (t_without, took_without) = await asyncio.gather(timed(with_keepalive, 0), timed(without, 12500))
        self.assertEqual((t.status, t.grpc_code), (_ffi.RPC_ERROR, 14), (t, took, t_without, took_without, meta(t) if t.ok else None, frozen.proc.pid, open(f"/proc/{frozen.proc.pid}/stat").read()))
        self.assertIn('keep-alive', t.error_message)
        self.assertLess(took, 12.0)
        self.assertEqual(t_without.status, _ffi.DEADLINE_EXCEEDED, t_without)
        self.assertGreaterEqual(took_without, 12.4)


class OneShotTest(unittest.IsolatedAsyncioTestCase):
    async def test_send_requests_sync_and_async(self):
        r = await asyncio.to_thread(
            jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('one')], A('a'), 5.0, False, None, '/x')
        self.assertEqual(r.address, A('a'))
        self.assertIn(b'one', r.body)
        self.assertEqual(dict((k, v.decode()) for k, v in r.metadata)['endpoint'], '/x')
        r = await jina_net.send_request_async(jina_net.REQUEST_DATA, data_request('two'), A('b'))
        self.assertIn(b'two', r.body)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await jina_net.send_request_async(jina_net.REQUEST_DATA, data_request('x'), A('down'))
        self.assertEqual(cm.exception.grpc_code, 14)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('x')], A('down'))
        self.assertEqual((cm.exception.result_name, cm.exception.grpc_code), ('JINA_NET_RPC_ERROR', 14))
        self.assertEqual(_core._pending, {})

    def test_helpers(self):
        started = jina_net.Pool()
        started.add_connection('x', A('a'))  # the runtime is running in this process from here on
        started.close()
        self.assertTrue(jina_net.host_is_local('localhost'))
        self.assertTrue(jina_net.host_is_local('127.0.0.1'))
        self.assertFalse(jina_net.host_is_local('1.2.3.4'))
        with self.assertRaises(jina_net.JinaNetError) as cm:
            jina_net.host_is_local('jina.ai')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_HOST')
        self.assertTrue(jina_net.is_remote_local_connection('8.8.8.8', '192.168.0.1'))
        self.assertFalse(jina_net.is_remote_local_connection('192.168.0.1', '8.8.8.8'))
        self.assertEqual(jina_net.default_grpc_options(),
                         [('grpc.max_send_message_length', -1), ('grpc.max_receive_message_length', -1)])
        with self.assertRaises(jina_net.JinaNetError) as cm:
            jina_net.init_runtime(2)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_ALREADY_STARTED')

    async def test_busy_poll_is_set_while_the_runtime_runs_and_sends_go_on(self):
        # any time, also while the runtime runs; 0 (off) to 10000 us; a refused value names itself
        with self.assertRaises(jina_net.JinaNetError) as cm:
            jina_net.set_busy_poll_us(10_001)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ARGUMENT')
        self.assertIn('10001', cm.exception.message)
        # what ctypes would wrap or take is refused before the call
        with self.assertRaises(ValueError) as cm:
            jina_net.set_busy_poll_us(-1)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ARGUMENT')
        with self.assertRaises(ValueError):
            jina_net.set_busy_poll_us((1 << 32) + 50)
        for wrong in ('100', 1.5, True, None):
            with self.assertRaises(TypeError):
                jina_net.set_busy_poll_us(wrong)
        pool = jina_net.Pool()
        try:
            pool.add_connection('x', A('a'))
            for us in (0, 10_000, 100):
                jina_net.set_busy_poll_us(us)
                for i in range(3):
                    [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request(f'b{us}-{i}')], 'x')
                    self.assertTrue(t.ok, t.error_message)
                    self.assertIn(f'b{us}-{i}'.encode(), t.body)
        finally:
            pool.close()


FORK_SCRIPT = textwrap.dedent('''
    import asyncio, os, sys
    import jina_net
    addr, started_first = sys.argv[1], sys.argv[2] == 'started'

    def req():
        h = b'\\x0a\\x01r'
        return b'\\x0a' + bytes([len(h)]) + h

    async def send():
        pool = jina_net.Pool()
        pool.add_connection('d', addr)
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [req()], 'd')
        pool.close()
        return t.ok

    if started_first:
        print('parent', asyncio.run(send()), flush=True)
    pid = os.fork()
    if pid == 0:
        try:
            print('child', asyncio.run(send()), flush=True)
        except RuntimeError as e:
            print('child RuntimeError', 'forked from it' in str(e), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print('parent after fork', asyncio.run(send()), flush=True)
''')


EXIT_SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import jina_net

    async def main():
        pool = jina_net.Pool()
        pool.add_connection('slow', sys.argv[1])
        h = b'\\x0a\\x01r'
        futures = [pool.send_async(jina_net.REQUEST_DATA, [b'\\x0a' + bytes([len(h)]) + h], 'slow') for _ in range(50)]
        await asyncio.sleep(0.2)
        print('leaving with', len(futures), 'sends pending', flush=True)

    asyncio.run(main())
''')


class ExitTest(unittest.TestCase):
    def test_exit_with_sends_pending_is_clean(self):
        # At exit the binding shuts the runtime down: pending sends complete on the main thread (their
        # loop is closed by then) and no library thread calls into Python while it finalizes.
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'bindings', 'python'))
        r = subprocess.run([sys.executable, '-c', EXIT_SCRIPT, A('slow')], env=env, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual((r.returncode, r.stdout.strip(), r.stderr), (0, 'leaving with 50 sends pending', ''))


class ForkTest(unittest.TestCase):
    def run_script(self, mode):
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'bindings', 'python'))
        r = subprocess.run([sys.executable, '-c', FORK_SCRIPT, A('a'), mode], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def test_fork_before_first_use_is_fine(self):
        self.assertEqual(self.run_script('fresh'), ['child True', 'parent after fork True'])

    def test_child_forked_after_first_use_gets_an_error_not_a_hang(self):
        self.assertEqual(self.run_script('started'),
                         ['parent True', 'child RuntimeError True', 'parent after fork True'])


if __name__ == '__main__':
    unittest.main()
