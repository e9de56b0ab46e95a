"""The C ABI as Python objects, on serialized bytes (no jina needed): a connection pool whose sends
complete on an asyncio event loop, the one-shot helpers and the control plane.

Threads: the library completes a send on one of its own threads. The completion callback (one ctypes
function for the whole process, so nothing has to be kept alive per send) copies what it needs out of
the result during the call and hands it to the event loop of the send through
``loop.call_soon_threadsafe`` (batched: one wake-up of the loop carries every completion that
arrived meanwhile). Futures are only touched on their loop's thread.

Processes: the library runs one runtime (threads) per process, started by the first pool or one-shot
call. A process forked after that cannot use the library (its runtime threads do not exist in the
child): calls there raise ``RuntimeError`` instead of hanging. Forking before the first use is fine,
which is how jina's Flows start their runtimes. At interpreter exit the runtime is shut down, so that
no callback runs while Python finalizes.
"""
import asyncio
import atexit
import base64
import binascii
import ctypes
import enum
import itertools
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Mapping
from ctypes import byref, c_bool, c_char_p, c_size_t, c_uint32, c_uint64, c_void_p, sizeof, string_at
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _ffi
from ._ffi import lib

NO_SHARD = _ffi.NO_SHARD
REQUEST_DATA = _ffi.REQUEST_DATA
REQUEST_CONTROL = _ffi.REQUEST_CONTROL
#: ``jina_net_shards``: one target (the head, the given shard, or the shards in turn) / one per shard
SHARDS_ANY = _ffi.SHARDS_ANY
SHARDS_ALL = _ffi.SHARDS_ALL
#: jina's names of the same values (``polling`` in jina and in ``Pool.send``)
POLLING_ANY = SHARDS_ANY
POLLING_ALL = SHARDS_ALL
#: ``jina_net_balance`` (the pool option ``balance``): jina's round robin / power of two choices (PeakEWMA)
BALANCE_ROUND_ROBIN = 0
BALANCE_P2C_PEAK_EWMA = 1
#: ``jina_net_compression`` (the pool option and one-shot option ``compression``; names are taken too)
COMPRESSION_NONE = _ffi.COMPRESSION_NONE
COMPRESSION_GZIP = _ffi.COMPRESSION_GZIP
COMPRESSION_DEFLATE = _ffi.COMPRESSION_DEFLATE
#: The states of a replica in ``Pool.route_table()`` (the 4th column of ``jina_net_pool_routes``)
STATE_IDLE = 'idle'
STATE_READY = 'ready'
STATE_FAILING = 'failing'
STATE_UNRESPONSIVE = 'unresponsive'


class JinaNetError(Exception):
    """A call or a send that failed.

    :ivar result: the ``jina_net_result`` code (``jina_net._ffi.RPC_ERROR``, ...)
    :ivar result_name: its name, e.g. ``"JINA_NET_RPC_ERROR"``
    :ivar grpc_code: the gRPC status code, or -1 when the failure had none
    :ivar grpc_message: the gRPC status message ("" when none)
    :ivar address: ``host:port`` of the replica, when known
    :ivar metadata: trailing metadata of the error status, ``[(key, value bytes)]``
    """

    def __init__(self, result: int, message: str, grpc_code: int = -1, grpc_message: str = '', address: str = '',
                 metadata: Optional[List[Tuple[str, bytes]]] = None):
        super().__init__(message)
        self.result = result
        self.result_name = _ffi.result_name(result)
        self.message = message
        self.grpc_code = grpc_code
        self.grpc_message = grpc_message
        self.address = address
        self.metadata = metadata or []

    def __str__(self):
        return f'{self.result_name}: {self.message}'


class InvalidArgumentError(JinaNetError, ValueError):
    """A value the library refuses, said before the C call (a ``ValueError`` too): ``result`` is the
    code C returns for it: ``JINA_NET_INVALID_ARGUMENT`` (an option out of range, a NUL in a string,
    an unknown compression), ``JINA_NET_TLS_ERROR`` (PEM without a certificate or key, a server name
    that is none)."""

    def __init__(self, message: str, result: int = _ffi.INVALID_ARGUMENT):
        super().__init__(result, message)


class ArgumentTypeError(JinaNetError, TypeError):
    """An argument of the wrong type (a ``TypeError`` too): ``result`` is ``JINA_NET_NULL_ARGUMENT``
    for ``None`` where C takes a pointer (a deployment, an address), else ``JINA_NET_INVALID_ARGUMENT``."""

    def __init__(self, message: str, result: int = _ffi.INVALID_ARGUMENT):
        super().__init__(result, message)


def _pool_closed(what: str) -> JinaNetError:
    return JinaNetError(_ffi.POOL_CLOSED, f'{what}: connection pool closed')


def _error_of_call(result: int, what: str) -> JinaNetError:
    message = _ffi.last_error() or what
    return JinaNetError(result, message, lib.jina_net_last_error_grpc_code() if result == _ffi.RPC_ERROR else -1)


def _version(v) -> str:
    return '.'.join(map(str, v))


def _needs(since, what: str, hint: str = ''):
    """``JinaNetError`` ``JINA_NET_UNSUPPORTED`` when the loaded library is older than ``since``: ``what``
    (an option, a function) needs a newer one. (Said here, by name: the library would refuse a struct
    field it does not know only by its byte offset, and lacks the functions added since.)"""
    if _ffi.library_version < since:
        raise JinaNetError(
            _ffi.UNSUPPORTED,
            f'{what} needs libjina_net {_version(since)} or newer; the library loaded ({_ffi.library_name}) is '
            f'{_version(_ffi.library_version)}{hint}')


class Target:
    """The outcome of a send at one target (one shard for polling ALL)."""

    __slots__ = ('status', 'grpc_code', 'head', 'shard_id', 'address', 'grpc_message', 'error_message', 'body',
                 'metadata')

    def __init__(self, status, grpc_code, head, shard_id, address, grpc_message, error_message, body, metadata):
        self.status = status
        self.grpc_code = grpc_code
        self.head = head
        self.shard_id = shard_id
        self.address = address
        self.grpc_message = grpc_message
        self.error_message = error_message
        #: the serialized response (``None`` when the target failed)
        self.body = body
        #: trailing metadata, ``[(key, value bytes as on the wire)]`` (base64 for ``-bin`` keys)
        self.metadata = metadata

    @property
    def ok(self) -> bool:
        return self.status == _ffi.OK

    def error(self) -> JinaNetError:
        return JinaNetError(self.status, self.error_message, self.grpc_code, self.grpc_message, self.address,
                            self.metadata)

    def __repr__(self):
        if self.ok:
            return f'Target(ok, {self.address}, {len(self.body)} bytes, {self.metadata})'
        return f'Target({_ffi.result_name(self.status)}, {self.address}, {self.error_message!r})'


# --- processes -----------------------------------------------------------------------------------

_runtime_pid: Optional[int] = None
_inherited = False  # set in a child forked after the runtime started


def _after_fork_in_child():
    global _inherited
    if _runtime_pid is not None:
        _inherited = True


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _shutdown_at_exit():
    if _runtime_pid == os.getpid() and not _inherited:
        # Pending sends complete now (on this thread) and the runtime threads are joined: no callback
        # can run later, while the interpreter finalizes.
        lib.jina_net_runtime_shutdown(2000)


def _uses_runtime():
    """Called before every call that may start or use the library runtime."""
    global _runtime_pid
    if _inherited:
        raise RuntimeError(
            f'libjina_net was started in process {_runtime_pid} before this process was forked from it; '
            'a forked child cannot use it (its runtime threads do not exist here). Use the library only '
            'in the child, or start children before the first pool or send (or with exec/spawn).'
        )
    if _runtime_pid is None:
        _runtime_pid = os.getpid()
        atexit.register(_shutdown_at_exit)


