"""Replays a scenario with jina 3.1.0's own GrpcConnectionPool and records what it received.

    python pool_compare.py SCENARIO.json OUT.txt

The Rust interop tests (tests/interop.rs) run the same scenario through libjina_net's C ABI and compare
the bytes. SCENARIO.json is {"steps": [...]}, each step one of
    {"op": "add"|"remove", "deployment", "address", "head": bool, "shard": int|null}
    {"op": "send", "kind": "data"|"control", "requests": [hex, ...], "deployment", "head": bool,
     "shard": int|null, "polling": "ANY"|"ALL", "endpoint": str|null}
        -> GrpcConnectionPool.send_requests (one result per task, in task order)
    {"op": "send_sync", "kind": "data"|"control", "requests": [hex, ...], "target", "endpoint": str|null}
        -> GrpcConnectionPool.send_request_sync / send_requests_sync (no trailing metadata: jina drops it)
    {"op": "activate", "host", "port", "head", "shard": int|null}    -> activate_worker_sync
    {"op": "deactivate", "host", "port", "head", "shard": int|null}  -> await deactivate_worker
OUT.txt gets, per step that has an outcome, a line "STEP\t<index>\t<number of results>" followed by one
line per result:
    OK\t<hex of the response bytes exactly as received on the wire>\t<hex of metadata>|-
    ERR\t<gRPC code number>\t<hex of the gRPC details>
metadata is "key\\0value\\0key\\0value..." of the trailing metadata ("-" when jina's API does not expose it).
The raw response bytes are captured by wrapping jina's own response deserializers
(jina.proto.serializer.*.FromString) before any stub is built, so nothing is re-serialized.
"""
import asyncio
import json
import sys

import grpc
from grpc.aio import AioRpcError

from jina.proto import jina_pb2
from jina.proto import serializer as _ser

_data_from_string = _ser.DataRequestProto.FromString
_control_from_string = _ser.ControlRequestProto.FromString


def _data_from_string_raw(x):
    r = _data_from_string(x)
    r._interop_raw = bytes(x)
    return r


def _control_from_string_raw(x):
    r = _control_from_string(x)
    r._interop_raw = bytes(x)
    return r


_ser.DataRequestProto.FromString = staticmethod(_data_from_string_raw)
_ser.ControlRequestProto.FromString = staticmethod(_control_from_string_raw)

from jina.enums import PollingType  # noqa: E402
from jina.serve.networking import GrpcConnectionPool  # noqa: E402
from jina.types.request.control import ControlRequest  # noqa: E402
from jina.types.request.data import DataRequest  # noqa: E402


def _requests(step):
    out = []
    for h in step['requests']:
        b = bytes.fromhex(h)
        if step['kind'] == 'data':
            out.append(DataRequest(request=b))
        else:
            out.append(ControlRequest(request=jina_pb2.ControlRequestProto.FromString(b)))
    return out


def _meta(md):
    if md is None:
        return '-'
    parts = []
    for k, v in md:
        parts.append(k.encode())
        parts.append(v if isinstance(v, bytes) else v.encode())
    return b'\0'.join(parts).hex()


def _ok(resp, md):
    return f'OK\t{resp._interop_raw.hex()}\t{_meta(md)}'


def _err(e):
    return f'ERR\t{e.code().value[0]}\t{(e.details() or "").encode().hex()}'


async def _run(steps, out):
    pool = GrpcConnectionPool()
    try:
        for i, step in enumerate(steps):
            op = step['op']
            results = None
            if op == 'add':
                pool.add_connection(
                    deployment=step['deployment'],
                    address=step['address'],
                    head=step['head'],
                    shard_id=step['shard'],
                )
            elif op == 'remove':
                await pool.remove_connection(
                    deployment=step['deployment'],
                    address=step['address'],
                    head=step['head'],
                    shard_id=step['shard'],
                )
            elif op == 'send':
                tasks = pool.send_requests(
                    requests=_requests(step),
                    deployment=step['deployment'],
                    head=step['head'],
                    shard_id=step['shard'],
                    polling_type=PollingType.from_string(step['polling']),
                    endpoint=step['endpoint'],
                )
                results = []
                for r in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(r, AioRpcError):
                        results.append(_err(r))
                    elif isinstance(r, BaseException):
                        raise r
                    else:
                        results.append(_ok(r[0], r[1]))
            elif op == 'send_sync':
                reqs = _requests(step)
                try:
                    if len(reqs) == 1:
                        resp = GrpcConnectionPool.send_request_sync(
                            reqs[0], step['target'], endpoint=step['endpoint']
                        )
                    else:
                        resp = GrpcConnectionPool.send_requests_sync(
                            reqs, step['target'], endpoint=step['endpoint']
                        )
                    results = [_ok(resp, None)]
                except grpc.RpcError as e:
                    results = [_err(e)]
            elif op in ('activate', 'deactivate'):
                try:
                    if op == 'activate':
                        resp = GrpcConnectionPool.activate_worker_sync(
                            step['host'], step['port'], step['head'], step['shard']
                        )
                    else:
                        resp = await GrpcConnectionPool.deactivate_worker(
                            step['host'], step['port'], step['head'], step['shard']
                        )
                    results = [_ok(resp, None)]
                except grpc.RpcError as e:
                    results = [_err(e)]
            else:
                raise ValueError(f'unknown op {op!r}')
            if results is not None:
                out.write(f'STEP\t{i}\t{len(results)}\n')
                for line in results:
                    out.write(line + '\n')
    finally:
        await pool.close()


def main(argv):
    with open(argv[0]) as f:
        steps = json.load(f)['steps']
    with open(argv[1], 'w') as out:
        asyncio.run(_run(steps, out))


if __name__ == '__main__':
    main(sys.argv[1:])
