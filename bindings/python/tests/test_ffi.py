"""The ctypes declarations against include/jina_net.h: every struct's fields (names, in order), size and
field offsets as a C compiler computes them, every declared function's parameter and return types as the
header declares them, and the loading rules (``$JINA_NET_LIBRARY`` first, the ABI version check)."""
import ctypes
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import unittest

from helpers import ROOT

from jina_net import _ffi

HEADER = os.path.join(ROOT, 'include', 'jina_net.h')
BINDING = os.path.join(ROOT, 'bindings', 'python')

STRUCTS = {
    'jina_net_metadata': _ffi.Metadata,
    'jina_net_target_result': _ffi.TargetResult,
    'jina_net_send_result': _ffi.SendResult,
    'jina_net_grpc_option': _ffi.GrpcOption,
    'jina_net_bytes': _ffi.Bytes,
    'jina_net_oneshot_options': _ffi.OneshotOptions,
    'jina_net_pool_options': _ffi.PoolOptions,
    'jina_net_send_options': _ffi.SendOptions,
    'jina_net_add_options': _ffi.AddOptions,
}

# The structs a caller sizes (options) or the library sizes (results): `size_t struct_size` first.
SIZED = {
    'jina_net_target_result', 'jina_net_send_result', 'jina_net_oneshot_options', 'jina_net_pool_options',
    'jina_net_send_options', 'jina_net_add_options',
}

# C scalar types and their ctypes.
SCALARS = {
    'bool': ctypes.c_bool,
    'size_t': ctypes.c_size_t,
    'uint16_t': ctypes.c_uint16,
    'uint32_t': ctypes.c_uint32,
    'int32_t': ctypes.c_int32,
    'uint64_t': ctypes.c_uint64,
    'int64_t': ctypes.c_int64,
    'double': ctypes.c_double,
    'jina_net_result': ctypes.c_int32,
}


def header_text():
    with open(HEADER) as f:
        return f.read()


def without_comments(text):
    return re.sub(r'//[^\n]*', '', re.sub(r'/\*.*?\*/', '', text, flags=re.S))


def header_structs():
    """struct name -> [field names in order], from the header's `typedef struct X { ... } X;`."""
    out = {}
    for name, body in re.findall(r'typedef struct (\w+) \{(.*?)\} \1;', without_comments(header_text()), flags=re.S):
        out[name] = [re.findall(r'(\w+)\s*$', decl.strip())[0] for decl in body.split(';') if decl.strip()]
    return out


def header_functions():
    """function name -> (return type, [parameter types]) as written in the header (names dropped)."""
    text = without_comments(header_text())
    decls = {}
    for ret, name, params in re.findall(r'\n([\w \*]+?)\s*\b(jina_net_\w+)\(([^;{]*?)\);', text):
        params = ' '.join(params.split())
        types = [] if params in ('', 'void') else [re.sub(r'\s*\b\w+$', '', p.strip()) for p in params.split(',')]
        decls[name] = (' '.join(ret.split()), types)
    return decls


def normal(ctype: str) -> str:
    """`const struct jina_net_bytes *` -> `jina_net_bytes *`."""
    t = re.sub(r'\b(const|struct|enum)\b', '', ctype)
    t = re.sub(r'\s*\*', ' *', ' '.join(t.split()))
    return t.strip()


def pointee(ctype):
    """The ctypes type a POINTER(...) points to (else None)."""
    return getattr(ctype, '_type_', None) if isinstance(ctype, type) and issubclass(ctype, ctypes._Pointer) else None


