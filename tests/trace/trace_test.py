#!/usr/bin/env python3
"""`zen serve --trace` and `zen bench --trace`, end to end.

Usage: trace_test.py ZEN_BINARY PART, where PART is one of
  every     every architecture under `zen bench --trace`: both files are valid Trace Event
            Format (the format's rules, checked here), the server's answer events equal its
            `answered` counter and its connection spans its `accepted` one, each server answer
            lies inside the bench question it answers, prefork's answers carry its children's
            pids, and bench/merge_traces.py merges the two into one valid file
  pictures  what the chapter says, read off the traces: under single no two connections
            overlap; under threaded --workers 2 at most two do; under epoll --delay no two
            answers overlap; under epoll --wait they do
  cap       --trace-max-events: recording stops with one log line and the file holds at most
            that many events; SIGUSR1 writes the trace so far; a --trace folder that does not
            exist is exit 2 with one line
  viewer    (trace_test.py ZEN_BINARY viewer WORK) a real viewer: speedscope, pinned in
            tests/trace/viewer/ and installed from the npm registry into WORK, opens every
            architecture's merged trace in headless Chromium and names its process and threads;
            the same trace without its metadata shows no such name (the check can fail)
Every wait is bounded; every process started here is stopped by its pid.
"""

import functools
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from netcheck import check, failures  # noqa: E402
from architectures import names  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "bench"))
import merge_traces  # noqa: E402

QUESTION = b"Beautiful is better than?"
ANSWER = b"Ugly."
PHASES = {"X", "i", "b", "e", "s", "f", "M"}
SLACK_US = 0.002  # timestamps are written in microseconds with three decimals


class Server:
    def __init__(self, zen, folder, *args):
        self.trace = os.path.join(folder, "server-%p.json")
        self.log_path = os.path.join(folder, "server.log")
        self.log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen([zen, "serve", "127.0.0.1", "-p", "0", "--trace", self.trace] + list(args),
                                        stdout=self.log_file, stderr=subprocess.STDOUT)
        self.port = int(self.wait_for(r"Listening at \('127\.0\.0\.1', (\d+)\)").group(1))

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, pattern, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, self.log())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"no {pattern!r} in the log:\n{self.log()}")

    def stop(self):
        """SIGTERM, then the trace it wrote and its counters at exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self.log_file.close()
        log = self.log()
        counters = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", log.split("Counters (at exit):")[-1]))
        path = self.trace.replace("%p", str(self.process.pid))
        with open(path) as f:
            return json.load(f), counters, log


def bench(zen, port, folder, *args):
    path = os.path.join(folder, "bench.json")
    done = subprocess.run([zen, "bench", "127.0.0.1", "-p", str(port), "--trace", path, "--json"] + list(args),
                          capture_output=True, text=True, timeout=60)
    # Exit 1 is a run with errors (single leaves the last connections in the backlog past the
    # timeout), still with its report; anything else is a failure to run.
    if done.returncode not in (0, 1) or not done.stdout.startswith("{"):
        raise RuntimeError(f"zen bench exit {done.returncode}: {done.stderr}{done.stdout}")
    with open(path) as f:
        return json.load(f), json.loads(done.stdout)


def format_problems(document):
    """The Trace Event Format's rules, as Perfetto's and chrome://tracing's importers apply them."""
    problems = []
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        return ["not an object with a traceEvents array"]
    if document.get("displayTimeUnit") not in ("ms", "ns"):
        problems.append(f"displayTimeUnit {document.get('displayTimeUnit')!r}")
    open_spans = {}
    flows = {}
    for n, event in enumerate(document["traceEvents"]):
        where = f"event {n} {event}"
        if not isinstance(event.get("name"), str) or event.get("ph") not in PHASES:
            problems.append(f"{where}: no name or an unknown phase")
            continue
        if not isinstance(event.get("pid"), int) or not isinstance(event.get("tid"), int):
            problems.append(f"{where}: pid and tid must be integers")
        ph = event["ph"]
        if ph == "M":
            if event["name"] not in ("process_name", "thread_name", "process_sort_index", "thread_sort_index") \
                    or "args" not in event:
                problems.append(f"{where}: a metadata event without its args")
            continue
        if not isinstance(event.get("ts"), (int, float)) or event["ts"] < 0:
            problems.append(f"{where}: ts must be a number of microseconds")
            continue
        if ph == "X" and (not isinstance(event.get("dur"), (int, float)) or event["dur"] < 0):
            problems.append(f"{where}: a complete event needs a dur >= 0")
        if ph == "i" and event.get("s") not in ("g", "p", "t"):
            problems.append(f"{where}: an instant's scope must be g, p or t")
        if ph in ("b", "e", "s", "f") and ("id" not in event or "cat" not in event):
            problems.append(f"{where}: async and flow events need a cat and an id")
            continue
        key = (event.get("cat"), event.get("id"), event["pid"])
        if ph == "b":
            if key in open_spans:
                problems.append(f"{where}: span {key} begun twice")
            open_spans[key] = event["ts"]
        elif ph == "e":
            begun = open_spans.pop(key, None)
            if begun is None or begun > event["ts"] + SLACK_US:
                problems.append(f"{where}: ends span {key} that was not begun before it")
        elif ph == "s":
            flows[event["id"]] = event["ts"]
        elif ph == "f":
            started = flows.pop(event["id"], None)
            if started is None or started > event["ts"] + SLACK_US:
                problems.append(f"{where}: ends flow {event['id']} that did not start before it")
    for key in open_spans:
        problems.append(f"span {key} never ended")
    for flow in flows:
        problems.append(f"flow {flow} never arrived")
    return problems


