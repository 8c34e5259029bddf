#!/usr/bin/env python3
"""Every zen architecture side by side with redis-server and memcached, on loopback.

Usage: bench/compare.py [--quick] [--out DIR] [--zen PATH] [--archs A,B,...] [--rounds N] [--loads L,...]
                        [--cpus pinned|unpinned]

For each server it runs the same loads with `zen bench` (c=1; c=50; c=50 with 16 pipelined;
a concurrency sweep; a connection sweep to 1,000 and 10,000 connections; and, for zen, a server
started with --delay 0.001 and one with --wait 0.001 to show blocking work against waiting),
reads throughput, latency percentiles and error kinds from bench's JSON, and the server's CPU
time per answer from /proc (bench --server-pid: the process, its threads and its children). It
writes DIR/report.json and DIR/report.html (bench/report.py), prints a summary table, and ends
with the verdict (bench/verdict.py): for each load, which architecture won, the runner-up, the
margin, whether the margin is beyond the rounds' spread, and why.

--cpus pinned (the default on a machine with two or more CPUs): the server runs on CPU 1 and the
generator on CPU 0 (taskset), so the two never compete for one core and every server gets the
same budget, one core, as single-threaded redis-server and memcached -t 1 have. --cpus unpinned:
nothing is pinned, so the architectures built for several cores (reuseport, prefork, threaded,
per-client) can use them; the generator then shares the cores with the server.
The peers answer redis's inline PING and memcached's `version`: the same shape of work as a
Zen question. Every process this script starts, it stops, by pid.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

import harness
import idle_memory
import verdict
from harness import ARCHITECTURES, fail

HERE = os.path.dirname(os.path.abspath(__file__))
LOADS = ["c1", "c50", "c50-p16", "short", "sweep", "conns", "rate", "delay", "wait", "idle"]
FULL_SWEEP = [1, 2, 3, 5, 7, 10, 13, 16, 20]
QUICK_SWEEP = [1, 5, 20]
# The connection sweep: the chapter's point is what each architecture does with thousands.
FULL_CONNS = [100, 1000, 10000]
QUICK_CONNS = [100, 1000]
# The open-loop sweep (latency against offered rate: the hockey stick), as fractions of each
# server's own closed-loop c50 throughput, up to and past saturation.
RATE_FRACTIONS = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25]
QUICK_RATE_FRACTIONS = [0.5, 0.9, 1.25]
# Server memory per idle connection (bench/idle_memory.py), once per architecture that can hold them.
FULL_IDLE, QUICK_IDLE = 10000, 1000
WORK = "0.001"


class Server(harness.Server):
    """One server of the report, with its name, kind and version; fail() when it does not start."""

    def __init__(self, name, kind, argv, port, pin, version=None):
        super().__init__(argv, port, pin)
        self.name, self.kind, self.version = name, kind, version
        # The report names the program, not where this machine keeps it.
        self.command = " ".join(["zen" if argv[0].endswith("/zen") else argv[0]] + argv[1:])
        if not self.listening:
            output = self.output().strip()
            self.stop()
            fail(f"{name} did not start: {output}")

    def stop(self):
        super().stop()
        self.close()

    def describe(self):
        entry = {"name": self.name, "kind": self.kind, "command": self.command}
        if self.version:
            entry["version"] = self.version
        return entry


def start_zen(zen, arch, pin, extra=()):
    port = harness.unused_port()
    return Server(arch, "zen", harness.server_argv(arch, port, zen) + list(extra), port, pin)


def start_redis(pin):
    port = harness.unused_port()
    version = re.search(r"v=(\S+)", subprocess.run(["redis-server", "--version"], capture_output=True,
                                                   text=True).stdout)
    argv = harness.server_argv("redis-server", port, None)
    return Server("redis-server", "peer", argv, port, pin, version.group(1) if version else None)


def start_memcached(pin):
    port = harness.unused_port()
    argv = harness.server_argv("memcached", port, None)
    return Server("memcached", "peer", argv, port, pin, harness.memcached_version())


FIELDS = ["requests", "rps", "errors", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us",
          "server_cpu_us_per_answer", "client_cpu_us_per_request", "offered_rps", "achieved_rps", "opened"]


def median_of(records):
    """Field by field median over rounds (None where a round has no value), each round's answers/s
    and CPU per answer kept for the verdict's spread, and the error kinds summed over rounds."""
    merged = dict(records[0])
    for field in FIELDS:
        values = [r.get(field) for r in records if isinstance(r.get(field), (int, float))]
        merged[field] = statistics.median(values) if values else None
    merged["round_rps"] = [r.get("rps") for r in records]
    merged["round_cpu"] = [r.get("server_cpu_us_per_answer") for r in records]
    kinds = {}
    for record in records:
        for kind, count in (record.get("errors_by_kind") or {}).items():
            kinds[kind] = kinds.get(kind, 0) + count
    merged["errors_by_kind"] = kinds
    return merged


