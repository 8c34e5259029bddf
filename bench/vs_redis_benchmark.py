#!/usr/bin/env python3
"""Cross-check `zen bench` against an independent generator: redis-benchmark on redis-server.

Usage: bench/vs_redis_benchmark.py [--zen PATH] [--seconds S]

Both generators drive the same redis-server with inline PING at the same connection count and
pipeline depth, one generator thread each, pinned to CPU 0 with the server on CPU 1 (when there
are two CPUs). For each setting it prints both throughputs, their ratio, and each generator's
own CPU time per request, which tells which side was the bottleneck: a generator that needs a
whole CPU for its rate measures itself, not the server.
"""

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys

import harness

SETTINGS = [(1, 1), (10, 1), (50, 1), (10, 16), (50, 16)]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv, timeout):
    before = children_cpu()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return done, children_cpu() - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each zen bench run")
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark"):
        if not shutil.which(tool):
            sys.exit(f"vs_redis_benchmark: {tool} is not installed (make deps installs it)")
    pin = harness.can_pin()
    client_pin = harness.on_cpu(harness.GENERATOR_CPU, pin)
    port = harness.unused_port()
    server = harness.Server(harness.server_argv("redis-server", port, None), port, pin)
    try:
        if not server.listening:
            sys.exit(f"vs_redis_benchmark: redis-server did not start: {server.output().strip()}")
        print(f"{'conns':>5} {'depth':>5} {'zen bench/s':>12} {'redis-bench/s':>14} {'ratio':>6}"
              f" {'zen us/req':>10} {'redis-bench us/req':>18} {'zen errors':>10}")
        for connections, depth in SETTINGS:
            done, _ = timed(harness.bench_argv(args.zen, port, pin)
                            + ["-c", str(connections), "-P", str(depth), "-d", str(args.seconds), "-w", "0.5"]
                            + harness.questions_for("redis-server") + ["--json"], 120)
            zen = json.loads(done.stdout)
            # As many requests as zen answered, so both runs last about as long.
            requests = max(10_000, int(zen["rps"] * args.seconds))
            done, redis_cpu = timed(client_pin + ["redis-benchmark", "-p", str(port), "-c", str(connections), "-P",
                                                  str(depth), "-n", str(requests), "-t", "ping_inline",
                                                  "--threads", "1", "-q"], 300)
            found = re.findall(r"PING_INLINE: ([\d.]+) requests per second", done.stdout.replace("\r", "\n"))
            redis = float(found[-1]) if found else 0.0
            ratio = zen["rps"] / redis if redis else float("nan")
            print(f"{connections:>5} {depth:>5} {zen['rps']:>12,.0f} {redis:>14,.0f} {ratio:>6.2f}"
                  f" {zen['client_cpu_us_per_request']:>10.2f} {redis_cpu * 1e6 / requests:>18.2f}"
                  f" {zen['errors']:>10}", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
