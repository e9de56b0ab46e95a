"""A drop-in replacement of jina 3.1.0's ``jina.serve.networking.GrpcConnectionPool`` on libjina_net.

The methods have jina 3.1.0's signatures and results, plus one keyword-only parameter:

- ``send_requests(requests, deployment, head=False, shard_id=None, polling_type=PollingType.ANY,
  endpoint=None, *, metadata=None)`` returns a list of ``asyncio.Task`` (one per target: ALL = one per
  shard, ``[]`` when the deployment, head or shard has no replica), each resolving to ``(response,
  metadata)``: a jina ``DataRequest`` / ``ControlRequest`` deserialized by jina's own serializers and
  the trailing metadata as a ``grpc.aio.Metadata``; a failed call raises ``grpc.aio.AioRpcError`` (here
  ``JinaNetRpcError``, a subclass carrying the libjina_net result and the replica's address).
- ``send_requests_once(requests, deployment, head=False, shard_id=None, endpoint=None, *,
  metadata=None)`` returns one such task, or ``None`` when there is no replica; ``send_request`` /
  ``send_request_once`` as jina, with ``metadata`` too.
- ``metadata`` (not in jina 3.1.0, whose sends take none; default ``None`` = jina's behaviour) is
  request metadata sent with the call, on every attempt: a dict ``{key: str | bytes}``, or ``(key,
  value)`` pairs (a list, a ``grpc.aio.Metadata``) to repeat a key. ``bytes`` values are for keys
  ending in ``-bin`` (base64 on the wire, as grpc does). Invalid metadata (an upper-case key, a
  reserved name such as ``grpc-timeout`` or ``content-type``, ``endpoint`` together with
  ``endpoint=``, a value byte gRPC does not allow) raises ``JinaNetRpcError`` with code
  ``INVALID_ARGUMENT`` (``result_name`` ``JINA_NET_INVALID_ARGUMENT``) from the call itself, before
  anything is sent and without a task; a value of the wrong Python type raises ``TypeError``. When the
  deployment, head or shard has no replica the result is ``[]`` / ``None``, as jina's, and nothing is
  sent or checked.
- ``add_connection(deployment, address, head=False, shard_id=None, *, tls_server_name=None)`` (the
  keyword-only server name is not in jina: a per-address TLS server name); ``await
  remove_connection(...)`` returns a truthy value when a replica was removed, ``None`` otherwise;
  ``start()``; ``await close()`` (the pool is usable again afterwards, as jina's).
- Not in jina 3.1.0: ``await wait_ready(deployment=None, timeout=10.0)`` (seconds; raises
  ``jina_net.JinaNetError`` naming the replicas not ready), ``routes()`` / ``route_table()`` (each
  replica's state), ``metrics_text()``, ``pool_options``.
- Static helpers: ``activate_worker_sync``, ``activate_worker``, ``deactivate_worker``,
  ``send_request_sync``, ``send_requests_sync``, ``send_request_async``, ``get_default_grpc_options``
  go through libjina_net; ``get_grpc_channel`` and ``create_async_channel_stub`` return grpc objects
  and are jina's own (this class derives from jina's).

Routing, retries (3 attempts on UNAVAILABLE), message sizes and the wire bytes are libjina_net's, which
behaves as jina 3.1.0 (tests/interop.rs compares them byte for byte). Extra keyword arguments of the
constructor are libjina_net pool options, as ``jina_net.Pool`` takes them (``resilient=True``,
``default_timeout_ms=...``, ``probe_after_ms=...``, ``per_attempt_timeout_ms=...``,
``fail_over_unanswered=True``, ``retry_budget_max_tokens=...``, ``tls_cert_chain_pem=...``,
``tls_private_key_pem=...``, ``tls_server_name=...``, ``dns_refresh_ms=...``: ``jina_net.POOL_OPTIONS``;
times in milliseconds); a wrong type raises ``TypeError``, an invalid value ``ValueError``, from the
constructor. ``compression=`` is jina 3.2's constructor parameter (``'NoCompression'``, ``'Gzip'``,
``'Deflate'``), the pool option of that name.
The sends of this pool are not marked idempotent (jina's calls carry no such flag): a send whose replica
stopped answering, or whose ``per_attempt_timeout_ms`` passed, goes on to another replica only with
``fail_over_unanswered=True``; otherwise it fails with ``UNAVAILABLE`` (``DEADLINE_EXCEEDED`` for the
attempt timeout).

``patch_jina()`` makes jina's runtimes (heads, gateways) create this pool.
"""
import asyncio
import base64
from typing import List, Optional

