"""The transport options of C ABI 0.2.2 through jina_net.Pool and the one-shot helpers, against the
project's test servers (``jina-net-test-server``: ``--tls-cert``/``--client-ca`` for mutual TLS, the
certificates of ``jina-net-test-server pki DIR``, ``--compress``, ``--unix``): a client identity, the
server-name override (pool-wide and per address), Unix domain sockets, gzip and deflate, wait_ready, the
replicas' states in the routing table, ``dns:`` addresses, and bad input (exceptions, never a crash)."""
import asyncio
import ctypes
import os
import shutil
import tempfile
import unittest

import grpc

from helpers import TestServers, free_port, pki

import jina_net
from jina_net import _core, _ffi
from test_pool import data_request, meta

PKI = None  # file name -> bytes
TMP = None
MTLS = SVC = PLAIN = GZIP = DEFLATE = UNIX = None
SOCKET = None


def setUpModule():
    global PKI, TMP, MTLS, SVC, PLAIN, GZIP, DEFLATE, UNIX, SOCKET
    TMP = tempfile.mkdtemp(prefix='jina-net-py-transport-')
    PKI = pki(os.path.join(TMP, 'pki'))
    f = lambda name: os.path.join(TMP, 'pki', name)  # noqa: E731
    SOCKET = os.path.join(TMP, 'echo.sock')
    started = []
    try:
        # TLS requiring a client certificate signed by client-ca (mTLS)
        MTLS = TestServers('echo=mtls', options=[f'--tls-cert={f("server.pem")}', f'--tls-key={f("server.key")}',
                                                 f'--client-ca={f("client-ca.pem")}'])
        started.append(MTLS)
        # TLS whose certificate names only executor.jina.svc (reached at 127.0.0.1: needs the override)
        SVC = TestServers('echo=svc', options=[f'--tls-cert={f("svc.pem")}', f'--tls-key={f("svc.key")}'])
        started.append(SVC)
        PLAIN = TestServers('echo=p0', 'echo=p1', 'hostile:silent=silent')
        started.append(PLAIN)
        GZIP = TestServers('echo=gz', options=['--compress=gzip'])
        started.append(GZIP)
        DEFLATE = TestServers('echo=df', options=['--compress=deflate'])
        started.append(DEFLATE)
        UNIX = TestServers('echo=ux', options=[f'--unix={SOCKET}'])
        started.append(UNIX)
    except BaseException:
        for s in started:
            s.close()
        shutil.rmtree(TMP, ignore_errors=True)
        raise


def tearDownModule():
    for s in (MTLS, SVC, PLAIN, GZIP, DEFLATE, UNIX):
        if s is not None:
            s.close()
    shutil.rmtree(TMP, ignore_errors=True)


def identity(name='client'):
    return {'tls_cert_chain_pem': PKI[f'{name}.pem'], 'tls_private_key_pem': PKI[f'{name}.key']}


def tls(**kw):
    """Options of a TLS pool trusting the test CA."""
    return dict(tls=True, root_certificates_pem=PKI['server-ca.pem'], **kw)


def library_refuses(opts, resilient=False):
    """The result name of jina_net_pool_new with these options unchecked by the binding (None: made)."""
    o = _core._options(resilient, opts, check=False)
    _core._uses_runtime()
    out = ctypes.c_void_p()
    r = _ffi.lib.jina_net_pool_new(ctypes.byref(o), ctypes.byref(out))
    if r == _ffi.OK:
        _ffi.lib.jina_net_pool_free(out)
        return None
    return _ffi.result_name(r)


class Base(unittest.IsolatedAsyncioTestCase):
    def pool(self, **options):
        pool = jina_net.Pool(**options)
        self.addCleanup(pool.close)
        return pool

    async def send(self, pool, deployment='d', request=None, **kw):
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [request or data_request('r')], deployment, **kw)
        return t

    async def asyncTearDown(self):
        await asyncio.sleep(0)
        self.assertEqual(_core._pending, {}, 'every send completed and was handed to its loop')