def events(document, name, ph=None):
    return [e for e in document["traceEvents"] if e["name"] == name and (ph is None or e["ph"] == ph)]


def spans(document, category="connection"):
    """[(begin, end, id, args of the end)] of every connection span, in begin order."""
    begins = {}
    found = []
    for e in document["traceEvents"]:
        if e.get("cat") != category:
            continue
        if e["ph"] == "b":
            begins[(e["id"], e["pid"])] = e
        elif e["ph"] == "e":
            b = begins.pop((e["id"], e["pid"]))
            found.append((b["ts"], e["ts"], e["id"], b.get("args", {}), e.get("args", {})))
    return sorted(found)


def most_at_once(intervals):
    points = sorted([(start, 1) for start, end in intervals] + [(end, -1) for start, end in intervals],
                    key=lambda p: (p[0], p[1]))
    now = most = 0
    for _, change in points:
        now += change
        most = max(most, now)
    return most


def answers_inside_questions(server, client, open_at_end):
    """Server answers not inside their bench question: matched by the bench's local address
    (the server's peer) and the question's number on the connection. An answer no bench question
    saw is allowed only at the end of the run, at most one per connection the bench still had
    open then (a question in flight as the bench stopped: the server answers it, nobody reads it)."""
    by_peer = {}
    for begin, end, ident, args, end_args in spans(client, "client"):
        by_peer.setdefault(args.get("local"), []).append((begin, ident))
    server_to_client = {}
    for begin, end, ident, args, _ in spans(server):
        # A busy loopback reuses a local port in TIME_WAIT (tcp_tw_reuse): of the bench's
        # openings from that address, the server's connection is the latest to begin before it.
        earlier = [(opened, client_id) for opened, client_id in by_peer.get(args.get("peer"), [])
                   if opened <= begin + SLACK_US]
        if earlier:
            server_to_client[ident] = max(earlier)[1]
    questions = {(q["args"]["connection"], q["args"]["question"]): q for q in events(client, "question", "X")}
    last_sent = max((q["ts"] for q in questions.values()), default=0)
    outside, matched, unread = [], 0, set()
    for answer in events(server, "answer", "X"):
        client_id = server_to_client.get(answer["args"]["connection"])
        question = questions.get((client_id, answer["args"]["question"]))
        if question is None:
            if answer["ts"] >= last_sent and len(unread) < open_at_end:
                unread.add((answer["pid"], answer["args"]["connection"]))
                continue
            outside.append(("no question", answer))
            continue
        matched += 1
        if not (question["ts"] - SLACK_US <= answer["ts"] and
                answer["ts"] + answer["dur"] <= question["ts"] + question["dur"] + SLACK_US):
            outside.append((question, answer))
    return matched + len(unread), outside


