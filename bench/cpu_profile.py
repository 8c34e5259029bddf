#!/usr/bin/env python3
"""Where a server's CPU goes, the kernel included: perf samples grouped by the system call they
were taken in.

Usage: bench/cpu_profile.py [--arch ARCH | --peer redis-server|memcached] [-c N] [-P DEPTH]
                         [--reconnect N] [--seconds S] [--top N] [--json FILE] [--zen PATH]

It starts the server (zen serve --arch ARCH, default epoll; or a peer), drives it with
`zen bench -c N -P DEPTH [--reconnect N] -d SECONDS+2 --server-pid PID`, and while the load runs
samples the server's CPU with `perf record -e cpu-clock -g` (every thread, and every worker
process for prefork). Each sample is put under the system call its kernel stack is in (sendto,
close, accept4, io_uring_enter...), or under "user space" when it has no kernel frame. The
share of each is applied to the server CPU per answer that zen bench measured in the same run,
so each line reads in microseconds per answer, and per conversation with --reconnect N
(N questions, then a close and a new connection: the book's client is --reconnect 3).

The "softirq" column is the part of a call's time spent in the network's receive path run
inside it. On loopback, a send delivers its segment to the receiving socket at once, in the
sender's system call: the server's send() also pays for the client's side of TCP (queueing the
answer, waking the client), and its close() for the client's reaction to the server's FIN (the
client's socket entering TIME_WAIT, its last ACK, and the server's socket freed by that ACK).
Those costs are real, and any server on loopback pays them in the same calls; over a network
they would fall on the client's machine.

bench/profile.py counts user-space instructions under callgrind, bench/syscalls.py counts
system calls; this script says how the CPU time splits between them and the kernel's TCP work.
It needs Debian's linux-perf and the right to sample another process (root, or a
perf_event_paranoid of 1 or less); it says so in one line when it lacks either.

On a machine with two or more CPUs the server runs on CPU 1 and the generator on CPU 0, as in
bench/compare.py. Every process this script starts, it stops, by pid.
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness
from harness import ARCHITECTURES, PEERS, fail

# A system call's own function, however the kernel's build named or inlined its entry
# (__x64_sys_close, __do_sys_io_uring_enter, ksys_read, __sys_sendmsg...).
SYSCALL = re.compile(r"^(?:__x64_sys|__ia32_sys|__se_sys|__do_sys|ksys|_{2,4}sys)_(\w+)$")
MARGIN = 2.0  # seconds of load after perf's own --seconds (see main)
SOFTIRQ = {"net_rx_action", "__do_softirq", "handle_softirqs", "do_softirq"}
# Spellings of one system call that the kernel's stacks show under different entry points.
SAME_CALL = {"recv": "recvfrom", "send": "sendto", "pwrite64": "write", "pread64": "read"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--arch", default="epoll", help="the zen architecture to profile (default epoll)")
    which.add_argument("--peer", choices=PEERS, help="profile a peer instead")
    parser.add_argument("-c", "--connections", type=int, default=50, help="connections (default 50)")
    parser.add_argument("-P", "--depth", type=int, default=1, help="questions in flight per connection (default 1)")
    parser.add_argument("--reconnect", type=int, default=0, metavar="N",
                        help="close and reconnect after N answers (3: the book's client; default 0, never)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the sampled load (default 3)")
    parser.add_argument("--top", type=int, default=15, help="kernel functions to list (default 15)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN, help="the zen executable")
    args = parser.parse_args()
    args.zen = harness.zen_executable(args.zen)
    if not args.peer and args.arch not in ARCHITECTURES:
        fail(f"unknown architecture {args.arch!r}: choose from {', '.join(ARCHITECTURES)}")
    if not 0.5 <= args.seconds <= 60:
        fail("--seconds must be at least 0.5 and at most 60")
    if args.connections < 1 or args.depth < 1 or args.top < 1 or args.reconnect < 0:
        fail("-c, -P and --top must be at least 1, --reconnect at least 0")
    if args.reconnect and args.depth > 1:
        fail("--reconnect counts answers one at a time: use it with -P 1")
    if not shutil.which("perf"):
        fail("perf is not installed (apt-get install linux-perf)")
    if args.peer and not shutil.which(args.peer):
        fail(f"{args.peer} is not installed (make peer-deps installs it)")
    return args


def can_sample():
    """None when perf may sample another process here, else why not."""
    if os.geteuid() == 0:
        return None
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            level = int(f.read())
    except (OSError, ValueError):
        return "cannot read /proc/sys/kernel/perf_event_paranoid"
    return None if level <= 1 else f"perf_event_paranoid is {level}: run as root, or set it to 1"


def group_samples(script_output):
    """perf script's stacks (leaf first) -> (samples, {call: n}, {call: n in softirq}, {function: n self})."""
    total = 0
    by_call = collections.Counter()
    softirq = collections.Counter()
    leaves = collections.Counter()
    for block in script_output.split("\n\n"):
        frames = []
        for line in block.strip().splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and re.fullmatch(r"[0-9a-f]+", parts[0]):
                frames.append((int(parts[0], 16), parts[1].split("+0x")[0].split(" (")[0]))
        if not frames:
            continue
        total += 1
        kernel = [name for address, name in frames if address >= 0xffff800000000000]
        leaves[frames[0][1] + (" [kernel]" if kernel and frames[0][0] >= 0xffff800000000000 else "")] += 1
        if not kernel:
            by_call["user space"] += 1
            continue
        call = None
        for name in kernel:
            match = SYSCALL.match(name)
            if match:
                call = SAME_CALL.get(match.group(1), match.group(1))
                break
        if call is None:
            call = "kernel, outside a system call" if frames[-1][0] >= 0xffff800000000000 else "kernel, other entry"
        by_call[call] += 1
        if SOFTIRQ & set(kernel):
            softirq[call] += 1
    return total, by_call, softirq, leaves


