"""Runs a real jina 3.1.0 Flow (gRPC gateway -> exec1 head -> 2 replicas -> exec2 head -> 2 shards, ALL)
and prints a line `FLOW_RESULT <json>`: what came back and which of the Flow's processes run libjina_net.

    python flow_e2e.py [--jina-net]

With --jina-net, ``jina_net.patch_jina()`` runs first: the gateway and both heads (forked by the Flow)
then create jina_net's pool. Used by test_runtimes.py, which compares a run with and one without.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'interop'))
sys.path.insert(0, os.path.join(ROOT, 'bindings', 'python'))
sys.path.insert(0, HERE)

import launcher  # noqa: E402,F401  (shims: loopback binds, traceback compatibility)

os.environ.setdefault('JINA_LOG_LEVEL', 'ERROR')

patched = '--jina-net' in sys.argv[1:]
if patched:
    import jina_net

    jina_net.patch_jina()

from docarray import Document, DocumentArray  # noqa: E402
from jina import Flow  # noqa: E402

from helpers import EXECUTORS, children, library_threads  # noqa: E402


def listening_ports(pid):
    """TCP ports process `pid` listens on (its socket inodes matched with /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    ports = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == '0A' and cols[9] in inodes:
                    ports.add(int(cols[1].split(':')[1], 16))
    return ports


def main():
    f = (
        Flow(protocol='grpc')
        .add(name='exec1', uses='Tagger', py_modules=[EXECUTORS], replicas=2)
        .add(name='exec2', uses='Tagger', py_modules=[EXECUTORS], shards=2, polling='ALL')
    )
    with f:
        roles = {f.port: 'gateway', f['exec1'].head_port: 'exec1/head', f['exec2'].head_port: 'exec2/head'}
        docs = DocumentArray([Document(id=f'd{i}', text=f't{i}') for i in range(8)])
        got = f.post('/', inputs=docs, request_size=2, return_results=True)
        results = sorted([d.id, d.text, dict(d.tags)] for d in got)
        # a second endpoint through the same pools: the head polls ANY for /index
        got = f.post('/index', inputs=DocumentArray([Document(id='x', text='x')]), return_results=True)
        index = sorted([d.id, d.text, dict(d.tags)] for d in got)
        pods = []
        for pid in children(os.getpid()):
            ports = listening_ports(pid)
            role = next((roles[p] for p in ports if p in roles), 'worker')
            pods.append({'pid': pid, 'role': role, 'library_threads': library_threads(pid)})
    # on a line of its own (jina's progress spinner writes no newline)
    print('\nFLOW_RESULT ' + json.dumps({'patched': patched, 'results': results, 'index': index, 'pods': pods}),
          flush=True)


if __name__ == '__main__':
    main()
