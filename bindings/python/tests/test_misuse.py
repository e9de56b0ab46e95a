"""The misuse table (README "Misuse: the same result in every binding"), walked from Python: each case
raises ``JinaNetError`` with the code C returns for it (the argument errors are also ``TypeError`` /
``ValueError``); and the rest of what Python adds to agree: ``patch_jina(**options)``, metrics text,
the log callback."""
import asyncio
import logging
import threading
import unittest

from helpers import TestServers

import jina_net
from jina_net import _ffi

SERVERS = None
GARBAGE = b'\xff\xff\xff'


def setUpModule():
    global SERVERS
    SERVERS = TestServers('echo=a')


def tearDownModule():
    SERVERS.close()


def data_request(i='x'):
    # a DataRequestProto with header.request_id (field 1 -> header, field 1 -> request_id)
    rid = i.encode()
    header = b'\x0a' + bytes([len(rid)]) + rid
    return b'\x0a' + bytes([len(header)]) + header


class MisuseTable(unittest.IsolatedAsyncioTestCase):
    """One row per misuse; the same rows are in tests/c/test_c_abi.c, bindings/cpp/test_jina_net.cpp
    and bindings/go/misuse_test.go."""

    def assertCode(self, code, fn, *also):
        with self.assertRaises(jina_net.JinaNetError) as cm:
            r = fn()
            if asyncio.iscoroutine(r):
                r.close()
        self.assertEqual(cm.exception.result, code, cm.exception)
        for cls in also:
            self.assertIsInstance(cm.exception, cls)
        return cm.exception

    def open_pool(self, **options):
        pool = jina_net.Pool(**options)
        self.addCleanup(pool.close)
        pool.add_connection('enc', SERVERS.addr['a'])
        return pool

    async def test_the_table(self):
        pool = self.open_pool()
        send = lambda requests, deployment='enc': pool.send(jina_net.REQUEST_DATA, requests, deployment)  # noqa: E731
        # NULL / None arguments
        self.assertCode(_ffi.NULL_ARGUMENT, lambda: pool.add_connection(None, SERVERS.addr['a']), TypeError)
        self.assertCode(_ffi.NULL_ARGUMENT, lambda: pool.add_connection('enc', None), TypeError)
        self.assertCode(_ffi.NULL_ARGUMENT, lambda: pool.remove_connection(None, SERVERS.addr['a']), TypeError)
        self.assertCode(_ffi.NULL_ARGUMENT, lambda: send([data_request()], None), TypeError)
        # a NUL in a string, an empty deployment name
        self.assertCode(_ffi.INVALID_ARGUMENT, lambda: pool.add_connection('e\0nc', SERVERS.addr['a']), ValueError)
        self.assertCode(_ffi.INVALID_ARGUMENT, lambda: pool.add_connection('', SERVERS.addr['a']))
        # malformed address
        e = self.assertCode(_ffi.INVALID_ADDRESS, lambda: pool.add_connection('enc', 'not an address'))
        self.assertIn('not an address', e.message)
        # unknown deployment
        e = self.assertCode(_ffi.UNKNOWN_DEPLOYMENT, lambda: send([data_request()], 'nope'))
        self.assertIn('unknown deployment "nope"', e.message)
        # garbage request bytes, no request
        self.assertCode(_ffi.INVALID_REQUEST, lambda: send([GARBAGE]))
        self.assertCode(_ffi.INVALID_ARGUMENT, lambda: send([]))
        # bad option values
        self.assertCode(_ffi.INVALID_ARGUMENT, lambda: jina_net.Pool(compression=3), ValueError)
        e = self.assertCode(_ffi.TLS_ERROR, lambda: jina_net.Pool(tls=True, root_certificates_pem=b'not a pem'),
                            ValueError)
        self.assertIn('root_certificates_pem', e.message)
        # a pool that never had a connection: unknown deployment too
        empty = jina_net.Pool()
        self.assertCode(_ffi.UNKNOWN_DEPLOYMENT, lambda: empty.send(jina_net.REQUEST_DATA, [data_request()], 'enc'))
        # the pool works after all of it
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('ok')], 'enc')
        self.assertTrue(t.ok, t)

        # a closed pool: every call but close and cancel is POOL_CLOSED; closing twice is fine
        pool.close()
        pool.close()
        empty.close()
        for p in (pool, empty):
            self.assertCode(_ffi.POOL_CLOSED, lambda: p.add_connection('enc', SERVERS.addr['a']))
            self.assertCode(_ffi.POOL_CLOSED, lambda: p.remove_connection('enc', SERVERS.addr['a']))
            self.assertCode(_ffi.POOL_CLOSED, lambda: p.send(jina_net.REQUEST_DATA, [data_request()], 'enc'))
            self.assertCode(_ffi.POOL_CLOSED, lambda: p.send_async(jina_net.REQUEST_DATA, [data_request()], 'enc'))
            self.assertCode(_ffi.POOL_CLOSED, p.routes)
            self.assertCode(_ffi.POOL_CLOSED, p.route_table)
            self.assertCode(_ffi.POOL_CLOSED, lambda: p.wait_ready('enc', 100))
            self.assertFalse(p.cancel(1))

    async def test_a_send_pending_at_close_completes_pool_closed(self):
        pool = self.open_pool()
        pending = pool.send_async(jina_net.REQUEST_DATA, [data_request('late')], 'enc')
        pool.close()
        try:
            [t] = await asyncio.wait_for(pending, 5)
            self.assertIn(t.status, (_ffi.OK, _ffi.POOL_CLOSED), t)
        except jina_net.JinaNetError as e:
            self.assertEqual(e.result, _ffi.POOL_CLOSED, e)


