"""Python binding of libjina_net, the networking of a Jina 3.1 serving system, over its C ABI (ctypes).

- ``jina_net.Pool`` and the functions here work on serialized requests (bytes) and need no jina.
- ``jina_net.networking.GrpcConnectionPool`` is a drop-in replacement of jina 3.1.0's
  ``jina.serve.networking.GrpcConnectionPool`` (needs jina 3.1.0); ``jina_net.patch_jina()`` makes
  jina's heads and gateways use it.

The shared library is loaded from ``$JINA_NET_LIBRARY``, else ``libjina_net.so.0`` (installed with
``scripts/install.sh``), else ``libjina_net.so``, through the dynamic loader.
"""
from ._core import (
    NO_SHARD,
    POLLING_ALL,
    POLLING_ANY,
    REQUEST_CONTROL,
    REQUEST_DATA,
    JinaNetError,
    Pool,
    Response,
    Target,
    default_grpc_options,
    host_is_local,
    init_runtime,
    is_remote_local_connection,
    send_request_async,
    send_requests_sync,
    version,
    worker_control,
    worker_control_sync,
)
from ._ffi import library_path

__version__ = '0.1.0'

__all__ = [
    'NO_SHARD',
    'POLLING_ALL',
    'POLLING_ANY',
    'REQUEST_CONTROL',
    'REQUEST_DATA',
    'JinaNetError',
    'Pool',
    'Response',
    'Target',
    'default_grpc_options',
    'host_is_local',
    'init_runtime',
    'is_remote_local_connection',
    'library_path',
    'patch_jina',
    'send_request_async',
    'send_requests_sync',
    'version',
    'worker_control',
    'worker_control_sync',
]


def patch_jina():
    """Makes jina 3.1.0's heads and gateways use ``jina_net.networking.GrpcConnectionPool``
    (see ``jina_net.networking.patch_jina``). Returns jina's original class."""
    from .networking import patch_jina as _patch

    return _patch()
