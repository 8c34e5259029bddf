#!/usr/bin/env python3
"""System calls per answer: every zen architecture, redis-server and memcached, under strace.

Usage: bench/syscalls.py [--archs A,B,...] [--loads c50,c50-p16,short] [--seconds S] [--no-peers]
                      [--tracer strace|perf] [--json FILE] [--zen PATH]

For each server and each load (c50: 50 connections, one question in flight each; c50-p16: 16
pipelined each; with --loads, also short: the book's client, three questions and a close, 50 at
a time, whose calls per conversation are three times those per answer) it starts the server fresh under `strace -f -c` (every thread and child process
counted), drives it with `zen bench -d SECONDS -w 0` (no warm-up: every answer the server gives
is one bench counts, but for the few in flight at the end), stops it with SIGTERM and reads
strace's summary. One more run per server starts it, connects once and stops it, with no load:
that baseline (start-up and shutdown) is subtracted, and what is left is divided by the answers
bench counted. The table gives system calls per answer in all and by kind, and how many failed
(EAGAIN...); --json FILE keeps every syscall's absolute counts too.

What strace cannot see: io_uring's receives, sends and accepts are not system calls of their
own; for `uring` they happen inside io_uring_enter, so its row counts the calls that carry
them. clock_gettime through the vDSO is not a system call either.

What strace changes: it stops the server at every call, so the server runs about ten times
slower, and a slower server finds more work waiting at each call: more ready events per
epoll_wait, and a next question already there when an edge-triggered loop reads again after
answering (where at full speed that read returns EAGAIN). `--tracer perf` counts the same calls
with perf stat on the kernel's syscall tracepoints instead: the server runs near full speed
(threads that switch a lot pay perf's per-thread counters), failures are not counted, and calls
outside a fixed list of about 50 are counted together as "other".

On a machine with two or more CPUs the server (with its tracer) runs on CPU 1 and the generator
on CPU 0, as in bench/compare.py. Every process this script starts, it stops, by pid.
"""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness
from harness import ARCHITECTURES, PEERS, children_of, fail

LOADS = {"c50": ["-c", "50"], "c50-p16": ["-c", "50", "-P", "16"], "short": ["-c", "50", "--reconnect", "3"]}
DEFAULT_LOADS = "c50,c50-p16"
# The columns of the table: what moves bytes, what waits, what manages connections.
KINDS = [
    ("recv", {"read", "readv", "recvfrom", "recvmsg", "recvmmsg"}),
    ("send", {"write", "writev", "sendto", "sendmsg", "sendmmsg"}),
    ("wait", {"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect6"}),
    ("uring", {"io_uring_enter"}),
    ("ctl", {"epoll_ctl"}),
    ("futex", {"futex"}),
    ("accept", {"accept", "accept4"}),
]
NOTES = {
    "uring": "io_uring's recv/send/accept run inside io_uring_enter: not counted apart",
    "single": "serves one connection at a time: the other 49 wait and time out",
    "prefork": "64 worker processes, all traced (-f)",
    "threaded": "64 worker threads, all traced (-f)",
}


class NotMeasured(Exception):
    """A server that could not be measured; the reason goes in its row."""


def parse_summary(text):
    """strace -c -U name,calls,errors: ({syscall: calls}, {syscall: failed calls}).

    Rows are a name and a count, then the failures when there were any; the header, the rules
    and the total are skipped, and a second table (another personality) adds to the first."""
    calls, failed = collections.Counter(), collections.Counter()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and re.fullmatch(r"[a-z_][a-z0-9_]*", fields[0]) and fields[1].isdigit():
            if fields[0] != "total":
                calls[fields[0]] += int(fields[1])
                if len(fields) >= 3 and fields[2].isdigit():
                    failed[fields[0]] += int(fields[2])
    return calls, failed


# perf counts these one by one and the rest as "other": each tracepoint costs perf a moment to
# take down, and all 360 of them take 15 s per run.
PERF_SYSCALLS = sorted(set().union(*(calls for _, calls in KINDS)) | {
    "close", "shutdown", "setsockopt", "getsockopt", "fcntl", "ioctl", "clock_gettime", "clock_nanosleep",
    "nanosleep", "timerfd_settime", "rt_sigprocmask", "rt_sigtimedwait", "mmap", "munmap", "madvise", "mprotect",
    "brk", "getpid", "sched_yield", "openat", "clone", "clone3", "wait4", "kill", "tgkill"})


def parse_perf(text):
    """perf stat -x, on raw_syscalls:sys_enter and PERF_SYSCALLS: ({syscall: calls}, {}).

    What the named tracepoints do not cover is counted as "other"; perf sees no failures."""
    calls, total = collections.Counter(), 0
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) >= 3 and fields[0].isdigit():
            if fields[2].startswith("syscalls:sys_enter_"):
                calls[fields[2][len("syscalls:sys_enter_"):]] += int(fields[0])
            elif fields[2] == "raw_syscalls:sys_enter":
                total += int(fields[0])
    if total:
        calls["other"] = total - sum(calls.values())
    return +calls, collections.Counter()


