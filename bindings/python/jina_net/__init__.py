"""Python binding of libjina_net, the networking of a Jina 3.1 serving system, over its C ABI (ctypes).

- ``jina_net.Pool`` and the functions here work on serialized requests (bytes) and need no jina.
- ``jina_net.networking.GrpcConnectionPool`` is a drop-in replacement of jina 3.1.0's
  ``jina.serve.networking.GrpcConnectionPool`` (needs jina 3.1.0); ``jina_net.patch_jina()`` makes
  jina's heads and gateways use it.

The shared library is loaded from ``$JINA_NET_LIBRARY``, else ``libjina_net.so.0.2`` (installed with
``scripts/install.sh``), else ``libjina_net.so``, through the dynamic loader; a library of another C ABI
than 0.2 (``jina_net_version()``: another major or, before 1.0, minor version) is refused with an
``ImportError`` naming both versions.
"""
from ._core import (
    BALANCE_P2C_PEAK_EWMA,
    BALANCE_ROUND_ROBIN,
    COMPRESSION_DEFLATE,
    COMPRESSION_GZIP,
    COMPRESSION_NONE,
    LOG_DEBUG,
    LOG_ERROR,
    LOG_INFO,
    LOG_OFF,
    LOG_TRACE,
    LOG_WARN,
    NO_SHARD,
    ONESHOT_OPTIONS,
    POOL_OPTIONS,
    POLLING_ALL,
    POLLING_ANY,
    REQUEST_CONTROL,
    REQUEST_DATA,
    SHARDS_ALL,
    SHARDS_ANY,
    STATE_FAILING,
    STATE_IDLE,
    STATE_READY,
    STATE_UNRESPONSIVE,
    ArgumentTypeError,
    InvalidArgumentError,
    JinaNetError,
    Pool,
    Replica,
    RequestMetadata,
    Response,
    Route,
    Target,
    compression_from_name,
    default_grpc_options,
    host_is_local,
    init_runtime,
    set_busy_poll_us,
    is_remote_local_connection,
    log_to_logging,
    parse_routes,
    request_metadata,
    send_request_async,
    send_requests_sync,
    set_log_callback,
    version,
    worker_control,
    worker_control_sync,
)
from ._ffi import ABI_VERSION, library_path

__version__ = '0.2.4'

__all__ = [
    'ABI_VERSION',
    'BALANCE_P2C_PEAK_EWMA',
    'BALANCE_ROUND_ROBIN',
    'COMPRESSION_DEFLATE',
    'COMPRESSION_GZIP',
    'COMPRESSION_NONE',
    'LOG_DEBUG',
    'LOG_ERROR',
    'LOG_INFO',
    'LOG_OFF',
    'LOG_TRACE',
    'LOG_WARN',
    'NO_SHARD',
    'ONESHOT_OPTIONS',
    'POOL_OPTIONS',
    'POLLING_ALL',
    'POLLING_ANY',
    'REQUEST_CONTROL',
    'REQUEST_DATA',
    'SHARDS_ALL',
    'SHARDS_ANY',
    'STATE_FAILING',
    'STATE_IDLE',
    'STATE_READY',
    'STATE_UNRESPONSIVE',
    'ArgumentTypeError',
    'InvalidArgumentError',
    'JinaNetError',
    'Pool',
    'Replica',
    'RequestMetadata',
    'Response',
    'Route',
    'Target',
    'compression_from_name',
    'default_grpc_options',
    'host_is_local',
    'init_runtime',
    'set_busy_poll_us',
    'is_remote_local_connection',
    'library_path',
    'log_to_logging',
    'parse_routes',
    'patch_jina',
    'request_metadata',
    'send_request_async',
    'send_requests_sync',
    'set_log_callback',
    'version',
    'worker_control',
    'worker_control_sync',
]


def patch_jina(resilient: bool = False, **options):
    """Makes jina 3.1.0's heads and gateways use ``jina_net.networking.GrpcConnectionPool``, made with
    ``options`` (``resilient=True`` and every keyword ``jina_net.Pool`` takes, plus jina's
    ``compression``; see ``jina_net.networking.patch_jina``). Returns jina's original class."""
    from .networking import patch_jina as _patch

    return _patch(resilient=resilient, **options)
