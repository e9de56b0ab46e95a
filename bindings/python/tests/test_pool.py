"""jina_net.Pool and the one-shot helpers (bytes level, no jina) against the project's test servers."""
import asyncio
import base64
import os
import subprocess
import sys
import textwrap
import threading
import unittest

from helpers import ROOT, TestServers, rss_kib

import jina_net
from jina_net import _core, _ffi

SERVERS = None


def setUpModule():
    global SERVERS
    SERVERS = TestServers(
        'echo=a', 'echo=b', 'echo=s0', 'echo=s1', 'error=err', 'unavailable=down', 'flaky:2=flaky',
        'flaky:2=flaky1', 'slow:5000=slow', 'head:ranker=head', 'echo=w0', 'flaky:2=flaky2', 'flaky:1=flaky-count',
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
        self.assertEqual(self.pool.routes(), f'enc\tshard 0\t{A("a")},{A("b")}\n')

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
        # after close the pool is empty and usable again
        with self.assertRaises(jina_net.JinaNetError):
            await self.send('slow')
        self.pool.add_connection('enc', A('a'))
        [t] = await self.send('enc')
        self.assertTrue(t.ok)

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
