"""Starts one real jina 3.1.0 runtime (a worker or a head) for the interop suite.

    python launcher.py worker --port P --name NAME [--uses Tagger] [--shard-id N] [--shards N]
    python launcher.py head   --port P --name NAME [--polling ANY|ALL|<json>] [--deployment worker]

Before jina is imported it installs two shims:
- traceback.format_exception(etype=...): jina 3.1 passes `etype`, a keyword Python 3.10 removed; without
  the shim every in-band error path (Executor raising, unsupported control command) turns into a gRPC
  UNKNOWN instead of the in-band ERROR jina 3.1 answers on the Pythons it supported.
- grpc.aio.Server.add_insecure_port: jina binds `0.0.0.0:{port}` whatever --host says; this launcher
  binds 127.0.0.1 only (the interop tests never listen on another address).
It never goes through `cli.main` (which checks the latest version online), but through the same
`set_pod_parser()` + `cli.api.executor_native` that `jina executor --native` runs.
Logs `BIND 127.0.0.1:<port>` on stderr when it binds; the tests poll the port until it accepts.
"""
import argparse
import os
import sys
import traceback

_format_exception = traceback.format_exception


def _format_exception_compat(*args, etype=None, **kwargs):
    if etype is not None:
        args = (etype,) + args
    return _format_exception(*args, **kwargs)


traceback.format_exception = _format_exception_compat

import grpc.aio  # noqa: E402
import grpc.aio._server  # noqa: E402

_add_insecure_port = grpc.aio._server.Server.add_insecure_port


def _add_insecure_port_loopback(self, address):
    port = address.rsplit(':', 1)[1]
    bound = _add_insecure_port(self, f'127.0.0.1:{port}')
    print(f'BIND 127.0.0.1:{port} (asked {address})', file=sys.stderr, flush=True)
    return bound


grpc.aio._server.Server.add_insecure_port = _add_insecure_port_loopback

HERE = os.path.dirname(os.path.abspath(__file__))


def _exit_with_parent():
    """The tests kill their runtimes in Drop guards; should the test process die without unwinding
    (abort, SIGKILL, timeout), this makes its runtimes exit too instead of lingering."""
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name='exit-with-parent').start()


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('role', choices=['worker', 'head'])
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--name', required=True)
    p.add_argument('--uses', default='Tagger')
    p.add_argument('--polling', default='ANY')
    p.add_argument('--deployment', default=None, help='JINA_DEPLOYMENT_NAME of a head')
    p.add_argument('--shard-id', type=int, default=None)
    p.add_argument('--shards', type=int, default=None)
    a = p.parse_args(argv)
    _exit_with_parent()

    if a.deployment is not None:
        os.environ['JINA_DEPLOYMENT_NAME'] = a.deployment
    os.environ.setdefault('JINA_LOG_LEVEL', 'WARNING')

    from jina.parsers import set_pod_parser
    from cli.api import executor_native

    args = [
        '--native',
        '--port', str(a.port),
        '--host', '127.0.0.1',
        '--name', a.name,
        '--quiet-error',
    ]
    if a.role == 'worker':
        args += ['--uses', a.uses, '--py-modules', os.path.join(HERE, 'executors.py')]
    else:
        args += ['--runtime-cls', 'HeadRuntime', '--polling', a.polling]
    if a.shard_id is not None:
        args += ['--shard-id', str(a.shard_id)]
    if a.shards is not None:
        args += ['--shards', str(a.shards)]
    pod_args = set_pod_parser().parse_args(args)
    executor_native(pod_args)


if __name__ == '__main__':
    main(sys.argv[1:])
