"""jina_net.networking.GrpcConnectionPool against jina 3.1.0's own GrpcConnectionPool: the same
signatures (plus the keyword-only ``metadata`` of the sends), and the same scenario against the same real
jina 3.1.0 workers gives the same results (response bytes, trailing metadata, error codes, empty task
lists), also with request metadata; the metadata reaches the project's echo test server."""
import asyncio
import inspect
import os
import tempfile
import unittest

os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')

import grpc  # noqa: E402
from docarray import Document, DocumentArray  # noqa: E402
from grpc.aio import AioRpcError, Metadata  # noqa: E402
from jina.enums import PollingType  # noqa: E402
from jina.proto import serializer  # noqa: E402
from jina.serve import networking as jina_networking  # noqa: E402
from jina.types.request.control import ControlRequest  # noqa: E402
from jina.types.request.data import DataRequest  # noqa: E402

from helpers import TestServers, free_port, pki, runtimes  # noqa: E402

from jina_net import _core  # noqa: E402
from jina_net.networking import GrpcConnectionPool, JinaNetRpcError, host_is_local, is_remote_local_connection  # noqa: E402

JinaPool = jina_networking.GrpcConnectionPool
assert JinaPool is not GrpcConnectionPool

RUNTIMES = None
SERVERS = None


def setUpModule():
    global RUNTIMES, SERVERS
    SERVERS = TestServers('echo=m0', 'echo=m1', 'flaky:2=mflaky', 'hostile:silent=msilent', 'unavailable=mdown')
    RUNTIMES = runtimes(
        (('worker', 'w0'), {}),
        (('worker', 'w1'), {}),
        (('worker', 's0', '--shard-id', '0', '--shards', '2'), {}),
        (('worker', 's1', '--shard-id', '1', '--shards', '2'), {}),
        (('worker', 'raiser', '--uses', 'Raiser'), {}),
    )
    rts = RUNTIMES.__enter__()
    global ADDR
    ADDR = {rt.name: rt.addr for rt in rts}


def tearDownModule():
    RUNTIMES.__exit__(None, None, None)
    SERVERS.close()


def request_bytes(i, endpoint=None, docs=2):
    r = DataRequest()
    r.header.request_id = f'req-{i}'
    if endpoint:
        r.header.exec_endpoint = endpoint
    r.data.docs = DocumentArray([Document(id=f'doc-{i}-{k}', text=f't{k}') for k in range(docs)])
    return r.proto.SerializeToString()


def outcome(value):
    """A comparable record of what a send gave."""
    if isinstance(value, BaseException):
        if isinstance(value, AioRpcError):
            return ('rpc error', value.code())
        return ('exception', type(value).__name__, str(value))
    response, metadata = value
    if isinstance(response, DataRequest):
        raw = serializer.DataRequestProto.SerializeToString(response)
    else:
        raw = response.proto.SerializeToString()
    return (type(response).__name__, raw, sorted(metadata))


async def settle(tasks):
    return [outcome(r) for r in await asyncio.gather(*tasks, return_exceptions=True)]