def init_runtime(worker_threads: int):
    """Sizes the library runtime (before the first pool or send; afterwards ``JinaNetError``
    ``ALREADY_STARTED``). Default: half the cores the process may use, at least 1 and at most 4."""
    r = lib.jina_net_runtime_init(worker_threads)
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_runtime_init failed')


def set_busy_poll_us(busy_poll_us: int):
    """The most a library worker busy-polls before it sleeps, in microseconds (default 100; 0 turns
    it off); any time, also while the runtime runs. Over 10000: ``JinaNetError``
    ``INVALID_ARGUMENT``. Needs libjina_net 0.2.3 (``jina_net_runtime_set_busy_poll_us``)."""
    _needs((0, 2, 3), 'set_busy_poll_us')
    busy_poll_us = _check_type('busy_poll_us', ctypes.c_uint32, busy_poll_us, 'argument')
    r = lib.jina_net_runtime_set_busy_poll_us(busy_poll_us)
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_runtime_set_busy_poll_us failed')


def version() -> str:
    return lib.jina_net_version().decode()


# --- completions ---------------------------------------------------------------------------------


class _Inbox:
    """Completions for one event loop, delivered in batches by call_soon_threadsafe."""

    __slots__ = ('loop', 'items', 'scheduled', 'lock')

    def __init__(self, loop):
        self.loop = loop
        self.items = deque()
        self.scheduled = False
        self.lock = threading.Lock()

    def put(self, fn, arg):  # any thread
        self.items.append((fn, arg))
        with self.lock:
            if self.scheduled:
                return
            self.scheduled = True
        try:
            self.loop.call_soon_threadsafe(self.drain)
        except RuntimeError:
            # The loop is closed: nobody can await these results any more.
            with self.lock:
                self.scheduled = False
            self.items.clear()

    def drain(self):  # the loop's thread
        with self.lock:
            self.scheduled = False
        items = self.items
        while items:
            fn, arg = items.popleft()
            try:
                fn(arg)
            except Exception as e:  # noqa: BLE001 (reported to the loop, never lost silently)
                self.loop.call_exception_handler({'message': 'jina_net completion handler failed', 'exception': e})


_inboxes: Dict[int, _Inbox] = {}
_inboxes_lock = threading.Lock()


def _inbox(loop) -> _Inbox:
    inbox = _inboxes.get(id(loop))
    if inbox is None or inbox.loop is not loop:
        with _inboxes_lock:
            # drop inboxes of closed loops (their ids may be reused)
            for k in [k for k, v in _inboxes.items() if v.loop.is_closed()]:
                del _inboxes[k]
            inbox = _Inbox(loop)
            _inboxes[id(loop)] = inbox
    return inbox


# user_data -> (inbox, handler); the key travels through C as user_data
_pending: Dict[int, Tuple[_Inbox, Callable]] = {}
_keys = itertools.count(1)


_target_at = lib.jina_net_send_result_target
_metadata_at = lib.jina_net_target_result_metadata
_SEND_RESULT_SIZE = sizeof(_ffi.SendResult)
_TARGET_RESULT_SIZE = sizeof(_ffi.TargetResult)


def _target_metadata(target_ptr, n) -> List[Tuple[str, bytes]]:
    out = []
    for j in range(n):
        m = _metadata_at(target_ptr, j)
        if not m:
            break
        m = m.contents
        out.append((m.key.decode('ascii', 'replace'), string_at(m.value, m.value_len) if m.value_len else b''))
    return out


def _outcome(result) -> Tuple[int, str, List[Target]]:
    """Copies a send result (during its callback) through the library's accessors: the result structs
    are never indexed, and their fields are read only when the library's struct_size holds them."""
    r = result.contents
    if r.struct_size < _SEND_RESULT_SIZE:
        raise RuntimeError(f'jina_net_send_result of {r.struct_size} bytes, want at least {_SEND_RESULT_SIZE}')
    targets = []
    for i in range(r.targets_len):
        tp = _target_at(result, i)
        if not tp:
            raise RuntimeError(f'jina_net_send_result_target({i}) is NULL ({r.targets_len} targets)')
        t = tp.contents
        if t.struct_size < _TARGET_RESULT_SIZE:
            raise RuntimeError(f'jina_net_target_result of {t.struct_size} bytes, want at least {_TARGET_RESULT_SIZE}')
        body = string_at(t.response, t.response_len) if t.response else None
        targets.append(Target(
            t.status,
            t.grpc_code,
            t.head,
            t.shard_id,
            t.address.decode('utf-8', 'replace') if t.address else '',
            t.grpc_message.decode('utf-8', 'replace') if t.grpc_message else '',
            t.error_message.decode('utf-8', 'replace') if t.error_message else '',
            body,
            _target_metadata(tp, t.metadata_len) if t.metadata_len else [],
        ))
    message = r.error_message.decode('utf-8', 'replace') if r.error_message else ''
    return r.status, message, targets


# ctypes runs a callback on a thread Python does not know with PyGILState_Ensure/_Release, which
# create and destroy a Python thread state for every call. One extra PyGILState_Ensure, never
# released, keeps the state of each library thread for the thread's life (a handful of runtime
# threads): about a quarter less CPU per request. The main thread (where callbacks run only during
# the runtime shutdown at exit) keeps its own.
_PyGILState_Ensure = ctypes.pythonapi.PyGILState_Ensure
_PyGILState_Ensure.restype = ctypes.c_int
_PyGILState_Ensure.argtypes = []
_main_thread = threading.main_thread().ident
_thread_state = threading.local()  # lives in the Python thread state: set once it is kept


def _keep_thread_state():
    if not getattr(_thread_state, 'kept', False) and threading.get_ident() != _main_thread:
        _PyGILState_Ensure()
        _thread_state.kept = True


@_ffi.SEND_CALLBACK
def _on_complete(user_data, result):
    # A library thread, with the GIL (ctypes took it). Nothing may escape into C.
    try:
        _keep_thread_state()
        entry = _pending.pop(user_data or 0, None)
        if entry is None:
            return
        inbox, handler = entry
        try:
            outcome = _outcome(result)
        except BaseException as e:  # noqa: BLE001 (the send still completes, with this error)
            outcome = (_ffi.PANIC, f'jina_net: reading the send result failed: {e!r}', [])
        inbox.put(handler, outcome)
    except BaseException:  # noqa: BLE001
        pass


def _ignore(_outcome):
    pass


def _register(loop, handler) -> int:
    key = next(_keys)
    _pending[key] = (_inbox(loop), handler)
    return key


# --- the pool ------------------------------------------------------------------------------------


def _init(fn, struct):
    """Fills an options struct with the library's defaults (``fn(&o, sizeof o)``)."""
    r = fn(byref(struct), sizeof(struct))
    if r != _ffi.OK:
        raise _error_of_call(r, f'{fn.__name__} failed')
    return struct


# The keyword options of a Pool: the fields of jina_net_pool_options by name, with their C types. The PEM
# buffers (bytes or str; their `_len` fields are not options), the server name (str) and the
# compression (an int or a name) have rules of their own.
_BUFFERS = ('root_certificates_pem', 'tls_cert_chain_pem', 'tls_private_key_pem')
_SPECIAL = _BUFFERS + ('tls_server_name', 'compression')
_NOT_OPTIONS = ('struct_size',) + tuple(f'{b}_len' for b in _BUFFERS) + _SPECIAL
_OPTION_TYPES = {name: ctype for name, ctype in _ffi.PoolOptions._fields_ if name not in _NOT_OPTIONS}
#: The names ``Pool`` takes as keyword options (besides ``resilient``).
POOL_OPTIONS = tuple(sorted(set(_OPTION_TYPES) - {'caller_driven', 'callbacks_in_poll'} | set(_SPECIAL)))
#: The names the one-shot helpers (``send_requests_sync``, ``send_request_async``) take as keyword
#: options besides their parameters (``jina_net_oneshot_options``, C ABI 0.2.2).
ONESHOT_OPTIONS = ('compression', 'tls_cert_chain_pem', 'tls_private_key_pem', 'tls_server_name')
_UNSIGNED = {ctypes.c_uint32: 32, ctypes.c_uint64: 64}

