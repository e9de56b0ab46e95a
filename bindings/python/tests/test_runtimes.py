"""Real jina 3.1.0 runtimes routing with jina_net's pool (``jina_net.patch_jina()``): a head process
routing to real workers, and real Flows (gateway -> heads -> workers) passing requests end to end.
Every run is compared with the same run on jina's own pool."""
import asyncio
import json
import os
import subprocess
import sys
import unittest

os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')

import grpc  # noqa: E402
from docarray import Document, DocumentArray  # noqa: E402
from grpc.aio import AioRpcError  # noqa: E402
from jina.serve import networking as jina_networking  # noqa: E402
from jina.types.request.data import DataRequest  # noqa: E402

from helpers import HERE, library_threads, maps_library, runtimes  # noqa: E402

from jina_net.networking import GrpcConnectionPool  # noqa: E402

JinaPool = jina_networking.GrpcConnectionPool


def request(i, docs=2):
    r = DataRequest()
    r.header.request_id = f'req-{i}'
    r.data.docs = DocumentArray([Document(id=f'doc-{i}-{k}', text=f't{k}') for k in range(docs)])
    return r.proto.SerializeToString()


def tagged_by(response):
    return sorted({d.tags['by'] for d in response.docs if 'by' in d.tags})


async def through_head(head_addr, raw):
    """Sends a request to a head as a gateway does (jina's own pool, head=True)."""
    pool = JinaPool()
    pool.add_connection(deployment='exec', address=head_addr, head=True)
    try:
        return await pool.send_requests_once([DataRequest(raw)], deployment='exec', head=True)
    finally:
        await pool.close()


class HeadTest(unittest.TestCase):
    # The runtimes start (blocking) outside the event loop; each scenario runs in asyncio.run.

    def test_head_with_jina_net_routes_like_jinas_head(self):
        with runtimes(
            (('worker', 'w0'), {}),
            (('worker', 'w1'), {}),
            (('head', 'head-jina-net', '--polling', 'ANY'), {'jina_net': True}),
            (('head', 'head-jina', '--polling', 'ANY'), {}),
        ) as rts:
            asyncio.run(self.routes_like_jinas_head(*rts))

    async def routes_like_jinas_head(self, w0, w1, ours, theirs):
        self.assertTrue(maps_library(ours.proc.pid))
        self.assertEqual(library_threads(ours.proc.pid), 0, 'the pool starts the library at its first use')
        # register both workers with both heads: ACTIVATE through jina_net's static helper and jina's
        for head, helper in ((ours, GrpcConnectionPool), (theirs, JinaPool)):
            for w in (w0, w1):
                echo = await asyncio.to_thread(helper.activate_worker_sync, '127.0.0.1', w.port, head.addr)
                self.assertEqual(echo.command, 'ACTIVATE')
        self.assertGreater(library_threads(ours.proc.pid), 0, 'the head routes with libjina_net')
        self.assertEqual(library_threads(theirs.proc.pid), 0)

        # round robin over the two workers, the same bytes as jina's head
        for i in range(4):
            raw = request(i)
            (a, ma), (b, mb) = await through_head(ours.addr, raw), await through_head(theirs.addr, raw)
            self.assertEqual(a.buffer, b.buffer)
            self.assertEqual(sorted(ma), sorted(mb))
            self.assertEqual(tagged_by(a), [['w0', 'w1'][i % 2]])

        # DEACTIVATE w0 (jina_net's async helper at our head, jina's at theirs): w1 answers everything
        await GrpcConnectionPool.deactivate_worker('127.0.0.1', w0.port, ours.addr)
        await JinaPool.deactivate_worker('127.0.0.1', w0.port, theirs.addr)
        for i in range(2):
            (a, _), (b, _) = await through_head(ours.addr, request(10 + i)), await through_head(theirs.addr, request(10 + i))
            self.assertEqual(a.buffer, b.buffer)
            self.assertEqual(tagged_by(a), ['w1'])

        # the last worker dies: both heads fail the request the same way
        w1.stop()
        codes = []
        for head in (ours, theirs):
            with self.assertRaises(AioRpcError) as cm:
                await through_head(head.addr, request(20))
            codes.append(cm.exception.code())
        self.assertEqual(codes, [grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNKNOWN])

    def test_head_polling_all_over_two_shards(self):
        with runtimes(
            (('worker', 's0', '--shard-id', '0', '--shards', '2'), {}),
            (('worker', 's1', '--shard-id', '1', '--shards', '2'), {}),
            (('head', 'head-all', '--polling', 'ALL'), {'jina_net': True}),
        ) as rts:
            asyncio.run(self.polling_all(*rts))

    async def polling_all(self, s0, s1, head):
        for shard, w in enumerate((s0, s1)):
            await asyncio.to_thread(GrpcConnectionPool.activate_worker_sync, '127.0.0.1', w.port, head.addr, shard)
        response, _ = await through_head(head.addr, request(1))
        ids = sorted(d.id for d in response.docs)
        self.assertEqual(ids, ['doc-1-0', 'doc-1-1', 'from-s0', 'from-s1'], 'the head reduced both shards')
        self.assertGreater(library_threads(head.proc.pid), 0)


def replica_blind(results):
    """The results with the name of exec1's replica that answered blanked."""
    return [[row[0], '|'.join('exec1/*' if p.startswith('exec1/rep-') else p for p in row[1].split('|'))] + row[2:]
            for row in results]


def run_flow(jina_net):
    cmd = [sys.executable, os.path.join(HERE, 'flow_e2e.py')] + (['--jina-net'] if jina_net else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if r.returncode != 0 or 'FLOW_RESULT ' not in r.stdout:
        raise AssertionError(f'flow_e2e.py failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.split('FLOW_RESULT ', 1)[1].splitlines()[0])


class FlowTest(unittest.TestCase):
    def test_flow_end_to_end_on_jina_net_as_on_jinas_pool(self):
        ours = run_flow(True)
        theirs = run_flow(False)
        self.assertTrue(ours['patched'])
        # which processes run libjina_net: the gateway and both heads; no worker; none in jina's run
        roles = sorted((p['role'], p['library_threads'] > 0) for p in ours['pods'])
        self.assertEqual(roles, [('exec1/head', True), ('exec2/head', True), ('gateway', True)] + [('worker', False)] * 4)
        self.assertEqual([p for p in theirs['pods'] if p['library_threads']], [])
        # what came back: the same as with jina's pool, and what the topology implies. Which replica of
        # exec1 answers which request varies from run to run with jina's own pool too (the order the
        # replicas registered with their head, and the order the gateway's concurrent requests reach
        # it): the rows are compared with that replica's name blanked; that both replicas answered is
        # checked below.
        self.assertEqual(replica_blind(ours['results']), replica_blind(theirs['results']))
        self.assertEqual(replica_blind(ours['index']), replica_blind(theirs['index']))
        texts = {doc_id: text for doc_id, text, _ in ours['results']}
        self.assertEqual(sorted(k for k in texts if k.startswith('d')), [f'd{i}' for i in range(8)])
        replicas = {texts[f'd{i}'].split('|')[1] for i in range(8)}
        self.assertEqual(replicas, {'exec1/rep-0', 'exec1/rep-1'}, 'the head of exec1 alternates its replicas')
        self.assertTrue(all(texts[f'd{i}'].endswith('|exec2/shard-0/rep-0') for i in range(8)))
        self.assertIn('from-exec2/shard-1/rep-0', texts, 'ALL reached both shards of exec2')


if __name__ == '__main__':
    unittest.main()
