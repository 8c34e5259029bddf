#!/usr/bin/env python3
"""`--arch uring` moves every byte through the ring (issue 18): no system call of its own per
client on the serving path, the drain included, but the one getpeername() io_uring cannot do.

    no_syscalls_per_client_test.py ZEN

The server runs under `strace -f`; the test puts through it short conversations, pipelined ones
that half-close, and clients still connected (one with a question on its way) when SIGTERM
comes, so the drain reads, answers and closes them. Counted from the buffer ring's registration
(the end of set-up) to the exit:
  - no recv/recvfrom/recvmsg, no send/sendto/sendmsg, no shutdown: all of it is in the ring;
  - one getpeername per client;
  - setsockopt and close far fewer than the clients: TCP_NODELAY is set once on the listener,
    and closes go through the ring.
"""
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from netcheck import check, connect, failures, free_port, receive  # noqa: E402


def traced_pid(strace_pid):
    with open(f"/proc/{strace_pid}/task/{strace_pid}/children") as children:
        return int(children.read().split()[0])


def counts_after_set_up(trace_path):
    """System calls by name, from the line that registers the buffer ring on."""
    counts = collections.Counter()
    started = False
    call = re.compile(r"^\d+\s+(?:<\.\.\. )?(\w+)[( ]")
    with open(trace_path, errors="replace") as trace:
        for line in trace:
            if not started:
                started = "io_uring_register(" in line
                continue
            if "resumed>" in line:
                continue  # the second half of a call already counted
            match = call.match(line)
            if match:
                counts[match.group(1)] += 1
    return started, counts


def main(zen):
    if shutil.which("strace") is None:
        print("FAIL: strace is needed (apt-get install strace)")
        return 1
    with tempfile.TemporaryDirectory() as directory:
        trace_path = os.path.join(directory, "trace")
        port = free_port()
        server = subprocess.Popen(["strace", "-f", "-qq", "-o", trace_path, zen, "serve", "127.0.0.1", "-p", str(port),
                                   "--arch", "uring", "--quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            clients = 0
            three = b"Beautiful is better than?Explicit is better than?Simple is better than?"
            for _ in range(20):  # the book's client: three questions, close
                with connect(port, server, seconds=max(1.0, deadline - time.monotonic())) as client:
                    clients += 1
                    for question in three.split(b"?")[:3]:
                        client.sendall(question + b"?")
                    check(receive(client, 22) == b"Ugly.Implicit.Complex.", "a short conversation's answers")
            for _ in range(10):  # 16 pipelined, then a half-close: every answer, then EOF
                with connect(port, server, seconds=max(1.0, deadline - time.monotonic())) as client:
                    clients += 1
                    client.sendall(b"Simple is better than?" * 16)
                    client.shutdown(socket.SHUT_WR)
                    check(receive(client, 8 * 16 + 1) == b"Complex." * 16, "16 pipelined answers, then EOF")
            waiting = []
            for _ in range(10):  # still connected at SIGTERM: the drain ends them
                client = connect(port, server, seconds=max(1.0, deadline - time.monotonic()))
                clients += 1
                client.sendall(b"Explicit is better than?")
                check(receive(client, 9) == b"Implicit.", "an answer before the stop")
                waiting.append(client)
            waiting[0].sendall(b"Beautiful is better than?")  # just before the stop
            time.sleep(0.2)
            os.kill(traced_pid(server.pid), signal.SIGTERM)  # the server, not strace
            _, err = server.communicate(timeout=20)
            check(server.returncode == 0, f"exit status {server.returncode} after SIGTERM: {err.strip()}")
            check(receive(waiting[0], 5) == b"Ugly.", "the question sent just before the stop is answered")
            for client in waiting:
                client.settimeout(5)
                check(client.recv(1) == b"", "the drain closes a connected client")
                client.close()
        finally:
            if server.poll() is None:
                try:
                    os.kill(traced_pid(server.pid), signal.SIGKILL)
                except (OSError, IndexError, ValueError):
                    pass
                server.kill()
                server.wait()
        started, counts = counts_after_set_up(trace_path)
        check(started, "no io_uring_register in the trace: set-up not seen")
        for name in ("recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg", "shutdown"):
            check(counts[name] == 0, f"{counts[name]} {name}() calls: I/O outside the ring")
        check(counts["getpeername"] == clients, f"{counts['getpeername']} getpeername() for {clients} clients")
        check(counts["setsockopt"] <= 2, f"{counts['setsockopt']} setsockopt() for {clients} clients")
        check(counts["close"] < clients // 4, f"{counts['close']} close() for {clients} clients: closes outside the ring")
        print(f"{clients} clients; calls after set-up: {dict(sorted(counts.items()))}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