async def scenario(pool_cls):
    """Runs one scenario with a pool class; returns the list of outcomes."""
    pool = pool_cls()
    dead = f'127.0.0.1:{free_port()}'
    pool.add_connection(deployment='enc', address=ADDR['w0'])
    pool.add_connection(deployment='enc', address=ADDR['w1'])
    pool.add_connection(deployment='enc', address=ADDR['w1'])  # known: not added twice
    pool.add_connection(deployment='idx', address=ADDR['s0'], shard_id=0)
    pool.add_connection(deployment='idx', address=ADDR['s1'], shard_id=1)
    pool.add_connection(deployment='bad', address=ADDR['raiser'])
    pool.add_connection(deployment='dead', address=dead)
    out = []
    # round robin, one request: process_single_data
    for i in range(4):
        tasks = pool.send_request(DataRequest(request_bytes(i)), 'enc')
        assert isinstance(tasks, list) and all(isinstance(t, asyncio.Task) for t in tasks), tasks
        out.append(('any', await settle(tasks)))
    # several requests: process_data, with the endpoint metadata
    out.append(('count', await settle(pool.send_requests(
        [DataRequest(request_bytes(10, '/count')), DataRequest(request_bytes(11, '/count', docs=3))], 'enc',
        endpoint='/count'))))
    # ALL: one task per shard; a given shard
    out.append(('all', await settle(pool.send_request(DataRequest(request_bytes(20)), 'idx',
                                                      polling_type=PollingType.ALL))))
    out.append(('shard 1', await settle(pool.send_request(DataRequest(request_bytes(21)), 'idx', shard_id=1))))
    # one replica, one task
    task = pool.send_requests_once([DataRequest(request_bytes(30))], 'enc')
    assert isinstance(task, asyncio.Task), task
    out.append(('once', await settle([task])))
    task = pool.send_request_once(DataRequest(request_bytes(31)), 'idx', shard_id=0)
    out.append(('once shard', await settle([task])))
    # an executor that raises: in-band error (is-error metadata), not an exception
    out.append(('raiser', await settle(pool.send_request(DataRequest(request_bytes(40)), 'bad'))))
    # nothing listens: UNAVAILABLE after 3 attempts
    out.append(('dead', await settle(pool.send_request(DataRequest(request_bytes(50)), 'dead'))))
    # no replica: no task at all
    out.append(('unknown', pool.send_request(DataRequest(request_bytes(60)), 'nowhere')))
    out.append(('no head', pool.send_request(DataRequest(request_bytes(61)), 'enc', head=True)))
    out.append(('no shard', pool.send_request(DataRequest(request_bytes(62)), 'idx', shard_id=7)))
    out.append(('once unknown', pool.send_requests_once([DataRequest(request_bytes(63))], 'nowhere')))
    # a control request (the worker answers STATUS with the request)
    status = ControlRequest('STATUS')
    status.header.request_id = 'status-1'
    out.append(('status', await settle(pool.send_request(status, 'enc'))))
    # an unsupported request type fails inside the task
    out.append(('bad type', await settle(pool.send_request('not a request', 'enc'))))
    # remove a replica: the other one answers
    removed = await pool.remove_connection(deployment='enc', address=ADDR['w0'])
    out.append(('removed', bool(removed), await pool.remove_connection(deployment='enc', address=ADDR['w0'])))
    for i in range(2):
        out.append(('after remove', await settle(pool.send_request(DataRequest(request_bytes(70 + i)), 'enc'))))
    await pool.close()
    out.append(('after close', pool.send_request(DataRequest(request_bytes(80)), 'enc')))
    # usable again after close, as jina's
    pool.add_connection(deployment='enc', address=ADDR['w1'])
    out.append(('reopened', await settle(pool.send_request(DataRequest(request_bytes(81)), 'enc'))))
    await pool.close()
    return out


def tagged_by(step):
    """The worker names that tagged the docs of a step's data responses."""
    names = []
    for o in step[1]:
        if o[0] == 'DataRequest':
            docs = DataRequest(o[1]).docs
            names.append(sorted({d.tags['by'] for d in docs if 'by' in d.tags}))
    return names