def part_every(zen):
    for arch in names():
        extra = ["--workers", "2"] if arch in ("threaded", "prefork", "reuseport") else []
        with tempfile.TemporaryDirectory(prefix="zen-trace-") as folder:
            server = Server(zen, folder, "--arch", arch, "-q", *extra)
            client, report = bench(zen, server.port, folder, "-c", "4", "-d", "0.4", "-w", "0", "--reconnect", "3")
            trace, counters, log = server.stop()
            check(not format_problems(trace), f"{arch}: the server's trace is valid: {format_problems(trace)[:3]}")
            check(not format_problems(client), f"{arch}: the bench's trace is valid: {format_problems(client)[:3]}")
            answers = events(trace, "answer", "X")
            check(counters.get("answered", 0) > 0 and len(answers) == counters["answered"],
                  f"{arch}: {len(answers)} answer events for {counters.get('answered')} answered")
            check(len(spans(trace)) == counters.get("accepted"),
                  f"{arch}: {len(spans(trace))} connection spans for {counters.get('accepted')} accepted")
            questions = events(client, "question", "X")
            check(len(questions) >= report["requests"] > 0,
                  f"{arch}: {len(questions)} bench question events for {report['requests']} answers")
            check(len(events(client, "connect", "X")) >= 4, f"{arch}: the bench's connects are traced")
            matched, outside = answers_inside_questions(trace, client, report["open_at_end"])
            check(matched == len(answers) and not outside,
                  f"{arch}: every server answer inside its bench question ({matched} matched, "
                  f"{len(outside)} not: {outside[:1]})")
            names_by_thread = {(e["pid"], e["tid"]): e["args"]["name"] for e in events(trace, "thread_name")}
            unnamed = {(a["pid"], a["tid"]) for a in answers} - set(names_by_thread)
            check(not unnamed, f"{arch}: every thread that answers is named ({unnamed})")
            if arch == "prefork":
                children = {e["pid"] for e in events(trace, "process_name") if e["args"]["name"].startswith("prefork child")}
                pids = {a["pid"] for a in answers}
                check(len(children) == 2 and pids <= children and server.process.pid not in pids,
                      f"prefork: answers carry the children's pids {sorted(pids)} (children {sorted(children)})")
            if arch == "per-client":
                check(len(events(trace, "accept", "s")) == counters["accepted"],
                      "per-client: a flow from the listener to each conversation's thread")
            merged_path = os.path.join(folder, "merged.json")
            merge_traces.main([server.trace.replace("%p", str(server.process.pid)),
                               os.path.join(folder, "bench.json"), "-o", merged_path])
            with open(merged_path) as f:
                merged = json.load(f)
            check(not format_problems(merged) and
                  len(merged["traceEvents"]) > len(trace["traceEvents"]) + len(client["traceEvents"]),
                  f"{arch}: the merged trace is valid and holds both, with sort indexes")


def ask_concurrently(port, clients, questions=1, pause=0.0):
    """`clients` clients at once, each asking `questions` questions with a pause between."""
    errors = []

    def one():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                for n in range(questions):
                    if n:
                        time.sleep(pause)
                    s.sendall(QUESTION)
                    got = b""
                    while not got.endswith(b"."):
                        chunk = s.recv(100)
                        if not chunk:
                            break
                        got += chunk
                    if got != ANSWER:
                        errors.append(got)
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def part_pictures(zen):
    scenes = [
        ("single, five clients", ["--arch", "single"], 5, 3, 0.05),
        ("threaded --workers 2, five clients", ["--arch", "threaded", "--workers", "2"], 5, 3, 0.05),
        ("epoll --delay 0.05, ten clients", ["--arch", "epoll", "--delay", "0.05"], 10, 1, 0),
        ("epoll --wait 0.05, ten clients", ["--arch", "epoll", "--wait", "0.05"], 10, 1, 0),
    ]
    for title, args, clients, questions, pause in scenes:
        with tempfile.TemporaryDirectory(prefix="zen-trace-") as folder:
            server = Server(zen, folder, *args, "-q")
            errors = ask_concurrently(server.port, clients, questions, pause)
            trace, counters, _ = server.stop()
            check(not errors, f"{title}: every client answered ({errors[:2]})")
            check(not format_problems(trace), f"{title}: valid trace")
            connections = [(b, e) for b, e, *_ in spans(trace)]
            answers = [(a["ts"], a["ts"] + a["dur"]) for a in events(trace, "answer", "X")]
            check(len(connections) == clients and len(answers) == clients * questions,
                  f"{title}: {len(connections)} spans, {len(answers)} answers")
            if args[1] == "single":
                check(most_at_once(connections) == 1, f"{title}: no two connections overlap")
            elif args[1] == "threaded":
                check(most_at_once(connections) == 2, f"{title}: two connections at a time, never three "
                                                       f"({most_at_once(connections)})")
            elif "--delay" in args:
                check(most_at_once(answers) == 1, f"{title}: no two answers overlap ({most_at_once(answers)})")
            else:
                check(most_at_once(answers) > 1, f"{title}: answers overlap ({most_at_once(answers)})")


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def part_cap(zen):
    with tempfile.TemporaryDirectory(prefix="zen-trace-") as folder:
        server = Server(zen, folder, "--arch", "epoll", "-q", "--trace-max-events", "300")
        bench(zen, server.port, folder, "-c", "2", "-n", "2000", "-w", "0")
        before = resident_kib(server.process.pid)
        # Uncapped, 60,000 more answers would be some 120,000 events, 15 MiB of them.
        bench(zen, server.port, folder, "-c", "2", "-n", "60000", "-w", "0", "--trace-max-events", "10")
        grown = resident_kib(server.process.pid) - before
        check(grown < 4096, f"past the cap the server's memory stays flat (grew {grown} KiB)")
        server.process.send_signal(signal.SIGUSR1)
        server.wait_for(r"Trace \(SIGUSR1\): \d+ events written")
        snapshot_path = server.trace.replace("%p", str(server.process.pid))
        with open(snapshot_path) as f:
            snapshot = json.load(f)
        check(0 < len(snapshot["traceEvents"]) <= 300, "SIGUSR1 writes the trace so far")
        trace, counters, log = server.stop()
        check(counters["answered"] >= 62000, "the server answered past the cap")
        check(log.count("Trace: recording stopped at --trace-max-events (300 events)") == 1,
              "one log line says the recording stopped")
        # Spans cut by the cap stay open, so only the count is checked here.
        check(0 < len(trace["traceEvents"]) <= 300, f"the file holds at most 300 events ({len(trace['traceEvents'])})")
    done = subprocess.run([zen, "serve", "-p", "0", "--trace", "/nonexistent-zen-folder/t.json"],
                          capture_output=True, text=True, timeout=20)
    check(done.returncode == 2 and done.stderr.count("\n") == 1 and "--trace" in done.stderr,
          f"a --trace folder that does not exist: exit 2, one line ({done.returncode}, {done.stderr!r})")
    done = subprocess.run([zen, "serve", "-p", "0", "--trace-max-events", "10"], capture_output=True, text=True,
                          timeout=20)
    check(done.returncode == 2 and "--trace" in done.stderr,
          f"--trace-max-events without --trace is a usage error ({done.stderr!r})")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def install_speedscope(work):
    """npm ci of the pinned speedscope into WORK (once: later runs reuse it); its web app's folder."""
    os.makedirs(work, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, "viewer", name), os.path.join(work, name))
    release = os.path.join(work, "node_modules", "speedscope", "dist", "release")
    if not os.path.exists(os.path.join(release, "index.html")):
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit("trace_test: npm ci of speedscope failed:\n" + done.stdout)
    return release


