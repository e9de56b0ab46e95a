"""The ctypes declarations against include/jina_net.h: every struct's size and field offsets as a C
compiler computes them, and every declared function's arity and void-ness as the header declares it."""
import ctypes
import os
import re
import subprocess
import tempfile
import unittest

from helpers import ROOT

from jina_net import _ffi

HEADER = os.path.join(ROOT, 'include', 'jina_net.h')

STRUCTS = {
    'jina_net_metadata': _ffi.Metadata,
    'jina_net_target_result': _ffi.TargetResult,
    'jina_net_send_result': _ffi.SendResult,
    'jina_net_grpc_option': _ffi.GrpcOption,
    'jina_net_bytes': _ffi.Bytes,
    'jina_net_oneshot_options': _ffi.OneshotOptions,
    'jina_net_pool_options': _ffi.PoolOptions,
}


class LayoutTest(unittest.TestCase):
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
                # the C struct has no field ctypes lacks: the fields end where the struct ends
                for field, ftype in cls._fields_:
                    self.assertEqual(
                        c[f'{cname}.{field}'],
                        [getattr(cls, field).offset, ctypes.sizeof(ftype)],
                        f'{cname}.{field} offset/size',
                    )
                last, ltype = cls._fields_[-1]
                end = getattr(cls, last).offset + ctypes.sizeof(ltype)
                self.assertLessEqual(c[cname][0] - end, ctypes.alignment(cls) - 1, f'{cname} has more fields in C')

    def test_functions_match_the_header(self):
        with open(HEADER) as f:
            text = re.sub(r'/\*.*?\*/', '', f.read(), flags=re.S)
        decls = {}
        for ret, name, params in re.findall(r'([\w \*]+?)\s*\b(jina_net_\w+)\(([^;{]*?)\);', text):
            params = params.strip()
            n = 0 if params in ('', 'void') else params.count(',') + 1
            decls[name] = (ret.split()[-1] == 'void' and '*' not in ret, n)
        self.assertGreaterEqual(len(decls), 30, 'the header parser found the declarations')
        for name, (restype, argtypes) in _ffi._FUNCTIONS.items():
            with self.subTest(function=name):
                self.assertIn(name, decls, f'{name} is not declared in the header')
                is_void, arity = decls[name]
                self.assertEqual(len(argtypes), arity, f'{name}: number of parameters')
                self.assertEqual(restype is None, is_void, f'{name}: void return')
        for name in decls:
            self.assertTrue(hasattr(_ffi.lib, name), f'{name} is not exported by {_ffi.library_path()}')


class LoadingTest(unittest.TestCase):
    def test_version_matches_the_header(self):
        with open(HEADER) as f:
            text = f.read()
        want = '.'.join(re.search(rf'#define JINA_NET_VERSION_{p} (\d+)', text).group(1) for p in ('MAJOR', 'MINOR', 'PATCH'))
        self.assertEqual(_ffi.lib.jina_net_version().decode(), want)

    def test_library_comes_from_jina_net_library_when_set(self):
        want = os.environ.get('JINA_NET_LIBRARY')
        if want:
            self.assertEqual(os.path.realpath(_ffi.library_path()), os.path.realpath(want))
        else:
            self.assertIn('libjina_net.so', _ffi.library_path())

    def test_a_missing_library_is_a_clear_import_error(self):
        env = dict(os.environ, JINA_NET_LIBRARY='/nonexistent/libjina_net.so')
        r = subprocess.run(
            [os.sys.executable, '-c', 'import jina_net'], env=env, capture_output=True, text=True,
            cwd=os.path.join(ROOT, 'bindings', 'python'),
        )
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('ImportError: libjina_net not found', r.stderr)
        self.assertIn('/nonexistent/libjina_net.so', r.stderr)

    def test_result_names(self):
        self.assertEqual(_ffi.result_name(_ffi.OK), 'JINA_NET_OK')
        self.assertEqual(_ffi.result_name(_ffi.KUBERNETES_ERROR), 'JINA_NET_KUBERNETES_ERROR')
        self.assertEqual(_ffi.result_name(999), 'JINA_NET_UNKNOWN_RESULT')


if __name__ == '__main__':
    unittest.main()