class SameAsJinaTest(unittest.IsolatedAsyncioTestCase):
    async def test_same_scenario_same_results(self):
        theirs = await scenario(JinaPool)
        ours = await scenario(GrpcConnectionPool)
        self.assertEqual(len(ours), len(theirs))
        for a, b in zip(ours, theirs):
            self.assertEqual(a, b, f'step {b[0]!r}')
        self.assertEqual(_core._pending, {})
        # and the scenario shows what it should (so that equal is not trivially equal)
        steps = {}
        for s in ours:
            steps.setdefault(s[0], []).append(s)
        self.assertEqual([tagged_by(s) for s in steps['any']], [[['w0']], [['w1']], [['w0']], [['w1']]])
        [[count]] = [s[1] for s in steps['count']]
        docs = DataRequest(count[1]).docs
        self.assertEqual([d.text.split(';')[0] for d in docs], ['5'], 'one process_data call with 2 + 3 docs')
        self.assertEqual(tagged_by(steps['all'][0]), [['s0'], ['s1']])
        self.assertEqual(tagged_by(steps['shard 1'][0]), [['s1']])
        [[raiser]] = [s[1] for s in steps['raiser']]
        self.assertIn(('is-error', 'true'), raiser[2])
        self.assertEqual(steps['dead'][0][1], [('rpc error', grpc.StatusCode.UNAVAILABLE)])
        for k in ('unknown', 'no head', 'no shard'):
            self.assertEqual(steps[k][0][1], [])
        self.assertIsNone(steps['once unknown'][0][1])
        self.assertEqual(steps['status'][0][1][0][0], 'ControlRequest')
        self.assertEqual(steps['bad type'][0][1][0][:2], ('exception', 'ValueError'))
        self.assertEqual(steps['removed'][0][1:], (True, None))
        self.assertEqual([tagged_by(s) for s in steps['after remove']], [[['w1']], [['w1']]])
        self.assertEqual(steps['after close'][0][1], [])

    async def test_errors_are_aio_rpc_errors_with_address(self):
        pool = GrpcConnectionPool()
        dead = f'127.0.0.1:{free_port()}'
        pool.add_connection(deployment='dead', address=dead)
        [task] = pool.send_request(DataRequest(request_bytes(1)), 'dead')
        with self.assertRaises(AioRpcError) as cm:
            await task
        e = cm.exception
        self.assertIsInstance(e, JinaNetRpcError)
        self.assertIsInstance(e, grpc.RpcError)
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(e.address, dead)
        self.assertEqual(e.result_name, 'JINA_NET_RPC_ERROR')
        self.assertIsInstance(e.trailing_metadata(), Metadata)
        await pool.close()

    async def test_cancelling_the_tasks_cancels_the_send(self):
        pool = GrpcConnectionPool()
        pool.add_connection(deployment='enc', address=ADDR['w0'])
        tasks = pool.send_request(DataRequest(request_bytes(1)), 'enc')
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        self.assertTrue(all(isinstance(r, asyncio.CancelledError) for r in results))
        for _ in range(200):
            if not _core._pending:
                break
            await asyncio.sleep(0.01)
        self.assertEqual(_core._pending, {}, 'the library completed the cancelled send')
        # the pool goes on working
        [t] = pool.send_request(DataRequest(request_bytes(2)), 'enc')
        response, _ = await t
        self.assertEqual(len(response.docs), 3)
        await pool.close()


METADATA = {'authorization': 'Bearer t0k3n', 'traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
            'x-trace-bin': bytes([0, 1, 2, 0xff])}


def seen(metadata):
    """The request metadata the echo test server saw, from its ``seen-<key>`` trailers (grpc.aio.Metadata:
    ``-bin`` values decoded), by key: the server keeps the order of a key's values, not the order
    between keys (HTTP/2 headers of different names have none)."""
    return by_key([(k[len('seen-'):], v) for k, v in metadata if k.startswith('seen-')])


def by_key(pairs):
    """`pairs` sorted by key, a repeated key's values in their order (a stable sort)."""
    return sorted(pairs, key=lambda kv: kv[0])