class MutualTlsTest(Base):
    async def test_accepted_with_identity_refused_without(self):
        addr = MTLS.addr['mtls']
        for kind, pem in (('bytes', identity()), ('str', {k: v.decode() for k, v in identity().items()})):
            with self.subTest(identity=kind):
                pool = self.pool(**tls(**pem))
                self.assertEqual(pool.options['tls_cert_chain_pem'], PKI['client.pem'])
                self.assertEqual(pool.options['tls_private_key_pem'], PKI['client.key'])
                pool.add_connection('d', addr)
                t = await self.send(pool)
                self.assertTrue(t.ok, t)
                self.assertEqual(meta(t)['replica'], 'mtls')
        # no identity: the server refuses the handshake; a TLS error at that address, saying why
        pool = self.pool(**tls())
        pool.add_connection('d', addr)
        t = await self.send(pool)
        self.assertEqual((t.status, t.address), (_ffi.TLS_ERROR, addr), t)
        self.assertIn(addr, t.error_message)
        self.assertIn('requires a client certificate', t.error_message)
        e = t.error()
        self.assertEqual((e.result_name, e.address), ('JINA_NET_TLS_ERROR', addr))
        # an identity of another CA: refused by the server. (The library words it either "the server
        # refused the client's certificate" or "the server ended the handshake (alert: decrypt error)",
        # depending on when the server's alert arrives.)
        pool = self.pool(**tls(**identity('stranger')))
        pool.add_connection('d', addr)
        t = await self.send(pool)
        self.assertEqual((t.status, t.address), (_ffi.TLS_ERROR, addr), t)
        self.assertIn(addr, t.error_message)
        self.assertIn('TLS handshake failed', t.error_message)

    async def test_one_shot_helpers_with_and_without_identity(self):
        addr = MTLS.addr['mtls']
        r = await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('one')], addr,
                                    10.0, True, PKI['server-ca.pem'], **identity())
        self.assertEqual(dict(r.metadata)['replica'], b'mtls')
        r = await jina_net.send_request_async(jina_net.REQUEST_DATA, data_request('two'), addr, 10.0, True,
                                              PKI['server-ca.pem'].decode(), **identity())
        self.assertIn(b'two', r.body)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('x')], addr,
                                    10.0, True, PKI['server-ca.pem'])
        self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
        self.assertIn(addr, str(cm.exception))
        self.assertIn('requires a client certificate', str(cm.exception))
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await jina_net.send_request_async(jina_net.REQUEST_DATA, data_request('x'), addr, 10.0, True,
                                              PKI['server-ca.pem'])
        self.assertEqual((cm.exception.result_name, cm.exception.address), ('JINA_NET_TLS_ERROR', addr))


class ServerNameTest(Base):
    async def test_override_pool_wide_and_per_address(self):
        addr = SVC.addr['svc']  # 127.0.0.1:port; the certificate names only executor.jina.svc
        # without a server name: the certificate is not valid for 127.0.0.1
        pool = self.pool(**tls())
        pool.add_connection('d', addr)
        t = await self.send(pool)
        self.assertEqual((t.status, t.address), (_ffi.TLS_ERROR, addr), t)
        self.assertIn('not valid for the name', t.error_message)
        # pool-wide
        pool = self.pool(**tls(tls_server_name='executor.jina.svc'))
        self.assertEqual(pool.options['tls_server_name'], 'executor.jina.svc')
        pool.add_connection('d', addr)
        t = await self.send(pool)
        self.assertTrue(t.ok, t)
        self.assertEqual(meta(t)['replica'], 'svc')
        # per address, on a pool without one, and over a wrong pool-wide one
        for pool_wide in (None, 'wrong.jina.svc'):
            with self.subTest(pool_wide=pool_wide):
                pool = self.pool(**tls(tls_server_name=pool_wide))
                self.assertTrue(pool.add_connection('d', addr, tls_server_name='executor.jina.svc'))
                t = await self.send(pool)
                self.assertTrue(t.ok, t)
        # a wrong name per address wins over the right pool-wide one
        pool = self.pool(**tls(tls_server_name='executor.jina.svc'))
        pool.add_connection('d', addr, tls_server_name='other.jina.svc')
        t = await self.send(pool)
        self.assertEqual(t.status, _ffi.TLS_ERROR, t)
        # per address as a head and on a shard (jina_net_add_options' head and shard_id)
        pool = self.pool(**tls())
        pool.add_connection('d', addr, head=True, tls_server_name='executor.jina.svc')
        pool.add_connection('d', addr, shard_id=3, tls_server_name='executor.jina.svc')
        self.assertEqual([(r.head, r.shard_id, r.addresses) for r in pool.route_table()],
                         [(True, None, [addr]), (False, 3, [addr])])
        t = await self.send(pool, head=True)
        self.assertTrue(t.ok and t.head, t)
        t = await self.send(pool, shard_id=3)
        self.assertTrue(t.ok and t.shard_id == 3, t)

    async def test_one_shot_server_name(self):
        addr = SVC.addr['svc']
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('x')], addr,
                                    10.0, True, PKI['server-ca.pem'])
        self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
        self.assertIn(addr, str(cm.exception))
        r = await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('x')], addr,
                                    10.0, True, PKI['server-ca.pem'], tls_server_name='executor.jina.svc')
        self.assertEqual(dict(r.metadata)['replica'], b'svc')
        r = await jina_net.send_request_async(jina_net.REQUEST_DATA, data_request('y'), addr, 10.0, True,
                                              PKI['server-ca.pem'], tls_server_name='executor.jina.svc')
        self.assertIn(b'y', r.body)


