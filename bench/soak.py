#!/usr/bin/env python3
"""A soak run: mixed load with random resets against every architecture, then a check that the
server's descriptors and memory came back to where they were.

Usage: bench/soak.py [--seconds 600] [--zen PATH] [--archs A,B,...]

The time is shared out among the architectures. For each one a server is started, warmed up
(so its pools and buffers exist), and measured: open descriptors and resident memory, its worker
processes included. Then for its share of the time `zen bench` keeps it busy (answers checked)
while a storm of clients opens connections and, at random, asks and checks pipelined answers,
resets mid-question, resets mid-pipeline without reading, or closes at once. Afterwards the
descriptors must be back to the baseline and memory within 10 % + 4 MiB of it; the bench must
have had no errors and the storm no wrong answer. Exit 0 when every architecture holds.
"""

import argparse
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import harness
from harness import ARCHITECTURES, BOOK

BLOCKING = {"single": 1, "threaded": 2, "prefork": 2}  # bench connections a fixed pool can hold


def pids_of(root):
    """The server and its descendants (prefork's workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def footprint(root):
    fds, rss_kib = 0, 0
    for pid in pids_of(root):
        try:
            fds += len(os.listdir(f"/proc/{pid}/fd"))
            with open(f"/proc/{pid}/status") as f:
                rss_kib += int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        except (OSError, AttributeError):
            pass
    return fds, rss_kib


def settled_footprint(root):
    last = footprint(root)
    for _ in range(40):
        time.sleep(0.25)
        now = footprint(root)
        if now[0] == last[0]:
            return now
        last = now
    return last


def storm(port, until, counts, lock, seed):
    rng = random.Random(seed)
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                action = rng.randrange(4)
                pairs = [rng.choice(BOOK) for _ in range(rng.randint(1, 40))]
                if action == 0:  # ask and check, in order
                    s.sendall(b"".join(q for q, _ in pairs))
                    expected = b"".join(a for _, a in pairs)
                    got = b""
                    while len(got) < len(expected):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                    with lock:
                        counts["wrong" if got != expected else "right"] += 1
                    continue
                if action == 1:  # reset mid-question
                    s.sendall(pairs[0][0][: rng.randint(1, len(pairs[0][0]) - 1)])
                elif action == 2:  # reset mid-pipeline, answers unread
                    s.sendall(b"".join(q for q, _ in pairs) * 20)
                if action != 3:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                with lock:
                    counts["resets" if action != 3 else "closed"] += 1
        except OSError:
            with lock:
                counts["refused"] += 1
            time.sleep(0.01)


def soak_one(zen, arch, seconds):
    extra = ["--backlog", "1024"]
    if arch in ("threaded", "prefork"):
        extra += ["--workers", "8"]
    server, port, line = harness.serve_on_any_port(zen, arch, extra)
    try:
        if port is None:
            return False, f"did not start: {line}"
        connections = BLOCKING.get(arch, 50)
        bench = [zen, "bench", "127.0.0.1", "-p", str(port), "-c", str(connections), "-P", "4", "-w", "0",
                 "--json", "--timeout", "5"]
        subprocess.run(bench + ["-d", "3"], capture_output=True, timeout=60)  # warm-up
        before = settled_footprint(server.pid)

        until = time.monotonic() + seconds
        counts = {"right": 0, "wrong": 0, "resets": 0, "closed": 0, "refused": 0}
        lock = threading.Lock()
        storms = [threading.Thread(target=storm, args=(port, until, counts, lock, i))
                  for i in range(1 if arch == "single" else 6)]
        for t in storms:
            t.start()
        load = subprocess.run(bench + ["-d", str(seconds)], capture_output=True, text=True,
                              timeout=seconds + 120)
        for t in storms:
            t.join()
        after = settled_footprint(server.pid)
        result = json.loads(load.stdout) if load.stdout.strip() else {"errors": -1, "requests": 0}

        problems = []
        if after[0] > before[0]:
            problems.append(f"descriptors {before[0]} -> {after[0]}")
        if after[1] > before[1] * 1.10 + 4096:
            problems.append(f"RSS {before[1]} KiB -> {after[1]} KiB")
        if result["errors"] != 0:
            problems.append(f"bench errors {result['errors']}")
        if counts["wrong"]:
            problems.append(f"{counts['wrong']} wrong answers")
        if server.poll() is not None:
            problems.append("the server died")
        summary = (f"{result['requests']:,} bench answers, storm {counts['right']} checked / {counts['resets']} "
                   f"resets / {counts['closed']} closes; fds {before[0]}->{after[0]}, "
                   f"RSS {before[1]}->{after[1]} KiB")
        return not problems, summary + ("; " + ", ".join(problems) if problems else "")
    finally:
        harness.stop(server, 15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="total soak time, shared by the architectures")
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN)
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    args = parser.parse_args()
    archs = [a for a in args.archs.split(",") if a]
    for arch in archs:
        if arch not in ARCHITECTURES:
            sys.exit(f"soak: unknown architecture {arch!r}")
    if not os.access(args.zen, os.X_OK):
        sys.exit(f"soak: no zen executable at {args.zen} (run make build, or pass --zen)")
    share = max(5.0, args.seconds / len(archs))
    failed = []
    for arch in archs:
        ok, summary = soak_one(os.path.abspath(args.zen), arch, share)
        print(f"{'ok  ' if ok else 'FAIL'} {arch:11} {summary}", flush=True)
        if not ok:
            failed.append(arch)
    if failed:
        print(f"soak: {', '.join(failed)} did not hold")
        sys.exit(1)
    print(f"soak: every architecture held for {share:.0f} s")


if __name__ == "__main__":
    main()