def main():
    args = parse_args()
    if (why := can_sample()) is not None:
        fail(f"perf cannot sample the server: {why}")
    harness.raise_descriptor_limit()
    name = args.peer or args.arch
    pin = harness.can_pin()
    port = harness.unused_port()
    server = harness.Server(harness.server_argv(name, port, args.zen), port, pin)
    work = tempfile.mkdtemp(prefix="cpu-profile-")
    data = os.path.join(work, "perf.data")
    try:
        if not server.listening:
            lines = server.output().strip().splitlines()
            fail(f"{name} did not start{': ' + lines[-1] if lines else ''}")
        pid = server.process.pid
        load = ["-c", str(args.connections), "-P", str(args.depth)]
        if args.reconnect:
            load += ["--reconnect", str(args.reconnect)]
        # Warm-up 0.5 s; perf starts once it is over. The load goes on MARGIN s past perf's
        # --seconds, because perf itself may take a second or more to start on a busy machine.
        warm_up = 0.5
        bench = harness.bench_argv(args.zen, port, pin) + load + [
            "-d", f"{args.seconds + MARGIN:g}", "-w", f"{warm_up:g}", "--timeout", "5", "--json",
            "--server-pid", str(pid)] + harness.questions_for(name)
        generator = subprocess.Popen(bench, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(warm_up + 0.2)
        pids = ",".join(str(p) for p in [pid] + harness.children_of(pid))
        record = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "10000", "-g", "-p", pids,
                                 "-o", data, "--", "sleep", f"{args.seconds:g}"],
                                capture_output=True, text=True, timeout=args.seconds + 60)
        out, err = generator.communicate(timeout=args.seconds + 120)
        if record.returncode != 0 or not os.path.exists(data):
            fail(f"perf record failed: {(record.stderr.strip().splitlines() or ['no output'])[-1]}")
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            fail(f"zen bench gave no JSON: {err.strip() or 'no output'}")
        script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"], capture_output=True, text=True,
                                timeout=300)
    finally:
        server.stop()
        server.close()
        shutil.rmtree(work, ignore_errors=True)

    total, by_call, softirq, leaves = group_samples(script.stdout)
    per_answer = result.get("server_cpu_us_per_answer")
    if total == 0 or not per_answer or result["requests"] == 0:
        fail(f"nothing to divide: {total} samples, {result['requests']} answers, {result['errors']} errors")
    per_conversation = per_answer * args.reconnect if args.reconnect else None
    rows = []
    for call, n in by_call.most_common():
        share = n / total
        rows.append({"where": call, "share": share, "softirq_share": softirq[call] / total,
                     "us_per_answer": share * per_answer,
                     "us_per_conversation": share * per_conversation if per_conversation else None})
    kernel_functions = [(f, n / total) for f, n in leaves.most_common() if f.endswith(" [kernel]")][:args.top]
    user_functions = [(f, n / total) for f, n in leaves.most_common() if not f.endswith(" [kernel]")][:args.top]

    load_text = " ".join(load)
    print(f"{name}: zen bench {load_text} -d {args.seconds + MARGIN:g}: {result['rps']:,.0f} answers/s,"
          f" {result['errors']} errors; server CPU {per_answer:.2f} µs per answer"
          + (f", {per_conversation:.1f} µs per conversation ({args.reconnect} answers)" if per_conversation else "")
          + f"; {total:,} samples over {args.seconds:g} s")
    unit = "µs/conv" if per_conversation else ""
    print(f"  {'where':32} {'share':>6} {'µs/answer':>9} {unit:>8} {'softirq':>8}")
    for row in rows:
        conv = f"{row['us_per_conversation']:8.2f}" if per_conversation else f"{'':8}"
        print(f"  {row['where']:32} {100 * row['share']:5.1f}% {row['us_per_answer']:9.3f} {conv}"
              f" {100 * row['softirq_share']:7.1f}%")
    print("  (softirq: the share of all samples spent in the network's receive path inside that call;"
          " on loopback, the client's side of TCP)")
    for title, functions in (("kernel", kernel_functions), ("user-space", user_functions)):
        print(f"\ntop {len(functions)} {title} functions by samples taken in them (self):")
        for function, share in functions:
            print(f"  {100 * share:5.1f}%  {function.removesuffix(' [kernel]')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": "bench/cpu_profile.py " + " ".join(sys.argv[1:]), "server": name,
                       "connections": args.connections, "depth": args.depth, "reconnect": args.reconnect,
                       "seconds": args.seconds, "samples": total, "answers": result["requests"],
                       "errors": result["errors"], "rps": result["rps"],
                       "server_cpu_us_per_answer": per_answer, "server_cpu_us_per_conversation": per_conversation,
                       "by_call": rows,
                       "kernel_functions": [{"function": f.removesuffix(" [kernel]"), "share": s}
                                            for f, s in kernel_functions],
                       "user_functions": [{"function": f, "share": s} for f, s in user_functions]}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