def viewer_text(folder, url):
    """The text of the page headless Chromium built for url, after its scripts ran."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("trace_test: no chromium on PATH (make peer-deps installs it)")
    profile = tempfile.mkdtemp(prefix="zen-chromium-", dir=folder)
    done = subprocess.run([browser] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                                                        "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    return re.sub(r"<[^>]*>", "\n", done.stdout)


def part_viewer(zen, work):
    release = install_speedscope(work)
    with tempfile.TemporaryDirectory(prefix="zen-viewer-") as folder:
        site = os.path.join(folder, "site")
        shutil.copytree(release, site)
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=site)
        server_http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server_http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server_http.server_address[1]}"
        try:
            for arch in names():
                extra = ["--workers", "2"] if arch in ("threaded", "prefork", "reuseport") else []
                with tempfile.TemporaryDirectory(prefix="zen-trace-", dir=folder) as run:
                    server = Server(zen, run, "--arch", arch, "-q", *extra)
                    bench(zen, server.port, run, "-c", "2", "-d", "0.2", "-w", "0")
                    server.stop()
                    merge_traces.main([server.trace.replace("%p", str(server.process.pid)),
                                       os.path.join(run, "bench.json"), "-o", os.path.join(site, f"{arch}.json")])
                text = viewer_text(folder, f"{base}/index.html#profileURL={base}/{arch}.json")
                # The first profile shown is a process with events: prefork's are its children.
                named = f"zen serve --arch {arch} (pid" in text or (arch == "prefork" and "prefork child 1 (pid" in text)
                check(f"{arch}.json - speedscope" in text and named,
                      f"speedscope opens {arch}'s trace and names its process: {text.split()[:40]}")
            # The control: the same trace without its metadata events opens, unnamed, so the check
            # above reads what speedscope made of zen's events. (A file speedscope cannot parse at
            # all stops it at an alert(), which headless Chromium never dismisses.)
            with open(os.path.join(site, "epoll.json")) as f:
                document = json.load(f)
            document["traceEvents"] = [e for e in document["traceEvents"] if e["ph"] != "M"]
            with open(os.path.join(site, "unnamed.json"), "w") as f:
                json.dump(document, f)
            text = viewer_text(folder, f"{base}/index.html#profileURL={base}/unnamed.json")
            check("unnamed.json - speedscope" in text and "zen serve --arch" not in text,
                  f"without zen's metadata speedscope names no zen process: {text.split()[:30]}")
        finally:
            server_http.shutdown()
            server_http.server_close()


def main(argv):
    if len(argv) == 4 and argv[2] == "viewer":
        part_viewer(argv[1], os.path.abspath(argv[3]))
    elif len(argv) != 3 or argv[2] not in ("every", "pictures", "cap"):
        print(__doc__, file=sys.stderr)
        return 2
    else:
        {"every": part_every, "pictures": part_pictures, "cap": part_cap}[argv[2]](argv[1])
    if failures:
        print(f"trace_test {argv[2]}: {len(failures)} failure(s)")
        return 1
    print(f"trace_test {argv[2]}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
