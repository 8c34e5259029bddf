#!/usr/bin/env python3
"""The chapter's scenes, watched: each architecture serving the same clients, drawn as timelines.

Usage: bench/timeline.py --out DIR [--archs A,B,...] [--scenes S,...] [--zen PATH]

Each scene runs against each architecture with `zen serve --trace` and one `zen bench --trace`
per client (a raw socket for the slow reader), all on CLOCK_MONOTONIC, and the files are merged
(bench/merge_traces.py) into DIR/SCENE-ARCH.json for Perfetto. DIR/timeline.html draws them: one
row of lanes per architecture, one lane per client. A lane is light grey while the client waits
to be accepted and coloured while the server talks to it, one colour per serving thread or
process; each answer is a dark mark. Under each row: the longest wait to be accepted, the p99
of the clients' questions, the answers. Inline SVG, nothing loaded from the network, no script.

Scenes:
  one-at-a-time  five clients, each asking three questions 50 ms apart
  blocking-work  ten clients, one question each, the server with --delay 0.05
  backend-wait   ten clients, one question each, the server with --wait 0.05
  slow-reader    one client that sends 256 KiB of questions and never reads (--max-pending 4096),
                 beside four
  stopping       five clients asking every 100 ms, the server with --wait 0.2, SIGTERM at 0.3 s
Every process started here is stopped by its pid; every run is bounded in time.
"""

import argparse
import html
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import harness
import merge_traces
from harness import ARCHITECTURES

QUESTION = b"Beautiful is better than?"
WORKERS = {"threaded": ["--workers", "2"], "prefork": ["--workers", "2"], "reuseport": ["--workers", "2"]}
# name: (title, server flags, clients, bench flags per client, raw slow readers, SIGTERM after s)
SCENES = {
    "one-at-a-time": ("One at a time: five clients, three questions each, 50 ms apart", [], 5,
                      ["-n", "3", "-r", "20"], 0, None),
    "blocking-work": ("Blocking work: ten clients, --delay 0.05", ["--delay", "0.05"], 10, ["-n", "1"], 0, None),
    "backend-wait": ("Waiting on a backend: ten clients, --wait 0.05", ["--wait", "0.05"], 10, ["-n", "1"], 0, None),
    "slow-reader": ("A slow reader: one client never reads its answers, four ask three questions",
                    ["--max-pending", "4096"], 4,
                    ["-n", "3", "-r", "20"], 1, None),
    "stopping": ("Stopping: SIGTERM at 0.3 s while --wait 0.2 holds answers", ["--wait", "0.2"], 5,
                 ["-r", "10", "-d", "1"], 0, 0.3),
}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
LANE, GAP, WIDTH, LEFT = 14, 3, 900, 150