# What the PEM parser of the library (rustls) reads: CERTIFICATE blocks for certificates, PKCS#8, PKCS#1
# or SEC1 blocks for a private key.
_PEM_BLOCK = re.compile(rb'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.S)
_PEM_KINDS = {
    'root_certificates_pem': ('certificate', ('CERTIFICATE',)),
    'tls_cert_chain_pem': ('certificate', ('CERTIFICATE',)),
    'tls_private_key_pem': ('private key', ('PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY')),
}


def _pem_bytes(option: str, value) -> Optional[bytes]:
    """A PEM option as bytes (``str`` is encoded as UTF-8); ``None`` for ``None`` and empty (= unset, as
    the library takes a length of 0); ``TypeError`` for another type."""
    if value is None:
        return None
    if isinstance(value, str):
        raw = value.encode('utf-8')
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raise ArgumentTypeError(f'{option} is PEM text (bytes or str), not {type(value).__name__}')
    return raw or None


def _check_pem(option: str, raw: bytes):
    """``InvalidArgumentError`` (a ``ValueError``) with ``JINA_NET_TLS_ERROR``, the code C gives, when
    ``raw`` has no PEM block the library would read for ``option``, or one whose base64 does not
    decode. (What decodes but is no X.509 certificate or usable key the library
    refuses when it makes the pool: ``JinaNetError`` ``JINA_NET_TLS_ERROR``.)"""
    kind, labels = _PEM_KINDS[option]
    blocks = [(label.decode(), body) for label, body in _PEM_BLOCK.findall(raw) if label.decode() in labels]
    if not blocks:
        raise InvalidArgumentError(f'{option} holds no PEM {kind} (-----BEGIN {labels[0]}-----)', _ffi.TLS_ERROR)
    for i, (label, body) in enumerate(blocks, 1):
        try:
            base64.b64decode(b''.join(body.split()), validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidArgumentError(f'{option}: PEM block {i} ({label}) does not decode: {e}', _ffi.TLS_ERROR) from None


def _server_name(option: str, value) -> Optional[bytes]:
    """A TLS server name as the library takes it (``None`` = unset): ``TypeError`` for a non-str,
    ``ValueError`` for one that can be no DNS name or IP address (empty, spaces, NUL, not ASCII; the
    library checks the rest)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ArgumentTypeError(f'{option} is a str (a DNS name or IP address), not {type(value).__name__} ({value!r})')
    if not value or not all('!' <= c <= '~' for c in value):
        raise InvalidArgumentError(f'{option}={value!r} is no DNS name or IP address', _ffi.TLS_ERROR)
    return value.encode('ascii')


# jina_net_compression_from_name's names (0.2.2 also takes "identity" and "" for none), for a library
# older than 0.2.2, which lacks that function
_COMPRESSION_NAMES = {'none': COMPRESSION_NONE, 'nocompression': COMPRESSION_NONE, 'identity': COMPRESSION_NONE,
                      '': COMPRESSION_NONE, 'gzip': COMPRESSION_GZIP, 'deflate': COMPRESSION_DEFLATE}


def compression_from_name(name: str) -> int:
    """The ``jina_net_compression`` of a name (``jina_net_compression_from_name``): ``"none"``,
    ``"gzip"``, ``"deflate"`` or jina's ``"NoCompression"``, ``"Gzip"``, ``"Deflate"``, in any case.
    ``ValueError`` for another name, ``TypeError`` for a non-str."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f'a compression name is a str, not {type(name).__name__} ({name!r})')
    if _ffi.library_version < (0, 2, 2):
        value = _COMPRESSION_NAMES.get(name.lower())
        if value is None:
            raise InvalidArgumentError(f'unknown compression {name!r} (none, gzip, deflate; jina\'s NoCompression, Gzip, Deflate)')
        return value
    if '\0' in name:
        raise InvalidArgumentError(f'unknown compression {name!r} (a NUL in the name)')
    out = c_uint32()
    r = lib.jina_net_compression_from_name(name.encode('utf-8'), byref(out))
    if r == _ffi.INVALID_ARGUMENT:
        raise InvalidArgumentError(_ffi.last_error() or f'unknown compression {name!r}')
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_compression_from_name failed')
    return out.value


def _compression(option: str, value) -> int:
    """``compression=`` as a ``jina_net_compression``: ``None`` (none), ``COMPRESSION_*`` (0, 1, 2), a
    name, or an enum member by its name. (``grpc.Compression`` members are ints of another numbering,
    ``Deflate`` = 1 and ``Gzip`` = 2: taken by name, never by value.)"""
    if value is None:
        return COMPRESSION_NONE
    if isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, str):
        return compression_from_name(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f'{option} is COMPRESSION_NONE/GZIP/DEFLATE or a name ("gzip", jina\'s "Gzip"...), '
                        f'not {type(value).__name__} ({value!r})')
    if value not in (COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_DEFLATE):
        raise InvalidArgumentError(f'{option}={value}: COMPRESSION_NONE (0), COMPRESSION_GZIP (1) or COMPRESSION_DEFLATE (2)')
    return value


def _check_type(name: str, ctype, value, what: str = 'pool option'):
    """``value`` as the C field takes it, or ``TypeError`` / ``ValueError``: ctypes would silently wrap a
    negative or too large integer and take any object as a bool."""
    if ctype is c_bool:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise ArgumentTypeError(f'{what} {name} is a bool, not {type(value).__name__} ({value!r})')
    if ctype is ctypes.c_double:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgumentTypeError(f'{what} {name} is a number, not {type(value).__name__} ({value!r})')
        return float(value)
    bits = _UNSIGNED[ctype]
    if isinstance(value, bool) or not isinstance(value, int):
        unit = ' (milliseconds)' if name.endswith('_ms') else ''
        raise ArgumentTypeError(f'{what} {name} is an int{unit}, not {type(value).__name__} ({value!r})')
    if not 0 <= value < 1 << bits:
        raise InvalidArgumentError(f'{what} {name}={value} is out of range (0 to {(1 << bits) - 1})')
    return value


def _check_values(o: _ffi.PoolOptions):
    """The rules ``jina_net_pool_new`` applies to the options (include/jina_net.h), checked here so that
    ``Pool(...)`` refuses invalid options at once (the C pool is made later, at the first
    ``add_connection``) with a ``ValueError`` naming the option. tests/test_pool.py checks that the
    library refuses each of these too, and takes the values at the limits."""
    def bad(message):
        raise InvalidArgumentError(f'invalid pool options: {message}')

    if o.max_attempts < 1:
        bad(f'max_attempts={o.max_attempts}: at least 1')
    if not (o.backoff_multiplier >= 1.0 and o.backoff_multiplier != float('inf')):
        bad(f'backoff_multiplier={o.backoff_multiplier}: a number >= 1')
    if o.max_ejection_percent > 100:
        bad(f'max_ejection_percent={o.max_ejection_percent}: at most 100')
    if o.balance not in (BALANCE_ROUND_ROBIN, BALANCE_P2C_PEAK_EWMA):
        bad(f'balance={o.balance}: BALANCE_ROUND_ROBIN (0) or BALANCE_P2C_PEAK_EWMA (1)')
    if o.balance == BALANCE_P2C_PEAK_EWMA and (o.p2c_default_rtt_ms < 1 or o.p2c_decay_ms < 1):
        bad(f'p2c_default_rtt_ms={o.p2c_default_rtt_ms}, p2c_decay_ms={o.p2c_decay_ms}: at least 1 each')
    if o.keepalive_interval_ms != 0 and o.keepalive_interval_ms < 10_000:
        bad(f'keepalive_interval_ms={o.keepalive_interval_ms}: 0 (no keepalive) or at least 10000')
    if o.probe_after_ms != 0 and o.probe_timeout_ms < 1:
        bad(f'probe_timeout_ms={o.probe_timeout_ms}: at least 1 when probes are on (probe_after_ms > 0)')
    if o.retry_budget_max_tokens > 1000:
        bad(f'retry_budget_max_tokens={o.retry_budget_max_tokens}: at most 1000')
    ratio = o.retry_budget_token_ratio
    if o.retry_budget_max_tokens > 0 and not (0.0 < ratio < float('inf')):
        bad(f'retry_budget_token_ratio={ratio}: a number > 0 (with a retry budget)')
    if bool(o.tls_cert_chain_pem_len) != bool(o.tls_private_key_pem_len):
        bad('a client identity needs both tls_cert_chain_pem and tls_private_key_pem')
    if o.compression not in (COMPRESSION_NONE, COMPRESSION_GZIP, COMPRESSION_DEFLATE):
        bad(f'compression={o.compression}: COMPRESSION_NONE (0), COMPRESSION_GZIP (1) or COMPRESSION_DEFLATE (2)')


def _since(option: str, value, what: str = 'pool option', fields=None):
    """``JINA_NET_UNSUPPORTED`` naming ``option`` when it is set (``value`` true) and the loaded library is
    older than the version that appended its field (``FIELDS_SINCE``, or ``fields``)."""
    since = (_ffi.FIELDS_SINCE if fields is None else fields).get(option)
    if since and value:
        # (the library would refuse the struct, naming a byte offset: say it here, by name)
        _needs(since, f'{what} {option}', ': leave it unset')


def _options(resilient: bool, overrides: dict, check: bool = True) -> _ffi.PoolOptions:
    """The options struct: the library's preset (``jina_net_pool_options_init`` or, with ``resilient``,
    ``_init_resilient``) with ``overrides`` set. ``check=False`` skips the value rules (tests only: to
    show that the library refuses what ``_check_values`` refuses); types are always checked."""
    o = _init(lib.jina_net_pool_options_init_resilient if resilient else lib.jina_net_pool_options_init,
              _ffi.PoolOptions())
    for k, v in overrides.items():
        if k in _BUFFERS:
            pem = _pem_bytes(f'pool option {k}', v)
            if pem is not None and check:
                _check_pem(k, pem)
            _since(k, pem)
            setattr(o, k, pem)  # the struct keeps the bytes object alive
            setattr(o, f'{k}_len', len(pem) if pem else 0)
        elif k == 'tls_server_name':
            name = _server_name(f'pool option {k}', v) if check or not isinstance(v, str) else v.encode()
            _since(k, name)
            o.tls_server_name = name
        elif k == 'compression':
            value = _compression(f'pool option {k}', v) if check or not isinstance(v, int) else v
            _since(k, value)
            o.compression = value
        elif k == 'caller_driven':
            # Completions reach asyncio from the library's threads; nothing here would poll the pool.
            raise InvalidArgumentError('caller_driven pools are not supported by the Python binding (the library threads run its pools)')
        elif k == 'callbacks_in_poll':
            # The same: completions reach asyncio from the library's threads, and nothing here polls.
            raise InvalidArgumentError('callbacks_in_poll is not supported by the Python binding (completions reach asyncio '
                                       'from the library threads; nothing in the binding polls a pool)')
        elif k in _OPTION_TYPES:
            v = _check_type(k, _OPTION_TYPES[k], v)
            _since(k, v)
            setattr(o, k, v)
        else:
            raise ArgumentTypeError(f'unknown pool option {k!r} (options: {list(POOL_OPTIONS)})')
    if check:
        _check_values(o)
    return o


def _encode(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode()


def _cstr(what: str, s) -> bytes:
    """A str argument as a C string: ``TypeError`` for another type, ``ValueError`` for a NUL in it (C
    would see a shorter string)."""
    if not isinstance(s, str):
        raise ArgumentTypeError(f'{what} is a str, not {type(s).__name__} ({s!r})',
                                _ffi.NULL_ARGUMENT if s is None else _ffi.INVALID_ARGUMENT)
    if '\0' in s:
        raise InvalidArgumentError(f'{what} {s!r} holds a NUL')
    return s.encode('utf-8')


def _shard_arg(shard_id) -> int:
    if shard_id is None:
        return NO_SHARD
    if isinstance(shard_id, bool) or not isinstance(shard_id, int):
        raise ArgumentTypeError(f'shard_id is an int or None, not {type(shard_id).__name__} ({shard_id!r})')
    return shard_id


def _bytes_array(requests: Sequence[bytes]):
    arr = (_ffi.Bytes * len(requests))()
    for i, b in enumerate(requests):
        arr[i].data = b
        arr[i].len = len(b)
    return arr


MetadataArg = Union[None, 'RequestMetadata', Mapping, Iterable[Tuple[str, Union[str, bytes]]]]


class RequestMetadata:
    """Request metadata of a send, as the library takes it (``jina_net_send_options.metadata``).

    Built from a dict ``{key: value}``, or from ``(key, value)`` pairs (a list, a ``grpc.aio.Metadata``)
    to repeat a key. Keys are ``str``; values are ``str`` (sent as UTF-8: the library takes printable
    ASCII and space) or ``bytes`` (any bytes for a key ending in ``-bin``, which the library
    base64-encodes on the wire; printable ASCII for other keys). Wrong Python types raise
    ``TypeError`` here; what the library refuses (a key that is not lower-case ``[0-9a-z_.-]``, a
    reserved name such as ``grpc-*``, ``te``, ``content-type``, ``user-agent``, ``endpoint`` when the
    send sets an endpoint, a value byte it does not allow) raises ``JinaNetError``
    ``INVALID_ARGUMENT`` from the send, before anything is sent.
    """

    __slots__ = ('entries', 'array', '_keep')

    def __init__(self, metadata):
        if isinstance(metadata, (str, bytes, bytearray, memoryview)):
            raise ArgumentTypeError(f'metadata is a dict or (key, value) pairs, not {type(metadata).__name__}')
        pairs = metadata.items() if isinstance(metadata, Mapping) else metadata
        try:
            items = list(pairs)
        except TypeError:
            raise ArgumentTypeError(f'metadata is a dict or (key, value) pairs, not {type(metadata).__name__}') from None
        entries = []
        for item in items:
            try:
                key, value = item
            except (TypeError, ValueError):
                raise ArgumentTypeError(f'metadata entries are (key, value) pairs, not {item!r}') from None
            if not isinstance(key, str):
                raise ArgumentTypeError(f'metadata key {key!r} is a {type(key).__name__}, not a str')
            if isinstance(value, str):
                raw = value.encode('utf-8')
            elif isinstance(value, (bytes, bytearray, memoryview)):
                raw = bytes(value)
            else:
                raise ArgumentTypeError(f'metadata value of {key!r} is a {type(value).__name__}, not str or bytes')
            if '\0' in key:
                # a C string would end there: the library would see another key
                raise JinaNetError(_ffi.INVALID_ARGUMENT, f'request metadata {key!r}: NUL in a key')
            entries.append((key, raw))
        #: ``[(key, value bytes)]`` in order
        self.entries = entries
        array = (_ffi.Metadata * len(entries))()
        keep = []
        for i, (key, raw) in enumerate(entries):
            k = key.encode('utf-8')
            v = ctypes.create_string_buffer(raw, len(raw)) if raw else None
            keep.append((k, v))
            array[i].key = k
            array[i].value = ctypes.addressof(v) if v is not None else None
            array[i].value_len = len(raw)
        self.array = array
        self._keep = keep  # the bytes the array points to

    def __len__(self):
        return len(self.entries)

    def __repr__(self):
        return f'RequestMetadata({self.entries!r})'


def request_metadata(metadata: MetadataArg) -> Optional[RequestMetadata]:
    """``metadata`` as the library takes it; ``None`` when there is none (``None``, ``{}``, ``[]``)."""
    if metadata is None or isinstance(metadata, RequestMetadata):
        return metadata if metadata else None
    md = RequestMetadata(metadata)
    return md if md else None


class Replica(NamedTuple):
    """A replica of a head or shard in ``Pool.route_table()``."""

    #: as added (``host:port``, ``unix:/path``; the replicas of a ``dns:`` name as ``ip:port``)
    address: str
    #: ``STATE_IDLE`` (not connected yet), ``STATE_READY`` (it answered), ``STATE_FAILING`` (its
    #: connection fails), ``STATE_UNRESPONSIVE`` (it stopped answering); ``None`` from a library older
    #: than 0.2.2 (its routes have no states)
    state: Optional[str]


class Route(NamedTuple):
    """A head or shard of a deployment and its replicas, in the pool's order (``Pool.route_table()``)."""

    deployment: str
    head: bool
    #: the shard (``None`` for a head)
    shard_id: Optional[int]
    replicas: List[Replica]

    @property
    def addresses(self) -> List[str]:
        return [r.address for r in self.replicas]

    @property
    def states(self) -> List[Optional[str]]:
        return [r.state for r in self.replicas]


def parse_routes(text: str) -> List[Route]:
    """The routing table text of ``jina_net_pool_routes`` as ``Route`` objects: one line per head or
    shard, ``<deployment>\\t<head|shard N>\\t<address>,<address>...\\t<state>,<state>...`` (the states
    column is 0.2.2's: without it, or when it does not give one state per address, the states are
    ``None``). ``ValueError`` for a line of another form."""
    routes = []
    for line in text.splitlines():
        if not line:
            continue
        cols = line.split('\t')
        if len(cols) not in (3, 4):
            raise ValueError(f'routing table line {line!r}: not <deployment>\\t<head|shard N>\\t<addresses>[\\t<states>]')
        deployment, where, addresses = cols[:3]
        if where == 'head':
            head, shard_id = True, None
        elif where.startswith('shard ') and where[6:].isdigit():
            head, shard_id = False, int(where[6:])
        else:
            raise ValueError(f'routing table line {line!r}: {where!r} is neither "head" nor "shard N"')
        addresses = addresses.split(',') if addresses else []
        states = cols[3].split(',') if len(cols) == 4 and cols[3] else []
        if len(states) != len(addresses):
            states = [None] * len(addresses)
        routes.append(Route(deployment, head, shard_id, [Replica(a, st) for a, st in zip(addresses, states)]))
    return routes


class Pool:
    """A libjina_net connection pool (``jina_net_pool``) on bytes.

    Options are the fields of ``jina_net_pool_options`` by name, times in milliseconds as there
    (``max_attempts``, ``default_timeout_ms``, ``tls``, ``root_certificates_pem``, ``fail_over``, ...,
    ``probe_after_ms``, ``per_attempt_timeout_ms``, ``retry_budget_max_tokens``, ``tls_cert_chain_pem``,
    ``tls_private_key_pem``, ``tls_server_name``, ``compression``, ``dns_refresh_ms``:
    ``POOL_OPTIONS``), starting from the library's defaults (``jina_net_pool_options_init``: jina 3.1.0's
    retries) or, with ``resilient=True``, from ``jina_net_pool_options_init_resilient``; ``options``
    shows the result. PEM options are ``bytes`` or ``str``; ``compression`` is ``COMPRESSION_*`` or a
    name (``"gzip"``, jina's ``"Gzip"``...). A wrong type raises ``TypeError``, a value the library would
    refuse ``ValueError``, here.

    The C pool is created at the first ``add_connection`` (so that constructing a pool does not start
    the library runtime): PEM that decodes but holds no usable certificate or key is refused then
    (``JinaNetError`` ``JINA_NET_TLS_ERROR`` naming what is wrong; PEM without a certificate or key is
    refused by the constructor, with the same code).

    After ``close()`` the pool is closed for good, as a C pool is: ``add_connection``,
    ``remove_connection``, ``send``, ``send_async``, ``wait_ready``, ``routes``, ``route_table`` and
    ``metrics_text`` raise ``JinaNetError`` ``JINA_NET_POOL_CLOSED``; ``close()`` again does nothing,
    ``cancel`` returns ``False``. Bad arguments raise what C returns for them, as exceptions that are
    also the Python ones: ``ArgumentTypeError`` (a ``TypeError``; ``JINA_NET_NULL_ARGUMENT`` for
    ``None``), ``InvalidArgumentError`` (a ``ValueError``; ``JINA_NET_INVALID_ARGUMENT``, or
    ``JINA_NET_TLS_ERROR`` for PEM and server names).
    """

    def __init__(self, resilient: bool = False, **options):
        self._options = _options(resilient, options)
        self._ptr: Optional[int] = None
        # Blocking calls (wait_ready) in flight on other threads, and C pools closed meanwhile whose
        # free waits for them (jina_net_pool_free must not run during another call on the pool).
        self._lock = threading.Lock()
        self._busy = 0
        self._closed_ptrs: List[int] = []
        self._closed = False

    @property
    def options(self) -> Dict[str, Union[int, float, bool, bytes, str, None]]:
        """The pool's options as the C pool gets them (the preset with the keyword options applied),
        by field name; the PEM options as ``bytes`` or ``None``, ``tls_server_name`` as ``str`` or
        ``None``, ``compression`` as its ``COMPRESSION_*`` value."""
        o = self._options
        out = {name: getattr(o, name) for name in _OPTION_TYPES}
        for b in _BUFFERS:
            ptr, n = getattr(o, b), getattr(o, f'{b}_len')
            out[b] = string_at(ptr, n) if ptr and n else None
        out['tls_server_name'] = o.tls_server_name.decode() if o.tls_server_name else None
        out['compression'] = o.compression
        return out

    def _handle(self, create: bool, what: str) -> Optional[int]:
        if self._closed:
            raise _pool_closed(what)
        if self._ptr is None and create:
            _uses_runtime()
            out = c_void_p()
            r = lib.jina_net_pool_new(byref(self._options), byref(out))
            if r != _ffi.OK:
                raise _error_of_call(r, 'jina_net_pool_new failed')
            self._ptr = out.value
        elif _inherited and self._ptr is not None:
            _uses_runtime()  # raises
        return self._ptr

    def add_connection(self, deployment: str, address: str, head: bool = False,
                       shard_id: Optional[int] = None, *, tls_server_name: Optional[str] = None) -> bool:
        """Adds a replica; ``False`` when the address was already known there.

        ``address``: ``host:port`` (``https://`` / ``grpcs://`` for TLS), ``unix:/path`` (a Unix domain
        socket), or ``dns:///host:port`` (one replica per address the name resolves to, followed as it
        changes: ``dns_refresh_ms``; ``True`` when any was added). ``tls_server_name``: the name this
        replica's certificate must carry (and the SNI sent) instead of the host of the address, over
        the pool's ``tls_server_name`` (``jina_net_pool_add_connection_ex``, libjina_net 0.2.2)."""
        d, a = _cstr('deployment', deployment), _cstr('address', address)
        if not (isinstance(head, bool) or (isinstance(head, int) and head in (0, 1))):
            raise ArgumentTypeError(f'head is a bool, not {type(head).__name__} ({head!r})')
        head = bool(head)
        shard = _shard_arg(shard_id)
        name = _server_name('tls_server_name', tls_server_name)
        if _ffi.library_version < (0, 2, 2):
            if name is not None:
                _needs((0, 2, 2), 'add_connection(tls_server_name=...) (jina_net_pool_add_connection_ex)')
            ptr = self._handle(True, 'add_connection')
            added = c_bool()
            r = lib.jina_net_pool_add_connection(ptr, d, a, head, shard, byref(added))
            if r != _ffi.OK:
                raise _error_of_call(r, 'jina_net_pool_add_connection failed')
            return added.value
        o = _init(lib.jina_net_add_options_init, _ffi.AddOptions())
        o.head = head
        o.shard_id = shard
        o.tls_server_name = name
        ptr = self._handle(True, 'add_connection')
        added = c_bool()
        r = lib.jina_net_pool_add_connection_ex(ptr, d, a, byref(o), byref(added))
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_pool_add_connection_ex failed')
        return added.value

    def remove_connection(self, deployment: str, address: str, head: bool = False,
                          shard_id: Optional[int] = None) -> bool:
        """Removes a replica; ``False`` when there was none (also when the pool has none at all)."""
        d, a = _cstr('deployment', deployment), _cstr('address', address)
        ptr = self._handle(False, 'remove_connection')
        if ptr is None:
            return False
        removed = c_bool()
        r = lib.jina_net_pool_remove_connection(ptr, d, a, head,
                                                NO_SHARD if shard_id is None else shard_id, byref(removed))
        if r == _ffi.UNKNOWN_DEPLOYMENT:
            return False
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_pool_remove_connection failed')
        return removed.value

    def send(self, kind: int, requests: Sequence[bytes], deployment: str, head: bool = False,
             shard_id: Optional[int] = None, polling: int = POLLING_ANY, endpoint: Optional[str] = None,
             timeout_ms: int = 0, on_done: Optional[Callable] = None, loop=None, *,
             metadata: MetadataArg = None, idempotent: bool = False) -> int:
        """Routes and sends serialized requests (``jina_net_pool_send``; with ``metadata`` or
        ``idempotent``, ``jina_net_pool_send_ex``) and returns the send id.

        ``polling`` is a ``jina_net_shards`` value: ``SHARDS_ANY`` (= ``POLLING_ANY``) or ``SHARDS_ALL``
        (= ``POLLING_ALL``, one target per shard). ``metadata`` is request metadata sent with every
        attempt of the send (see ``RequestMetadata``). ``idempotent=True`` says the requests may be
        performed more than once (``jina_net_send_options.idempotent``): such a send is hedged when the
        pool hedges (``max_hedges``), and goes on to another replica when its attempt got no answer (the
        replica stopped answering a liveness probe, or ``per_attempt_timeout_ms`` passed); a send that
        is not goes on only with the pool option ``fail_over_unanswered``.
        ``on_done((status, message, [Target, ...]))``
        is called once, on ``loop``'s thread (default: the running loop). Raises ``JinaNetError`` when
        nothing was sent (unknown deployment, no replicas, bad request bytes, invalid metadata:
        ``INVALID_ARGUMENT``...); ``on_done`` is then never called.
        """
        md = request_metadata(metadata)
        if not isinstance(idempotent, bool):
            raise ArgumentTypeError(f'idempotent is a bool, not {type(idempotent).__name__}')
        dep = _cstr('deployment', deployment)
        ptr = self._handle(False, 'send')
        if ptr is None:
            raise JinaNetError(_ffi.UNKNOWN_DEPLOYMENT, f'unknown deployment "{deployment}": the pool has no such deployment')
        if loop is None:
            loop = asyncio.get_running_loop()
        key = _register(loop, on_done or _ignore)
        n = len(requests)
        if n == 1:
            one = _ffi.Bytes(requests[0], len(requests[0]))
            arr = byref(one)
        else:
            arr = _bytes_array(requests)
        send_id = c_uint64()
        shard = NO_SHARD if shard_id is None else shard_id
        if md is None and not idempotent:
            r = lib.jina_net_pool_send(ptr, kind, arr, n, dep, head, shard, polling, _encode(endpoint),
                                       timeout_ms, _on_complete, key, byref(send_id))
            what = 'jina_net_pool_send failed'
        else:
            o = _init(lib.jina_net_send_options_init, _ffi.SendOptions())
            o.kind = kind
            o.head = head
            o.shard_id = shard
            o.shards = polling
            o.endpoint = _encode(endpoint)
            o.timeout_ms = timeout_ms
            o.idempotent = idempotent
            if md is not None:
                o.metadata = md.array
                o.metadata_len = len(md)
            r = lib.jina_net_pool_send_ex(ptr, arr, n, dep, byref(o), _on_complete, key,
                                          byref(send_id))
            what = 'jina_net_pool_send_ex failed'
        if r != _ffi.OK:
            _pending.pop(key, None)
            raise _error_of_call(r, what)
        return send_id.value

    def send_async(self, kind: int, requests: Sequence[bytes], deployment: str, head: bool = False,
                   shard_id: Optional[int] = None, polling: int = POLLING_ANY, endpoint: Optional[str] = None,
                   timeout_ms: int = 0, *, metadata: MetadataArg = None,
                   idempotent: bool = False) -> 'asyncio.Future[List[Target]]':
        """``send`` as a future of the targets' outcomes (every target, failed ones included; a send that
        failed as a whole, e.g. the pool was closed, raises ``JinaNetError``). Cancelling the future
        cancels the send. Raises at once (no future) when nothing was sent, as ``send``."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def done(outcome):
            if fut.done():
                return
            status, message, targets = outcome
            if not targets and status != _ffi.OK:
                fut.set_exception(JinaNetError(status, message))
            else:
                fut.set_result(targets)

        send_id = self.send(kind, requests, deployment, head, shard_id, polling, endpoint, timeout_ms, done, loop,
                            metadata=metadata, idempotent=idempotent)
        fut.add_done_callback(lambda f: self.cancel(send_id) if f.cancelled() else None)
        return fut

    def cancel(self, send_id: int) -> bool:
        """Cancels a pending send (it completes with ``CANCELLED``); ``False`` when it already completed."""
        ptr = self._ptr
        if ptr is None:
            return False
        r = lib.jina_net_pool_cancel(ptr, send_id)
        if r == _ffi.NOT_FOUND or r == _ffi.POOL_CLOSED:
            return False
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_pool_cancel failed')
        return True

    def wait_ready(self, deployment: Optional[str] = None, timeout_ms: int = 10000) -> None:
        """Connects every replica of ``deployment`` (``None``: of every deployment) and returns once each
        answered a STATUS request (``jina_net_pool_wait_ready``, libjina_net 0.2.2): what a gateway
        checks before it says it is ready. Blocks the calling thread (the GIL is released; from asyncio
        use ``wait_ready_async``). Raises ``JinaNetError``: ``JINA_NET_DEADLINE_EXCEEDED`` when some did
        not answer within ``timeout_ms``, the message naming each (deployment, head or shard, address,
        state); ``JINA_NET_UNKNOWN_DEPLOYMENT``. A pool without replicas is ready. ``route_table()``
        shows each replica's state afterwards."""
        dep = None if deployment is None else _cstr('deployment', deployment)
        timeout_ms = _check_type('timeout_ms', ctypes.c_uint64, timeout_ms, 'wait_ready:')
        _needs((0, 2, 2), 'Pool.wait_ready (jina_net_pool_wait_ready)')
        with self._lock:
            ptr = self._handle(False, 'wait_ready')
            if ptr is None:
                if deployment is None:
                    return
                raise JinaNetError(_ffi.UNKNOWN_DEPLOYMENT, f'unknown deployment "{deployment}": the pool has no such deployment')
            self._busy += 1
        try:
            r = lib.jina_net_pool_wait_ready(ptr, dep, timeout_ms)
            if r != _ffi.OK:
                raise _error_of_call(r, 'jina_net_pool_wait_ready failed')
        finally:
            with self._lock:
                self._busy -= 1
                closed = self._closed_ptrs if self._busy == 0 else []
                if closed:
                    self._closed_ptrs = []
            for p in closed:
                lib.jina_net_pool_free(p)

    async def wait_ready_async(self, deployment: Optional[str] = None, timeout_ms: int = 10000) -> None:
        """``wait_ready`` on a thread of the loop's default executor (the C call blocks): the loop runs
        meanwhile. Cancelling the await does not stop the wait, which ends by ``timeout_ms``."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.wait_ready, deployment, timeout_ms)

    def route_table(self) -> List[Route]:
        """The routing table parsed: one ``Route`` per head or shard (deployments sorted), each with its
        replicas' addresses and states (``STATE_IDLE``, ``STATE_READY``, ``STATE_FAILING``,
        ``STATE_UNRESPONSIVE``)."""
        return parse_routes(self.routes())

    def routes(self) -> str:
        """The routing table as the library writes it: one line per head or shard,
        ``deployment\\thead|shard N\\taddr,addr\\tstate,state`` (the states since libjina_net 0.2.2;
        ``route_table()`` parses it)."""
        ptr = self._handle(False, 'routes')
        if ptr is None:
            return ''
        out = c_void_p()
        r = lib.jina_net_pool_routes(ptr, byref(out))
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_pool_routes failed')
        try:
            return string_at(out.value).decode()
        finally:
            lib.jina_net_string_free(out)

    def metrics_text(self) -> str:
        """The pool's metrics in the Prometheus text format (``jina_net_pool_metrics_text``): per
        deployment, head or shard and replica, ``jina_net_requests_total`` (calls, retries and hedges
        included), ``jina_net_errors_total``, ``jina_net_retries_total``, ``jina_sending_request_seconds``...
        Only for a pool made with ``metrics=True`` (else ``JinaNetError`` ``INVALID_ARGUMENT``); ``""``
        before the first ``add_connection``."""
        ptr = self._handle(False, 'metrics_text')
        if ptr is None:
            if not self._options.metrics:
                raise JinaNetError(_ffi.INVALID_ARGUMENT, 'the pool was made without metrics=True: it records none')
            return ''
        out = c_void_p()
        r = lib.jina_net_pool_metrics_text(ptr, byref(out))
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_pool_metrics_text failed')
        try:
            return string_at(out.value).decode()
        finally:
            lib.jina_net_string_free(out)

    def close(self):
        """Closes and frees the C pool: pending sends complete with ``POOL_CLOSED``; every later call
        but ``close`` and ``cancel`` raises ``JinaNetError`` ``JINA_NET_POOL_CLOSED`` (as C, C++ and Go
        do). Closing twice does nothing."""
        with self._lock:
            self._closed = True
            ptr, self._ptr = self._ptr, None
            if ptr is None or _inherited:
                return
            if self._busy:
                # a wait_ready runs on another thread: close now, free when the last one returns
                lib.jina_net_pool_close(ptr)
                self._closed_ptrs.append(ptr)
                return
        lib.jina_net_pool_free(ptr)

    def __del__(self):
        if not hasattr(self, '_lock'):
            return  # the constructor raised
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass


# --- logs -------------------------------------------------------------------------------------------

LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE = (
    _ffi.LOG_OFF, _ffi.LOG_ERROR, _ffi.LOG_WARN, _ffi.LOG_INFO, _ffi.LOG_DEBUG, _ffi.LOG_TRACE)

_log_lock = threading.Lock()
_log_callback = None  # the ctypes callback the library holds (kept alive here)
_LOGGING_LEVELS = {LOG_ERROR: logging.ERROR, LOG_WARN: logging.WARNING, LOG_INFO: logging.INFO,
                   LOG_DEBUG: logging.DEBUG, LOG_TRACE: 5}


def set_log_callback(callback: Optional[Callable[[int, str, str], None]], max_level: int = LOG_INFO) -> None:
    """Receives the library's log events (``jina_net_log_set_callback``): ``callback(level, target,
    message)`` with ``level`` a ``LOG_*`` value (``LOG_ERROR`` .. ``LOG_TRACE``), ``target`` the module
    that emitted it (``jina_net::send``, ``h2::proto::connection``...), for events at ``max_level`` and
    more severe. ``None`` or ``LOG_OFF`` removes it.

    Thread rules: the callback runs on the library's runtime threads (several at once), holding the
    GIL; events of Python's own threads are not forwarded. It must return promptly, must not raise
    (an exception is reported through ``sys.unraisablehook`` and dropped) and must not call
    ``set_log_callback`` (that raises ``JinaNetError`` ``JINA_NET_RUNTIME_ERROR``). When this function
    returns, the previous callback is no longer running. While a callback is set, sends release the GIL
    during their C call (a library thread may wait for the GIL inside the callback). Raises
    ``InvalidArgumentError`` for a ``max_level`` that is no level."""
    global _log_callback
    if callback is not None and not callable(callback):
        raise ArgumentTypeError(f'callback is a function (level, target, message) or None, not {type(callback).__name__}')
    if isinstance(max_level, bool) or not isinstance(max_level, int):
        raise ArgumentTypeError(f'max_level is a LOG_* int, not {type(max_level).__name__}')
    if not LOG_OFF <= max_level <= LOG_TRACE:
        raise InvalidArgumentError(f'unknown max_level {max_level} (LOG_OFF = 0 .. LOG_TRACE = 5)')
    if callback is None:
        max_level = LOG_OFF
    with _log_lock:
        if max_level == LOG_OFF:
            r = lib.jina_net_log_set_callback(_ffi.LOG_CALLBACK(), None, LOG_OFF)
            if r != _ffi.OK:
                raise _error_of_call(r, 'jina_net_log_set_callback failed')
            _log_callback = None
            _ffi.keep_gil(True)
            return

        def forward(_user_data, level, target, message):
            # an exception here goes to sys.unraisablehook (ctypes) and never into the library
            callback(level, (target or b'').decode('utf-8', 'replace'), (message or b'').decode('utf-8', 'replace'))

        c_callback = _ffi.LOG_CALLBACK(forward)
        _ffi.keep_gil(False)
        r = lib.jina_net_log_set_callback(c_callback, None, max_level)
        if r != _ffi.OK:
            if _log_callback is None:
                _ffi.keep_gil(True)
            raise _error_of_call(r, 'jina_net_log_set_callback failed')
        _log_callback = c_callback


def log_to_logging(logger: Optional[logging.Logger] = None, max_level: int = LOG_INFO) -> None:
    """``set_log_callback`` forwarding to a ``logging.Logger`` (default ``logging.getLogger('jina_net')``):
    ``"<target>: <message>"`` at the matching ``logging`` level (``LOG_TRACE`` as level 5)."""
    logger = logger or logging.getLogger('jina_net')
    set_log_callback(lambda level, target, message: logger.log(_LOGGING_LEVELS.get(level, logging.DEBUG),
                                                               '%s: %s', target, message), max_level)


# --- one-shot sends and the control plane ---------------------------------------------------------


class Response:
    """A response of a one-shot send: body, address, trailing metadata."""

    __slots__ = ('body', 'address', 'metadata')

    def __init__(self, body: bytes, address: str, metadata: List[Tuple[str, bytes]]):
        self.body = body
        self.address = address
        self.metadata = metadata


def _take_response(ptr) -> Response:
    """Copies an owned jina_net_response and frees it."""
    try:
        data, n = c_void_p(), c_size_t()
        r = lib.jina_net_response_body(ptr, byref(data), byref(n))
        if r != _ffi.OK:
            raise _error_of_call(r, 'jina_net_response_body failed')
        body = string_at(data.value, n.value) if n.value else b''
        address = (lib.jina_net_response_address(ptr) or b'').decode()
        metadata = []
        for i in range(lib.jina_net_response_metadata_count(ptr)):
            key, value, vlen = c_char_p(), c_void_p(), c_size_t()
            r = lib.jina_net_response_metadata(ptr, i, byref(key), byref(value), byref(vlen))
            if r != _ffi.OK:
                raise _error_of_call(r, 'jina_net_response_metadata failed')
            metadata.append((key.value.decode(), string_at(value.value, vlen.value) if vlen.value else b''))
        return Response(body, address, metadata)
    finally:
        lib.jina_net_response_free(ptr)


def _oneshot_options(timeout_s: Optional[float], tls: bool, root_certificates, endpoint: Optional[str],
                     tls_cert_chain_pem=None, tls_private_key_pem=None, tls_server_name=None, compression=None):
    """``jina_net_oneshot_options``. Types and names are checked here (``TypeError``, ``ValueError``);
    the PEM contents by the library when the call is made (``JinaNetError`` ``JINA_NET_TLS_ERROR``)."""
    o = _init(lib.jina_net_oneshot_options_init, _ffi.OneshotOptions())
    o.timeout_ms = 0 if timeout_s is None else max(1, int(timeout_s * 1000))
    o.tls = bool(tls)
    pem = _pem_bytes('root_certificates', root_certificates)
    if pem is not None:
        o.root_certificates_pem = pem
        o.root_certificates_pem_len = len(pem)
    o.endpoint = _encode(endpoint)
    new = {
        'tls_cert_chain_pem': _pem_bytes('tls_cert_chain_pem', tls_cert_chain_pem),
        'tls_private_key_pem': _pem_bytes('tls_private_key_pem', tls_private_key_pem),
        'tls_server_name': _server_name('tls_server_name', tls_server_name),
        'compression': _compression('compression', compression),
    }
    for k, v in new.items():
        _since(k, v, 'one-shot option', _ffi.ONESHOT_FIELDS_SINCE)
        if k == 'compression' or k == 'tls_server_name':
            setattr(o, k, v)
        elif v is not None:
            setattr(o, k, v)
            setattr(o, f'{k}_len', len(v))
    return o


def send_requests_sync(kind: int, requests: Sequence[bytes], target: str, timeout: Optional[float] = None,
                       tls: bool = False, root_certificates=None, endpoint: Optional[str] = None, *,
                       tls_cert_chain_pem=None, tls_private_key_pem=None, tls_server_name: Optional[str] = None,
                       compression=None) -> Response:
    """Blocking send to an address (3 attempts on UNAVAILABLE, fresh channels); raises ``JinaNetError``.

    Keyword options (``jina_net_oneshot_options``, libjina_net 0.2.2): ``tls_cert_chain_pem`` and
    ``tls_private_key_pem`` (a client identity for mutual TLS, PEM ``bytes`` or ``str``, both or
    neither), ``tls_server_name`` (the name the server's certificate must carry instead of the
    target's host), ``compression`` (``COMPRESSION_*`` or a name: ``"gzip"``, jina's ``"Gzip"``...)."""
    _uses_runtime()
    out = c_void_p()
    opts = _oneshot_options(timeout, tls, root_certificates, endpoint, tls_cert_chain_pem, tls_private_key_pem,
                            tls_server_name, compression)
    r = lib.jina_net_send_requests_sync(kind, _bytes_array(requests), len(requests), _cstr('target', target),
                                        byref(opts), byref(out))
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_send_requests_sync failed')
    return _take_response(out)


def _single_future(loop):
    fut = loop.create_future()

    def done(outcome):
        if fut.done():
            return
        status, message, targets = outcome
        if targets:
            t = targets[0]
            if t.ok:
                fut.set_result(Response(t.body, t.address, t.metadata))
            else:
                fut.set_exception(t.error())
        else:
            fut.set_exception(JinaNetError(status, message))

    return fut, done


def send_request_async(kind: int, request: bytes, target: str, timeout: Optional[float] = None, tls: bool = False,
                       root_certificates=None, endpoint: Optional[str] = None, *, tls_cert_chain_pem=None,
                       tls_private_key_pem=None, tls_server_name: Optional[str] = None,
                       compression=None) -> 'asyncio.Future[Response]':
    """One send to an address, no retry (``jina_net_send_request_async``); the keyword options as
    ``send_requests_sync``'s."""
    _uses_runtime()
    loop = asyncio.get_running_loop()
    opts = _oneshot_options(timeout, tls, root_certificates, endpoint, tls_cert_chain_pem, tls_private_key_pem,
                            tls_server_name, compression)
    target_c = _cstr('target', target)
    fut, done = _single_future(loop)
    key = _register(loop, done)
    r = lib.jina_net_send_request_async(kind, request, len(request), target_c, byref(opts), _on_complete, key)
    if r != _ffi.OK:
        _pending.pop(key, None)
        raise _error_of_call(r, 'jina_net_send_request_async failed')
    return fut


