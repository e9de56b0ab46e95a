"""HTTP/2 frames per request of one bench client (BENCHMARKS.md finding 19): the client talks to the
echo worker through a counting proxy, which prints the frames each way per request by type, the bytes
per request, and the HEADERS block of the client's third request (hex), whose size shows what HPACK
left unindexed.

    python3 bench/h2_frames.py N INFLIGHT CLIENT [ARGS...]
    e.g. python3 bench/h2_frames.py 20000 16 target/bench/c-client
         python3 bench/h2_frames.py 20000 16 target/bench/grpc-go-client procs=1

Needs a release build (`target/release/jina-net-test-server`) and the bench clients (target/bench/);
100 B payload, no warm-up. Frames: DATA (+ES: END_STREAM), HEADERS, SETTINGS, PING, WINUPD
(WINDOW_UPDATE), RST, GOAWAY.
"""
import asyncio
import collections
import subprocess
import sys

NAMES = {0: 'DATA', 1: 'HEADERS', 2: 'PRIORITY', 3: 'RST', 4: 'SETTINGS', 5: 'PUSH', 6: 'PING',
         7: 'GOAWAY', 8: 'WINUPD', 9: 'CONTINUATION'}
PREFACE = 24


class Counter:
    def __init__(self):
        self.frames = {'client → server': collections.Counter(), 'server → client': collections.Counter()}
        self.third_headers = None


async def pump(reader, writer, direction, counter, preface):
    frames = counter.frames[direction]
    buf = b''
    skip = PREFACE if preface else 0
    headers_seen = 0
    while True:
        data = await reader.read(262144)
        if not data:
            break
        writer.write(data)
        await writer.drain()
        buf += data
        if skip:
            taken = min(skip, len(buf))
            buf, skip = buf[taken:], skip - taken
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], 'big')
            if len(buf) < 9 + length:
                break
            kind, flags = buf[3], buf[4]
            name = NAMES.get(kind, str(kind))
            if kind in (0, 1) and flags & 1:
                name += '+ES'
            frames[name] += 1
            frames['bytes'] += 9 + length
            if kind == 1 and preface:
                headers_seen += 1
                if headers_seen == 3:
                    counter.third_headers = buf[9:9 + length]
            buf = buf[9 + length:]
    writer.close()


async def main(n, inflight, client):
    server = subprocess.Popen(['target/release/jina-net-test-server', 'echo=frames'], stdout=subprocess.PIPE, text=True)
    upstream = None
    for line in server.stdout:
        if line.startswith('SERVER'):
            upstream = line.split()[-1]
        if line.startswith('READY'):
            break
    host, port = upstream.rsplit(':', 1)
    counter = Counter()

    async def handle(client_reader, client_writer):
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pump(client_reader, up_writer, 'client → server', counter, True),
                             pump(up_reader, client_writer, 'server → client', counter, False),
                             return_exceptions=True)

    proxy = await asyncio.start_server(handle, '127.0.0.1', 0)
    address = '127.0.0.1:%d' % proxy.sockets[0].getsockname()[1]
    run = await asyncio.create_subprocess_exec(
        *client, 'mode=send', 'addrs=' + address, 'polling=any', 'payload=target/bench/payload-100B.bin',
        'inflight=%d' % inflight, 'warmup_ms=0', 'duration_ms=600000', 'max_requests=%d' % n,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await run.wait()
    await asyncio.sleep(0.2)
    proxy.close()
    server.terminate()
    server.wait()
    print('== %s (100B, %d in flight): frames per request over %d requests' % (' '.join(client), inflight, n))
    for direction, frames in counter.frames.items():
        print('  %-16s %s' % (direction, '  '.join('%s %.3f' % (k, v / n) for k, v in sorted(frames.items()))))
    if counter.third_headers is not None:
        print('  third request HEADERS block (%d bytes): %s' % (len(counter.third_headers), counter.third_headers.hex()))


if __name__ == '__main__':
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