def matches(c: str, ctype) -> bool:
    """Whether a ctypes type passes what the C type takes: the exact scalar for scalars, a pointer of
    the right pointee (or a char/void pointer where the header says so) for pointers."""
    c = normal(c)
    if c == 'void':
        return ctype is None
    if not c.endswith('*'):
        if c in ('jina_net_send_callback', 'jina_net_log_callback', 'jina_net_free_fn'):
            return ctype is {'jina_net_send_callback': _ffi.SEND_CALLBACK,
                             'jina_net_log_callback': _ffi.LOG_CALLBACK}.get(c, False)
        return SCALARS.get(c) is ctype
    base = c[:-1].strip()
    if base.endswith('*'):  # a pointer to a pointer: an out-parameter
        inner = base[:-1].strip()
        p = pointee(ctype)
        if inner == 'char':
            return p in (ctypes.c_char_p, ctypes.c_void_p)
        return p is ctypes.c_void_p or (pointee(p) is not None and matches(inner + ' *', p))
    if base == 'char':
        return ctype in (ctypes.c_char_p, ctypes.c_void_p)
    if base in ('uint8_t', 'void'):
        return ctype in (ctypes.c_char_p, ctypes.c_void_p)
    if base in SCALARS:
        return pointee(ctype) is SCALARS[base]
    if base in STRUCTS:
        return pointee(ctype) is STRUCTS[base]
    # opaque structs (jina_net_pool, jina_net_response) travel as void*
    return ctype is ctypes.c_void_p