class Bench:
    def __init__(self, args):
        self.args = args
        self.pin = args.pin
        self.runs = []
        self.pending = {}  # (server, load) -> (server, [one result per round])
        self.order = []

    def bench(self, server, extra):
        argv = harness.bench_argv(self.args.zen, server.port, self.pin)
        argv += ["-d", str(self.args.duration), "-w", str(self.args.warmup), "--timeout", str(self.args.timeout),
                 "--json", "--server-pid", str(server.process.pid)]
        argv += harness.questions_for(server.name, server.version) + extra
        limit = 60 + 30 * (self.args.duration + self.args.warmup + self.args.timeout)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            fail(f"zen bench gave no JSON against {server.name}: {done.stderr.strip()}")

    def record(self, server, load, extra, label=None):
        """One measurement; rounds are kept apart until finish() takes their medians."""
        result = self.bench(server, extra)
        key = (server.name, label or load)
        if key not in self.pending:
            self.pending[key] = (server, [])
            self.order.append(key)
        self.pending[key][1].append(result)
        if self.args.rounds > 1:
            cycles = result.get("cycles") or [result]
            figures = ", ".join(f"{c.get('rps', 0):,.0f}/s cpu "
                                + ("-" if c.get("server_cpu_us_per_answer") is None
                                   else f"{c['server_cpu_us_per_answer']:.2f}") + " us/answer" for c in cycles)
            print(f"    round {len(self.pending[key][1])}: {server.name} {label or load} {figures}", flush=True)
        return result

    def finish(self):
        for key in self.order:
            server, rounds = self.pending[key]
            if "cycles" in rounds[0]:
                for level in range(len(rounds[0]["cycles"])):
                    self.add(server, key[1], median_of([r["cycles"][level] for r in rounds]))
            else:
                self.add(server, key[1], median_of(rounds))

    def add(self, server, load, result):
        if load.startswith("rate "):
            result = dict(result, rate_fraction=float(load.split()[1]))
            load = "rate"
        run = {"server": server.name, "load": load, "connections": result["connections"],
               "depth": result["depth"], "fell_behind": result.get("fell_behind")}
        run.update({field: result.get(field) for field in FIELDS})
        run.update({field: result.get(field) for field in ("round_rps", "round_cpu", "errors_by_kind",
                                                            "rate_fraction")})
        self.runs.append(run)
        cpu = run["server_cpu_us_per_answer"]
        print(f"  {server.name:13} {load:8} c={run['connections']:<3} P={run['depth']:<3}"
              f" {run['rps']:>12,.0f}/s  p99 {run['p99_us']:>9.1f} us"
              f"  cpu {'-' if cpu is None else f'{cpu:.2f}':>6} us/answer  errors {run['errors']:.0f}",
              flush=True)

    def standard_loads(self, server):
        c50 = None
        for load, extra in (("c1", ["-c", "1"]), ("c50", ["-c", "50"]), ("c50-p16", ["-c", "50", "-P", "16"]),
                            ("sweep", ["--sweep", ",".join(map(str, self.args.sweep))]),
                            # Thousands of connections opened at 20,000/s during the warm-up, not all at
                            # once (a burst would overflow the listen backlog: connect errors that
                            # measure the burst, not the server).
                            ("conns", ["--sweep", ",".join(map(str, self.args.conns)), "--connect-rate", "20000"]),
                            # Short conversations, the book's client: connect, three questions, close.
                            ("short", ["-c", "50", "--reconnect", "3"])):
            if load in self.args.loads:
                result = self.record(server, load, extra)
                if load == "c50":
                    c50 = result
        if "rate" in self.args.loads:
            self.rate_sweep(server, c50)

    def rate_sweep(self, server, c50=None):
        """Open loop at fractions of the server's own c50 capacity (this round's c50 run, or one
        measured now when the loads leave c50 out): latency against offered rate, up to and past
        saturation."""
        probe = c50 or self.bench(server, ["-c", "50"])
        capacity = (probe["cycles"][0] if "cycles" in probe else probe).get("rps") or 0
        if capacity <= 0:
            return
        fractions = QUICK_RATE_FRACTIONS if self.args.quick else RATE_FRACTIONS
        for fraction in fractions:
            rate = max(1, round(capacity * fraction, -2) if capacity * fraction >= 1000 else round(capacity * fraction))
            self.record(server, "rate", ["-c", "50", "-r", str(rate)], label=f"rate {fraction:.2f}")


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu_model": model,
            "memory_gib": round(memory, 1)}