class MetadataTest(unittest.IsolatedAsyncioTestCase):
    """``metadata=`` of the drop-in's sends (jina 3.1.0's have none)."""

    async def asyncSetUp(self):
        self.pool = GrpcConnectionPool()

    async def asyncTearDown(self):
        await self.pool.close()
        self.assertEqual(_core._pending, {})

    async def test_metadata_reaches_the_replica_from_every_send_method(self):
        self.pool.add_connection(deployment='enc', address=SERVERS.addr['m0'])
        self.pool.add_connection(deployment='idx', address=SERVERS.addr['m0'], shard_id=0)
        self.pool.add_connection(deployment='idx', address=SERVERS.addr['m1'], shard_id=1)
        want = [('authorization', 'Bearer t0k3n'), ('traceparent', METADATA['traceparent']),
                ('x-trace-bin', bytes([0, 1, 2, 0xff]))]
        req = lambda i: DataRequest(request_bytes(i))  # noqa: E731
        [task] = self.pool.send_request(req(1), 'enc', metadata=METADATA)
        response, md = await task
        self.assertIsInstance(md, Metadata)
        self.assertEqual(seen(md), by_key(want))
        self.assertEqual(response.header.request_id, 'req-1', 'the echo worker answered the request')
        [task] = self.pool.send_requests([req(2), req(3)], 'enc', endpoint='/count', metadata=METADATA)
        _, md = await task
        self.assertEqual((seen(md), md['endpoint'], md['request-count']), (by_key(want), '/count', '2'))
        tasks = self.pool.send_request(req(4), 'idx', polling_type=PollingType.ALL, metadata=METADATA)
        self.assertEqual(len(tasks), 2)
        for i, (_, md) in enumerate(await asyncio.gather(*tasks)):
            self.assertEqual((md['replica'], seen(md)), (f'm{i}', by_key(want)))
        _, md = await self.pool.send_requests_once([req(5)], 'enc', metadata=METADATA)
        self.assertEqual(seen(md), by_key(want))
        _, md = await self.pool.send_request_once(req(6), 'idx', shard_id=1, metadata=METADATA)
        self.assertEqual((md['replica'], seen(md)), ('m1', by_key(want)))
        # no metadata: nothing but what jina sends
        [task] = self.pool.send_request(req(7), 'enc')
        _, md = await task
        self.assertEqual(seen(md), [])

    async def test_pairs_repeat_a_key_and_grpc_metadata_is_accepted(self):
        self.pool.add_connection(deployment='enc', address=SERVERS.addr['m0'])
        [task] = self.pool.send_request(DataRequest(request_bytes(1)), 'enc',
                                        metadata=[('x-id', '1'), ('x-id', '2'), ('x-bin', b'\x00')])
        _, md = await task
        self.assertEqual(seen(md), by_key([('x-id', '1'), ('x-id', '2'), ('x-bin', b'\x00')]))
        self.assertEqual(md.get_all('seen-x-id'), ['1', '2'])
        grpc_md = Metadata(('x-id', 'a'), ('x-id', 'b'), ('authorization', 'Bearer x'))
        [task] = self.pool.send_request(DataRequest(request_bytes(2)), 'enc', metadata=grpc_md)
        _, md = await task
        self.assertEqual(seen(md), by_key([('x-id', 'a'), ('x-id', 'b'), ('authorization', 'Bearer x')]))

    async def test_metadata_goes_with_every_attempt(self):
        # the replica fails twice with UNAVAILABLE; the third attempt (jina's policy) answers with it
        self.pool.add_connection(deployment='flaky', address=SERVERS.addr['mflaky'])
        [task] = self.pool.send_request(DataRequest(request_bytes(1)), 'flaky', metadata={'x-id': 'retried'})
        _, md = await task
        self.assertEqual(seen(md), by_key([('x-id', 'retried')]))

    async def test_invalid_metadata_raises_from_the_call_without_a_task(self):
        self.pool.add_connection(deployment='enc', address=SERVERS.addr['m0'])
        self.pool.add_connection(deployment='idx', address=SERVERS.addr['m1'], shard_id=0)
        sends = {
            'send_request': lambda md: self.pool.send_request(DataRequest(request_bytes(1)), 'enc', metadata=md),
            'send_requests ALL': lambda md: self.pool.send_requests([DataRequest(request_bytes(1))], 'idx',
                                                                    polling_type=PollingType.ALL, metadata=md),
            'send_requests_once': lambda md: self.pool.send_requests_once([DataRequest(request_bytes(1))], 'enc',
                                                                          metadata=md),
            'send_request_once': lambda md: self.pool.send_request_once(DataRequest(request_bytes(1)), 'enc',
                                                                        metadata=md),
        }
        tasks_before = len(asyncio.all_tasks())
        for name, send in sends.items():
            for bad in ({'Authorization': 'x'}, {'grpc-timeout': '1S'}, {'content-type': 'x'}, {'x': 'a\nb'},
                        {'x': b'\xff'}):
                with self.subTest(send=name, metadata=bad):
                    with self.assertRaises(JinaNetRpcError) as cm:
                        send(bad)
                    e = cm.exception
                    self.assertIsInstance(e, AioRpcError)
                    self.assertEqual((e.code(), e.result_name), (grpc.StatusCode.INVALID_ARGUMENT,
                                                                 'JINA_NET_INVALID_ARGUMENT'))
                    self.assertIn(repr(next(iter(bad))).replace("'", '"'), e.details())
            for bad in ({'x': 1}, 'x', [('x',)]):
                with self.subTest(send=name, metadata=bad):
                    with self.assertRaises(TypeError):
                        send(bad)
        with self.assertRaises(JinaNetRpcError):
            self.pool.send_requests([DataRequest(request_bytes(1))], 'enc', endpoint='/x', metadata={'endpoint': '/y'})
        self.assertEqual(len(asyncio.all_tasks()), tasks_before, 'no task was created')
        await asyncio.sleep(0.1)
        self.assertEqual(_core._pending, {})
        # the pool goes on working; no replica: [] as jina, nothing sent
        [task] = self.pool.send_request(DataRequest(request_bytes(2)), 'enc', metadata={'x-id': 'ok'})
        _, md = await task
        self.assertEqual(seen(md), by_key([('x-id', 'ok')]))
        self.assertEqual(self.pool.send_request(DataRequest(request_bytes(3)), 'nowhere', metadata={'x-id': 'ok'}), [])


