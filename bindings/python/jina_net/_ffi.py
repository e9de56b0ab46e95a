"""ctypes declarations of libjina_net's C ABI (include/jina_net.h) and loading of the library.

The library is found, in order, at:
1. ``$JINA_NET_LIBRARY`` (a path to ``libjina_net.so*``);
2. ``libjina_net.so.0.2`` through the dynamic loader (an installed library: ``scripts/install.sh``,
   ``ldconfig``, or ``LD_LIBRARY_PATH``);
3. ``libjina_net.so`` through the dynamic loader (a build tree on ``LD_LIBRARY_PATH``).

A library is used only when its ``jina_net_version()`` is of the ABI this binding is written for
(``ABI_VERSION``: the same major and, before 1.0, the same minor version): the structs below are that
ABI's, and a library of another one would read and write them wrongly. Another version is an
``ImportError`` naming both versions. Within the ABI, an older library (0.2.0, 0.2.1) takes these structs
too: it fills the fields appended since (``FIELDS_SINCE``, ``ONESHOT_FIELDS_SINCE``) with zeros, and a
call that sets one is refused; the functions added since (``FUNCTIONS_SINCE``) are bound when the
library has them, and the binding raises ``JINA_NET_UNSUPPORTED`` naming what needs a newer library.

Struct layouts and prototypes mirror the header; ``bindings/python/tests/test_ffi.py`` compares every
struct's fields, sizes and offsets and every function's parameter and return types with what a C
compiler and the header say. Options structs start with ``struct_size`` and are initialised by the
library's ``_init`` functions with this binding's ``sizeof``; the result structs a completion callback
receives are read only through ``jina_net_send_result_target`` / ``jina_net_target_result_metadata``
(never indexed: the library may append fields to them).
"""
import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_double,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

#: The version of the C ABI (``include/jina_net.h``: ``JINA_NET_VERSION_*``) this binding is written for.
ABI_VERSION = (0, 2, 4)


def abi_compatible(version: str) -> bool:
    """Whether a library of ``version`` (``"MAJOR.MINOR.PATCH"``) has this binding's ABI: the same major
    version and, before 1.0, the same minor version (the soname rule: ``libjina_net.so.0.<minor>``
    before 1.0, ``libjina_net.so.<major>`` from 1.0 on)."""
    try:
        major, minor = (int(x) for x in version.split('.')[:2])
    except ValueError:
        return False
    if major != ABI_VERSION[0]:
        return False
    return major != 0 or minor == ABI_VERSION[1]


def _soname() -> str:
    major, minor = ABI_VERSION[:2]
    return f'libjina_net.so.{major}.{minor}' if major == 0 else f'libjina_net.so.{major}'


#: The installed library's soname for this ABI (``libjina_net.so.0.2``).
SONAME = _soname()

NO_SHARD = -1

# jina_net_result
OK = 0
NULL_ARGUMENT = 1
INVALID_UTF8 = 2
INVALID_ARGUMENT = 3
INVALID_ADDRESS = 4
INVALID_REQUEST = 5
UNKNOWN_DEPLOYMENT = 6
NO_REPLICAS = 7
RPC_ERROR = 8
DEADLINE_EXCEEDED = 9
CANCELLED = 10
POOL_CLOSED = 11
TLS_ERROR = 12
RUNTIME_ERROR = 13
ALREADY_STARTED = 14
INVALID_HOST = 15
INVALID_RESPONSE = 16
UNSUPPORTED = 17
NOT_FOUND = 18
PANIC = 19
KUBERNETES_ERROR = 20
RESOURCE_EXHAUSTED = 21

# jina_net_request_kind
REQUEST_DATA = 0
REQUEST_CONTROL = 1

# jina_net_shards (jina: polling ANY / ALL)
SHARDS_ANY = 0
SHARDS_ALL = 1

# jina_net_compression (0.2.2)
COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_DEFLATE = 2

# jina_net_log_level
LOG_OFF = 0
LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4
LOG_TRACE = 5


class Metadata(Structure):
    # Never changes size: the request metadata of a send is an array of it.
    _fields_ = [('key', c_char_p), ('value', c_void_p), ('value_len', c_size_t)]