def tracer_argv(tracer, summary):
    if tracer == "perf":
        # Counted in the kernel at each syscall tracepoint; children and threads inherit it.
        events = ",".join(["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{call}" for call in PERF_SYSCALLS])
        return ["perf", "stat", "-x,", "-o", summary, "-e", events, "--"]
    return ["strace", "-f", "-c", "-U", "name,calls,errors", "-S", "calls", "-o", summary]


class Traced:
    """One server started under strace -f -c (or perf stat); stop() returns its syscall counts.
    The server is started as bench/compare.py starts it (harness.server_argv): pools big enough
    to hold 50 connections; `single` serves one at a time."""

    def __init__(self, name, zen, pin, tracer):
        self.name, self.tracer = name, tracer
        self.port = harness.unused_port()
        self.summary = tempfile.NamedTemporaryFile(prefix="zen-syscalls-", suffix=".txt", delete=False)
        self.summary.close()
        argv = tracer_argv(tracer, self.summary.name) + harness.server_argv(name, self.port, zen)
        # taskset execs the tracer, and the server inherits its CPU.
        self.traced = harness.Server(argv, self.port, pin, seconds=30)
        self.tracer_process = self.traced.process
        self.server_pid = None
        # strace forks short-lived probes of its own before the server; once the server listens,
        # it is the tracer's only child.
        started = self.traced.listening
        children = children_of(self.tracer_process.pid) if started else []
        if len(children) != 1:
            self.kill()
            reason = self.output() if not started else f"{tracer} has {len(children)} children, not 1"
            self.cleanup()
            raise NotMeasured(f"did not start under {tracer}: {reason}")
        self.server_pid = children[0]

    def signal_server(self, signum):
        """Only while it is still the tracer's child, so a pid the system reused is never hit."""
        if self.server_pid is not None and self.server_pid in children_of(self.tracer_process.pid):
            try:
                os.kill(self.server_pid, signum)
            except ProcessLookupError:
                pass

    def kill(self):
        for child in children_of(self.tracer_process.pid):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.tracer_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.tracer_process.kill()
            self.tracer_process.wait()

    def output(self):
        text = self.traced.output().strip()
        return text.splitlines()[-1] if text else "no output"

    def stop(self):
        """SIGTERM to the server; the tracer writes its summary once every traced process is gone."""
        self.signal_server(signal.SIGTERM)
        try:
            self.tracer_process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            self.cleanup()
            raise NotMeasured("did not stop within 60 s of SIGTERM (killed)")
        with open(self.summary.name) as f:
            counts = (parse_perf if self.tracer == "perf" else parse_summary)(f.read())
        reason = self.output()
        self.cleanup()
        if not counts[0]:
            raise NotMeasured(f"{self.tracer} wrote no summary: {reason}")
        return counts

    def cleanup(self):
        self.traced.close()
        if os.path.exists(self.summary.name):
            os.unlink(self.summary.name)


def bench(args, server, extra):
    argv = harness.bench_argv(args.zen, server.port, args.pin)
    argv += ["-d", str(args.seconds), "-w", "0", "--timeout", "2", "--json"]
    argv += harness.questions_for(server.name) + extra
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120 + 10 * args.seconds)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise NotMeasured(f"zen bench gave no JSON: {done.stderr.strip() or 'no output'}") from None


def measure(args, name):
    """Baseline and both loads for one server: a list of result rows."""
    baseline_server = Traced(name, args.zen, args.pin, args.tracer)
    baseline, baseline_failed = baseline_server.stop()
    rows = []
    for load in args.loads:
        extra = LOADS[load]
        server = Traced(name, args.zen, args.pin, args.tracer)
        try:
            result = bench(args, server, extra)
        finally:
            counts, failed = server.stop()
        answers = result["requests"]
        net = {call: counts.get(call, 0) - baseline.get(call, 0) for call in counts.keys() | baseline.keys()}
        net_failed = sum(failed.values()) - sum(baseline_failed.values())
        per_answer = {call: n / answers for call, n in net.items()} if answers else {}
        row = {
            "server": name, "load": load, "connections": result["connections"], "depth": result["depth"],
            "seconds": args.seconds, "answers": answers, "rps_traced": result["rps"],
            "errors": result["errors"],
            "syscalls_total": sum(counts.values()), "baseline_total": sum(baseline.values()),
            "syscalls_per_answer": sum(net.values()) / answers if answers else None,
            "failed_per_answer": net_failed / answers if answers and args.tracer == "strace" else None,
            "by_kind_per_answer": {kind: sum(per_answer.get(c, 0) for c in calls) for kind, calls in KINDS}
            if answers else {},
            "per_answer": dict(sorted(per_answer.items(), key=lambda item: -item[1])),
            "counts": dict(counts.most_common()), "failed": dict(failed.most_common()),
            "baseline": dict(baseline.most_common()), "baseline_failed": dict(baseline_failed.most_common()),
            "note": NOTES.get(name, "") if answers else "no answers: nothing to divide by",
        }
        rows.append(row)
        print_row(row)
    return rows


