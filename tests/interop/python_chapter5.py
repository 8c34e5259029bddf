#!/usr/bin/env python3
"""Python peers for chapter 5's demos, written the way the book's streamer.py and blocks.py are
(plain blocking sockets, struct '!I' headers), so the tests can check that zen talks to them.

Usage: python_chapter5.py MODE PORT_OR_PORT_FILE
  streamer-client PORT   send three lines, framed by closing the socket
  blocks-client PORT     send three blocks and the zero-length block
  blocks-dribble PORT    the same, one byte at a time
  blocks-huge PORT       announce a block of 2**32 - 1 bytes
  blocks-truncated PORT  announce 100 bytes, send 10, close
  trickle PORT N         announce a 1000-byte block, then send N bytes 0.3 s apart, close
  streamer-server FILE   accept one client, print what the book's server prints
  blocks-server FILE     accept one client, print each block
Servers bind 127.0.0.1 on a free port and write it to FILE."""

import socket
import struct
import sys
import time

HEADER = struct.Struct('!I')
LINES = [b'Beautiful is better than ugly.\n', b'Explicit is better than implicit.\n',
         b'Simple is better than complex.\n']


def connect(port):
    sock = socket.create_connection(('127.0.0.1', port), timeout=10)
    sock.shutdown(socket.SHUT_RD)
    return sock


def block_bytes(payload):
    return HEADER.pack(len(payload)) + payload


def listen(port_file):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    listener.settimeout(30)
    with open(port_file, 'w') as f:
        f.write(str(listener.getsockname()[1]))
    sock, address = listener.accept()
    sock.settimeout(10)
    print('Accepted connection from', address, flush=True)
    sock.shutdown(socket.SHUT_WR)
    return sock


def read_exactly(sock, length):
    data = b''
    while len(data) < length:
        more = sock.recv(length - len(data))
        if not more:
            raise EOFError('closed with {} bytes left'.format(length - len(data)))
        data += more
    return data


def main():
    mode, where = sys.argv[1], sys.argv[2]
    if mode == 'streamer-client':
        with connect(int(where)) as sock:
            for line in LINES:
                sock.sendall(line)
    elif mode in ('blocks-client', 'blocks-dribble'):
        stream = b''.join(block_bytes(line.rstrip(b'\n')) for line in LINES) + HEADER.pack(0)
        with connect(int(where)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if mode == 'blocks-client':
                sock.sendall(stream)
            else:
                for i in range(len(stream)):
                    sock.sendall(stream[i:i + 1])
                    time.sleep(0.002)
    elif mode == 'blocks-huge':
        with connect(int(where)) as sock:
            sock.sendall(HEADER.pack(2**32 - 1) + b'x' * 1000)
            time.sleep(0.5)
    elif mode == 'blocks-truncated':
        with connect(int(where)) as sock:
            sock.sendall(HEADER.pack(100) + b'0123456789')
    elif mode == 'trickle':
        with connect(int(where)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.sendall(HEADER.pack(1000))
                for _ in range(int(sys.argv[3])):
                    time.sleep(0.3)
                    sock.sendall(b'x')
            except OSError:
                pass  # the server gave up on us: what the test looks for
    elif mode == 'streamer-server':
        sock = listen(where)
        message = b''
        while True:
            more = sock.recv(8192)
            if not more:
                break
            message += more
        print('Message:', repr(message), flush=True)
    elif mode == 'blocks-server':
        sock = listen(where)
        while True:
            (length,) = HEADER.unpack(read_exactly(sock, HEADER.size))
            if length == 0:
                print('End of blocks', flush=True)
                break
            print('Block says:', repr(read_exactly(sock, length)), flush=True)
    else:
        sys.exit('unknown mode ' + mode)


if __name__ == '__main__':
    main()