class TargetResult(Structure):
    # Read through jina_net_send_result_target only (the library may append fields).
    _fields_ = [
        ('struct_size', c_size_t),
        ('status', c_int32),
        ('grpc_code', c_int32),
        ('head', c_bool),
        ('shard_id', c_int64),
        ('address', c_char_p),
        ('grpc_message', c_char_p),
        ('error_message', c_char_p),
        ('response', c_void_p),
        ('response_len', c_size_t),
        ('metadata_len', c_size_t),
        ('internal', c_void_p),
    ]


class SendResult(Structure):
    _fields_ = [
        ('struct_size', c_size_t),
        ('send_id', c_uint64),
        ('status', c_int32),
        ('error_message', c_char_p),
        ('targets_len', c_size_t),
        ('internal', c_void_p),
    ]


class GrpcOption(Structure):
    _fields_ = [('name', c_char_p), ('value', c_int64)]


class Bytes(Structure):
    # `data` is declared as char*: a Python bytes object is then passed without a copy (the library
    # copies the request bytes before jina_net_pool_send returns).
    _fields_ = [('data', c_char_p), ('len', c_size_t)]


class OneshotOptions(Structure):
    _fields_ = [
        ('struct_size', c_size_t),
        ('timeout_ms', c_uint64),
        ('tls', c_bool),
        ('root_certificates_pem', c_char_p),
        ('root_certificates_pem_len', c_size_t),
        ('endpoint', c_char_p),
        # 0.2.2 (appended)
        ('tls_cert_chain_pem', c_char_p),
        ('tls_cert_chain_pem_len', c_size_t),
        ('tls_private_key_pem', c_char_p),
        ('tls_private_key_pem_len', c_size_t),
        ('tls_server_name', c_char_p),
        ('compression', c_uint32),
    ]


class AddOptions(Structure):
    # 0.2.2: jina_net_add_options (jina_net_pool_add_connection_ex)
    _fields_ = [
        ('struct_size', c_size_t),
        ('head', c_bool),
        ('shard_id', c_int64),
        ('tls_server_name', c_char_p),
    ]


class PoolOptions(Structure):
    _fields_ = [
        ('struct_size', c_size_t),
        ('max_attempts', c_uint32),
        ('default_timeout_ms', c_uint64),
        ('tls', c_bool),
        ('root_certificates_pem', c_char_p),
        ('root_certificates_pem_len', c_size_t),
        ('fail_over', c_bool),
        ('initial_backoff_ms', c_uint64),
        ('backoff_multiplier', c_double),
        ('max_backoff_ms', c_uint64),
        ('eject_after_failures', c_uint32),
        ('base_ejection_ms', c_uint64),
        ('max_ejection_ms', c_uint64),
        ('max_ejection_percent', c_uint32),
        ('balance', c_uint32),
        ('p2c_default_rtt_ms', c_uint64),
        ('p2c_decay_ms', c_uint64),
        ('max_in_flight_per_replica', c_uint32),
        ('max_queued_sends', c_uint32),
        ('hedge_delay_ms', c_uint64),
        ('max_hedges', c_uint32),
        ('metrics', c_bool),
        ('caller_driven', c_bool),
        # 0.2.1 (appended: a 0.2.0 library fills them with zeros and refuses a pool that sets them)
        ('connect_timeout_ms', c_uint64),
        ('tcp_user_timeout_ms', c_uint64),
        ('keepalive_interval_ms', c_uint64),
        ('keepalive_timeout_ms', c_uint64),
        ('probe_after_ms', c_uint64),
        ('probe_timeout_ms', c_uint64),
        ('fail_over_unanswered', c_bool),
        ('eject_on_deadline', c_bool),
        ('per_attempt_timeout_ms', c_uint64),
        ('retry_budget_max_tokens', c_uint32),
        ('retry_budget_token_ratio', c_double),
        # 0.2.2 (appended: a 0.2.0 or 0.2.1 library fills them with zeros and refuses a pool that sets them)
        ('tls_cert_chain_pem', c_char_p),
        ('tls_cert_chain_pem_len', c_size_t),
        ('tls_private_key_pem', c_char_p),
        ('tls_private_key_pem_len', c_size_t),
        ('tls_server_name', c_char_p),
        ('compression', c_uint32),
        ('dns_refresh_ms', c_uint64),
        # 0.2.4 (appended; the binding leaves it false: it does not poll pools)
        ('callbacks_in_poll', c_bool),
    ]