async def at_workers(pool, metadata=None):
    """The same sends through ``pool`` to the real jina workers (every send method; the outcomes)."""
    pool.add_connection(deployment='enc', address=ADDR['w0'])
    pool.add_connection(deployment='idx', address=ADDR['s0'], shard_id=0)
    pool.add_connection(deployment='idx', address=ADDR['s1'], shard_id=1)
    pool.add_connection(deployment='bad', address=ADDR['raiser'])
    kw = {} if metadata is None else {'metadata': metadata}
    status = ControlRequest('STATUS')
    status.header.request_id = 'status-1'
    out = [
        await settle(pool.send_request(DataRequest(request_bytes(1)), 'enc', **kw)),
        await settle(pool.send_requests([DataRequest(request_bytes(2, '/count')),
                                         DataRequest(request_bytes(3, '/count', docs=3))], 'enc',
                                        endpoint='/count', **kw)),
        await settle(pool.send_request(DataRequest(request_bytes(4)), 'idx', polling_type=PollingType.ALL, **kw)),
        await settle([pool.send_requests_once([DataRequest(request_bytes(5))], 'idx', shard_id=1, **kw)]),
        await settle([pool.send_request_once(DataRequest(request_bytes(6)), 'enc', **kw)]),
        await settle(pool.send_request(DataRequest(request_bytes(7)), 'bad', **kw)),
        await settle(pool.send_request(status, 'enc', **kw)),
    ]
    await pool.close()
    return out


class MetadataAtJinaWorkersTest(unittest.IsolatedAsyncioTestCase):
    async def test_real_workers_answer_the_same_bytes_with_and_without_metadata(self):
        """Request metadata is transparent to a jina 3.1.0 worker: each send gives byte for byte what
        it gives without metadata, and what jina's own pool gives."""

        async def run(pool_cls, metadata):
            return await at_workers(pool_cls(), metadata)

        theirs = await run(JinaPool, None)
        without = await run(GrpcConnectionPool, None)
        md = dict(METADATA, **{'x-request-id': 'r-1'})
        for metadata in (md, list(md.items()) + [('x-request-id', 'r-2')]):
            with self.subTest(metadata=metadata):
                ours = await run(GrpcConnectionPool, metadata)
                self.assertEqual(ours, without)
        self.assertEqual(without, theirs)
        # what the steps show (so that equal is not trivially equal)
        self.assertEqual([len(step) for step in theirs], [1, 1, 2, 1, 1, 1, 1])
        self.assertTrue(all(o[0] in ('DataRequest', 'ControlRequest') for step in theirs for o in step), theirs)
        self.assertIn(('is-error', 'true'), theirs[5][0][2])


class CompressionAtJinaWorkersTest(unittest.IsolatedAsyncioTestCase):
    async def test_compressed_requests_give_the_same_documents(self):
        """compression= as jina 3.2's GrpcConnectionPool takes it: a real jina 3.1.0 worker (grpc)
        decompresses the requests and answers the same documents, byte for byte, as without, and as
        jina's own pool."""
        theirs = await at_workers(JinaPool())
        without = await at_workers(GrpcConnectionPool())
        self.assertEqual(without, theirs)
        for compression in ('Gzip', 'Deflate', 'gzip'):
            with self.subTest(compression=compression):
                pool = GrpcConnectionPool(compression=compression)
                self.assertNotEqual(pool.pool_options['compression'], _core.COMPRESSION_NONE)
                self.assertEqual(await at_workers(pool), without)
        # the documents came back (so that equal is not trivially equal)
        [(kind, raw, _)] = without[0]
        self.assertEqual(kind, 'DataRequest')
        self.assertEqual([d.id for d in DataRequest(raw).docs], ['doc-1-0', 'doc-1-1', 'from-w0'], 'the worker ran')

    def test_the_constructor_takes_jina_3_2_names(self):
        for compression, value in ((None, 0), ('NoCompression', 0), ('Gzip', 1), ('Deflate', 2), ('gzip', 1),
                                   ('DEFLATE', 2), (_core.COMPRESSION_GZIP, 1), (grpc.Compression.Gzip, 1),
                                   (grpc.Compression.Deflate, 2)):
            with self.subTest(compression=compression):
                self.assertEqual(GrpcConnectionPool(compression=compression).pool_options['compression'], value)
        # positionally, after the logger, as jina 3.2's constructor
        self.assertEqual(GrpcConnectionPool(None, 'Deflate').pool_options['compression'], 2)
        with self.assertRaisesRegex(ValueError, 'unknown compression "Brotli"'):
            GrpcConnectionPool(compression='Brotli')
        with self.assertRaises(TypeError):
            GrpcConnectionPool(compression=1.5)


