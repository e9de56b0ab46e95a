"""Test helpers: the project's jina-net-test-server, real jina 3.1.0 runtimes as child processes
(tests/interop/launcher.py, optionally with jina_net patched in), and process inspection."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
INTEROP = os.path.join(ROOT, 'tests', 'interop')
EXECUTORS = os.path.join(INTEROP, 'executors.py')
TEST_SERVER = os.environ.get('JINA_NET_TEST_SERVER') or os.path.join(ROOT, 'target', 'debug', 'jina-net-test-server')


class TestServers:
    """``jina-net-test-server`` with ``specs`` (e.g. ``'echo=a'``); ``addr[name]`` is ``127.0.0.1:port``
    (``unix:PATH`` with ``--unix=PATH``). ``options``: the server's options (``--tls-cert=FILE``,
    ``--client-ca=FILE``, ``--compress=gzip``, ``--unix=PATH``...), for every server of the process."""

    def __init__(self, *specs, options=()):
        self.proc = subprocess.Popen(
            [TEST_SERVER, '--exit-on-stdin-eof', *options, *specs],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.addr = {}
        for line in self.proc.stdout:
            words = line.split()
            if words and words[0] == 'SERVER':
                self.addr[words[1]] = words[3]
            elif words and words[0] == 'READY':
                break
        if len(self.addr) != len(specs):
            self.close()
            raise RuntimeError(f'{TEST_SERVER} did not start {specs}')

    def port(self, name):
        return int(self.addr[name].rsplit(':', 1)[1])

    def stats(self):
        """``(read, written)``: the TCP bytes all servers of the process read and wrote so far (SIGUSR1
        makes the server print ``STATS read=N written=M``)."""
        # The server prints READY before it installs its SIGUSR1 handler: a SIGUSR1 sent in between
        # would kill it (the default action). Wait until the kernel shows the signal as caught.
        deadline = time.monotonic() + 10
        while not _catches(self.proc.pid, signal.SIGUSR1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f'{TEST_SERVER} does not catch SIGUSR1')
            time.sleep(0.005)
        self.proc.send_signal(signal.SIGUSR1)
        for line in self.proc.stdout:
            words = line.split()
            if words and words[0] == 'STATS':
                fields = dict(w.split('=', 1) for w in words[1:])
                return int(fields['read']), int(fields['written'])
        raise RuntimeError(f'{TEST_SERVER} exited before it printed STATS')

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _catches(pid, sig) -> bool:
    """Whether process `pid` has a handler for `sig` (SigCgt of /proc/PID/status)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('SigCgt:'):
                    return bool(int(line.split()[1], 16) >> (int(sig) - 1) & 1)
    except OSError:
        pass
    return False


def pki(directory):
    """Writes the test certificates (``jina-net-test-server pki DIR``) and returns ``{file name: bytes}``:
    server-ca.pem; server.pem/.key (localhost, 127.0.0.1); svc.pem/.key (only executor.jina.svc);
    client-ca.pem; client.pem/.key (signed by client-ca); stranger.pem/.key (another CA)."""
    subprocess.run([TEST_SERVER, 'pki', directory], check=True, stdout=subprocess.DEVNULL)
    out = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), 'rb') as f:
            out[name] = f.read()
    return out


def freeze(pid, timeout=5.0):
    """SIGSTOP `pid` and wait until every thread of it is stopped. (The kernel stops a process's threads
    only once the thread it woke for the signal runs: until then, on a busy machine, other threads may
    still answer a request.)"""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for tid in os.listdir(f'/proc/{pid}/task'):
            try:
                with open(f'/proc/{pid}/task/{tid}/stat') as f:
                    states.append(f.read().rsplit(')', 1)[1].split()[0])
            except OSError:
                pass  # a thread that just ended
        if states and all(s in ('T', 't') for s in states):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f'process {pid} did not stop: thread states {states}')
        time.sleep(0.001)


_GIVEN_PORTS = set()


def free_port() -> int:
    """A port free now that this process never handed out before. The kernel may give a port it
    just gave again; two runtimes started at once then both listened on it (grpc's servers bind with
    SO_REUSEPORT) and shared its connections: a shard's sends reached the other shard's worker."""
    while True:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def _listening_addresses(port):
    """Local addresses (hex, as /proc/net/tcp* writes them) of sockets listening on `port`."""
    found = []
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 3 and cols[3] == '0A':
                addr, p = cols[1].split(':')
                if int(p, 16) == port:
                    found.append(addr)
    return found


LOOPBACK_HEX = {'0100007F', '0000000000000000FFFF00000100007F'}


class JinaRuntime:
    """A real jina 3.1.0 worker or head (tests/interop/launcher.py) in a child process.

    ``jina_net=True`` runs it through ``run_runtime.py --jina-net``: ``jina_net.patch_jina()`` before the
    runtime is created, so a head routes with libjina_net.
    """

    def __init__(self, role, name, *args, jina_net=False, log_dir=None):
        self.role, self.name = role, name
        self.port = free_port()
        self.log = os.path.join(log_dir or os.environ.get('TMPDIR', '/tmp'), f'jina-net-py-{name.replace("/", "_")}-{self.port}.log')
        cmd = [sys.executable, os.path.join(HERE, 'run_runtime.py')]
        if jina_net:
            cmd.append('--jina-net')
        cmd += [role, '--port', str(self.port), '--name', name, *args]
        env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1')
        with open(self.log, 'w') as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)

    @property
    def addr(self):
        return f'127.0.0.1:{self.port}'

    def wait_ready(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f'{self.name} exited ({self.proc.returncode}); log:\n{self.log_tail()}')
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=0.2):
                    pass
                listening = _listening_addresses(self.port)
                if not all(a in LOOPBACK_HEX for a in listening):
                    raise AssertionError(f'{self.name} listens on a non-loopback address: {listening}')
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{self.name} did not come up on {self.addr}; log:\n{self.log_tail()}')
                time.sleep(0.05)

    def log_tail(self, n=30):
        try:
            with open(self.log) as f:
                return ''.join(f.readlines()[-n:])
        except OSError:
            return ''

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@contextlib.contextmanager
def runtimes(*specs):
    """Starts every ``JinaRuntime(*spec_args, **spec_kwargs)`` at once, waits for all, stops all."""
    started = []
    try:
        for args, kwargs in specs:
            started.append(JinaRuntime(*args, **kwargs))
        for rt in started:
            rt.wait_ready()
        yield started
    finally:
        for rt in started:
            rt.stop()


def library_threads(pid) -> int:
    """How many threads of process `pid` are libjina_net runtime threads (named ``jina-net``)."""
    n = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/comm') as f:
                if f.read().strip() == 'jina-net':
                    n += 1
        except OSError:
            pass
    return n


def maps_library(pid) -> bool:
    with open(f'/proc/{pid}/maps') as f:
        return any('libjina_net' in line for line in f)


def children(pid):
    """Direct child processes of `pid`."""
    out = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open(f'/proc/{p}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            out.append(int(p))
    return out


def rss_kib() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0