class SendOptions(Structure):
    _fields_ = [
        ('struct_size', c_size_t),
        ('kind', c_uint32),
        ('head', c_bool),
        ('shard_id', c_int64),
        ('shards', c_uint32),
        ('endpoint', c_char_p),
        ('timeout_ms', c_uint64),
        ('idempotent', c_bool),
        ('metadata', POINTER(Metadata)),
        ('metadata_len', c_size_t),
    ]


#: jina_net_send_callback
SEND_CALLBACK = CFUNCTYPE(None, c_void_p, POINTER(SendResult))
#: jina_net_log_callback: (user_data, level, target, message)
LOG_CALLBACK = CFUNCTYPE(None, c_void_p, c_uint32, c_char_p, c_char_p)

_POOL = c_void_p
_RESPONSE = c_void_p
#: jina_net_result (an int32_t)
_RESULT = c_int32

# name: (restype, argtypes)
_FUNCTIONS = {
    'jina_net_version': (c_char_p, []),
    'jina_net_result_name': (c_char_p, [c_uint32]),
    'jina_net_last_error_message': (c_size_t, [c_char_p, c_size_t]),
    'jina_net_last_error_grpc_code': (c_int32, []),
    'jina_net_runtime_init': (_RESULT, [c_uint32]),
    'jina_net_log_set_callback': (_RESULT, [LOG_CALLBACK, c_void_p, c_uint32]),
    'jina_net_runtime_shutdown': (_RESULT, [c_uint64]),
    'jina_net_pool_options_init': (_RESULT, [POINTER(PoolOptions), c_size_t]),
    'jina_net_pool_options_init_resilient': (_RESULT, [POINTER(PoolOptions), c_size_t]),
    'jina_net_send_options_init': (_RESULT, [POINTER(SendOptions), c_size_t]),
    'jina_net_oneshot_options_init': (_RESULT, [POINTER(OneshotOptions), c_size_t]),
    'jina_net_pool_new': (_RESULT, [POINTER(PoolOptions), POINTER(_POOL)]),
    'jina_net_pool_close': (_RESULT, [_POOL]),
    'jina_net_pool_free': (None, [_POOL]),
    'jina_net_pool_add_connection': (_RESULT, [_POOL, c_char_p, c_char_p, c_bool, c_int64, POINTER(c_bool)]),
    'jina_net_pool_remove_connection': (_RESULT, [_POOL, c_char_p, c_char_p, c_bool, c_int64, POINTER(c_bool)]),
    'jina_net_pool_send': (
        _RESULT,
        [
            _POOL,
            c_uint32,  # kind
            POINTER(Bytes),
            c_size_t,
            c_char_p,  # deployment
            c_bool,  # head
            c_int64,  # shard_id
            c_uint32,  # shards
            c_char_p,  # endpoint
            c_uint64,  # timeout_ms
            SEND_CALLBACK,
            c_void_p,
            POINTER(c_uint64),
        ],
    ),
    'jina_net_pool_send_ex': (
        _RESULT,
        [_POOL, POINTER(Bytes), c_size_t, c_char_p, POINTER(SendOptions), SEND_CALLBACK, c_void_p, POINTER(c_uint64)],
    ),
    'jina_net_pool_cancel': (_RESULT, [_POOL, c_uint64]),
    'jina_net_pool_routes': (_RESULT, [_POOL, POINTER(c_void_p)]),
    'jina_net_pool_metrics_text': (_RESULT, [_POOL, POINTER(c_void_p)]),
    'jina_net_string_free': (None, [c_void_p]),
    'jina_net_send_result_target': (POINTER(TargetResult), [POINTER(SendResult), c_size_t]),
    'jina_net_target_result_metadata': (POINTER(Metadata), [POINTER(TargetResult), c_size_t]),
    'jina_net_response_body': (_RESULT, [_RESPONSE, POINTER(c_void_p), POINTER(c_size_t)]),
    'jina_net_response_address': (c_char_p, [_RESPONSE]),
    'jina_net_response_metadata_count': (c_size_t, [_RESPONSE]),
    'jina_net_response_metadata': (
        _RESULT,
        [_RESPONSE, c_size_t, POINTER(c_char_p), POINTER(c_void_p), POINTER(c_size_t)],
    ),
    'jina_net_response_free': (None, [_RESPONSE]),
    'jina_net_send_requests_sync': (
        _RESULT,
        [c_uint32, POINTER(Bytes), c_size_t, c_char_p, POINTER(OneshotOptions), POINTER(_RESPONSE)],
    ),
    'jina_net_send_request_sync': (
        _RESULT,
        [c_uint32, c_char_p, c_size_t, c_char_p, POINTER(OneshotOptions), POINTER(_RESPONSE)],
    ),
    'jina_net_send_request_async': (
        _RESULT,
        [c_uint32, c_char_p, c_size_t, c_char_p, POINTER(OneshotOptions), SEND_CALLBACK, c_void_p],
    ),
    'jina_net_activate_worker': (_RESULT, [c_char_p, c_uint16, c_char_p, c_int64, SEND_CALLBACK, c_void_p]),
    'jina_net_deactivate_worker': (_RESULT, [c_char_p, c_uint16, c_char_p, c_int64, SEND_CALLBACK, c_void_p]),
    'jina_net_activate_worker_sync': (_RESULT, [c_char_p, c_uint16, c_char_p, c_uint64, c_int64, POINTER(_RESPONSE)]),
    'jina_net_deactivate_worker_sync': (
        _RESULT,
        [c_char_p, c_uint16, c_char_p, c_uint64, c_int64, POINTER(_RESPONSE)],
    ),
    'jina_net_host_is_local': (_RESULT, [c_char_p, POINTER(c_bool)]),
    'jina_net_is_remote_local_connection': (_RESULT, [c_char_p, c_char_p, POINTER(c_bool)]),
    'jina_net_default_grpc_options': (POINTER(GrpcOption), [POINTER(c_size_t)]),
    # 0.2.2 (FUNCTIONS_SINCE: bound when the library has them)
    'jina_net_add_options_init': (_RESULT, [POINTER(AddOptions), c_size_t]),
    'jina_net_pool_add_connection_ex': (_RESULT, [_POOL, c_char_p, c_char_p, POINTER(AddOptions), POINTER(c_bool)]),
    'jina_net_compression_from_name': (_RESULT, [c_char_p, POINTER(c_uint32)]),
    'jina_net_pool_wait_ready': (_RESULT, [_POOL, c_char_p, c_uint64]),
    # 0.2.3
    'jina_net_runtime_set_busy_poll_us': (_RESULT, [c_uint32]),
}

