#!/usr/bin/env python3
"""Server memory per idle connection, for each architecture that holds its connections open.

Usage: bench/idle_memory.py [--zen PATH] [--archs A,B,...] [--connections N] [--json FILE]

For each architecture it starts `zen serve` on loopback, opens 100 connections (the loop's own
first growth), reads the server's resident memory (the process and its children, from /proc),
opens N more (default 10,000), each asking one question and left open after its answer, reads
the memory again, and reports the difference divided by N. `single`, `threaded` and `prefork`
are left out: they hold at most --workers connections, and the rest wait unaccepted in the
kernel's backlog. perf_tests (IdleMemory.*) asserts the budgets of issue 9; this script measures
every architecture for docs/performance.md. Every process it starts, it stops, by pid.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ARCHITECTURES = ["per-client", "poll", "epoll", "reuseport", "callbacks", "chat", "coroutines", "uring"]
QUESTION, ANSWER = b"Beautiful is better than?", b"Ugly."
BATCH = 100  # within the default --backlog (128): a dropped SYN would cost a second


def fail(message):
    print(f"idle_memory: {message}", file=sys.stderr)
    sys.exit(2)


def rss_kib(pid):
    def own(p):
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    total = own(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            total += sum(own(int(child)) for child in children.read().split())
    except OSError:
        pass
    return total


def open_idle(port, count, into):
    for start in range(0, count, BATCH):
        batch = []
        for _ in range(min(BATCH, count - start)):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(QUESTION)
            batch.append(conn)
        for conn in batch:
            got = b""
            while len(got) < len(ANSWER):
                chunk = conn.recv(64)
                if not chunk:
                    raise RuntimeError("server closed a connection")
                got += chunk
            if got != ANSWER:
                raise RuntimeError(f"wrong answer {got!r}")
        into.extend(batch)


def measure(zen, arch, connections):
    server = subprocess.Popen([zen, "serve", "127.0.0.1", "-p", "0", "--arch", arch, "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r", (\d+)\)", line)
        if not match:
            raise RuntimeError(f"{arch} did not start: {line.strip()}")
        port = int(match.group(1))
        conns = []
        open_idle(port, 100, conns)
        time.sleep(0.2)
        before = rss_kib(server.pid)
        open_idle(port, connections, conns)
        time.sleep(0.2)
        after = rss_kib(server.pid)
        for conn in conns:
            conn.close()
        return {"arch": arch, "connections": connections, "rss_before_kib": before, "rss_after_kib": after,
                "bytes_per_connection": round((after - before) * 1024 / connections)}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zen", default=os.path.join(ROOT, "build", "zen"), help="the zen executable")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections to open (default 10000)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if not os.access(args.zen, os.X_OK):
        fail(f"no zen executable at {args.zen} (run make build, or pass --zen)")
    archs = [a for a in args.archs.split(",") if a]
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        fail(f"architecture {unknown[0]!r} cannot hold idle connections here: choose from {', '.join(ARCHITECTURES)}")
    if args.connections < 100:
        fail("--connections must be at least 100")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.connections + 300:
        fail(f"needs a descriptor limit above {args.connections + 300}; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    results = []
    print(f"{'architecture':12} {'bytes per idle connection':>26} {'RSS before':>12} {'RSS after':>12}")
    for arch in archs:
        result = measure(os.path.abspath(args.zen), arch, args.connections)
        results.append(result)
        print(f"{arch:12} {result['bytes_per_connection']:>26,} {result['rss_before_kib']:>9,} KiB"
              f" {result['rss_after_kib']:>9,} KiB", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
