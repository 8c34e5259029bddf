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
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from architectures import names  # noqa: E402

ARCHITECTURES = names()  # the registry's (src/servers/architectures.def)
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
            expected = ({"c1", "c50", "c50-p16", "short", "sweep", "conns", "rate"}
                        | ({"delay", "wait"} if server in ARCHITECTURES else set()))
            check(loads == expected, f"{server}: loads {sorted(loads)}")
            for run in runs:
                if run["server"] != server:
                    continue
                if run["load"] == "rate":
                    # The open-loop sweep: what was offered and what came back, and whether it kept up.
                    check(run["offered_rps"] > 0 and isinstance(run["achieved_rps"], (int, float))
                          and isinstance(run["fell_behind"], bool), f"{server} rate: {run}")
                    check(run["achieved_rps"] <= run["offered_rps"] * 1.05,
                          f"{server} rate: achieved {run['achieved_rps']} above offered {run['offered_rps']}")
                    continue
                if run["load"] == "short":
                    check(run["opened"] > 0, f"{server} short: no connection opened in the window")
                if run["load"] == "conns":
                    # Thousands of connections may defeat an architecture (that is the lesson): the
                    # run must still have tried, and say how each question ended.
                    check(run["requests"] + run["errors"] > 0, f"{server} conns c={run['connections']}: nothing tried")
                    check(sum(run["errors_by_kind"].values()) == run["errors"],
                          f"{server} conns c={run['connections']}: error kinds {run['errors_by_kind']} "
                          f"do not add up to {run['errors']}")
                    continue
                check(run["rps"] > 0, f"{server} {run['load']} c={run['connections']}: no answers")
                check(isinstance(run["server_cpu_us_per_answer"], (int, float)),
                      f"{server} {run['load']}: no server CPU")
        # Servers that can hold 50 connections at once must answer them all without an error.
        for run in runs:
            if run["server"] != "single" and run["load"] in ("c50", "c50-p16"):
                check(run["errors"] == 0, f"{run['server']} {run['load']}: {run['errors']} errors")
        # The verdict: one line per load the zen architectures ran (sweep levels apart), each
        # naming a winner, or saying that none answered without errors.
        loads = {r["load"] if r["load"] not in ("sweep", "conns") else f"{r['load']} c={r['connections']}"
                 for r in runs if r["server"] in ARCHITECTURES}
        verdict = {v["load"]: v for v in report.get("verdict", [])}
        check(set(verdict) == loads | {"idle memory"}, f"verdict for {sorted(verdict)}, loads {sorted(loads)}")
        # Memory per idle connection for every architecture that holds idle connections open.
        idle = {r["arch"]: r.get("bytes_per_connection") for r in report.get("idle_memory", [])}
        check(set(idle) == set(ARCHITECTURES) - {"single", "threaded", "prefork"}, f"idle memory for {sorted(idle)}")
        check(all(isinstance(b, int) and b > 0 for b in idle.values()), f"idle memory: {idle}")
        for load, line in verdict.items():
            check(line["winner"] in ARCHITECTURES or "no architecture answered" in line["line"],
                  f"verdict for {load}: {line}")
            check(line.get("beyond") is None, f"one round judged beyond the spread: {line}")
        check(report["settings"]["conns"] == [100, 1000], f"connection sweep {report['settings']['conns']}")
        check(report["manifest"]["zen_version"][0].startswith("zen "), "no zen --version in the manifest")
        with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
            page = f.read()
        check("indicative only" in page, "the --quick report does not say its figures are indicative only")
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