#: Functions added to the ABI after 0.2.0, with the library version that has them. A library of the ABI
#: older than that loads without them (they are then not bound: the binding checks ``library_version``
#: before it calls one, and raises ``JINA_NET_UNSUPPORTED`` naming what needs the newer library).
FUNCTIONS_SINCE = {
    'jina_net_add_options_init': (0, 2, 2),
    'jina_net_pool_add_connection_ex': (0, 2, 2),
    'jina_net_compression_from_name': (0, 2, 2),
    'jina_net_pool_wait_ready': (0, 2, 2),
    'jina_net_runtime_set_busy_poll_us': (0, 2, 3),
}


# Functions that never block and never run a callback on the calling thread are also bound through
# ctypes.PyDLL, which keeps the GIL during the call: releasing and re-taking it costs more than the call
# when library threads are waiting for the GIL to deliver completions. (Such a call cannot deadlock: the
# library holds none of its locks while it runs a completion callback, and these functions wait for
# nothing else.) The blocking ones (_sync, runtime shutdown, pool free) always release the GIL.
_KEEP_GIL = (
    'jina_net_pool_send',
    'jina_net_pool_send_ex',
    'jina_net_pool_cancel',
    # read inside the completion callback, which already holds the GIL
    'jina_net_send_result_target',
    'jina_net_target_result_metadata',
)


_GIL_KEPT = {}
_GIL_RELEASED = {}


def keep_gil(keep: bool):
    """Binds the ``_KEEP_GIL`` functions keeping the GIL (``True``, the default) or releasing it
    (``False``: while a log callback is set, a library thread may wait for the GIL inside the
    callback with a lock held that such a call would take)."""
    for fn, f in (_GIL_KEPT if keep else _GIL_RELEASED).items():
        setattr(lib, fn, f)


def _candidates():
    explicit = os.environ.get('JINA_NET_LIBRARY')
    if explicit:
        return [explicit]
    return [SONAME, 'libjina_net.so']


def _abi() -> str:
    """The library versions this binding takes: ``0.2.x`` (``1.x`` from 1.0 on)."""
    major, minor = ABI_VERSION[:2]
    return f'{major}.{minor}.x' if major == 0 else f'{major}.x'


