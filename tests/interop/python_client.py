#!/usr/bin/env python3
"""A Zen client written the way the book's chapter 7 client is: plain blocking sockets, one
question at a time, reading until the answer's '.'. It checks that zen serve talks to Python
peers built like the book's. Usage: python_client.py HOST PORT"""

import socket
import sys

QUESTIONS = [b'Beautiful is better than?', b'Explicit is better than?', b'Simple is better than?']


def read_answer(sock):
    data = b''
    while not data.endswith(b'.'):
        more = sock.recv(4096)
        if not more:
            raise EOFError('server closed after {!r}'.format(data))
        data += more
    return data


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect((host, port))
        for question in QUESTIONS:
            sock.sendall(question)
            print(question, read_answer(sock))


if __name__ == '__main__':
    main()