class UnixSocketTest(Base):
    async def test_send_over_a_unix_socket(self):
        self.assertEqual(UNIX.addr['ux'], f'unix:{SOCKET}')
        pool = self.pool()
        self.assertTrue(pool.add_connection('d', f'unix:{SOCKET}'))
        t = await self.send(pool, endpoint='/u')
        self.assertTrue(t.ok, t)
        self.assertEqual((t.address, meta(t)['replica'], meta(t)['endpoint']), (f'unix:{SOCKET}', 'ux', '/u'))
        # unix:///abs/path too: keyed and shown as given
        self.assertTrue(pool.add_connection('d', f'unix://{SOCKET}'))
        self.assertEqual(pool.route_table()[0].addresses, [f'unix:{SOCKET}', f'unix://{SOCKET}'])
        ts = [await self.send(pool) for _ in range(2)]  # round robin: one each
        self.assertEqual({(t.address, meta(t)['replica']) for t in ts},
                         {(f'unix:{SOCKET}', 'ux'), (f'unix://{SOCKET}', 'ux')})
        # the one-shot helpers
        r = await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [data_request('x')],
                                    f'unix:{SOCKET}')
        self.assertEqual(dict(r.metadata)['replica'], b'ux')
        # plaintext only; an empty path is no address
        with self.assertRaises(jina_net.JinaNetError) as cm:
            self.pool(tls=True).add_connection('d', f'unix:{SOCKET}')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
        self.assertIn('Unix domain socket', str(cm.exception))
        with self.assertRaises(jina_net.JinaNetError) as cm:
            self.pool().add_connection('d', 'unix:')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ADDRESS')