def _version_tuple(version: str):
    try:
        return tuple(int(x) for x in version.split('.')[:3])
    except ValueError:
        return (0, 0, 0)


def _load():
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            errors.append(f'{name}: {e}')
            continue
        # The version first: jina_net_version exists in every version, the other functions and the
        # struct layouts are this ABI's only.
        try:
            get_version = lib.jina_net_version
        except AttributeError:
            errors.append(f'{name}: not libjina_net (no jina_net_version)')
            continue
        get_version.restype = c_char_p
        get_version.argtypes = []
        raw = get_version()
        version = raw.decode('ascii', 'replace') if raw else '(none)'
        if not abi_compatible(version):
            raise ImportError(
                f'{name} is libjina_net {version}, but this jina_net binding is written for libjina_net '
                f'{_abi()} ({SONAME}): its structs and functions would not '
                f'match that library. Use libjina_net {_abi()} (JINA_NET_LIBRARY, or scripts/install.sh), or the '
                f'binding that comes with libjina_net {version}'
            )
        have = _version_tuple(version)
        # A function of a newer version than the library's may be absent; one the library's version
        # should have may not.
        missing = [fn for fn in _FUNCTIONS
                   if not hasattr(lib, fn) and have >= FUNCTIONS_SINCE.get(fn, (0, 0, 0))]
        if missing:
            raise ImportError(f'{name} (libjina_net {version}) lacks {", ".join(missing)}')
        for fn, (restype, argtypes) in _FUNCTIONS.items():
            if not hasattr(lib, fn):
                continue
            f = getattr(lib, fn)
            f.restype = restype
            f.argtypes = argtypes
        gil = ctypes.PyDLL(name, handle=lib._handle)
        for fn in _KEEP_GIL:
            f = getattr(gil, fn)
            f.restype, f.argtypes = _FUNCTIONS[fn]
            _GIL_KEPT[fn] = f
            _GIL_RELEASED[fn] = getattr(lib, fn)
            setattr(lib, fn, f)
        return lib, name
    raise ImportError(
        'libjina_net not found ('
        + '; '.join(errors)
        + f'). Install it (scripts/install.sh: {SONAME}), or set JINA_NET_LIBRARY to the path of libjina_net.so'
    )


lib, library_name = _load()


#: The loaded library's version as ``(major, minor, patch)``: within the ABI, a library older than
#: ``ABI_VERSION`` lacks the struct fields appended since (see ``FIELDS_SINCE``).
library_version = _version_tuple(lib.jina_net_version().decode('ascii', 'replace'))

#: Fields of ``jina_net_pool_options`` appended after 0.2.0, with the version that has them. An older
#: library of the ABI fills them with zeros and refuses a pool that sets one (``JINA_NET_UNSUPPORTED``).
FIELDS_SINCE = {
    **{name: (0, 2, 1)
       for name in ('connect_timeout_ms', 'tcp_user_timeout_ms', 'keepalive_interval_ms', 'keepalive_timeout_ms',
                    'probe_after_ms', 'probe_timeout_ms', 'fail_over_unanswered', 'eject_on_deadline',
                    'per_attempt_timeout_ms', 'retry_budget_max_tokens', 'retry_budget_token_ratio')},
    **{name: (0, 2, 2)
       for name in ('tls_cert_chain_pem', 'tls_private_key_pem', 'tls_server_name', 'compression',
                    'dns_refresh_ms')},
}

#: The same for ``jina_net_oneshot_options`` (the one-shot helpers' keyword options).
ONESHOT_FIELDS_SINCE = {
    name: (0, 2, 2) for name in ('tls_cert_chain_pem', 'tls_private_key_pem', 'tls_server_name', 'compression')
}


def library_path() -> str:
    """The file the library was loaded from (as the dynamic loader resolved it)."""
    handle = lib._handle
    try:
        with open('/proc/self/maps') as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and 'libjina_net' in os.path.basename(parts[5]):
                    return parts[5]
    except OSError:
        pass
    return library_name if handle else ''


def result_name(code: int) -> str:
    return lib.jina_net_result_name(code).decode()


def last_error() -> str:
    """The message of the last failed call on this thread."""
    n = lib.jina_net_last_error_message(None, 0)
    if n == 0:
        return ''
    buf = ctypes.create_string_buffer(n + 1)
    lib.jina_net_last_error_message(buf, n + 1)
    return buf.value.decode('utf-8', 'replace')