class MetricsAndLogs(unittest.IsolatedAsyncioTestCase):
    async def test_metrics_text(self):
        pool = jina_net.Pool(metrics=True)
        self.addCleanup(pool.close)
        pool.add_connection('enc', SERVERS.addr['a'])
        [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('m')], 'enc')
        self.assertTrue(t.ok, t)
        text = pool.metrics_text()
        self.assertIn('jina_net_requests_total{deployment="enc"', text)
        plain = jina_net.Pool()
        self.addCleanup(plain.close)
        with self.assertRaises(jina_net.JinaNetError) as cm:
            plain.metrics_text()
        self.assertEqual(cm.exception.result, _ffi.INVALID_ARGUMENT)

    async def test_log_callback(self):
        events = []
        lock = threading.Lock()
        caller = threading.get_ident()

        def on_log(level, target, message):
            with lock:
                events.append((level, target, message, threading.get_ident()))

        jina_net.set_log_callback(on_log, jina_net.LOG_DEBUG)
        try:
            pool = jina_net.Pool(max_attempts=3, initial_backoff_ms=1, max_backoff_ms=1)
            self.addCleanup(pool.close)
            pool.add_connection('down', '127.0.0.1:1')  # nothing listens: connects fail, retried
            [t] = await pool.send_async(jina_net.REQUEST_DATA, [data_request('l')], 'down', timeout_ms=3000)
            self.assertFalse(t.ok)
            for _ in range(100):
                with lock:
                    if events:
                        break
                await asyncio.sleep(0.02)
        finally:
            jina_net.set_log_callback(None)
        with lock:
            seen = list(events)
        self.assertTrue(seen, 'DEBUG events of the library threads')
        self.assertTrue(all(jina_net.LOG_ERROR <= lvl <= jina_net.LOG_DEBUG for lvl, _, _, _ in seen), seen[:5])
        self.assertTrue(all(tid != caller for _, _, _, tid in seen), 'never on the caller thread')
        self.assertTrue(all(isinstance(t, str) and isinstance(m, str) for _, t, m, _ in seen))
        # removed: no more events
        n = len(seen)
        pool2 = jina_net.Pool()
        self.addCleanup(pool2.close)
        pool2.add_connection('down', '127.0.0.1:1')
        await pool2.send_async(jina_net.REQUEST_DATA, [data_request('l2')], 'down', timeout_ms=500)
        with lock:
            self.assertEqual(len(events), n)
        # bad arguments
        with self.assertRaises(ValueError):
            jina_net.set_log_callback(on_log, 9)
        with self.assertRaises(TypeError):
            jina_net.set_log_callback(42)

    def test_log_to_logging(self):
        logger = logging.getLogger('jina_net.test')
        jina_net.log_to_logging(logger, jina_net.LOG_WARN)
        jina_net.set_log_callback(None)


class PatchJina(unittest.TestCase):
    def test_patch_jina_takes_presets_and_pool_options(self):
        import jina.serve.networking as jn
        from jina_net import networking

        original = jn.GrpcConnectionPool
        try:
            jina_net.patch_jina(resilient=True, balance=jina_net.BALANCE_P2C_PEAK_EWMA, max_hedges=1,
                                hedge_delay_ms=50, metrics=True, compression='Gzip')
            cls = jn.GrpcConnectionPool
            self.assertTrue(issubclass(cls, networking.GrpcConnectionPool))
            pool = cls()
            o = pool.pool_options
            self.assertTrue(o['fail_over'], o)  # from the resilient preset
            self.assertEqual((o['balance'], o['max_hedges'], o['hedge_delay_ms'], o['metrics'], o['compression']),
                             (jina_net.BALANCE_P2C_PEAK_EWMA, 1, 50, True, jina_net.COMPRESSION_GZIP))
            self.assertEqual(pool.metrics_text(), '')
            # a keyword of the constructor wins over the patch's
            self.assertEqual(cls(max_hedges=2).pool_options['max_hedges'], 2)
            self.assertEqual(cls(compression='Deflate').pool_options['compression'], jina_net.COMPRESSION_DEFLATE)
            # jina's create_connection_pool makes one
            self.assertIsInstance(jn.create_connection_pool(), networking.GrpcConnectionPool)
            # checked at once
            with self.assertRaises(TypeError):
                jina_net.patch_jina(no_such_option=1)
            with self.assertRaises(ValueError):
                jina_net.patch_jina(compression='zstd')
            # without options: the plain class
            jina_net.patch_jina()
            self.assertIs(jn.GrpcConnectionPool, networking.GrpcConnectionPool)
        finally:
            jn.GrpcConnectionPool = original

    def test_drop_in_close_keeps_jinas_semantics(self):
        from jina_net.networking import GrpcConnectionPool

        pool = GrpcConnectionPool(metrics=True)
        pool.add_connection('enc', SERVERS.addr['a'])
        asyncio.run(pool.close())
        pool.add_connection('enc', SERVERS.addr['a'])  # usable again, as jina's, with the same options
        self.assertTrue(pool.pool_options['metrics'])
        self.assertIn('enc', pool.routes())
        asyncio.run(pool.close())


if __name__ == '__main__':
    unittest.main()
