"""jina_net.networking.GrpcConnectionPool against jina 3.1.0's own GrpcConnectionPool: the same
signatures, and the same scenario against the same real jina 3.1.0 workers gives the same results
(response bytes, trailing metadata, error codes, empty task lists)."""
import asyncio
import inspect
import os
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

from helpers import free_port, runtimes  # noqa: E402

from jina_net import _core  # noqa: E402
from jina_net.networking import GrpcConnectionPool, JinaNetRpcError, host_is_local, is_remote_local_connection  # noqa: E402

JinaPool = jina_networking.GrpcConnectionPool
assert JinaPool is not GrpcConnectionPool

RUNTIMES = None


def setUpModule():
    global RUNTIMES
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


class SignatureTest(unittest.TestCase):
    def test_every_public_method_has_jinas_signature_and_kind(self):
        names = [n for n in dir(JinaPool) if not n.startswith('_')]
        self.assertGreaterEqual(len(names), 15)
        for name in names:
            with self.subTest(method=name):
                theirs, ours = inspect.getattr_static(JinaPool, name), inspect.getattr_static(GrpcConnectionPool, name)
                self.assertEqual(type(ours), type(theirs), 'static or not')
                f_theirs, f_ours = getattr(JinaPool, name), getattr(GrpcConnectionPool, name)
                self.assertEqual(inspect.iscoroutinefunction(f_ours), inspect.iscoroutinefunction(f_theirs), 'async or not')
                p_theirs = [(p.name, p.kind, p.default) for p in inspect.signature(f_theirs).parameters.values()]
                p_ours = [(p.name, p.kind, p.default) for p in inspect.signature(f_ours).parameters.values()]
                self.assertEqual(p_ours, p_theirs)
        # only the two helpers that return grpc objects are jina's own code
        inherited = sorted(n for n in names if n not in vars(GrpcConnectionPool))
        self.assertEqual(inherited, ['create_async_channel_stub', 'get_grpc_channel'])
        # the constructor takes jina's logger (plus libjina_net pool options)
        self.assertEqual(list(inspect.signature(GrpcConnectionPool).parameters)[:1], ['logger'])


if __name__ == '__main__':
    unittest.main()