def manifest(args, servers):
    """What a reader needs to trust or repeat the figures: the machine, zen's own --version (its
    commit, compiler and io_uring features), the peers' versions, the pinning and every setting."""
    version = subprocess.run([args.zen, "--version"], capture_output=True, text=True).stdout.strip()
    return dict(machine(), zen_version=version.splitlines(),
                peers={s["name"]: s.get("version") for s in servers if s["kind"] == "peer"},
                python=platform.python_version(),
                descriptor_limit=harness.descriptor_budget() + 64,
                pinning=("server on CPU 1, generator on CPU 0 (taskset)" if args.pin else
                         "unpinned: servers and generator share every CPU"))


def measure_idle(args, archs):
    """Server memory per idle connection (bench/idle_memory.py) for the architectures that hold
    idle connections open; the others keep them unaccepted in the backlog and are left out."""
    count = QUICK_IDLE if args.quick else FULL_IDLE
    if count + 300 > harness.descriptor_budget():
        print(f"compare: no idle-memory measurement: {count} connections need more descriptors", flush=True)
        return []
    results = []
    for arch in (a for a in archs if a in idle_memory.ARCHITECTURES):
        try:
            result = idle_memory.measure(args.zen, arch, count)
        except (OSError, RuntimeError) as error:
            result = {"arch": arch, "connections": count, "error": str(error)}
        results.append(result)
        print(f"  {arch:13} idle     {count} connections: "
              + (f"{result['bytes_per_connection']:,} bytes each" if "error" not in result else result["error"]),
              flush=True)
    return results


def print_verdict(verdicts, args):
    print("\nverdict (bench/verdict.py; " + ("pinned: one core per server" if args.pin else "unpinned") + "):")
    for line in verdicts:
        print("  " + line["line"])
    if args.quick:
        print("  (--quick: 0.3 s runs; indicative only)")


def summary(runs):
    def value(server, load, field):
        return next((r[field] for r in runs if r["server"] == server and r["load"] == load), None)

    redis_cpu = value("redis-server", "c50", "server_cpu_us_per_answer")
    memcached_cpu = value("memcached", "c50-p16", "server_cpu_us_per_answer")
    print("\nserver CPU per answer (us; ratio to the peer on the same load):")
    print(f"  {'server':13} {'c50':>8} {'/redis':>7} {'c50-p16':>8} {'/memcd':>7} {'c50 answers/s':>14} {'c50 p99 us':>11}")
    servers = list(dict.fromkeys(r["server"] for r in runs))
    for server in servers:
        c50 = value(server, "c50", "server_cpu_us_per_answer")
        p16 = value(server, "c50-p16", "server_cpu_us_per_answer")
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        fmt = lambda x: f"{x:.2f}" if x is not None else "-"
        rps = value(server, "c50", "rps") or 0
        p99 = value(server, "c50", "p99_us") or 0
        print(f"  {server:13} {fmt(c50):>8} {ratio(c50, redis_cpu):>7} {fmt(p16):>8} {ratio(p16, memcached_cpu):>7}"
              f" {rps:>14,.0f} {p99:>11.1f}")
    targets(runs)


# Issue 9's targets: server CPU per answer against the peer on the same load, and p99 at c50.
TARGETS = [("epoll", "c50", "redis-server", 0.9), ("uring", "c50", "redis-server", 0.75),
           ("reuseport", "c50", "redis-server", 1.0), ("epoll", "c50-p16", "memcached", 1.0)]