class LayoutTest(unittest.TestCase):
    def test_struct_fields_are_the_headers(self):
        c = header_structs()
        for cname, cls in STRUCTS.items():
            with self.subTest(struct=cname):
                self.assertEqual([f for f, _ in cls._fields_], c[cname], f'{cname}: fields (in order)')
                if cname in SIZED:
                    self.assertEqual(cls._fields_[0], ('struct_size', ctypes.c_size_t))
        # every struct of the header that the binding passes by value or pointer is declared
        self.assertLessEqual(set(STRUCTS), set(c))

    def test_struct_layouts_match_the_header(self):
        lines = ['#include <stddef.h>', '#include <stdio.h>', f'#include "{HEADER}"', 'int main(void) {']
        for cname, cls in STRUCTS.items():
            lines.append(f'  printf("{cname} size %zu align %zu\\n", sizeof(struct {cname}), _Alignof(struct {cname}));')
            for field, _ in cls._fields_:
                lines.append(
                    f'  printf("{cname}.{field} %zu %zu\\n", offsetof(struct {cname}, {field}), '
                    f'sizeof(((struct {cname} *)0)->{field}));'
                )
        lines += ['  return 0;', '}']
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, 'layout.c'), os.path.join(d, 'layout')
            with open(src, 'w') as f:
                f.write('\n'.join(lines) + '\n')
            subprocess.run(['cc', '-std=c11', '-Wall', '-Werror', src, '-o', exe], check=True)
            out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout.splitlines()
        c = {}
        for line in out:
            name, *nums = line.split()
            c[name] = [int(x) for x in nums if x.isdigit()]
        for cname, cls in STRUCTS.items():
            with self.subTest(struct=cname):
                self.assertEqual(c[cname], [ctypes.sizeof(cls), ctypes.alignment(cls)], f'{cname} size/align')
                for field, ftype in cls._fields_:
                    self.assertEqual(
                        c[f'{cname}.{field}'],
                        [getattr(cls, field).offset, ctypes.sizeof(ftype)],
                        f'{cname}.{field} offset/size',
                    )

    def test_options_init_sets_struct_size_and_the_defaults(self):
        # The library fills this binding's sizeof and writes struct_size; a size smaller than a size_t
        # is refused.
        for init, cls in (('jina_net_pool_options_init', _ffi.PoolOptions),
                          ('jina_net_pool_options_init_resilient', _ffi.PoolOptions),
                          ('jina_net_send_options_init', _ffi.SendOptions),
                          ('jina_net_oneshot_options_init', _ffi.OneshotOptions),
                          ('jina_net_add_options_init', _ffi.AddOptions)):
            with self.subTest(init=init):
                o = cls()
                self.assertEqual(getattr(_ffi.lib, init)(ctypes.byref(o), ctypes.sizeof(o)), _ffi.OK)
                self.assertEqual(o.struct_size, ctypes.sizeof(cls))
                self.assertEqual(getattr(_ffi.lib, init)(ctypes.byref(o), 4), _ffi.INVALID_ARGUMENT)
        o = _ffi.SendOptions()
        _ffi.lib.jina_net_send_options_init(ctypes.byref(o), ctypes.sizeof(o))
        self.assertEqual((o.shard_id, o.shards, o.metadata_len, bool(o.metadata)), (_ffi.NO_SHARD, _ffi.SHARDS_ANY, 0, False))
        o = _ffi.PoolOptions()
        _ffi.lib.jina_net_pool_options_init_resilient(ctypes.byref(o), ctypes.sizeof(o))
        self.assertEqual((o.max_attempts, o.fail_over, o.eject_after_failures), (3, True, 1))
        # the fields appended in 0.2.1 (the library knows them: it writes their defaults, not zeros)
        self.assertEqual((o.probe_after_ms, o.probe_timeout_ms, o.eject_on_deadline, o.retry_budget_max_tokens,
                          o.retry_budget_token_ratio), (500, 1000, True, 10, 0.1))
        o = _ffi.PoolOptions()
        _ffi.lib.jina_net_pool_options_init(ctypes.byref(o), ctypes.sizeof(o))
        self.assertEqual((o.connect_timeout_ms, o.tcp_user_timeout_ms, o.keepalive_interval_ms, o.keepalive_timeout_ms,
                          o.probe_after_ms, o.probe_timeout_ms, o.fail_over_unanswered, o.eject_on_deadline,
                          o.per_attempt_timeout_ms, o.retry_budget_max_tokens, o.retry_budget_token_ratio),
                         (5000, 20000, 300000, 20000, 2000, 5000, False, False, 0, 0, 0.1))
        # the fields appended in 0.2.2: no identity, no server name, no compression, DNS every 30 s
        for init in (_ffi.lib.jina_net_pool_options_init, _ffi.lib.jina_net_pool_options_init_resilient):
            o = _ffi.PoolOptions()
            init(ctypes.byref(o), ctypes.sizeof(o))
            self.assertEqual((o.tls_cert_chain_pem, o.tls_cert_chain_pem_len, o.tls_private_key_pem,
                              o.tls_private_key_pem_len, o.tls_server_name, o.compression, o.dns_refresh_ms),
                             (None, 0, None, 0, None, _ffi.COMPRESSION_NONE, 30000))
        o = _ffi.OneshotOptions()
        _ffi.lib.jina_net_oneshot_options_init(ctypes.byref(o), ctypes.sizeof(o))
        self.assertEqual((o.tls_cert_chain_pem, o.tls_cert_chain_pem_len, o.tls_private_key_pem,
                          o.tls_private_key_pem_len, o.tls_server_name, o.compression), (None, 0, None, 0, None, 0))
        o = _ffi.AddOptions()
        _ffi.lib.jina_net_add_options_init(ctypes.byref(o), ctypes.sizeof(o))
        self.assertEqual((o.head, o.shard_id, o.tls_server_name), (False, _ffi.NO_SHARD, None))

    def test_compression_values_are_the_headers(self):
        text = header_text()
        for name in ('NONE', 'GZIP', 'DEFLATE'):
            want = int(re.search(rf'JINA_NET_COMPRESSION_{name} = (\d+)', text).group(1))
            self.assertEqual(getattr(_ffi, f'COMPRESSION_{name}'), want, name)
            out = ctypes.c_uint32(99)
            self.assertEqual(_ffi.lib.jina_net_compression_from_name(name.lower().encode(), ctypes.byref(out)), _ffi.OK)
            self.assertEqual(out.value, want)
        out = ctypes.c_uint32(99)
        self.assertEqual(_ffi.lib.jina_net_compression_from_name(b'brotli', ctypes.byref(out)), _ffi.INVALID_ARGUMENT)
        self.assertEqual(out.value, 99, 'untouched on an unknown name')
        self.assertEqual(_ffi.lib.jina_net_compression_from_name(None, ctypes.byref(out)), _ffi.NULL_ARGUMENT)


