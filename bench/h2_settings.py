"""Prints the SETTINGS an HTTP/2 server announces (BENCHMARKS.md finding 17: the frame sizes peers take).

    python3 bench/h2_settings.py PORT        # a server on 127.0.0.1:PORT

Sends the client preface and an empty SETTINGS frame, reads what the server answers within 0.3 s and
prints each SETTINGS frame's parameters by name (4 INITIAL_WINDOW_SIZE, 5 MAX_FRAME_SIZE, ...).
"""
import socket
import sys
import time

NAMES = {1: 'HEADER_TABLE_SIZE', 2: 'ENABLE_PUSH', 3: 'MAX_CONCURRENT_STREAMS', 4: 'INITIAL_WINDOW_SIZE',
         5: 'MAX_FRAME_SIZE', 6: 'MAX_HEADER_LIST_SIZE', 8: 'ENABLE_CONNECT_PROTOCOL'}


def main(port):
    with socket.create_connection(('127.0.0.1', port)) as c:
        c.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        time.sleep(0.3)
        data = c.recv(65536)
    i = 0
    while i + 9 <= len(data):
        length, kind, flags = int.from_bytes(data[i:i + 3], 'big'), data[i + 3], data[i + 4]
        if kind == 4 and not flags & 1:
            p = data[i + 9:i + 9 + length]
            params = [(int.from_bytes(p[j:j + 2], 'big'), int.from_bytes(p[j + 2:j + 6], 'big'))
                      for j in range(0, len(p), 6)]
            print('SETTINGS ' + ' '.join(f'{NAMES.get(k, k)}={v}' for k, v in params))
        i += 9 + length


if __name__ == '__main__':
    main(int(sys.argv[1]))
