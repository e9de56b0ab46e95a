"""The Python binding against an installed libjina_net: loaded by its soname (no JINA_NET_LIBRARY),
from the installed file, and a pool sends through it to an echo worker, with and without request metadata.

    python3 python_smoke.py <jina-net-test-server> <path of the installed libjina_net.so.X.Y.Z>
"""
import asyncio
import os
import subprocess
import sys

import jina_net

server, installed = sys.argv[1], sys.argv[2]
assert 'JINA_NET_LIBRARY' not in os.environ
loaded = os.path.realpath(jina_net.library_path())
assert loaded == os.path.realpath(installed), f'loaded {loaded}, want {installed}'

proc = subprocess.Popen([server, '--exit-on-stdin-eof', 'echo=w'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        text=True)
addr = None
for line in proc.stdout:
    if line.startswith('SERVER'):
        addr = line.split()[3]
    if line.startswith('READY'):
        break


async def main():
    pool = jina_net.Pool()
    pool.add_connection('enc', addr)
    header = b'\x0a\x05py-id'  # HeaderProto.request_id
    [t] = await pool.send_async(jina_net.REQUEST_DATA, [b'\x0a' + bytes([len(header)]) + header], 'enc')
    assert t.ok and b'py-id' in t.body and dict(t.metadata)['replica'] == b'w', t
    # request metadata (jina_net_pool_send_ex): the echo worker answers it as seen-<key>
    [m] = await pool.send_async(jina_net.REQUEST_DATA, [b'\x0a' + bytes([len(header)]) + header], 'enc',
                                metadata={'x-smoke': 'py'})
    assert m.ok and dict(m.metadata).get('seen-x-smoke') == b'py', m
    pool.close()
    return t


try:
    t = asyncio.run(main())
finally:
    proc.stdin.close()
    proc.wait()
print(f'   loaded {jina_net.library_path()} (libjina_net {jina_net.version()}) by soname; sent one request: {t!r}')