def start_server(zen, folder, arch, flags):
    log_path = os.path.join(folder, "server.log")
    log = open(log_path, "wb")
    trace = os.path.join(folder, "server.json")
    process = subprocess.Popen([zen, "serve", "127.0.0.1", "-p", "0", "--arch", arch, "-q", "--trace", trace,
                                "--drain-timeout", "1"] + WORKERS.get(arch, []) + flags,
                               stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 15
    while time.monotonic() < end:
        with open(log_path, errors="replace") as f:
            found = re.search(r"Listening at \('127\.0\.0\.1', (\d+)\)", f.read())
        if found:
            return process, int(found.group(1)), trace, log
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    process.wait()
    fail_with_log(log_path, f"--arch {arch} did not start")


def fail_with_log(path, message):
    with open(path, errors="replace") as f:
        harness.fail(f"{message}:\n{f.read()[-2000:]}")


def slow_reader(port):
    """Connects, sends 256 KiB of questions and reads nothing: backpressure."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    data = QUESTION * (256 * 1024 // len(QUESTION))
    sent, end = 0, time.monotonic() + 1
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += s.send(data[sent:])
        except BlockingIOError:
            time.sleep(0.01)
    return s


def run_scene(zen, folder, arch, scene):
    title, flags, clients, bench_flags, slow, stop_after = SCENES[scene]
    server, port, server_trace, log = start_server(zen, folder, arch, flags)
    readers = [slow_reader(port) for _ in range(slow)]
    benches, paths = [], []
    try:
        for n in range(clients):
            path = os.path.join(folder, f"client-{n}.json")
            paths.append(path)
            benches.append(subprocess.Popen(
                [zen, "bench", "127.0.0.1", "-p", str(port), "-c", "1", "-w", "0", "--timeout", "10", "--json",
                 "--trace", path] + bench_flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if stop_after is not None:
            time.sleep(stop_after)
            server.send_signal(signal.SIGTERM)
        for process in benches:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for reader in readers:
            reader.close()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    if not os.path.exists(server_trace):
        fail_with_log(os.path.join(folder, "server.log"), f"--arch {arch} wrote no trace")
    return merge_traces.merge([merge_traces.load(p) for p in [server_trace] + [p for p in paths if os.path.exists(p)]])


def lanes_of(merged):
    """One lane per client: its connects, waits, server spans (with serving thread), answers and
    bench questions, matched by the client's local address (the server's peer)."""
    events = merged["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    bench_pids = {e["pid"] for e in events if e.get("name") == "process_name" and e["args"]["name"] == "zen bench"}
    begins, server_spans, client_spans = {}, {}, {}
    for e in events:
        if e["ph"] == "b":
            begins[(e["cat"], e["pid"], e["id"])] = e
        elif e["ph"] == "e" and (e["cat"], e["pid"], e["id"]) in begins:
            b = begins.pop((e["cat"], e["pid"], e["id"]))
            if e["cat"] == "connection":
                server_spans[(e["pid"], e["id"])] = {"peer": b["args"].get("peer"), "begin": b["ts"], "end": e["ts"],
                                                     "thread": None, "answers": []}
            elif e["cat"] == "client":
                client_spans.setdefault(b["args"].get("local"), []).append((b["ts"], e["ts"], b["pid"], b["id"]))
    for e in events:
        if e["name"] == "answer" and e["ph"] == "X":
            span = server_spans.get((e["pid"], e["args"]["connection"]))
            if span is not None:
                span["answers"].append((e["ts"], e["ts"] + e["dur"]))
                span["thread"] = names.get((e["pid"], e["tid"]), f"pid {e['pid']} tid {e['tid']}")
    questions = {}
    for e in events:
        if e["name"] == "question" and e["ph"] == "X" and e["pid"] in bench_pids:
            questions.setdefault(e["pid"], []).append(e["dur"])
    lanes = {}
    for span in server_spans.values():
        # Of the openings from the server's peer address (a busy loopback reuses ports), the one
        # that began last before the server's span.
        earlier = [c for c in client_spans.get(span["peer"], []) if c[0] <= span["begin"] + 0.002]
        opened = [max(earlier)] if earlier else []
        if not opened and not span["answers"]:
            continue  # a bench's probe of the port before its load (the server logs a health check)
        owner = opened[0][2] if opened else ("slow reader", span["peer"])
        lane = lanes.setdefault(owner, {"client": [], "server": [], "questions": questions.get(owner, [])})
        lane["server"].append(span)
        lane["client"].extend(opened)
    for pid in bench_pids:  # a client the server never accepted still has its lane
        lanes.setdefault(pid, {"client": [s for spans in client_spans.values() for s in spans if s[2] == pid],
                               "server": [], "questions": questions.get(pid, [])})
    return sorted(lanes.values(), key=lambda lane: min([c[0] for c in lane["client"]] +
                                                       [s["begin"] for s in lane["server"]] or [0]))


def numbers(lanes):
    waits = [s["begin"] - c[0] for lane in lanes for s in lane["server"] for c in lane["client"][:1]]
    durations = sorted(d for lane in lanes for d in lane["questions"])
    p99 = durations[min(len(durations) - 1, int(0.99 * len(durations)))] if durations else None
    answers = sum(len(s["answers"]) for lane in lanes for s in lane["server"])
    return {"longest_wait_ms": max(waits) / 1000 if waits else None, "p99_ms": p99 / 1000 if p99 else None,
            "answers": answers}


def svg_row(arch, lanes, t0, span_us):
    scale = (WIDTH - LEFT - 10) / max(span_us, 1)
    x = lambda t: LEFT + (t - t0) * scale  # noqa: E731
    threads = sorted({s["thread"] for lane in lanes for s in lane["server"] if s["thread"]})
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(threads)}
    height = len(lanes) * (LANE + GAP) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{html.escape(arch)}" class="row">',
             f'<text x="4" y="{LANE}" font-size="12" font-weight="bold">{html.escape(arch)}</text>']
    for n, lane in enumerate(lanes):
        y = 4 + n * (LANE + GAP)
        parts.append(f'<g class="lane" data-lane="{n}"><text x="{LEFT - 6}" y="{y + LANE - 3}" font-size="10" '
                     f'text-anchor="end">client {n + 1}</text>')
        for start, end, *_ in lane["client"]:
            parts.append(f'<rect x="{x(start):.1f}" y="{y}" width="{max(1, (end - start) * scale):.1f}" '
                         f'height="{LANE}" fill="#e4e4e4"><title>waiting or connected</title></rect>')
        for span in lane["server"]:
            fill = colour.get(span["thread"], "#999")
            parts.append(f'<rect x="{x(span["begin"]):.1f}" y="{y + 2}" '
                         f'width="{max(1, (span["end"] - span["begin"]) * scale):.1f}" height="{LANE - 4}" '
                         f'fill="{fill}" opacity="0.75"><title>served by {html.escape(str(span["thread"]))}'
                         f'</title></rect>')
            for a_start, a_end in span["answers"]:
                parts.append(f'<rect x="{x(a_start):.1f}" y="{y + 4}" width="{max(1.2, (a_end - a_start) * scale):.1f}"'
                             f' height="{LANE - 8}" fill="#111"/>')
        parts.append("</g>")
    parts.append("</svg>")
    legend = ", ".join(f'<span style="color:{colour[t]}">&#9632;</span> {html.escape(t)}' for t in threads)
    return "".join(parts), legend


def page(results, scenes, archs, out_dir=None):
    out = ["<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
           "content='width=device-width, initial-scale=1'><title>zen: who waits</title><style>"
           "body{font-family:sans-serif;max-width:960px;margin:1em auto;padding:0 8px}"
           "svg{max-width:100%;height:auto;display:block}.numbers{font-size:12px;color:#333;margin:0 0 10px 150px}"
           "</style></head><body><h1>Who waits: the chapter's scenes, traced</h1>"
           "<p>Each row is one architecture serving the same clients; each lane one client. Light grey: the "
           "client is connected (or waiting to be accepted); colour: the server is talking to it, one colour "
           "per serving thread or process; black: an answer, from the read that completed its question to the "
           "send of its last byte. Times are to scale within a scene. The trace files beside this page open in "
           "Perfetto (ui.perfetto.dev) or chrome://tracing.</p>"]
    for scene in scenes:
        rows = results[scene]
        t0s = {arch: min([c[0] for lane in lanes for c in lane["client"]] +
                         [s["begin"] for lane in lanes for s in lane["server"]] or [0]) for arch, lanes in rows.items()}
        ends = {arch: max([c[1] for lane in lanes for c in lane["client"]] +
                          [s["end"] for lane in lanes for s in lane["server"]] or [0]) for arch, lanes in rows.items()}
        span_us = max(ends[a] - t0s[a] for a in rows)
        out.append(f"<h2 id='{scene}'>{html.escape(SCENES[scene][0])}</h2>"
                   f"<p class='numbers'>the time axis spans {span_us / 1000:.0f} ms</p>")
        for arch in archs:
            svg, legend = svg_row(arch, rows[arch], t0s[arch], span_us)
            if out_dir is not None:  # each row alone too, for docs/architectures/
                with open(os.path.join(out_dir, f"{scene}-{arch}.svg"), "w") as f:
                    f.write(svg + "\n")
            n = numbers(rows[arch])
            wait = "-" if n["longest_wait_ms"] is None else f"{n['longest_wait_ms']:.1f} ms"
            p99 = "-" if n["p99_ms"] is None else f"{n['p99_ms']:.1f} ms"
            out.append(svg + f"<p class='numbers'>longest wait to be accepted {wait}, p99 {p99}, "
                       f"{n['answers']} answers; served by {legend or 'nobody'} "
                       f"(<a href='{scene}-{arch}.json'>trace</a>)</p>")
    out.append("</body></html>")
    return "\n".join(out)


def main(argv):
    parser = argparse.ArgumentParser(description="Draw the chapter's scenes from zen's traces.")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES))
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN)
    args = parser.parse_args(argv)
    zen = harness.zen_executable(args.zen)
    archs = harness.architectures(args.archs)
    scenes = [s for s in args.scenes.split(",") if s]
    unknown = [s for s in scenes if s not in SCENES]
    if unknown or not scenes:
        harness.fail(f"unknown scene {','.join(unknown) or '(none)'}; the scenes are {','.join(SCENES)}")
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for scene in scenes:
        results[scene] = {}
        for arch in archs:
            with tempfile.TemporaryDirectory(prefix="zen-timeline-") as folder:
                merged = run_scene(zen, folder, arch, scene)
            with open(os.path.join(args.out, f"{scene}-{arch}.json"), "w") as f:
                json.dump(merged, f)
            results[scene][arch] = lanes_of(merged)
            n = numbers(results[scene][arch])
            print(f"{scene:14} {arch:11} lanes {len(results[scene][arch]):2}  answers {n['answers']:5}  "
                  f"longest wait {n['longest_wait_ms'] or 0:7.1f} ms", flush=True)
    with open(os.path.join(args.out, "timeline.html"), "w") as f:
        f.write(page(results, scenes, archs, args.out))
    print(f"wrote {os.path.join(args.out, 'timeline.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