def targets(runs):
    def value(server, load, field):
        return next((r[field] for r in runs if r["server"] == server and r["load"] == load), None)

    lines = []
    for server, load, peer, limit in TARGETS:
        ours, theirs = value(server, load, "server_cpu_us_per_answer"), value(peer, load, "server_cpu_us_per_answer")
        if ours and theirs:
            ratio = ours / theirs
            lines.append(f"  {server} {load} CPU/answer vs {peer}: {ratio:.2f} (target <= {limit})"
                         f" {'met' if ratio <= limit else 'MISSED'}")
    redis_p99 = value("redis-server", "c50", "p99_us")
    for server in dict.fromkeys(target[0] for target in TARGETS):
        p99 = value(server, "c50", "p99_us")
        if p99 and redis_p99:
            lines.append(f"  {server} c50 p99 vs redis-server: {p99:.0f} / {redis_p99:.0f} us"
                         f" {'met' if p99 <= redis_p99 else 'MISSED'}")
    if lines:
        print("\nissue 9 targets (docs/performance.md):")
        print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs and a 3-level sweep (a smoke test)")
    parser.add_argument("--out", default=os.path.join(harness.ROOT, "build", "bench-report"),
                        help="where report.json and report.html go (default: build/bench-report)")
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN, help="the zen executable")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated architectures")
    parser.add_argument("--no-peers", action="store_true", help="skip redis-server and memcached")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every load N times, each round over every server in turn, and keep the medians")
    parser.add_argument("--loads", default=",".join(LOADS), help="comma-separated loads, from " + ",".join(LOADS))
    parser.add_argument("--cpus", choices=["pinned", "unpinned"],
                        help="pinned: server on CPU 1, bench on CPU 0 (the default with two CPUs or more); "
                             "unpinned: nothing pinned, so multi-core architectures can use every core")
    args = parser.parse_args()

    args.zen = harness.zen_executable(args.zen)
    archs = harness.architectures(args.archs)
    if args.rounds < 1:
        fail("--rounds must be at least 1")
    args.loads = [load for load in args.loads.split(",") if load]
    unknown = [load for load in args.loads if load not in LOADS]
    if unknown or not args.loads:
        fail(f"unknown load {unknown[0]!r}: choose from {', '.join(LOADS)}" if unknown else "--loads is empty")
    if not args.no_peers:
        for peer in ("redis-server", "memcached"):
            if not shutil.which(peer):
                fail(f"{peer} is not installed (make deps installs it; or pass --no-peers)")
    args.duration, args.warmup, args.timeout = (0.3, 0.1, 0.25) if args.quick else (3, 1, 1)
    args.sweep = QUICK_SWEEP if args.quick else FULL_SWEEP
    # Levels the descriptor limit cannot hold (bench and server each need one per connection) are
    # left out, and the report says so.
    harness.raise_descriptor_limit()
    wanted = QUICK_CONNS if args.quick else FULL_CONNS
    args.conns = [level for level in wanted if level + 64 <= harness.descriptor_budget()]
    args.conns_left_out = [level for level in wanted if level not in args.conns]
    if args.conns_left_out:
        print(f"compare: leaving out {args.conns_left_out} connections: the descriptor limit is "
              f"{harness.descriptor_budget() + 64}", flush=True)
    if not args.conns and "conns" in args.loads:
        args.loads.remove("conns")
    if args.cpus == "pinned" and not harness.can_pin():
        fail("--cpus pinned needs two CPUs and taskset")
    args.pin = harness.can_pin() if args.cpus in (None, "pinned") else False
    os.makedirs(args.out, exist_ok=True)

    bench = Bench(args)
    servers = []
    started = time.monotonic()
    # Rounds go over every server in turn (not one server's rounds back to back), so a drift of
    # the shared machine during the run falls on all of them alike; medians come at the end.
    for round_number in range(args.rounds):
        if args.rounds > 1:
            print(f"round {round_number + 1} of {args.rounds}", flush=True)
        for arch in archs:
            for label, extra in ((None, ()), ("delay", ("--delay", WORK)), ("wait", ("--wait", WORK))):
                if label is not None and label not in args.loads:
                    continue
                server = start_zen(args.zen, arch, args.pin, extra)
                try:
                    if label is None:
                        if round_number == 0:
                            servers.append(server.describe())
                        bench.standard_loads(server)
                    else:
                        bench.record(server, label, ["-c", "20"])
                finally:
                    server.stop()
        if not args.no_peers:
            for start in (start_redis, start_memcached):
                server = start(args.pin)
                try:
                    if round_number == 0:
                        servers.append(server.describe())
                    bench.standard_loads(server)
                finally:
                    server.stop()
    bench.finish()
    idle = measure_idle(args, archs) if "idle" in args.loads else []

    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "bench/compare.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "timeout_s": args.timeout,
                     "quick": args.quick, "pinned": args.pin, "rounds": args.rounds, "sweep": args.sweep,
                     "conns": args.conns, "conns_left_out": args.conns_left_out, "loads": args.loads},
        "manifest": manifest(args, servers),
        "servers": servers,
        "runs": bench.runs,
        "idle_memory": idle,
        "verdict": verdict.decide(bench.runs, {s["name"]: s["kind"] for s in servers}, args.pin)
                   + verdict.decide_idle(idle),
    }
    json_path = os.path.join(args.out, "report.json")
    with open(json_path, "w") as out:
        json.dump(report, out, indent=1)
    html_path = os.path.join(args.out, "report.html")
    subprocess.run([sys.executable, os.path.join(HERE, "report.py"), json_path, html_path], check=True)
    summary(bench.runs)
    print_verdict(report["verdict"], args)
    print(f"\nwrote {json_path} and {html_path} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
