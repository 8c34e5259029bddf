#!/usr/bin/env python3
"""Merge Trace Event Format files from `zen serve --trace` and `zen bench --trace` into one.

Usage: merge_traces.py FILE... -o OUT

Both sides stamp their events with CLOCK_MONOTONIC on one machine, so concatenating the
traceEvents arrays is the whole merge: nothing is shifted. This also lines the tracks up: each
process gets a sort index (servers first, then load generators, in the order given) and each
thread one by its name ("listener", "worker 1", "worker 2", ...), so a viewer shows the tracks in
the same order every time. Files on another clock are refused.
"""

import argparse
import json
import re
import sys


def natural(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, ValueError) as error:
        raise SystemExit(f"merge_traces.py: {path}: {error}")
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        raise SystemExit(f"merge_traces.py: {path}: not a Trace Event Format object (no traceEvents array)")
    clock = document.get("otherData", {}).get("clock", "CLOCK_MONOTONIC")
    if clock != "CLOCK_MONOTONIC":
        raise SystemExit(f"merge_traces.py: {path}: recorded on {clock}, not CLOCK_MONOTONIC")
    return document["traceEvents"]


def merge(documents):
    events = [event for document in documents for event in document]
    processes = {}  # pid -> (is a load generator, order seen)
    threads = {}  # (pid, tid) -> name
    for event in events:
        if event.get("ph") != "M":
            continue
        if event.get("name") == "process_name":
            processes.setdefault(event["pid"], (str(event["args"]["name"]).startswith("zen bench"), len(processes)))
        elif event.get("name") == "thread_name":
            threads[(event["pid"], event["tid"])] = str(event["args"]["name"])
    order = sorted(processes, key=lambda pid: processes[pid])
    for index, pid in enumerate(order):
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": pid, "args": {"sort_index": index}})
    by_process = {}
    for (pid, tid), name in threads.items():
        by_process.setdefault(pid, []).append((natural(name), tid))
    for pid, named in by_process.items():
        for index, (_, tid) in enumerate(sorted(named)):
            events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": index}})
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"clock": "CLOCK_MONOTONIC"}}


def main(argv):
    parser = argparse.ArgumentParser(description="Merge zen's server and bench traces into one file.")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("-o", "--out", required=True, metavar="OUT")
    args = parser.parse_args(argv)
    merged = merge([load(path) for path in args.files])
    try:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(merged, f)
    except OSError as error:
        raise SystemExit(f"merge_traces.py: {args.out}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