class WaitReadyAtJinaWorkersTest(unittest.IsolatedAsyncioTestCase):
    async def test_wait_ready_and_states(self):
        pool = GrpcConnectionPool()
        pool.add_connection(deployment='enc', address=ADDR['w0'])
        pool.add_connection(deployment='enc', address=ADDR['w1'])
        pool.add_connection(deployment='idx', address=ADDR['s0'], shard_id=0)
        pool.add_connection(deployment='idx', address=ADDR['s1'], shard_id=1)
        await pool.wait_ready(timeout=30)
        self.assertEqual({r.state for route in pool.route_table() for r in route.replicas}, {'ready'})
        dead = f'127.0.0.1:{free_port()}'
        pool.add_connection(deployment='enc', address=dead)
        with self.assertRaises(_core.JinaNetError) as cm:
            await pool.wait_ready('enc', timeout=1)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_DEADLINE_EXCEEDED')
        self.assertIn(f'deployment "enc" shard 0 at {dead}', str(cm.exception))
        self.assertNotIn(ADDR['w0'], str(cm.exception))
        await pool.wait_ready('idx', timeout=30)
        with self.assertRaises(_core.JinaNetError) as cm:
            await pool.wait_ready('nowhere', timeout=1)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_UNKNOWN_DEPLOYMENT')
        with self.assertRaises(ValueError):
            await pool.wait_ready(timeout=-1)
        await pool.close()


class TlsDropInTest(unittest.IsolatedAsyncioTestCase):
    async def test_identity_and_server_name_through_the_drop_in(self):
        with tempfile.TemporaryDirectory() as d:
            certs = pki(d)
            f = lambda name: os.path.join(d, name)  # noqa: E731
            with TestServers('echo=mtls', options=[f'--tls-cert={f("svc.pem")}', f'--tls-key={f("svc.key")}',
                                                   f'--client-ca={f("client-ca.pem")}']) as servers:
                addr = servers.addr['mtls']
                tls = dict(tls=True, root_certificates_pem=certs['server-ca.pem'])
                pool = GrpcConnectionPool(**tls, tls_cert_chain_pem=certs['client.pem'],
                                          tls_private_key_pem=certs['client.key'])
                pool.add_connection(deployment='enc', address=addr, tls_server_name='executor.jina.svc')
                [task] = pool.send_request(DataRequest(request_bytes(1)), 'enc')
                response, md = await task
                self.assertEqual(response.header.request_id, 'req-1')
                self.assertEqual(md['replica'], 'mtls')
                await pool.close()
                # no identity: the TLS error as an AioRpcError naming the replica
                pool = GrpcConnectionPool(**tls, tls_server_name='executor.jina.svc')
                pool.add_connection(deployment='enc', address=addr)
                [task] = pool.send_request(DataRequest(request_bytes(2)), 'enc')
                with self.assertRaises(JinaNetRpcError) as cm:
                    await task
                e = cm.exception
                self.assertEqual((e.code(), e.result_name, e.address),
                                 (grpc.StatusCode.UNAVAILABLE, 'JINA_NET_TLS_ERROR', addr))
                self.assertIn('requires a client certificate', e.details())
                await pool.close()