import grpc
from grpc.aio import AioRpcError, Metadata

from jina.enums import PollingType
from jina.logging.logger import JinaLogger
from jina.proto import serializer as _serializer
from jina.serve import networking as _jina_networking
from jina.types.request import Request
from jina.types.request.control import ControlRequest
from jina.types.request.data import DataRequest

from . import _core, _ffi

__all__ = [
    'GrpcConnectionPool',
    'JinaNetRpcError',
    'create_connection_pool',
    'host_is_local',
    'is_remote_local_connection',
    'patch_jina',
]

_JinaGrpcConnectionPool = _jina_networking.GrpcConnectionPool
_jina_create_connection_pool = _jina_networking.create_connection_pool

_STATUS_BY_CODE = {s.value[0]: s for s in grpc.StatusCode}
# library results without a gRPC status, as the gRPC code jina's grpc.aio calls would have raised
_STATUS_BY_RESULT = {
    _ffi.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    _ffi.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    _ffi.CANCELLED: grpc.StatusCode.CANCELLED,
    _ffi.POOL_CLOSED: grpc.StatusCode.CANCELLED,
    _ffi.RUNTIME_ERROR: grpc.StatusCode.UNAVAILABLE,
    _ffi.TLS_ERROR: grpc.StatusCode.UNAVAILABLE,
    _ffi.INVALID_RESPONSE: grpc.StatusCode.INTERNAL,
    _ffi.PANIC: grpc.StatusCode.INTERNAL,
    _ffi.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

_serialize_data = _serializer.DataRequestProto.SerializeToString
_serialize_control = _serializer.ControlRequestProto.SerializeToString
_parse_data = _serializer.DataRequestProto.FromString
_parse_control = _serializer.ControlRequestProto.FromString


class JinaNetRpcError(AioRpcError):
    """``grpc.aio.AioRpcError`` of a libjina_net send: ``code()``, ``details()``,
    ``trailing_metadata()`` as grpc's, plus ``result_name`` (e.g. ``JINA_NET_RPC_ERROR``) and
    ``address`` (the replica)."""

    def __init__(self, code, details, trailing_metadata, debug_error_string, result, address):
        super().__init__(code, Metadata(), trailing_metadata, details, debug_error_string)
        self.result = result
        self.result_name = _ffi.result_name(result)
        self.address = address

    def __str__(self):
        return f'<JinaNetRpcError {self.code()} {self.details()!r} ({self.result_name}, {self.address})>'


def _value(key: str, raw: bytes):
    if key.endswith('-bin'):
        return base64.b64decode(raw + b'=' * (-len(raw) % 4))
    try:
        return raw.decode('ascii')
    except UnicodeDecodeError:
        return raw.decode('latin-1')


def _grpc_metadata(pairs) -> Metadata:
    return Metadata(*[(k, _value(k, v)) for k, v in pairs])


def _rpc_error(result: int, message: str, grpc_code: int = -1, grpc_message: str = '', address: str = '',
               metadata=()) -> JinaNetRpcError:
    if grpc_code >= 0:
        code = _STATUS_BY_CODE.get(grpc_code, grpc.StatusCode.UNKNOWN)
        details = grpc_message
    else:
        code = _STATUS_BY_RESULT.get(result, grpc.StatusCode.UNKNOWN)
        details = message
    return JinaNetRpcError(code, details, _grpc_metadata(metadata), message, result, address)


def _error_of(e: _core.JinaNetError) -> JinaNetRpcError:
    return _rpc_error(e.result, e.message, e.grpc_code, e.grpc_message, e.address, e.metadata)


async def _await(fut):
    return await fut


def _serialize(requests):
    """(kind, [bytes], parse) or raises as jina's task would (ValueError / IndexError)."""
    request_type = type(requests[0])
    if request_type == DataRequest:
        return _core.REQUEST_DATA, [_serialize_data(r) for r in requests], _parse_data
    if request_type == ControlRequest:
        # jina sends requests[0] only
        return _core.REQUEST_CONTROL, [_serialize_control(requests[0])], _parse_control
    raise ValueError(f'Unsupported request type {type(requests[0])}')


class GrpcConnectionPool(_JinaGrpcConnectionPool):
    """jina 3.1.0's ``GrpcConnectionPool`` on libjina_net (see the module documentation).

    :param logger: the logger to use (as jina's)
    :param compression: how requests are compressed, as jina 3.2's ``GrpcConnectionPool(compression=)``
        takes it: ``None`` / ``'NoCompression'``, ``'Gzip'``, ``'Deflate'`` (any case; also
        ``'none'``/``'gzip'``/``'deflate'``, ``jina_net.COMPRESSION_*``, or a ``grpc.Compression`` member,
        taken by its name); the libjina_net pool option ``compression``. An unknown name raises
        ``ValueError``.
    :param pool_options: libjina_net pool options (``resilient=True``; fields of
        ``jina_net_pool_options`` such as ``default_timeout_ms``, ``fail_over``, ``probe_after_ms``,
        ``per_attempt_timeout_ms``, ``tls_cert_chain_pem``, ``tls_server_name``, ``dns_refresh_ms``...:
        ``jina_net.POOL_OPTIONS``); none = the library's defaults (jina's retries, plus liveness probes,
        connect and TCP user timeouts)
    """

    def __init__(self, logger: Optional[JinaLogger] = None, compression: Optional[str] = None, **pool_options):
        if compression is not None:
            pool_options['compression'] = compression
        self._pool_options = dict(pool_options)
        self._pool = _core.Pool(**pool_options)
        self._logger = logger or JinaLogger(self.__class__.__name__)
        # deployment -> {'heads': n, 'shards': {shard_id: n}}: how many tasks a send makes (ALL: one per
        # shard). Mirrors the C pool, which only this object changes.
        self._deployments = {}

    # --- the routing table --------------------------------------------------------------------

    def add_connection(self, deployment: str, address: str, head: Optional[bool] = False,
                       shard_id: Optional[int] = None, *, tls_server_name: Optional[str] = None):
        """Adds a connection for a deployment (as jina: heads are head 0, ``shard_id`` None = 0).

        ``address`` may also be ``unix:/path`` or ``dns:///host:port`` (every address of the name, see
        ``jina_net.Pool.add_connection``). ``tls_server_name`` (keyword-only, not in jina): the name
        this replica's TLS certificate must carry instead of the host of the address."""
        if head:
            added = self._pool.add_connection(deployment, address, head=True, tls_server_name=tls_server_name)
        else:
            shard_id = 0 if shard_id is None else shard_id
            added = self._pool.add_connection(deployment, address, head=False, shard_id=shard_id,
                                              tls_server_name=tls_server_name)
        d = self._deployments.setdefault(deployment, {'heads': 0, 'shards': {}})
        if added:
            if head:
                d['heads'] += 1
            else:
                d['shards'][shard_id] = d['shards'].get(shard_id, 0) + 1
            self._logger.debug(f'Adding connection for deployment {deployment}/{"heads" if head else "shards"}/'
                               f'{0 if head else shard_id} to {address}')
        else:
            self._logger.debug(f'Ignoring activation of pod, {address} already known')

    async def remove_connection(self, deployment: str, address: str, head: Optional[bool] = False,
                                shard_id: Optional[int] = None):
        """Removes a connection; returns the address when one was removed, None otherwise."""
        if not head and shard_id is None:
            shard_id = 0
        removed = self._pool.remove_connection(deployment, address, head=bool(head),
                                               shard_id=None if head else shard_id)
        if not removed:
            return None
        d = self._deployments.get(deployment)
        if d is not None:
            if head:
                d['heads'] -= 1
            else:
                left = d['shards'].get(shard_id, 0) - 1
                if left > 0:
                    d['shards'][shard_id] = left
                else:
                    d['shards'].pop(shard_id, None)
        return address

    def _targets(self, deployment: str, head: bool, shard_id: Optional[int], polling: int) -> int:
        d = self._deployments.get(deployment)
        if d is None:
            return 0
        if polling == _core.SHARDS_ALL:
            return len(d['shards'])
        if head:
            return 1 if d['heads'] > 0 else 0
        if shard_id is None:
            return 1 if d['shards'] else 0
        return 1 if shard_id in d['shards'] else 0

    # --- sends --------------------------------------------------------------------------------

    def _send(self, requests: List[Request], deployment: str, head: bool, shard_id: Optional[int], polling: int,
              endpoint: Optional[str], metadata) -> List[asyncio.Task]:
        md = _core.request_metadata(metadata)  # TypeError for wrong types, before anything else
        n = self._targets(deployment, bool(head), shard_id, polling)
        if n == 0:
            self._logger.debug(f'No available connections for deployment {deployment} and shard {shard_id}')
            return []
        loop = asyncio.get_running_loop()
        futures = []

        def tasks_of():
            return [loop.create_task(_await(f)) for f in futures]

        try:
            kind, payload, parse = _serialize(requests)
        except (ValueError, IndexError) as e:
            # jina's tasks raise these
            futures.extend(loop.create_future() for _ in range(n))
            for f in futures:
                f.set_exception(e)
            return tasks_of()

        # Runs on this loop's thread, after this method returned (the library hands completions to the
        # loop with call_soon_threadsafe): the futures exist by then.
        def done(outcome):
            status, message, targets = outcome
            for i, fut in enumerate(futures):
                if fut.done():
                    continue
                if i < len(targets):
                    t = targets[i]
                    if t.status == _ffi.OK:
                        try:
                            fut.set_result((parse(t.body), _grpc_metadata(t.metadata)))
                        except Exception as e:  # noqa: BLE001 (a response jina could not parse either)
                            fut.set_exception(e)
                    else:
                        fut.set_exception(_rpc_error(t.status, t.error_message, t.grpc_code, t.grpc_message,
                                                     t.address, t.metadata))
                elif targets:
                    fut.set_exception(_rpc_error(_ffi.NO_REPLICAS, f'deployment "{deployment}" had {len(targets)} '
                                                 f'shards when the send was routed, not {n}'))
                else:
                    fut.set_exception(_rpc_error(status, message))

        try:
            send_id = self._pool.send(kind, payload, deployment, head=bool(head), shard_id=shard_id,
                                      polling=polling, endpoint=endpoint if kind == _core.REQUEST_DATA else None,
                                      on_done=done, loop=loop, metadata=md)
        except _core.JinaNetError as e:
            if e.result in (_ffi.UNKNOWN_DEPLOYMENT, _ffi.NO_REPLICAS):
                return []
            if e.result == _ffi.INVALID_ARGUMENT:
                # the caller's arguments (invalid metadata): raised here, nothing was sent
                raise _error_of(e) from None
            err = _error_of(e)
            futures.extend(loop.create_future() for _ in range(n))
            for f in futures:
                f.set_exception(err)
            return tasks_of()

        futures.extend(loop.create_future() for _ in range(n))

        # A task cancelled by its caller cancels its future; once every target's future is cancelled,
        # the library stops the send (jina cancels the grpc call).
        def on_cancel(_f):
            if all(f.cancelled() for f in futures):
                self._pool.cancel(send_id)

        for f in futures:
            f.add_done_callback(on_cancel)
        return tasks_of()

    def send_request(self, request: Request, deployment: str, head: bool = False, shard_id: Optional[int] = None,
                     polling_type: PollingType = PollingType.ANY, endpoint: Optional[str] = None, *,
                     metadata=None) -> List[asyncio.Task]:
        """Sends one request (see ``send_requests``)."""
        return self.send_requests(requests=[request], deployment=deployment, head=head, shard_id=shard_id,
                                  polling_type=polling_type, endpoint=endpoint, metadata=metadata)

    def send_requests(self, requests: List[Request], deployment: str, head: bool = False,
                      shard_id: Optional[int] = None, polling_type: PollingType = PollingType.ANY,
                      endpoint: Optional[str] = None, *, metadata=None) -> List[asyncio.Task]:
        """Sends requests to one (ANY) or every shard (ALL) of a deployment; one task per target, each
        resolving to ``(response, trailing metadata)``. ``metadata``: request metadata (see the module
        documentation)."""
        if polling_type == PollingType.ANY:
            polling = _core.SHARDS_ANY
        elif polling_type == PollingType.ALL:
            polling = _core.SHARDS_ALL
        else:
            raise ValueError(f'Unsupported polling type {polling_type}')
        return self._send(requests, deployment, head, shard_id, polling, endpoint, metadata)

    def send_request_once(self, request: Request, deployment: str, head: bool = False,
                          shard_id: Optional[int] = None, *, metadata=None) -> asyncio.Task:
        """Sends one request to one replica (see ``send_requests_once``)."""
        return self.send_requests_once([request], deployment=deployment, head=head, shard_id=shard_id,
                                       metadata=metadata)

    def send_requests_once(self, requests: List[Request], deployment: str, head: bool = False,
                           shard_id: Optional[int] = None, endpoint: Optional[str] = None, *,
                           metadata=None) -> asyncio.Task:
        """Sends requests to one replica; the task, or None when there is none."""
        tasks = self._send(requests, deployment, head, shard_id, _core.SHARDS_ANY, endpoint, metadata)
        return tasks[0] if tasks else None

    def start(self):
        """Starts the pool (nothing to do, as in jina)."""

    async def close(self):
        """Closes every connection; pending sends fail (CANCELLED). The pool can be filled again, as
        jina's can: a new ``jina_net.Pool`` with the same options takes the closed one's place (a
        ``jina_net.Pool`` itself stays closed)."""
        self._pool.close()
        self._pool = _core.Pool(**self._pool_options)
        self._deployments.clear()

    def routes(self) -> str:
        """libjina_net's routing table (``jina_net_pool_routes``), with each replica's state."""
        return self._pool.routes()

    def route_table(self) -> List[_core.Route]:
        """The routing table parsed (``jina_net.Pool.route_table``): ``Route`` per head or shard, each
        replica with its state (``idle``, ``ready``, ``failing``, ``unresponsive``)."""
        return self._pool.route_table()

    async def wait_ready(self, deployment: Optional[str] = None, timeout: float = 10.0):
        """Connects every replica of ``deployment`` (``None``: all) and returns once each answered a
        STATUS request; ``timeout`` in seconds (as jina's helpers). Raises ``jina_net.JinaNetError``
        ``JINA_NET_DEADLINE_EXCEEDED`` naming each replica not ready (deployment, head or shard,
        address, state), ``JINA_NET_UNKNOWN_DEPLOYMENT``. The blocking C call runs on the loop's
        default executor."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f'timeout is a number of seconds, not {type(timeout).__name__}')
        if not timeout >= 0:
            raise ValueError(f'timeout={timeout}: a number of seconds >= 0')
        await self._pool.wait_ready_async(deployment, int(round(timeout * 1000)))

    @property
    def pool_options(self) -> dict:
        """The libjina_net pool options of this pool (``jina_net.Pool.options``)."""
        return self._pool.options

    def metrics_text(self) -> str:
        """The pool's metrics, Prometheus text format (``jina_net.Pool.metrics_text``; ``metrics=True``)."""
        return self._pool.metrics_text()

    # --- static helpers -----------------------------------------------------------------------

    @staticmethod
    def _control(command: str, worker_host: str, worker_port: int, shard_id: Optional[int]) -> ControlRequest:
        request = ControlRequest(command=command)
        request.add_related_entity('worker', worker_host, worker_port, shard_id)
        return request

    @staticmethod
    def activate_worker_sync(worker_host: str, worker_port: int, target_head: str,
                             shard_id: Optional[int] = None) -> ControlRequest:
        """Registers a worker with a head (ACTIVATE; blocking, 100 s, 3 attempts on UNAVAILABLE)."""
        try:
            r = _core.worker_control_sync(True, worker_host, worker_port, target_head, shard_id)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return _parse_control(r.body)

    @staticmethod
    async def activate_worker(worker_host: str, worker_port: int, target_head: str,
                              shard_id: Optional[int] = None) -> ControlRequest:
        """Registers a worker with a head (ACTIVATE; one attempt, 1 s)."""
        try:
            r = await _core.worker_control(True, worker_host, worker_port, target_head, shard_id)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return _parse_control(r.body)

    @staticmethod
    async def deactivate_worker(worker_host: str, worker_port: int, target_head: str,
                                shard_id: Optional[int] = None) -> ControlRequest:
        """Takes a worker out of a head (DEACTIVATE; one attempt, 1 s)."""
        try:
            r = await _core.worker_control(False, worker_host, worker_port, target_head, shard_id)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return _parse_control(r.body)

    @staticmethod
    def send_request_sync(request: Request, target: str, timeout=100.0, https=False,
                          root_certificates: Optional[str] = None, endpoint: Optional[str] = None) -> Request:
        """Sends one request and blocks for the response (3 attempts on UNAVAILABLE)."""
        kind, payload, parse = _serialize([request])
        try:
            r = _core.send_requests_sync(kind, payload, target, timeout, https, root_certificates,
                                         endpoint if kind == _core.REQUEST_DATA else None)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return parse(r.body)

    @staticmethod
    def send_requests_sync(requests: List[Request], target: str, timeout=100.0, https=False,
                           root_certificates: Optional[str] = None, endpoint: Optional[str] = None) -> Request:
        """Sends data requests in one ``process_data`` call and blocks for the response."""
        payload = [_serialize_data(r) for r in requests]
        try:
            r = _core.send_requests_sync(_core.REQUEST_DATA, payload, target, timeout, https, root_certificates,
                                         endpoint)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return _parse_data(r.body)

    @staticmethod
    async def send_request_async(request: Request, target: str, timeout: float = 1.0, https: bool = False,
                                 root_certificates: Optional[str] = None) -> Request:
        """Sends one request without blocking (no retry)."""
        kind, payload, parse = _serialize([request])
        try:
            r = await _core.send_request_async(kind, payload[0], target, timeout, https, root_certificates)
        except _core.JinaNetError as e:
            raise _error_of(e) from None
        return parse(r.body)

    @staticmethod
    def get_default_grpc_options():
        """jina's default gRPC options (unlimited message sizes)."""
        return _core.default_grpc_options()


def host_is_local(hostname: str) -> bool:
    """jina's ``host_is_local``: ``localhost``, ``0.0.0.0`` and loopback IPs; ValueError for other names."""
    try:
        return _core.host_is_local(hostname)
    except _core.JinaNetError as e:
        if e.result == _ffi.INVALID_HOST:
            raise ValueError(e.message) from None
        raise


def is_remote_local_connection(first: str, second: str) -> bool:
    """jina's ``is_remote_local_connection``."""
    return _core.is_remote_local_connection(first, second)


def create_connection_pool(k8s_connection_pool: bool = False, k8s_namespace: Optional[str] = None,
                           logger: Optional[JinaLogger] = None) -> _JinaGrpcConnectionPool:
    """jina's ``create_connection_pool``: this pool outside Kubernetes, jina's K8s pool inside."""
    if k8s_connection_pool and k8s_namespace:
        return _jina_create_connection_pool(k8s_connection_pool, k8s_namespace, logger)
    return GrpcConnectionPool(logger=logger)


def patch_jina(resilient: bool = False, **options):
    """Makes jina's runtimes use this pool: sets ``jina.serve.networking.GrpcConnectionPool``, which
    jina's ``create_connection_pool`` instantiates for every head and gateway (outside Kubernetes).

    ``resilient=True`` (the preset: fail-over, backoff, ejection) and ``options`` (every keyword
    ``jina_net.Pool`` takes: ``balance=jina_net.BALANCE_P2C_PEAK_EWMA``, ``max_hedges``,
    ``hedge_delay_ms``, ``metrics=True``, ``tls_*``..., and jina's ``compression``) configure every
    pool jina makes (a subclass of ``GrpcConnectionPool`` with them as defaults; keywords given to its
    constructor still win). They are checked here: a wrong type or value raises ``TypeError`` /
    ``ValueError`` (``jina_net.ArgumentTypeError`` / ``InvalidArgumentError``) before jina starts.

    Call it before the runtimes are created (before ``Flow.start()``; in a process that runs a head or
    gateway, before the runtime). The names other modules imported earlier stay jina's: the Flow
    process's own static calls (``activate_worker_sync``, readiness checks) keep using grpc, because
    the Flow process forks its runtimes after them and libjina_net's runtime cannot be inherited by a
    forked child. Returns jina's original class.
    """
    defaults = dict(options)
    if resilient:
        defaults['resilient'] = True
    if not defaults:
        _jina_networking.GrpcConnectionPool = GrpcConnectionPool
        return _JinaGrpcConnectionPool
    # checked now (the C pool is made lazily, so this starts nothing)
    _core.Pool(**defaults).close()

    class ConfiguredGrpcConnectionPool(GrpcConnectionPool):
        __doc__ = GrpcConnectionPool.__doc__
        pool_defaults = dict(defaults)

        def __init__(self, logger: Optional[JinaLogger] = None, compression: Optional[str] = None, **pool_options):
            merged = {**defaults, **pool_options}
            if compression is not None:
                merged['compression'] = compression
            super().__init__(logger=logger, **merged)

    ConfiguredGrpcConnectionPool.__name__ = ConfiguredGrpcConnectionPool.__qualname__ = 'GrpcConnectionPool'
    _jina_networking.GrpcConnectionPool = ConfiguredGrpcConnectionPool
    return _JinaGrpcConnectionPool