def _shard(shard_id: Optional[int]) -> int:
    return NO_SHARD if shard_id is None else shard_id


def worker_control_sync(activate: bool, worker_host: str, worker_port: int, target_head: str,
                        shard_id: Optional[int] = None, timeout: Optional[float] = None) -> Response:
    """Blocking ACTIVATE / DEACTIVATE of a worker at a head; the response is the head's echo."""
    _uses_runtime()
    fn = lib.jina_net_activate_worker_sync if activate else lib.jina_net_deactivate_worker_sync
    out = c_void_p()
    timeout_ms = 0 if timeout is None else max(1, int(timeout * 1000))
    r = fn(worker_host.encode(), worker_port, target_head.encode(), timeout_ms, _shard(shard_id), byref(out))
    if r != _ffi.OK:
        raise _error_of_call(r, 'worker control failed')
    return _take_response(out)


def worker_control(activate: bool, worker_host: str, worker_port: int, target_head: str,
                   shard_id: Optional[int] = None) -> 'asyncio.Future[Response]':
    """ACTIVATE / DEACTIVATE without blocking (one attempt, 1 s)."""
    _uses_runtime()
    loop = asyncio.get_running_loop()
    fut, done = _single_future(loop)
    key = _register(loop, done)
    fn = lib.jina_net_activate_worker if activate else lib.jina_net_deactivate_worker
    r = fn(worker_host.encode(), worker_port, target_head.encode(), _shard(shard_id), _on_complete, key)
    if r != _ffi.OK:
        _pending.pop(key, None)
        raise _error_of_call(r, 'worker control failed')
    return fut


def host_is_local(host: str) -> bool:
    out = c_bool()
    r = lib.jina_net_host_is_local(host.encode(), byref(out))
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_host_is_local failed')
    return out.value


def is_remote_local_connection(first: str, second: str) -> bool:
    out = c_bool()
    r = lib.jina_net_is_remote_local_connection(first.encode(), second.encode(), byref(out))
    if r != _ffi.OK:
        raise _error_of_call(r, 'jina_net_is_remote_local_connection failed')
    return out.value


def default_grpc_options() -> List[Tuple[str, int]]:
    n = c_size_t()
    arr = lib.jina_net_default_grpc_options(byref(n))
    return [(arr[i].name.decode(), arr[i].value) for i in range(n.value)]
