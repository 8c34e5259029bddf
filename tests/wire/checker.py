#!/usr/bin/env python3
"""An independent checker of answers on a faulty wire (run inside the client's namespace).

    checker.py HOST PORT --seconds 4 [--batch 5] [--pause 0.02] [--one-batch-per-connection]

One connection after another until the time is up: each asks batches of random questions of
the book's table (pipelined), reads the answers and compares each with the one its question must
get, in order. At the end it half-closes and reads to EOF: a byte after the last expected
answer is an answer given twice. A question whose answer never came is lost, and each loss is
named by what lost it: `reset`, `timeout` (5 s with no byte), `closed` (EOF before the answer),
`connect` (no connection; the questions it would have asked are not asked). Prints one JSON
object.
"""
import argparse
import json
import random
import socket
import time

TABLE = {b"Beautiful is better than?": b"Ugly.", b"Explicit is better than?": b"Implicit.",
         b"Simple is better than?": b"Complex."}


def converse(host, port, deadline, batch, one_batch, pause, tally, rng):
    try:
        connection = socket.create_connection((host, port), timeout=5)
    except OSError:
        tally["errors"]["connect"] += 1
        time.sleep(0.1)
        return
    connection.settimeout(5)
    pending = b""
    try:
        while True:
            questions = [rng.choice(list(TABLE)) for _ in range(batch)]
            connection.sendall(b"".join(questions))
            tally["asked"] += batch
            for position, question in enumerate(questions):
                expected = TABLE[question]
                while len(pending) < len(expected):
                    data = connection.recv(4096)
                    if not data:
                        tally["errors"]["closed"] += batch - position
                        return
                    pending += data
                if pending[:len(expected)] == expected:
                    tally["answered"] += 1
                else:
                    tally["wrong"] += 1
                    tally["wrong_examples"] = (tally.get("wrong_examples") or [])[:4] + [
                        [question.decode(), pending[:len(expected)].decode("latin-1")]]
                    return
                pending = pending[len(expected):]
            if one_batch or time.monotonic() >= deadline:
                break
            time.sleep(pause)
        connection.shutdown(socket.SHUT_WR)
        while True:
            data = connection.recv(4096)
            if not data:
                break
            pending += data
        if pending:
            tally["twice"] += 1
            tally["twice_bytes"] = pending[:60].decode("latin-1")
    except socket.timeout:
        tally["errors"]["timeout"] += tally["asked"] - tally["answered"] - tally["wrong"] - lost(tally)
    except (ConnectionResetError, BrokenPipeError):
        tally["errors"]["reset"] += tally["asked"] - tally["answered"] - tally["wrong"] - lost(tally)
    finally:
        connection.close()


def lost(tally):
    return sum(count for kind, count in tally["errors"].items() if kind != "connect")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between batches (0.02)")
    parser.add_argument("--one-batch-per-connection", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    tally = {"asked": 0, "answered": 0, "wrong": 0, "twice": 0, "conversations": 0,
             "errors": {"connect": 0, "reset": 0, "closed": 0, "timeout": 0}}
    deadline = time.monotonic() + options.seconds
    while time.monotonic() < deadline:
        tally["conversations"] += 1
        converse(options.host, options.port, deadline, options.batch, options.one_batch_per_connection, options.pause,
                 tally, rng)
    print(json.dumps(tally))


if __name__ == "__main__":
    main()