class FunctionsTest(unittest.TestCase):
    def test_functions_match_the_header(self):
        decls = header_functions()
        self.assertGreaterEqual(len(decls), 40, 'the header parser found the declarations')
        for name, (restype, argtypes) in _ffi._FUNCTIONS.items():
            with self.subTest(function=name):
                self.assertIn(name, decls, f'{name} is not declared in the header')
                ret, params = decls[name]
                self.assertEqual(len(argtypes), len(params), f'{name}: number of parameters')
                self.assertTrue(matches(ret, restype), f'{name}: returns {ret}, bound as {restype}')
                for i, (c, t) in enumerate(zip(params, argtypes)):
                    self.assertTrue(matches(c, t), f'{name}: parameter {i} is {c}, bound as {t}')
        for name in decls:
            self.assertTrue(hasattr(_ffi.lib, name), f'{name} is not exported by {_ffi.library_path()}')

    def test_every_result_is_an_int32(self):
        for name, (ret, _params) in header_functions().items():
            if normal(ret) == 'jina_net_result' and name in _ffi._FUNCTIONS:
                self.assertIs(_ffi._FUNCTIONS[name][0], ctypes.c_int32, name)
        self.assertIs(dict(_ffi.TargetResult._fields_)['status'], ctypes.c_int32)
        self.assertIs(dict(_ffi.SendResult._fields_)['status'], ctypes.c_int32)

    def test_the_header_parser_sees_types(self):
        decls = header_functions()
        self.assertEqual(decls['jina_net_send_options_init'],
                         ('jina_net_result', ['struct jina_net_send_options *', 'size_t']))
        self.assertEqual(decls['jina_net_target_result_metadata'][0], 'const struct jina_net_metadata *')
        self.assertFalse(matches('size_t', ctypes.c_uint32))
        self.assertFalse(matches('struct jina_net_send_options *', ctypes.POINTER(_ffi.PoolOptions)))
        self.assertFalse(matches('jina_net_result', ctypes.c_uint32))


FAKE_LIBRARY = '''
const char *jina_net_version(void) { return "%s"; }
'''


