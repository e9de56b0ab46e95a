"""ctypes declarations of libjina_net's C ABI (include/jina_net.h) and loading of the library.

The library is found, in order, at:
1. ``$JINA_NET_LIBRARY`` (a path to ``libjina_net.so*``);
2. ``libjina_net.so.0`` through the dynamic loader (an installed library: ``scripts/install.sh``,
   ``ldconfig``, or ``LD_LIBRARY_PATH``);
3. ``libjina_net.so`` through the dynamic loader (a build tree on ``LD_LIBRARY_PATH``).

Struct layouts mirror the header; ``bindings/python/tests/test_ffi.py`` compares every size and
offset with what a C compiler computes from ``include/jina_net.h``.
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

#: The ABI major version this binding is written for (``JINA_NET_VERSION_MAJOR``).
ABI_MAJOR = 0

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

# jina_net_request_kind
REQUEST_DATA = 0
REQUEST_CONTROL = 1

# jina_net_shards (jina: polling ANY / ALL)
POLLING_ANY = 0
POLLING_ALL = 1


class Metadata(Structure):
    _fields_ = [('key', c_char_p), ('value', c_void_p), ('value_len', c_size_t)]


class TargetResult(Structure):
    _fields_ = [
        ('status', c_uint32),
        ('grpc_code', c_int32),
        ('head', c_bool),
        ('shard_id', c_int64),
        ('address', c_char_p),
        ('grpc_message', c_char_p),
        ('error_message', c_char_p),
        ('response', c_void_p),
        ('response_len', c_size_t),
        ('metadata', POINTER(Metadata)),
        ('metadata_len', c_size_t),
    ]


class SendResult(Structure):
    _fields_ = [
        ('send_id', c_uint64),
        ('status', c_uint32),
        ('error_message', c_char_p),
        ('targets', POINTER(TargetResult)),
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
        ('timeout_ms', c_uint64),
        ('tls', c_bool),
        ('root_certificates_pem', c_char_p),
        ('root_certificates_pem_len', c_size_t),
        ('endpoint', c_char_p),
    ]


class PoolOptions(Structure):
    _fields_ = [
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
    ]


#: jina_net_send_callback
SEND_CALLBACK = CFUNCTYPE(None, c_void_p, POINTER(SendResult))

_POOL = c_void_p
_RESPONSE = c_void_p

# name: (restype, argtypes)
_FUNCTIONS = {
    'jina_net_version': (c_char_p, []),
    'jina_net_result_name': (c_char_p, [c_uint32]),
    'jina_net_last_error_message': (c_size_t, [c_char_p, c_size_t]),
    'jina_net_last_error_grpc_code': (c_int32, []),
    'jina_net_runtime_init': (c_uint32, [c_uint32]),
    'jina_net_runtime_shutdown': (c_uint32, [c_uint64]),
    'jina_net_pool_options_init': (None, [POINTER(PoolOptions)]),
    'jina_net_pool_options_init_resilient': (None, [POINTER(PoolOptions)]),
    'jina_net_pool_new': (c_uint32, [POINTER(PoolOptions), POINTER(_POOL)]),
    'jina_net_pool_close': (c_uint32, [_POOL]),
    'jina_net_pool_free': (None, [_POOL]),
    'jina_net_pool_add_connection': (c_uint32, [_POOL, c_char_p, c_char_p, c_bool, c_int64, POINTER(c_bool)]),
    'jina_net_pool_remove_connection': (c_uint32, [_POOL, c_char_p, c_char_p, c_bool, c_int64, POINTER(c_bool)]),
    'jina_net_pool_send': (
        c_uint32,
        [
            _POOL,
            c_uint32,
            POINTER(Bytes),
            c_size_t,
            c_char_p,
            c_bool,
            c_int64,
            c_uint32,
            c_char_p,
            c_uint64,
            SEND_CALLBACK,
            c_void_p,
            POINTER(c_uint64),
        ],
    ),
    'jina_net_pool_cancel': (c_uint32, [_POOL, c_uint64]),
    'jina_net_pool_routes': (c_uint32, [_POOL, POINTER(c_void_p)]),
    'jina_net_string_free': (None, [c_void_p]),
    'jina_net_response_body': (c_uint32, [_RESPONSE, POINTER(c_void_p), POINTER(c_size_t)]),
    'jina_net_response_address': (c_char_p, [_RESPONSE]),
    'jina_net_response_metadata_count': (c_size_t, [_RESPONSE]),
    'jina_net_response_metadata': (
        c_uint32,
        [_RESPONSE, c_size_t, POINTER(c_char_p), POINTER(c_void_p), POINTER(c_size_t)],
    ),
    'jina_net_response_free': (None, [_RESPONSE]),
    'jina_net_send_requests_sync': (
        c_uint32,
        [c_uint32, POINTER(Bytes), c_size_t, c_char_p, POINTER(OneshotOptions), POINTER(_RESPONSE)],
    ),
    'jina_net_send_request_sync': (
        c_uint32,
        [c_uint32, c_char_p, c_size_t, c_char_p, POINTER(OneshotOptions), POINTER(_RESPONSE)],
    ),
    'jina_net_send_request_async': (
        c_uint32,
        [c_uint32, c_char_p, c_size_t, c_char_p, POINTER(OneshotOptions), SEND_CALLBACK, c_void_p],
    ),
    'jina_net_activate_worker': (c_uint32, [c_char_p, c_uint16, c_char_p, c_int64, SEND_CALLBACK, c_void_p]),
    'jina_net_deactivate_worker': (c_uint32, [c_char_p, c_uint16, c_char_p, c_int64, SEND_CALLBACK, c_void_p]),
    'jina_net_activate_worker_sync': (c_uint32, [c_char_p, c_uint16, c_char_p, c_uint64, c_int64, POINTER(_RESPONSE)]),
    'jina_net_deactivate_worker_sync': (
        c_uint32,
        [c_char_p, c_uint16, c_char_p, c_uint64, c_int64, POINTER(_RESPONSE)],
    ),
    'jina_net_host_is_local': (c_uint32, [c_char_p, POINTER(c_bool)]),
    'jina_net_is_remote_local_connection': (c_uint32, [c_char_p, c_char_p, POINTER(c_bool)]),
    'jina_net_default_grpc_options': (POINTER(GrpcOption), [POINTER(c_size_t)]),
}


# Functions that never block and never run a callback on the calling thread are also bound through
# ctypes.PyDLL, which keeps the GIL during the call: releasing and re-taking it costs more than the call
# when library threads are waiting for the GIL to deliver completions. (Such a call cannot deadlock: the
# library holds none of its locks while it runs a completion callback, and these functions wait for
# nothing else.) The blocking ones (_sync, runtime shutdown, pool free) always release the GIL.
_KEEP_GIL = ('jina_net_pool_send', 'jina_net_pool_cancel')


def _candidates():
    explicit = os.environ.get('JINA_NET_LIBRARY')
    if explicit:
        return [explicit]
    return [f'libjina_net.so.{ABI_MAJOR}', 'libjina_net.so']


def _load():
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            errors.append(f'{name}: {e}')
            continue
        for fn, (restype, argtypes) in _FUNCTIONS.items():
            f = getattr(lib, fn)
            f.restype = restype
            f.argtypes = argtypes
        gil = ctypes.PyDLL(name, handle=lib._handle)
        for fn in _KEEP_GIL:
            f = getattr(gil, fn)
            f.restype, f.argtypes = _FUNCTIONS[fn]
            setattr(lib, fn, f)
        version = lib.jina_net_version().decode()
        if int(version.split('.')[0]) != ABI_MAJOR:
            raise ImportError(f'{name} is libjina_net {version}; this binding needs major version {ABI_MAJOR}')
        return lib, name
    raise ImportError(
        'libjina_net not found ('
        + '; '.join(errors)
        + '). Install it (scripts/install.sh), or set JINA_NET_LIBRARY to the path of libjina_net.so'
    )


lib, library_name = _load()


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
