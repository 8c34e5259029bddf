#!/usr/bin/env python3
"""A one-client-at-a-time Zen server written the way the book's srv_single.py is: it reads
until the buffer ends with '?' and answers from a dict. zen client must work against it.
Usage: python_server.py PORT_FILE (it binds 127.0.0.1 on a free port and writes the port there)."""

import socket
import sys

ANSWERS = {b'Beautiful is better than?': b'Ugly.',
           b'Explicit is better than?': b'Implicit.',
           b'Simple is better than?': b'Complex.'}


def serve_one(sock):
    while True:
        message = sock.recv(4096)
        if not message:
            return
        while not message.endswith(b'?'):
            more = sock.recv(4096)
            if not more:
                return
            message += more
        sock.sendall(ANSWERS.get(message, b'Error: unknown aphorism.'))


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', 0))
    listener.listen(16)
    listener.settimeout(30)  # never outlive the test that started it
    with open(sys.argv[1], 'w') as port_file:
        port_file.write(str(listener.getsockname()[1]))
    sock, address = listener.accept()
    print('Accepted connection from {}'.format(address), flush=True)
    with sock:
        sock.settimeout(10)
        serve_one(sock)
    print('Client socket to {} has closed'.format(address), flush=True)


if __name__ == '__main__':
    main()