class StaticHelpersTest(unittest.IsolatedAsyncioTestCase):
    async def test_send_request_sync_async_and_requests_sync_as_jina(self):
        status = ControlRequest('STATUS')
        ours = await asyncio.to_thread(GrpcConnectionPool.send_request_sync, status, ADDR['w0'])
        theirs = await asyncio.to_thread(JinaPool.send_request_sync, status, ADDR['w0'])
        self.assertIsInstance(ours, ControlRequest)
        self.assertEqual(ours.proto.SerializeToString(), theirs.proto.SerializeToString())
        raw = request_bytes(1)
        ours = await asyncio.to_thread(GrpcConnectionPool.send_request_sync, DataRequest(raw), ADDR['w1'], 10.0)
        theirs = await asyncio.to_thread(JinaPool.send_request_sync, DataRequest(raw), ADDR['w1'], 10.0)
        self.assertEqual(ours.buffer, theirs.buffer)
        reqs = lambda: [DataRequest(request_bytes(2, '/count')), DataRequest(request_bytes(3, '/count'))]  # noqa: E731
        ours = await asyncio.to_thread(GrpcConnectionPool.send_requests_sync, reqs(), ADDR['w1'], endpoint='/count')
        theirs = await asyncio.to_thread(JinaPool.send_requests_sync, reqs(), ADDR['w1'], endpoint='/count')
        self.assertEqual(ours.buffer, theirs.buffer)
        ours = await GrpcConnectionPool.send_request_async(DataRequest(raw), ADDR['w0'])
        theirs = await JinaPool.send_request_async(DataRequest(raw), ADDR['w0'])
        self.assertEqual(ours.buffer, theirs.buffer)
        dead = f'127.0.0.1:{free_port()}'
        for helper in (GrpcConnectionPool, JinaPool):
            with self.assertRaises(grpc.RpcError) as cm:
                await asyncio.to_thread(helper.send_request_sync, ControlRequest('STATUS'), dead, 5.0)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, helper)

    def test_module_helpers_and_options_as_jina(self):
        self.assertEqual(GrpcConnectionPool.get_default_grpc_options(), JinaPool.get_default_grpc_options())
        for host in ('localhost', '0.0.0.0', '127.0.0.1', '10.1.2.3', '8.8.8.8'):
            self.assertEqual(host_is_local(host), jina_networking.host_is_local(host), host)
        with self.assertRaises(ValueError):
            host_is_local('jina.ai.invalid')
        for a, b in (('8.8.8.8', '192.168.0.1'), ('192.168.0.1', '8.8.8.8'), ('localhost', '127.0.0.1'),
                     ('example.com', 'localhost'), ('8.8.8.8', 'example.com')):
            self.assertEqual(is_remote_local_connection(a, b), jina_networking.is_remote_local_connection(a, b),
                             (a, b))


class PoolOptionsTest(unittest.IsolatedAsyncioTestCase):
    """libjina_net pool options as keyword arguments of the constructor, those of C ABI 0.2.1 too."""

    def test_options_reach_the_pool_and_invalid_ones_are_refused(self):
        given = {'probe_after_ms': 250, 'probe_timeout_ms': 400, 'fail_over_unanswered': True,
                 'per_attempt_timeout_ms': 300, 'connect_timeout_ms': 1000, 'tcp_user_timeout_ms': 3000,
                 'keepalive_interval_ms': 20000, 'keepalive_timeout_ms': 1000, 'eject_on_deadline': False,
                 'retry_budget_max_tokens': 20, 'retry_budget_token_ratio': 0.5}
        options = GrpcConnectionPool(resilient=True, **given).pool_options
        self.assertEqual({k: options[k] for k in given}, given)
        self.assertEqual(options['fail_over'], True, 'the resilient preset')
        self.assertEqual(GrpcConnectionPool().pool_options, _core.Pool().options, 'the library\'s defaults')
        self.assertEqual(GrpcConnectionPool(resilient=True).pool_options, _core.Pool(resilient=True).options)
        for bad in ({'keepalive_interval_ms': 5000}, {'retry_budget_max_tokens': 1001}, {'probe_after_ms': -1}):
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, next(iter(bad))):
                    GrpcConnectionPool(**bad)
        for bad in ({'per_attempt_timeout_ms': 0.3}, {'fail_over_unanswered': 'yes'}, {'probe_after': 1}):
            with self.subTest(bad=bad):
                with self.assertRaises(TypeError):
                    GrpcConnectionPool(**bad)

    async def test_a_silent_replica_ends_the_call_or_the_send_goes_on(self):
        # hostile:silent takes calls and never answers (a hung runtime); short liveness probes find it.
        for fail_over_unanswered in (False, True):
            with self.subTest(fail_over_unanswered=fail_over_unanswered):
                pool = GrpcConnectionPool(probe_after_ms=200, probe_timeout_ms=300,
                                          fail_over_unanswered=fail_over_unanswered)
                pool.add_connection(deployment='enc', address=SERVERS.addr['msilent'])
                pool.add_connection(deployment='enc', address=SERVERS.addr['m0'])
                # two sends at once: round robin gives one to each replica
                tasks = [pool.send_request(DataRequest(request_bytes(i)), 'enc')[0] for i in range(2)]
                results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
                answered = [r for r in results if not isinstance(r, BaseException)]
                self.assertTrue(all(md['replica'] == 'm0' for _, md in answered), results)
                if fail_over_unanswered:
                    self.assertEqual(len(answered), 2, results)
                    self.assertEqual(sorted(r.header.request_id for r, _ in answered), ['req-0', 'req-1'])
                else:
                    [e] = [r for r in results if isinstance(r, BaseException)]
                    self.assertIsInstance(e, JinaNetRpcError)
                    self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
                    self.assertIn('stopped answering', e.details())
                    self.assertEqual(e.address, SERVERS.addr['msilent'])
                await pool.close()

    async def test_the_retry_budget_through_the_drop_in(self):
        pool = GrpcConnectionPool(fail_over=True, max_attempts=3, retry_budget_max_tokens=2, metrics=True)
        pool.add_connection(deployment='down', address=SERVERS.addr['mdown'])
        codes = []
        for i in range(4):
            [task] = pool.send_request(DataRequest(request_bytes(i)), 'down')
            with self.assertRaises(JinaNetRpcError) as cm:
                await task
            codes.append(cm.exception.code())
        self.assertEqual(codes, [grpc.StatusCode.UNAVAILABLE] * 4)
        # 3 attempts for the first send; the budget (2 tokens, half left) stops the retries of the others
        calls = sum(float(line.rsplit(' ', 1)[1]) for line in pool.metrics_text().splitlines()
                    if line.startswith('jina_net_requests_total{'))
        self.assertEqual(calls, 3 + 3)
        await pool.close()