def header():
    kinds = "".join(f" {kind:>6}" for kind, _ in KINDS)
    return f"{'server':13} {'load':8} {'answers':>9} {'ans/s':>9} {'errors':>6} {'total':>6}{kinds} {'other':>6} {'failed':>6}  top calls per answer"


def per_answer(x):
    """Two decimals, three below 0.1 (io_uring_enter, epoll_wait); no "-0.000" from rounding."""
    if x is None:
        return "-"
    x = 0.0 if abs(x) < 0.0005 else x
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3f}"


def print_row(row):
    fmt = per_answer
    kinds = row["by_kind_per_answer"]
    other = None
    if row["syscalls_per_answer"] is not None:
        other = row["syscalls_per_answer"] - sum(kinds.values())
    top = ", ".join(f"{call} {per_answer(n)}" for call, n in list(row["per_answer"].items())[:4] if n >= 0.0005)
    line = (f"{row['server']:13} {row['load']:8} {row['answers']:>9,} {row['rps_traced']:>9,.0f} {row['errors']:>6,}"
            f" {fmt(row['syscalls_per_answer']):>6}" + "".join(f" {fmt(kinds.get(kind)):>6}" for kind, _ in KINDS)
            + f" {fmt(other):>6} {fmt(row['failed_per_answer']):>6}  {top}")
    print(line, flush=True)
    if row["note"]:
        print(f"{'':23}({row['note']})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default=",".join(ARCHITECTURES),
                        help="comma-separated architectures (default: all 11)")
    parser.add_argument("--no-peers", action="store_true", help="skip redis-server and memcached")
    parser.add_argument("--loads", default=DEFAULT_LOADS,
                        help=f"comma-separated loads from {', '.join(LOADS)} (default {DEFAULT_LOADS})")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load (default 3)")
    parser.add_argument("--tracer", choices=["strace", "perf"], default="strace",
                        help="strace -f -c (default; slows the server down about tenfold) or perf stat on the"
                             " syscall tracepoints (counted in the kernel: near full speed, no failure counts)")
    parser.add_argument("--json", metavar="FILE", help="also write every count to FILE")
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN, help="the zen executable")
    args = parser.parse_args()

    args.zen = harness.zen_executable(args.zen)
    archs = harness.architectures(args.archs)
    args.loads = [load for load in args.loads.split(",") if load]
    if not args.loads or any(load not in LOADS for load in args.loads):
        fail(f"--loads: choose from {', '.join(LOADS)}")
    if not 0 < args.seconds <= 60:
        fail("--seconds must be more than 0 and at most 60")
    if not shutil.which(args.tracer):
        fail(f"{args.tracer} is not installed (apt-get install {'linux-perf' if args.tracer == 'perf' else 'strace'})")
    servers = archs + ([] if args.no_peers else PEERS)
    for peer in PEERS:
        if peer in servers and not shutil.which(peer):
            fail(f"{peer} is not installed (make peer-deps installs it; or pass --no-peers)")
    args.pin = harness.can_pin()

    started = time.monotonic()
    how = "perf stat (syscall tracepoints)" if args.tracer == "perf" else "strace -f -c"
    print(f"system calls per answer under {how}, start-up subtracted; {args.seconds:g} s per load,"
          f" no warm-up{'; server on CPU 1, zen bench on CPU 0' if args.pin else ''}")
    print("kinds: recv = read/recv*, send = write/send*, wait = epoll_wait/poll, uring = io_uring_enter,"
          " ctl = epoll_ctl, accept = accept/accept4; failed = calls that returned an error (EAGAIN...)")
    print(header(), flush=True)
    rows, missing = [], []
    for name in servers:
        try:
            rows += measure(args, name)
        except NotMeasured as error:
            missing.append({"server": name, "reason": str(error)})
            print(f"{name:13} not measured: {error}", flush=True)
    if args.json:
        report = {"command": "bench/syscalls.py " + " ".join(sys.argv[1:]), "seconds": args.seconds,
                  "tracer": args.tracer, "pinned": args.pin, "kinds": {kind: sorted(calls) for kind, calls in KINDS}, "runs": rows,
                  "not_measured": missing}
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
        print(f"wrote {args.json}")
    print(f"done in {time.monotonic() - started:.0f} s")
    if missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
