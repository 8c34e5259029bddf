#!/usr/bin/env python3
"""bench/compare.py --quick end to end: every architecture and both peers measured, report.json
complete, and report.html rendering its charts in headless Chromium (bench/check_report.py).
Also proves the render check can fail: a report with no runs must be refused.

Usage: report_test.py ZEN_BINARY
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARCHITECTURES = ["single", "threaded", "per-client", "prefork", "poll", "epoll", "reuseport",
                 "callbacks", "chat", "coroutines", "uring"]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def main():
    zen = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([os.path.join(ROOT, "bench", "compare.py"), "--quick", "--out", out, "--zen", zen],
                              capture_output=True, text=True, timeout=280)
        print(done.stdout[-3000:], done.stderr[-2000:])
        check(done.returncode == 0, f"compare exited {done.returncode}")
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        runs = report["runs"]
        for server in ARCHITECTURES + ["redis-server", "memcached"]:
            loads = {r["load"] for r in runs if r["server"] == server}
            expected = {"c1", "c50", "c50-p16", "sweep"} | ({"delay", "wait"} if server in ARCHITECTURES else set())
            check(loads == expected, f"{server}: loads {sorted(loads)}")
            for run in runs:
                if run["server"] == server:
                    check(run["rps"] > 0, f"{server} {run['load']} c={run['connections']}: no answers")
                    check(isinstance(run["server_cpu_us_per_answer"], (int, float)),
                          f"{server} {run['load']}: no server CPU")
        # Servers that can hold 50 connections at once must answer them all without an error.
        for run in runs:
            if run["server"] != "single" and run["load"] in ("c50", "c50-p16"):
                check(run["errors"] == 0, f"{run['server']} {run['load']}: {run['errors']} errors")
        html = os.path.join(out, "report.html")
        rendered = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "check_report.py"), html],
                                  capture_output=True, text=True, timeout=120)
        print(rendered.stdout, rendered.stderr)
        check(rendered.returncode == 0, "report.html did not render its charts")

        empty = dict(report, runs=[])
        with open(os.path.join(out, "empty.json"), "w") as f:
            json.dump(empty, f)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "report.py"), os.path.join(out, "empty.json"),
                        os.path.join(out, "empty.html")], check=True, timeout=60)
        refused = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "check_report.py"),
                                  os.path.join(out, "empty.html")], capture_output=True, text=True, timeout=120)
        check(refused.returncode == 1, "check_report.py accepted a report with no data")
    if failures:
        sys.exit(1)
    print("report test passed")


if __name__ == "__main__":
    main()