def older_library(directory, version):
    """A stand-in for a libjina_net of ``version`` without the functions of 0.2.2: every other function of
    the binding as a stub returning 0 (NULL), the options initialisers zero-filling the caller's struct
    (as a library does past its own size) with ``max_attempts`` 3 and ``backoff_multiplier`` 1."""
    lines = ['#include <string.h>', '#include <stddef.h>',
             f'const char *jina_net_version(void) {{ return "{version}"; }}',
             'const char *jina_net_result_name(unsigned c) { return c == 17 ? "JINA_NET_UNSUPPORTED" : '
             'c == 0 ? "JINA_NET_OK" : "JINA_NET_OTHER"; }']
    inits = ('jina_net_pool_options_init', 'jina_net_pool_options_init_resilient', 'jina_net_send_options_init',
             'jina_net_oneshot_options_init')
    attempts, multiplier = _ffi.PoolOptions.max_attempts.offset, _ffi.PoolOptions.backoff_multiplier.offset
    for name in _ffi._FUNCTIONS:
        if name in _ffi.FUNCTIONS_SINCE or name in ('jina_net_version', 'jina_net_result_name'):
            continue
        if name in inits:
            lines.append(f'int {name}(char *o, size_t n) {{ memset(o, 0, n); memcpy(o, &n, sizeof n);')
            if 'pool_options' in name:
                lines.append(f'  unsigned a = 3; double m = 1.0; memcpy(o + {attempts}, &a, 4); '
                             f'memcpy(o + {multiplier}, &m, 8);')
            lines.append('  return 0; }')
        else:
            lines.append(f'long {name}() {{ return 0; }}')
    src, so = os.path.join(directory, f'old-{version}.c'), os.path.join(directory, f'libjina_net-old-{version}.so')
    with open(src, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    subprocess.run(['cc', '-shared', '-fPIC', '-w', src, '-o', so], check=True)
    return so


OLDER_LIBRARY_SCRIPT = textwrap.dedent('''
    import jina_net
    from jina_net import _ffi

    CERT = b'-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n'
    KEY = b'-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n'

    def outcome(fn):
        try:
            value = fn()
        except jina_net.JinaNetError as e:
            return f'{e.result_name}: {e.message}'
        except Exception as e:
            return f'{type(e).__name__}: {e}'
        return 'ok' if value is None else f'ok {value}'

    def options(pool):
        return (pool.options['compression'], pool.options['dns_refresh_ms'])

    print('version ->', jina_net.version(), _ffi.library_version)
    print('bound ->', sorted(f for f in _ffi.FUNCTIONS_SINCE if f in vars(_ffi.lib)))
    cases = {
        "Pool(compression='gzip')": lambda: jina_net.Pool(compression='gzip') and None,
        'Pool(compression=COMPRESSION_DEFLATE)': lambda: jina_net.Pool(compression=jina_net.COMPRESSION_DEFLATE) and None,
        "Pool(tls_server_name='executor.jina.svc')": lambda: jina_net.Pool(tls_server_name='executor.jina.svc') and None,
        'Pool(identity)': lambda: jina_net.Pool(tls_cert_chain_pem=CERT, tls_private_key_pem=KEY) and None,
        'Pool(dns_refresh_ms=1000)': lambda: jina_net.Pool(dns_refresh_ms=1000) and None,
        'Pool().wait_ready()': lambda: jina_net.Pool().wait_ready(),
        "add_connection(tls_server_name='a.svc')": lambda: jina_net.Pool().add_connection('d', '127.0.0.1:1', tls_server_name='a.svc'),
        "send_requests_sync(compression='Gzip')": lambda: jina_net.send_requests_sync(0, [b''], '127.0.0.1:1', compression='Gzip'),
        "send_requests_sync(tls_server_name='a.svc')": lambda: jina_net.send_requests_sync(0, [b''], '127.0.0.1:1', tls_server_name='a.svc'),
        "Pool(compression='NoCompression', dns_refresh_ms=0).options": lambda: options(jina_net.Pool(compression='NoCompression', dns_refresh_ms=0)),
        'Pool().options': lambda: options(jina_net.Pool()),
        "add_connection('d', '127.0.0.1:1')": lambda: jina_net.Pool().add_connection('d', '127.0.0.1:1'),
        "compression_from_name('Gzip')": lambda: jina_net.compression_from_name('Gzip'),
        "compression_from_name('brotli')": lambda: jina_net.compression_from_name('brotli'),
        'Pool(per_attempt_timeout_ms=1)': lambda: jina_net.Pool(per_attempt_timeout_ms=1) and None,
        'set_busy_poll_us(50)': lambda: jina_net.set_busy_poll_us(50),
    }
    for what, fn in cases.items():
        print(what, '->', outcome(fn))
''')


class LoadingTest(unittest.TestCase):
    def test_version_matches_the_header_and_the_binding(self):
        text = header_text()
        want = tuple(int(re.search(rf'#define JINA_NET_VERSION_{p} (\d+)', text).group(1))
                     for p in ('MAJOR', 'MINOR', 'PATCH'))
        self.assertEqual(_ffi.lib.jina_net_version().decode(), '.'.join(map(str, want)))
        self.assertEqual(_ffi.ABI_VERSION[:2], want[:2], 'the binding is written for the header\'s ABI')
        self.assertEqual(_ffi.SONAME, f'libjina_net.so.{want[0]}.{want[1]}')

    def test_abi_compatible(self):
        self.assertTrue(_ffi.abi_compatible('0.2.0'))
        self.assertTrue(_ffi.abi_compatible('0.2.1'))
        self.assertTrue(_ffi.abi_compatible('0.2.2'))
        self.assertTrue(_ffi.abi_compatible('0.2.3'))
        self.assertTrue(_ffi.abi_compatible('0.2.4'))
        self.assertTrue(_ffi.abi_compatible('0.2.17'))
        for other in ('0.1.0', '0.3.0', '1.2.0', '', 'garbage', '0'):
            self.assertFalse(_ffi.abi_compatible(other), other)

    def test_library_comes_from_jina_net_library_when_set(self):
        want = os.environ.get('JINA_NET_LIBRARY')
        if want:
            self.assertEqual(os.path.realpath(_ffi.library_path()), os.path.realpath(want))
        else:
            self.assertIn('libjina_net.so', _ffi.library_path())

    def import_with(self, library):
        env = dict(os.environ, JINA_NET_LIBRARY=library)
        return subprocess.run([sys.executable, '-c', 'import jina_net'], env=env, capture_output=True, text=True,
                              cwd=BINDING)

    def test_a_missing_library_is_a_clear_import_error(self):
        r = self.import_with('/nonexistent/libjina_net.so')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('ImportError: libjina_net not found', r.stderr)
        self.assertIn('/nonexistent/libjina_net.so', r.stderr)

    def test_a_library_of_another_abi_is_refused_naming_both_versions(self):
        # Libraries that say they are another version (only jina_net_version: the binding must not
        # look for anything else before it checked the version).
        with tempfile.TemporaryDirectory() as d:
            for version in ('0.1.0', '0.3.0', '1.2.0'):
                with self.subTest(version=version):
                    src, so = os.path.join(d, f'{version}.c'), os.path.join(d, f'libjina_net-{version}.so')
                    with open(src, 'w') as f:
                        f.write(FAKE_LIBRARY % version)
                    subprocess.run(['cc', '-shared', '-fPIC', src, '-o', so], check=True)
                    r = self.import_with(so)
                    self.assertNotEqual(r.returncode, 0)
                    last = r.stderr.strip().splitlines()[-1]
                    self.assertTrue(last.startswith('ImportError: '), r.stderr)
                    self.assertIn(f'{so} is libjina_net {version}', last)
                    self.assertIn('written for libjina_net 0.2.x (libjina_net.so.0.2)', last)

    def test_a_library_of_the_same_abi_passes_the_version_check(self):
        # 0.2.x is this binding's ABI whatever the patch version: such a library is taken, and only then
        # checked for the functions (these fakes have none but jina_net_version).
        with tempfile.TemporaryDirectory() as d:
            for version in ('0.2.0', '0.2.1', '0.2.9'):
                with self.subTest(version=version):
                    src, so = os.path.join(d, f'{version}.c'), os.path.join(d, f'libjina_net-{version}.so')
                    with open(src, 'w') as f:
                        f.write(FAKE_LIBRARY % version)
                    subprocess.run(['cc', '-shared', '-fPIC', src, '-o', so], check=True)
                    r = self.import_with(so)
                    last = r.stderr.strip().splitlines()[-1]
                    self.assertTrue(last.startswith(f'ImportError: {so} (libjina_net {version}) lacks jina_net_'), r.stderr)
                    self.assertNotIn('written for', last)

    def test_an_older_library_of_the_abi_loads_and_refuses_what_it_lacks_by_name(self):
        # A 0.2.0 or 0.2.1 library (stubs of their functions: none of 0.2.2's) loads; what needs 0.2.2 (the
        # options appended to the structs, the new functions) raises JINA_NET_UNSUPPORTED naming it, and
        # what does not works as before. A 0.2.2 library lacking a 0.2.2 function is refused at import.
        with tempfile.TemporaryDirectory() as d:
            for version in ('0.2.0', '0.2.1', '0.2.2'):
                with self.subTest(version=version):
                    so = older_library(d, version)
                    r = subprocess.run([sys.executable, '-c', OLDER_LIBRARY_SCRIPT], capture_output=True, text=True,
                                       cwd=BINDING, env=dict(os.environ, JINA_NET_LIBRARY=so))
                    if version == '0.2.2':
                        self.assertNotEqual(r.returncode, 0)
                        self.assertIn(f'ImportError: {so} (libjina_net 0.2.2) lacks jina_net_add_options_init, '
                                      'jina_net_pool_add_connection_ex, jina_net_compression_from_name, '
                                      'jina_net_pool_wait_ready', r.stderr)
                        continue
                    self.assertEqual(r.returncode, 0, r.stderr)
                    got = dict(line.split(' -> ', 1) for line in r.stdout.splitlines())
                    self.assertEqual(got.pop('version'), f'{version} {tuple(map(int, version.split(".")))}')
                    self.assertEqual(got.pop('bound'), '[]', 'the 0.2.2 functions are not bound')
                    unsupported = 'JINA_NET_UNSUPPORTED: {} needs libjina_net 0.2.2 or newer; the library loaded ' \
                                  f'({so}) is {version}'
                    for what, want in (
                        ("Pool(compression='gzip')", unsupported.format('pool option compression') + ': leave it unset'),
                        ('Pool(compression=COMPRESSION_DEFLATE)', unsupported.format('pool option compression') + ': leave it unset'),
                        ("Pool(tls_server_name='executor.jina.svc')", unsupported.format('pool option tls_server_name') + ': leave it unset'),
                        ('Pool(identity)', unsupported.format('pool option tls_cert_chain_pem') + ': leave it unset'),
                        ('Pool(dns_refresh_ms=1000)', unsupported.format('pool option dns_refresh_ms') + ': leave it unset'),
                        ('Pool().wait_ready()', unsupported.format('Pool.wait_ready (jina_net_pool_wait_ready)')),
                        ("add_connection(tls_server_name='a.svc')", unsupported.format(
                            'add_connection(tls_server_name=...) (jina_net_pool_add_connection_ex)')),
                        ("send_requests_sync(compression='Gzip')", unsupported.format('one-shot option compression') + ': leave it unset'),
                        ("send_requests_sync(tls_server_name='a.svc')", unsupported.format('one-shot option tls_server_name') + ': leave it unset'),
                        # what it has: unset (or NONE) options, the old add_connection, names without the function
                        ("Pool(compression='NoCompression', dns_refresh_ms=0).options", "ok (0, 0)"),
                        ('Pool().options', 'ok (0, 0)'),
                        ("add_connection('d', '127.0.0.1:1')", 'ok False'),  # the stub's (old) add_connection
                        ("compression_from_name('Gzip')", 'ok 1'),
                        # InvalidArgumentError: a JinaNetError (INVALID_ARGUMENT, which the stub names
                        # JINA_NET_OTHER) and a ValueError
                        ("compression_from_name('brotli')", "JINA_NET_OTHER: unknown compression 'brotli' (none, gzip, deflate; jina's NoCompression, Gzip, Deflate)"),
                        ('Pool(per_attempt_timeout_ms=1)', 'ok' if version == '0.2.1' else
                         unsupported.replace('0.2.2', '0.2.1').format('pool option per_attempt_timeout_ms') + ': leave it unset'),
                        ('set_busy_poll_us(50)', unsupported.replace('0.2.2 or', '0.2.3 or').format('set_busy_poll_us')),
                    ):
                        self.assertEqual(got.pop(what), want, what)
                    self.assertEqual(got, {})

    def test_a_library_without_jina_net_version_is_not_taken(self):
        with tempfile.TemporaryDirectory() as d:
            src, so = os.path.join(d, 'other.c'), os.path.join(d, 'libother.so')
            with open(src, 'w') as f:
                f.write('int something_else(void) { return 0; }\n')
            subprocess.run(['cc', '-shared', '-fPIC', src, '-o', so], check=True)
            r = self.import_with(so)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f'{so}: not libjina_net (no jina_net_version)', r.stderr)

    def test_the_installed_soname_is_tried_before_the_dev_name(self):
        # Without JINA_NET_LIBRARY: libjina_net.so.0.2, then libjina_net.so, through the loader.
        script = textwrap.dedent('''
            import os
            os.environ.pop('JINA_NET_LIBRARY', None)
            import ctypes
            tried = []
            real = ctypes.CDLL
            class Recording(real):
                def __init__(self, name, *a, **kw):
                    tried.append(name)
                    raise OSError(f'{name}: not here (test)')
            ctypes.CDLL = Recording
            try:
                import jina_net
            except ImportError as e:
                print(tried)
                print(e)
        ''')
        r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=BINDING,
                           env={k: v for k, v in os.environ.items() if k != 'JINA_NET_LIBRARY'})
        tried, message = r.stdout.splitlines()[:2]
        self.assertEqual(tried, "['libjina_net.so.0.2', 'libjina_net.so']")
        self.assertIn('libjina_net not found', message)
        self.assertIn('scripts/install.sh: libjina_net.so.0.2', message)

    def test_result_names(self):
        self.assertEqual(_ffi.result_name(_ffi.OK), 'JINA_NET_OK')
        self.assertEqual(_ffi.result_name(_ffi.KUBERNETES_ERROR), 'JINA_NET_KUBERNETES_ERROR')
        self.assertEqual(_ffi.result_name(_ffi.RESOURCE_EXHAUSTED), 'JINA_NET_RESOURCE_EXHAUSTED')
        self.assertEqual(_ffi.result_name(999), 'JINA_NET_UNKNOWN_RESULT')


if __name__ == '__main__':
    unittest.main()