class CompressionTest(Base):
    """What goes over the wire, from the test server's TCP byte counts (SIGUSR1 -> STATS): a request of
    100 kB of one letter compresses to a few hundred bytes, and so does the echo of a server started
    with --compress when the request was compressed (a pool that compresses accepts compressed
    responses; one that does not, as jina 3.1, gets them uncompressed); the response is the same
    bytes whatever the encodings."""

    PADDING = 100_000

    def request(self, i):
        return data_request(f'c-{i}', padding=self.PADDING)

    async def test_pool_sends_gzip_and_deflate(self):
        servers = ((PLAIN, 'p0', False), (GZIP, 'gz', True), (DEFLATE, 'df', True))
        for servers_, name, compresses in servers:
            bodies = set()
            for compression, value in ((None, 0), ('none', 0), ('gzip', 1), ('Gzip', 1), ('deflate', 2),
                                       ('Deflate', 2), (jina_net.COMPRESSION_GZIP, 1),
                                       (jina_net.COMPRESSION_DEFLATE, 2), (grpc.Compression.Gzip, 1),
                                       (grpc.Compression.Deflate, 2)):
                with self.subTest(server=name, compression=compression):
                    pool = self.pool(compression=compression)
                    self.assertEqual(pool.options['compression'], value)
                    pool.add_connection('d', servers_.addr[name])
                    read0, written0 = servers_.stats()
                    t = await self.send(pool, request=self.request(1))
                    read, written = (a - b for a, b in zip(servers_.stats(), (read0, written0)))
                    self.assertTrue(t.ok, t)
                    self.assertEqual(meta(t)['replica'], name)
                    bodies.add(t.body)
                    if value == 0:
                        self.assertGreater(read, self.PADDING, 'sent uncompressed')
                    else:
                        self.assertLess(read, self.PADDING // 20, 'sent compressed')
                    if compresses and value != 0:
                        self.assertLess(written, self.PADDING // 20, 'the server compressed the response')
                    else:
                        self.assertGreater(written, self.PADDING, 'an uncompressed response')
                    pool.close()
            self.assertEqual(len(bodies), 1, 'the same response bytes whatever the encodings')
            self.assertIn(b'x' * self.PADDING, bodies.pop())

    async def test_one_shot_compression(self):
        for compression, compressed in ((None, False), ('NoCompression', False), ('GZIP', True), ('deflate', True)):
            with self.subTest(compression=compression):
                read0, _ = GZIP.stats()
                r = await asyncio.to_thread(jina_net.send_requests_sync, jina_net.REQUEST_DATA, [self.request(2)],
                                            GZIP.addr['gz'], 10.0, compression=compression)
                read = GZIP.stats()[0] - read0
                self.assertIn(b'x' * self.PADDING, r.body)
                if compressed:
                    self.assertLess(read, self.PADDING // 20)
                else:
                    self.assertGreater(read, self.PADDING)
        read0, _ = DEFLATE.stats()
        r = await jina_net.send_request_async(jina_net.REQUEST_DATA, self.request(3), DEFLATE.addr['df'],
                                              compression=jina_net.COMPRESSION_GZIP)
        self.assertLess(DEFLATE.stats()[0] - read0, self.PADDING // 20)
        self.assertIn(b'x' * self.PADDING, r.body)

    def test_names(self):
        for name, value in (('none', 0), ('NoCompression', 0), ('NOCOMPRESSION', 0), ('gzip', 1), ('Gzip', 1),
                            ('GZIP', 1), ('deflate', 2), ('Deflate', 2)):
            self.assertEqual(jina_net.compression_from_name(name), value, name)
        self.assertEqual((jina_net.COMPRESSION_NONE, jina_net.COMPRESSION_GZIP, jina_net.COMPRESSION_DEFLATE),
                         (0, 1, 2))
        # grpc.Compression numbers them otherwise (Deflate = 1, Gzip = 2): members are taken by name
        self.assertEqual((int(grpc.Compression.Deflate), int(grpc.Compression.Gzip)), (1, 2))
        self.assertEqual(jina_net.Pool(compression=grpc.Compression.Gzip).options['compression'], jina_net.COMPRESSION_GZIP)
        self.assertEqual(jina_net.Pool(compression=grpc.Compression.NoCompression).options['compression'], 0)


class WaitReadyTest(Base):
    async def test_ready_and_the_deadline_naming_what_is_not(self):
        pool = self.pool()
        pool.wait_ready()  # nothing to wait for
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.wait_ready('nowhere', 100)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_UNKNOWN_DEPLOYMENT')
        p0, p1 = PLAIN.addr['p0'], PLAIN.addr['p1']
        dead = f'127.0.0.1:{free_port()}'
        pool.add_connection('ok', p0)
        pool.add_connection('ok', p1, shard_id=1)
        pool.add_connection('ok', p1, head=True)
        pool.add_connection('bad', p1)
        pool.add_connection('bad', dead)
        self.assertEqual({r.state for route in pool.route_table() for r in route.replicas}, {jina_net.STATE_IDLE},
                         'nothing connected before the first send or wait')
        await asyncio.to_thread(pool.wait_ready, 'ok', 10000)  # (blocking: off the loop)
        self.assertEqual([(r.deployment, r.head, r.shard_id, r.replicas) for r in pool.route_table() if r.deployment == 'ok'],
                         [('ok', True, None, [jina_net.Replica(p1, 'ready')]),
                          ('ok', False, 0, [jina_net.Replica(p0, 'ready')]),
                          ('ok', False, 1, [jina_net.Replica(p1, 'ready')])])
        for deployment in ('bad', None):
            with self.subTest(deployment=deployment):
                with self.assertRaises(jina_net.JinaNetError) as cm:
                    await asyncio.to_thread(pool.wait_ready, deployment, 1000)
                e = cm.exception
                self.assertEqual(e.result_name, 'JINA_NET_DEADLINE_EXCEEDED')
                self.assertIn(f'deployment "bad" shard 0 at {dead}', e.message)
                self.assertNotIn(p1, e.message, 'only the replicas not ready are named')
                self.assertNotIn('"ok"', e.message)
        [bad] = [r for r in pool.route_table() if r.deployment == 'bad']
        self.assertEqual(bad.replicas, [jina_net.Replica(p1, 'ready'), jina_net.Replica(dead, 'failing')])

    async def test_async_variant_leaves_the_loop_running(self):
        pool = self.pool()
        pool.add_connection('silent', PLAIN.addr['silent'])  # takes the connection, never answers
        pool.add_connection('d', PLAIN.addr['p0'])
        await pool.wait_ready_async('d', 10000)
        waiting = asyncio.ensure_future(pool.wait_ready_async('silent', 3000))
        t = await self.send(pool)  # completes on this loop while the wait blocks its thread
        self.assertTrue(t.ok, t)
        self.assertFalse(waiting.done())
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await waiting
        self.assertEqual(cm.exception.result_name, 'JINA_NET_DEADLINE_EXCEEDED')
        self.assertIn(f'deployment "silent" shard 0 at {PLAIN.addr["silent"]}', cm.exception.message)

    async def test_close_while_waiting(self):
        # The C pool is closed at once and freed when the wait returns (never during it).
        pool = self.pool()
        pool.add_connection('silent', PLAIN.addr['silent'])
        waiting = asyncio.ensure_future(pool.wait_ready_async('silent', 1500))
        await asyncio.sleep(0.2)
        pool.close()
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await waiting
        self.assertIn(cm.exception.result_name, ('JINA_NET_DEADLINE_EXCEEDED', 'JINA_NET_POOL_CLOSED'))
        self.assertEqual(pool._closed_ptrs, [], 'freed once the wait returned')
        # closed for good, as after any close
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.add_connection('d', PLAIN.addr['p0'])
        self.assertEqual(cm.exception.result_name, 'JINA_NET_POOL_CLOSED')
        with self.assertRaises(jina_net.JinaNetError) as cm:
            await self.send(pool)
        self.assertEqual(cm.exception.result_name, 'JINA_NET_POOL_CLOSED')

    def test_arguments(self):
        pool = self.pool()
        for bad, exc in (({'timeout_ms': -1}, ValueError), ({'timeout_ms': 1.5}, TypeError),
                         ({'timeout_ms': None}, TypeError), ({'deployment': 5}, TypeError),
                         ({'deployment': 'a\0b'}, ValueError)):
            with self.subTest(bad=bad):
                with self.assertRaises(exc):
                    pool.wait_ready(**bad)


class RoutesTest(Base):
    async def test_each_replica_has_its_state(self):
        pool = self.pool(probe_after_ms=100, probe_timeout_ms=200)
        dead = f'127.0.0.1:{free_port()}'
        pool.add_connection('a', PLAIN.addr['p0'])
        pool.add_connection('b', dead)
        pool.add_connection('c', PLAIN.addr['silent'])
        self.assertEqual([r.states for r in pool.route_table()], [['idle'], ['idle'], ['idle']])
        for deployment in ('a', 'b', 'c'):
            await self.send(pool, deployment)
        text = pool.routes()
        self.assertEqual(text, f'a\tshard 0\t{PLAIN.addr["p0"]}\tready\n'
                               f'b\tshard 0\t{dead}\tfailing\n'
                               f'c\tshard 0\t{PLAIN.addr["silent"]}\tunresponsive\n')
        self.assertEqual(pool.route_table(), jina_net.parse_routes(text))
        self.assertEqual([(r.deployment, r.states) for r in pool.route_table()],
                         [('a', [jina_net.STATE_READY]), ('b', [jina_net.STATE_FAILING]),
                          ('c', [jina_net.STATE_UNRESPONSIVE])])

    def test_parser(self):
        routes = jina_net.parse_routes('d\thead\th:1\tready\nd\tshard 0\ta:1,b:2\tidle,failing\nd\tshard 12\tc:3\n')
        self.assertEqual(routes, [
            jina_net.Route('d', True, None, [jina_net.Replica('h:1', 'ready')]),
            jina_net.Route('d', False, 0, [jina_net.Replica('a:1', 'idle'), jina_net.Replica('b:2', 'failing')]),
            # a library before 0.2.2 writes no states
            jina_net.Route('d', False, 12, [jina_net.Replica('c:3', None)]),
        ])
        self.assertEqual((routes[1].addresses, routes[1].states), (['a:1', 'b:2'], ['idle', 'failing']))
        self.assertEqual(jina_net.parse_routes(''), [])
        for bad in ('d\n', 'd\tshard x\ta:1\tidle\n', 'd\tnode 1\ta:1\n', 'a\tb\tc\td\te\n'):
            with self.subTest(bad=bad):
                with self.assertRaises(ValueError):
                    jina_net.parse_routes(bad)


class DnsTest(Base):
    async def test_dns_names_become_their_addresses(self):
        port = PLAIN.port('p0')
        for address in (f'dns:///localhost:{port}', f'dns:localhost:{port}'):
            with self.subTest(address=address):
                # fail_over: if localhost also resolves to ::1 (where nothing listens), the send moves on
                pool = self.pool(resilient=True, dns_refresh_ms=0)
                self.assertEqual(pool.options['dns_refresh_ms'], 0)
                self.assertTrue(pool.add_connection('d', address))
                [route] = pool.route_table()
                self.assertIn(f'127.0.0.1:{port}', route.addresses)
                self.assertNotIn(address, route.addresses)
                self.assertFalse(pool.add_connection('d', f'127.0.0.1:{port}'), 'known: it is that replica')
                t = await self.send(pool)
                self.assertTrue(t.ok, t)
                self.assertEqual((t.address, meta(t)['replica']), (f'127.0.0.1:{port}', 'p0'))
        self.assertEqual(jina_net.Pool().options['dns_refresh_ms'], 30000, 'the default')
        with self.assertRaises(jina_net.JinaNetError) as cm:
            self.pool().add_connection('d', 'dns:///no-such-host.invalid:8080')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_INVALID_ADDRESS')
        self.assertIn('no-such-host.invalid', str(cm.exception))


class BadInputTest(Base):
    """Wrong types raise TypeError and invalid values ValueError from Pool(...) (the C pool is made
    later); what only the library can tell is JinaNetError from the call that makes the C pool; nothing
    crashes. Each value Pool(...) refuses is refused by the library too."""

    def test_pem(self):
        cert, key = PKI['client.pem'], PKI['client.key']
        not_base64 = cert.replace(b'MII', b'M!I', 1)
        for opts, name in (
            ({'tls_cert_chain_pem': b'garbage', 'tls_private_key_pem': key}, 'tls_cert_chain_pem'),
            ({'tls_cert_chain_pem': cert, 'tls_private_key_pem': 'garbage'}, 'tls_private_key_pem'),
            ({'tls_cert_chain_pem': not_base64, 'tls_private_key_pem': key}, 'tls_cert_chain_pem'),
            ({'tls_cert_chain_pem': cert, 'tls_private_key_pem': cert}, 'tls_private_key_pem'),
            ({'tls_cert_chain_pem': key, 'tls_private_key_pem': key}, 'tls_cert_chain_pem'),
            ({'tls_cert_chain_pem': cert}, 'tls_private_key_pem'),
            ({'tls_private_key_pem': key}, 'tls_cert_chain_pem'),
            ({'tls_cert_chain_pem': cert, 'tls_private_key_pem': b''}, 'tls_private_key_pem'),
            ({'root_certificates_pem': 'garbage'}, 'root_certificates_pem'),
        ):
            with self.subTest(opts={k: v[:12] for k, v in opts.items()}):
                with self.assertRaises(ValueError) as cm:
                    jina_net.Pool(**opts)
                self.assertIn(name, str(cm.exception))
                self.assertEqual(library_refuses(opts), 'JINA_NET_TLS_ERROR')
        # PEM that decodes but holds no X.509 certificate: the library refuses it when it makes the pool
        fake = b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'
        pool = self.pool(tls_cert_chain_pem=fake, tls_private_key_pem=key)
        for _ in range(2):
            with self.assertRaises(jina_net.JinaNetError) as cm:
                pool.add_connection('d', PLAIN.addr['p0'])
            self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
            self.assertIn('not a valid X.509 certificate', str(cm.exception))
        # the one-shot helpers: the library checks the PEM of the call
        for opts in ({'tls_cert_chain_pem': b'garbage', 'tls_private_key_pem': key}, {'tls_cert_chain_pem': cert}):
            with self.subTest(one_shot=list(opts)):
                with self.assertRaises(jina_net.JinaNetError) as cm:
                    jina_net.send_requests_sync(jina_net.REQUEST_DATA, [data_request('x')], PLAIN.addr['p0'], 5.0,
                                                True, **opts)
                self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')

    def test_types_names_and_values(self):
        for opts in ({'tls_cert_chain_pem': 123, 'tls_private_key_pem': b'k'}, {'root_certificates_pem': 5},
                     {'tls_server_name': b'executor.jina.svc'}, {'tls_server_name': 1},
                     {'compression': 1.0}, {'compression': True}, {'compression': [1]},
                     {'dns_refresh_ms': '30'}, {'dns_refresh_ms': 1.5}):
            with self.subTest(opts=opts):
                with self.assertRaises(TypeError) as cm:
                    jina_net.Pool(**opts)
                self.assertIn(next(iter(opts)), str(cm.exception))
        for opts in ({'compression': 'brotli'}, {'compression': 'gz\0ip'},
                     {'compression': 3}, {'compression': -1}, {'dns_refresh_ms': -1},
                     {'tls_server_name': ''}, {'tls_server_name': 'bad name'}, {'tls_server_name': 'a\0b'},
                     {'tls_server_name': 'exécuteur.svc'}):
            with self.subTest(opts=opts):
                with self.assertRaises(ValueError) as cm:
                    jina_net.Pool(**opts)
                self.assertTrue('compression' in str(cm.exception) or next(iter(opts)) in str(cm.exception),
                                str(cm.exception))
        # the library refuses those values too (those it can be given)
        self.assertEqual(library_refuses({'compression': 3}), 'JINA_NET_INVALID_ARGUMENT')
        for name in ('', 'bad name', 'exécuteur.svc'):
            self.assertEqual(library_refuses({'tls_server_name': name}), 'JINA_NET_TLS_ERROR', name)
        with self.assertRaisesRegex(ValueError, 'unknown compression "brotli"'):
            jina_net.compression_from_name('brotli')
        with self.assertRaises(TypeError):
            jina_net.compression_from_name(None)
        # a name that only the library can tell is none: refused when the C pool is made
        pool = self.pool(tls_server_name='a..b')
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.add_connection('d', PLAIN.addr['p0'])
        self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
        self.assertIn('a..b', str(cm.exception))

    def test_add_connection_and_one_shot_arguments(self):
        pool = self.pool()
        for kw, exc in (({'tls_server_name': 5}, TypeError), ({'tls_server_name': 'bad name'}, ValueError),
                        ({'shard_id': '1'}, TypeError), ({'head': 'yes'}, TypeError)):
            with self.subTest(kw=kw):
                with self.assertRaises(exc):
                    pool.add_connection('d', PLAIN.addr['p0'], **kw)
        for args, exc in (((None, PLAIN.addr['p0']), TypeError), (('d', None), TypeError),
                          (('d', 'a\0b:1'), ValueError)):
            with self.subTest(args=args):
                with self.assertRaises(exc):
                    pool.add_connection(*args)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            pool.add_connection('d', PLAIN.addr['p0'], tls_server_name='-x-')
        self.assertEqual(cm.exception.result_name, 'JINA_NET_TLS_ERROR')
        self.assertEqual(pool.route_table(), [], 'nothing was added')
        for kw, exc in (({'compression': 'brotli'}, ValueError), ({'compression': 2.0}, TypeError),
                        ({'tls_server_name': 7}, TypeError), ({'tls_cert_chain_pem': 1}, TypeError)):
            with self.subTest(one_shot=kw):
                with self.assertRaises(exc):
                    jina_net.send_requests_sync(jina_net.REQUEST_DATA, [data_request('x')], PLAIN.addr['p0'], 5.0, **kw)
        with self.assertRaises(TypeError):
            jina_net.send_requests_sync(jina_net.REQUEST_DATA, [data_request('x')], None)


if __name__ == '__main__':
    unittest.main()
