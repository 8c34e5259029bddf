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
import resource
import socket
import time

import harness
from harness import fail

# Every architecture but those that serve a fixed number of clients at a time (one, or a pool of
# --workers), which cannot hold thousands of idle connections open.
FIXED_POOLS = ("single", "threaded", "prefork")
ARCHITECTURES = [arch for arch in harness.ARCHITECTURES if arch not in FIXED_POOLS]
QUESTION, ANSWER = harness.BOOK[0]
BATCH = 100  # within the default --backlog (128): a dropped SYN would cost a second


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

    return own(pid) + sum(own(child) for child in harness.children_of(pid))


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
    server, port, line = harness.serve_on_any_port(zen, arch)
    try:
        if port is None:
            raise RuntimeError(f"{arch} did not start: {line}")
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
        harness.stop(server, 15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN, help="the zen executable")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections to open (default 10000)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.zen = harness.zen_executable(args.zen)
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
        result = measure(args.zen, arch, args.connections)
        results.append(result)
        print(f"{arch:12} {result['bytes_per_connection']:>26,} {result['rss_before_kib']:>9,} KiB"
              f" {result['rss_after_kib']:>9,} KiB", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
