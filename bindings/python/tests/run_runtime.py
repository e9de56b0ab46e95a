"""Starts one real jina 3.1.0 runtime through tests/interop/launcher.py (its shims: loopback binds,
traceback compatibility), optionally with libjina_net's pool patched into jina first.

    python run_runtime.py [--jina-net] worker|head --port P --name NAME [launcher.py options]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'interop'))
sys.path.insert(0, os.path.join(ROOT, 'bindings', 'python'))

import launcher  # noqa: E402  (installs the shims on import)

argv = sys.argv[1:]
if argv and argv[0] == '--jina-net':
    argv = argv[1:]
    import jina_net  # noqa: E402

    jina_net.patch_jina()
    import jina.serve.networking

    assert jina.serve.networking.GrpcConnectionPool.__module__ == 'jina_net.networking'
    print(f'run_runtime: jina.serve.networking.GrpcConnectionPool is jina_net\'s ({jina_net.library_path()})',
          file=sys.stderr, flush=True)

launcher.main(argv)