# The one allowed difference from jina 3.1.0's signatures: the sends take request metadata, as an extra
# keyword-only parameter `metadata` (default None = jina's behaviour), after all of jina's parameters.
# Every call written for jina's pool (positional or keyword) works unchanged.
WITH_METADATA = ('send_request', 'send_request_once', 'send_requests', 'send_requests_once')
METADATA_PARAMETER = ('metadata', inspect.Parameter.KEYWORD_ONLY, None)
# And add_connection takes a per-address TLS server name (C ABI 0.2.2), keyword-only after jina's.
SERVER_NAME_PARAMETER = ('tls_server_name', inspect.Parameter.KEYWORD_ONLY, None)


class SignatureTest(unittest.TestCase):
    def test_every_public_method_has_jinas_signature_and_kind(self):
        names = [n for n in dir(JinaPool) if not n.startswith('_')]
        self.assertGreaterEqual(len(names), 15)
        self.assertLessEqual(set(WITH_METADATA), set(names))
        for name in names:
            with self.subTest(method=name):
                theirs, ours = inspect.getattr_static(JinaPool, name), inspect.getattr_static(GrpcConnectionPool, name)
                self.assertEqual(type(ours), type(theirs), 'static or not')
                f_theirs, f_ours = getattr(JinaPool, name), getattr(GrpcConnectionPool, name)
                self.assertEqual(inspect.iscoroutinefunction(f_ours), inspect.iscoroutinefunction(f_theirs), 'async or not')
                p_theirs = [(p.name, p.kind, p.default) for p in inspect.signature(f_theirs).parameters.values()]
                p_ours = [(p.name, p.kind, p.default) for p in inspect.signature(f_ours).parameters.values()]
                if name in WITH_METADATA:
                    self.assertNotIn('metadata', [p[0] for p in p_theirs])
                    self.assertEqual(p_ours, p_theirs + [METADATA_PARAMETER])
                elif name == 'add_connection':
                    self.assertEqual(p_ours, p_theirs + [SERVER_NAME_PARAMETER])
                else:
                    self.assertEqual(p_ours, p_theirs)
        # only the two helpers that return grpc objects are jina's own code
        inherited = sorted(n for n in names if n not in vars(GrpcConnectionPool))
        self.assertEqual(inherited, ['create_async_channel_stub', 'get_grpc_channel'])
        # the constructor takes jina's logger, jina 3.2's compression (plus libjina_net pool options)
        self.assertEqual(list(inspect.signature(GrpcConnectionPool).parameters)[:2], ['logger', 'compression'])


if __name__ == '__main__':
    unittest.main()
