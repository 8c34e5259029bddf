#!/usr/bin/env python3
"""`--arch uring` keeps one multishot accept and one multishot receive per connection armed, and
`--no-multishot` really takes the one-shot path a kernel without them (before 5.19 and 6.0)
takes by itself: counted in the kernel, from the io_uring_submit_req tracepoint, by opcode.

    multishot_test.py ZEN

Each mode serves 20 clients asking 5 questions each, one at a time (each answer read before the
next question goes), under `perf stat`. With multishot, accepts are submitted about once and
receives about once per connection; with --no-multishot, an accept per client and a receive per
question (and one more per connection for its EOF). Both answer everything.
Needs linux-perf and the right to use the kernel's tracepoints (root).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

IORING_OP_ACCEPT = 13
IORING_OP_RECV = 27
CLIENTS = 20
QUESTIONS = 5

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from netcheck import check, connect, failures, free_port, receive  # noqa: E402


def run(zen, extra):
    """Submissions counted by opcode: {'accept': n, 'recv': n}, and the answers received."""
    with tempfile.TemporaryDirectory() as directory:
        counts_path = os.path.join(directory, "counts")
        port = free_port()
        event = "io_uring:io_uring_submit_req"
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", counts_path,
                                 "-e", event, "--filter", f"opcode == {IORING_OP_ACCEPT}",
                                 "-e", event, "--filter", f"opcode == {IORING_OP_RECV}",
                                 "--", zen, "serve", "127.0.0.1", "-p", str(port), "--arch", "uring", "--quiet"] + extra,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        answered = 0
        try:
            for _ in range(CLIENTS):
                with connect(port, perf) as client:
                    for _ in range(QUESTIONS):
                        client.sendall(b"Simple is better than?")
                        answered += receive(client, 8) == b"Complex."
                    client.shutdown(socket.SHUT_WR)
                    check(receive(client, 1) == b"", "EOF after the answers")
            time.sleep(0.2)  # the last close and its EOF receive go through the ring
            with open(f"/proc/{perf.pid}/task/{perf.pid}/children") as children:
                server = int(children.read().split()[0])
            os.kill(server, signal.SIGTERM)
            _, err = perf.communicate(timeout=20)
            check(perf.returncode == 0, f"perf stat (and zen) exited {perf.returncode}: {err.strip()[-300:]}")
        finally:
            if perf.poll() is None:
                perf.kill()
                perf.wait()
        counts = []
        with open(counts_path) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 2 and fields[2] == event:
                    counts.append(int(fields[0]) if re.fullmatch(r"\d+", fields[0]) else -1)
        check(len(counts) == 2 and min(counts) >= 0, f"perf stat counted {counts}")
        counts += [-1] * (2 - len(counts))
        return {"accept": counts[0], "recv": counts[1]}, answered


def main(zen):
    if shutil.which("perf") is None:
        print("FAIL: perf is needed (apt-get install linux-perf)")
        return 1
    if not os.path.isdir("/sys/kernel/tracing/events/io_uring") and os.geteuid() != 0:
        print("FAIL: the io_uring tracepoints are not readable: run as root")
        return 1
    multishot, answered = run(zen, [])
    print(f"multishot: {multishot}, {answered} answers", flush=True)
    check(answered == CLIENTS * QUESTIONS, f"multishot: {answered} answers of {CLIENTS * QUESTIONS}")
    check(1 <= multishot["accept"] <= 3, f"multishot: {multishot['accept']} accepts submitted for {CLIENTS} clients")
    check(CLIENTS <= multishot["recv"] <= CLIENTS + 5,
          f"multishot: {multishot['recv']} receives submitted for {CLIENTS} connections")
    oneshot, answered = run(zen, ["--no-multishot"])
    print(f"--no-multishot: {oneshot}, {answered} answers", flush=True)
    check(answered == CLIENTS * QUESTIONS, f"--no-multishot: {answered} answers of {CLIENTS * QUESTIONS}")
    check(oneshot["accept"] >= CLIENTS, f"--no-multishot: {oneshot['accept']} accepts submitted for {CLIENTS} clients")
    check(oneshot["recv"] >= CLIENTS * (QUESTIONS + 1),
          f"--no-multishot: {oneshot['recv']} receives submitted for {CLIENTS * QUESTIONS} questions and {CLIENTS} EOFs")
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
