#!/usr/bin/env python3
"""bench/syscalls.py end to end on epoll for a second per load: its JSON must count what any loop
must do. At depth 1 every answer is one send of its own and at least one receive; pipelined,
one send carries many answers, so there are fewer calls per answer than at depth 1.

Usage: syscalls_per_answer_test.py ZEN_BINARY
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def main():
    with tempfile.TemporaryDirectory() as out:
        report = os.path.join(out, "syscalls.json")
        done = subprocess.run([os.path.join(ROOT, "bench", "syscalls.py"), "--archs", "epoll", "--no-peers",
                               "--seconds", "1", "--json", report, "--zen", sys.argv[1]],
                              capture_output=True, text=True, timeout=240)
        print(done.stdout[-3000:], done.stderr[-2000:])
        check(done.returncode == 0, f"syscalls exited {done.returncode}")
        with open(report) as f:
            runs = {run["load"]: run for run in json.load(f)["runs"]}
    check(set(runs) == {"c50", "c50-p16"}, f"loads {sorted(runs)}")
    c50, p16 = runs["c50"], runs["c50-p16"]
    for run in (c50, p16):
        check(run["answers"] > 0 and run["errors"] == 0, f"{run['load']}: {run['answers']} answers, {run['errors']} errors")
        check(run["syscalls_per_answer"] > 0, f"{run['load']}: {run['syscalls_per_answer']} syscalls per answer")
    # bench counts what arrived by the end; up to 50 answers may be sent and not counted.
    send = c50["by_kind_per_answer"]["send"]
    check(0.98 <= send <= 1.0 + 50 / c50["answers"] + 0.01, f"c50: {send} sends per answer")
    check(c50["by_kind_per_answer"]["recv"] >= 0.98, f"c50: {c50['by_kind_per_answer']['recv']} receives per answer")
    check(p16["syscalls_per_answer"] < c50["syscalls_per_answer"] / 2,
          f"pipelined {p16['syscalls_per_answer']} per answer against {c50['syscalls_per_answer']} at depth 1")
    if failures:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
