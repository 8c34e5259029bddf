#!/usr/bin/env python3
"""--metrics end to end, with the real peers: promtool, a Prometheus server, haproxy.

Usage: metrics_test.py ZEN_BINARY PART, where PART is one of
  promtool    every architecture, after answers, a refusal and a timeout: the counts are exact and
              `promtool check metrics` accepts the page
  prometheus  a real Prometheus server scrapes prefork (workers add up) and reuseport, and its
              HTTP API reports exactly the counts the test caused
  readiness   /ready turns 503 on SIGTERM (a --wait conversation keeps the drain going) and on
              SIGQUIT in every architecture, while /live stays 200
  hostile     idle, oversized and slowloris scrapers: clients are answered, and scrapes go on
  strict      malformed request heads (extra words, a bad version, a NUL, HTTP/0.9) are 400 at once,
              a complete request is answered at once
  storm       a dozen slowloris scrapers reconnecting as fast as they can: a real scraper's every
              scrape is still answered within a bound
  haproxy     deploy/haproxy.cfg's checks against two zen servers: no warning, checks counted,
              a question through haproxy answered
  startup     a metrics address that cannot be used: one line on stderr, exit 2, nothing listening
Every wait is bounded; every process started here is stopped by its pid.
"""

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
import json
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUESTION = b"Beautiful is better than?"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from netcheck import check, failures, free_port  # noqa: E402
from architectures import names  # noqa: E402

ARCHITECTURES = names()  # the registry's (src/servers/architectures.def)


class Zen:
    """A `zen serve` on free loopback ports, its log on stdout read from a file."""

    def __init__(self, zen, arch, *extra, metrics=True):
        self.log_file = tempfile.NamedTemporaryFile(prefix="zen-metrics-log-", delete=False)
        args = [zen, "serve", "127.0.0.1", "-p", "0", "--arch", arch] + list(extra)
        if metrics:
            args += ["--metrics", "127.0.0.1:0"]
        self.process = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.port = int(self.wait_for(r"Listening at \('127\.0\.0\.1', (\d+)\)").group(1))
        self.metrics_port = int(self.wait_for(r"Metrics at \('127\.0\.0\.1', (\d+)\)").group(1)) if metrics else None

    def log(self):
        with open(self.log_file.name, errors="replace") as f:
            return f.read()

    def wait_for(self, pattern, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, self.log())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"no /{pattern}/ in the log:\n{self.log()}")

    def get(self, path, timeout=5):
        """(status, body) of GET path on the metrics port."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.metrics_port}{path}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        """The value of one sample of /metrics (name with its labels), or None."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def wait_metric(self, name, value, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.metric(name) == value:
                return True
            time.sleep(0.05)
        return check(False, f"{name} is {self.metric(name)}, not {value}")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        os.unlink(self.log_file.name)
        return self.process.returncode


def ask(port, question=QUESTION, source="127.0.0.1", timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as s:
        s.sendall(question)
        got = b""
        while not got.endswith(b"."):
            data = s.recv(4096)
            if not data:
                break
            got += data
        return got


def refused(port, source):
    """Connects from `source` (denied): the server closes it with nothing sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        try:
            return s.recv(100) == b""
        except ConnectionResetError:
            return True


def timed_out(port):
    """A silent connection: closed by --idle-timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            return s.recv(100) == b""
        except ConnectionResetError:
            return True


def traffic(zen, answers, refusals, timeouts):
    for i in range(answers):
        check(ask(zen.port) == b"Ugly.", f"answer {i}")
    for _ in range(refusals):
        check(refused(zen.port, "127.0.0.3"), "a denied client is closed")
    for _ in range(timeouts):
        check(timed_out(zen.port), "a silent client is closed")


TRAFFIC_OPTIONS = ["--deny", "127.0.0.3/32", "--idle-timeout", "0.3"]


def part_promtool(zen_binary):
    promtool = shutil.which("promtool")
    if not check(promtool, "promtool is missing (make peer-deps installs Debian's prometheus)"):
        return
    for arch in ARCHITECTURES:
        extra = ["--workers", "2"] if arch in ("threaded", "prefork", "reuseport") else []
        zen = Zen(zen_binary, arch, *TRAFFIC_OPTIONS, *extra)
        try:
            traffic(zen, answers=3, refusals=1, timeouts=1)
            zen.wait_metric("zen_answers_total", 3)
            zen.wait_metric('zen_timeouts_total{kind="idle"}', 1)
            status, text = zen.get("/metrics")
            check(status == 200, f"{arch}: /metrics status {status}")
            for sample, value in [("zen_connections_accepted_total", 4), ('zen_connections_refused_total{reason="denied"}', 1),
                                  ('zen_connections_refused_total{reason="busy"}', 0), ("zen_answers_total", 3),
                                  ('zen_answer_duration_seconds_count', 3), ("zen_resets_total", 0),
                                  ("zen_received_bytes_total", 3 * len(QUESTION)), ("zen_sent_bytes_total", 15)]:
                check(zen.metric(sample) == value, f"{arch}: {sample} is {zen.metric(sample)}, not {value}")
            check(f'arch="{arch}"' in text, f"{arch}: zen_build_info names the architecture")
            linted = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
            check(linted.returncode == 0 and not linted.stdout.strip() and not linted.stderr.strip(),
                  f"{arch}: promtool check metrics: {linted.returncode} {linted.stdout} {linted.stderr}")
            check("warning" not in zen.log().lower() or "idle for" in zen.log(), f"{arch}: log {zen.log()}")
        finally:
            check(zen.stop() == 0, f"{arch}: exit code")
        print(f"{arch}: promtool clean, counts exact", flush=True)


def prometheus_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def part_prometheus(zen_binary):
    prometheus = shutil.which("prometheus")
    if not check(prometheus, "prometheus is missing (make peer-deps installs Debian's prometheus)"):
        return
    servers = {"prefork": Zen(zen_binary, "prefork", "--workers", "3", *TRAFFIC_OPTIONS),
               "reuseport": Zen(zen_binary, "reuseport", "--workers", "3", *TRAFFIC_OPTIONS)}
    expected = {"prefork": (7, 2, 1), "reuseport": (9, 1, 2)}
    web = free_port()
    with tempfile.TemporaryDirectory(prefix="zen-prometheus-") as directory:
        config = os.path.join(directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n")
            for name, zen in servers.items():
                f.write(f"  - job_name: {name}\n    static_configs:\n      - targets: ['127.0.0.1:{zen.metrics_port}']\n")
        process = subprocess.Popen([prometheus, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{web}",
                                    f"--storage.tsdb.path={os.path.join(directory, 'data')}"],
                                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "log"), "w"))
        try:
            for name, zen in servers.items():
                answers, refusals, timeouts = expected[name]
                # Many connections, so that every worker serves some of them.
                threads = [threading.Thread(target=lambda: check(ask(zen.port) == b"Ugly.", "answer"))
                           for _ in range(answers)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(20)
                traffic(zen, 0, refusals, timeouts)
            wanted = {}
            for name, (answers, refusals, timeouts) in expected.items():
                wanted[f'zen_answers_total{{job="{name}"}}'] = answers
                wanted[f'sum(zen_connections_refused_total{{job="{name}"}})'] = refusals
                wanted[f'sum(zen_timeouts_total{{job="{name}"}})'] = timeouts
                wanted[f'zen_answer_duration_seconds_count{{job="{name}"}}'] = answers
            got = {}
            end = time.monotonic() + 60
            while time.monotonic() < end:
                try:
                    got = {q: prometheus_query(web, q) for q in wanted}
                except (OSError, ValueError, KeyError):
                    got = {}
                if got == wanted:
                    break
                time.sleep(0.5)
            for query, value in wanted.items():
                check(got.get(query) == value, f"Prometheus says {query} = {got.get(query)}, not {value}")
            print("Prometheus reports:", got, flush=True)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            for zen in servers.values():
                zen.stop()


def part_readiness(zen_binary):
    for arch in ARCHITECTURES:
        for sig in (signal.SIGTERM, signal.SIGQUIT):
            zen = Zen(zen_binary, arch, "--wait", "2", "--drain-timeout", "10")
            try:
                check(zen.get("/ready") == (200, "ready\n"), f"{arch}: /ready before the stop")
                check(zen.get("/live") == (200, "live\n"), f"{arch}: /live before the stop")
                slow = socket.create_connection(("127.0.0.1", zen.port), timeout=10)
                slow.sendall(QUESTION)
                zen.wait_metric("zen_connections_open", 1)
                zen.process.send_signal(sig)
                end = time.monotonic() + 1.5
                status = None
                while time.monotonic() < end and status != 503:
                    status, _ = zen.get("/ready")
                    time.sleep(0.02)
                check(status == 503, f"{arch} {sig.name}: /ready is {status} while the server drains")
                check(zen.process.poll() is None, f"{arch} {sig.name}: still draining its --wait conversation")
                check(zen.get("/live")[0] == 200, f"{arch} {sig.name}: /live while draining")
                if sig == signal.SIGTERM:
                    check(zen.metric("zen_connections_draining") == 1, f"{arch}: zen_connections_draining")
                got = slow.recv(100)
                check(got == b"Ugly.", f"{arch} {sig.name}: the slow conversation got {got!r}")
                slow.close()
                zen.process.wait(20)
                check(zen.process.returncode == 0, f"{arch} {sig.name}: exit {zen.process.returncode}")
            finally:
                zen.stop()
        print(f"{arch}: /ready 503 on SIGTERM and SIGQUIT, /live 200", flush=True)


def part_hostile(zen_binary):
    zen = Zen(zen_binary, "epoll")
    hostile = []
    try:
        for _ in range(20):  # idle scrapers: they push out each other, cut at 2 s
            hostile.append(socket.create_connection(("127.0.0.1", zen.metrics_port), timeout=10))
        huge = socket.create_connection(("127.0.0.1", zen.metrics_port), timeout=10)
        stop = threading.Event()

        def slowloris():
            s = socket.create_connection(("127.0.0.1", zen.metrics_port), timeout=10)
            hostile.append(s)
            try:
                for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"x" * 100:
                    if stop.wait(0.2):
                        return
                    s.send(bytes([byte]))
            except OSError:
                pass  # closed by the endpoint's timeout: as it should be

        loris = threading.Thread(target=slowloris)
        loris.start()
        for i in range(20):  # clients are answered throughout
            check(ask(zen.port) == b"Ugly.", f"answer {i} with hostile scrapers about")
        try:
            huge.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 100_000 + b"\r\n\r\n")
        except OSError:
            pass  # closed before all of it went: the limit at work
        try:
            reply = huge.recv(100)
        except OSError:
            reply = b""
        check(reply == b"" or reply.startswith(b"HTTP/1.1 431") or reply.startswith(b"HTTP/1.1 400"),
              f"a huge request got {reply!r}")
        # Scrapes go on: the idle ones make room for a scraper.
        end = time.monotonic() + 15
        scraped = False
        while time.monotonic() < end and not scraped:
            try:
                scraped = zen.get("/metrics", timeout=2)[0] == 200
            except OSError:
                time.sleep(0.2)
        check(scraped, "a scrape succeeds despite the hostile scrapers")
        check(zen.metric("zen_answers_total") == 20, "every answer counted")
        stop.set()
        loris.join(10)
        for i in range(5):
            check(ask(zen.port) == b"Ugly.", f"answer {i} after the hostile scrapers")
        for request, status in [(b"POST /metrics HTTP/1.1\r\n\r\n", b"405"), (b"GET /nope HTTP/1.1\r\n\r\n", b"404"),
                                (b"garbage\r\n\r\n", b"400")]:
            with socket.create_connection(("127.0.0.1", zen.metrics_port), timeout=10) as s:
                s.sendall(request)
                check(s.recv(100).startswith(b"HTTP/1.1 " + status), f"{request!r} is a {status}")
        print("hostile scrapers: clients answered, scrapes go on", flush=True)
    finally:
        for s in hostile:
            s.close()
        check(zen.stop() == 0, "exit code")


def haproxy_round(zen_binary, config_text, counter):
    """Two zen servers behind haproxy with config_text; its checks must raise `counter`."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    proxy = ["--proxy-protocol", "--trusted-proxy", "127.0.0.1/32"]
    servers = [Zen(zen_binary, "epoll", *proxy), Zen(zen_binary, "prefork", "--workers", "2", *proxy)]
    frontend = free_port()
    config = config_text.replace("bind :1060", f"bind 127.0.0.1:{frontend}")
    config = config.replace("127.0.0.1:1061", f"127.0.0.1:{servers[0].port}")
    config = config.replace("127.0.0.1:1062", f"127.0.0.1:{servers[1].port}")
    config = re.sub(r"inter \d+s", "inter 200ms", config)
    check(config.count("inter 200ms") == 2 and str(frontend) in config, "the shipped config has the expected shape")
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(config)
    # -db: foreground. The soft and hard limit of a default Debian machine, 1024 descriptors,
    # must do for the shipped maxconn.
    process = subprocess.Popen(["sh", "-c", f"ulimit -n 1024 && exec {haproxy} -db -f {f.name}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)  # ~15 checks of each server
        check(process.poll() is None, "haproxy runs with 1024 descriptors")
        for zen in servers:
            counted = zen.metric(counter) or 0
            check(counted >= 5, f"haproxy's checks counted in {counter}: {counted}")
            log = zen.log()
            check(" error" not in log and "refused" not in log, f"no warning in zen's log:\n{log}")
            check(zen.metric("zen_resets_total") == 0, "no check counted as a reset")
        got = ask(frontend, b"Simple is better than?")
        check(got == b"Complex.", f"a question through haproxy got {got!r}")
    finally:
        process.terminate()
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate(timeout=5)
        output = out.decode(errors="replace")
        check("DOWN" not in output and "ALERT" not in output, f"haproxy saw every server up:\n{output}")
        os.unlink(f.name)
        for zen in servers:
            zen.stop()


def part_haproxy(zen_binary):
    with open(os.path.join(ROOT, "deploy", "haproxy.cfg")) as f:
        shipped = f.read()
    # The shipped checks ask a real question: each is an answer, and none a warning.
    haproxy_round(zen_binary, shipped, "zen_answers_total")
    print("haproxy's question checks: answered, no warning; a question through haproxy answered", flush=True)
    # haproxy's default check (connect, then reset) instead: counted as a health check, no warning.
    bare = "".join(line for line in shipped.splitlines(keepends=True) if "tcp-check" not in line)
    check(bare != shipped, "the shipped config has tcp-check lines")
    haproxy_round(zen_binary, bare, "zen_health_checks_total")
    print("haproxy's connect-only checks: counted as health checks, no warning", flush=True)


def exchange(port, request, timeout=3):
    """(first response line, seconds until the response was whole) for raw request bytes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        reply = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except OSError as e:
            reply += f" [{e}]".encode()
    return reply.split(b"\r\n", 1)[0], time.monotonic() - started


def part_strict(zen_binary):
    zen = Zen(zen_binary, "epoll")
    try:
        malformed = [
            b"GET /ready HTTP/1.1 extra\r\n\r\n",
            b"GET /ready HTTP/1.\r\n\r\n",
            b"GET /ready HTTP/1.1junk\r\n\r\n",
            b"GET /ready HTTP/2.0\r\n\r\n",
            b"GET  /ready HTTP/1.1\r\n\r\n",
            b"GET /ready  HTTP/1.1\r\n\r\n",
            b"GET /re\x00ady HTTP/1.1\r\n\r\n",
            b"GET /ready HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
            b"GET /ready HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET /ready HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /ready HTTP/1.1\r\nHost : a\r\n\r\n",
            b"GET /ready HTTP/1.1\r\n folded: a\r\n\r\n",
            b"G\x01T /ready HTTP/1.1\r\n\r\n",
            b"GET ready HTTP/1.1\r\n\r\n",
        ]
        for request in malformed:
            line, took = exchange(zen.metrics_port, request)
            check(line == b"HTTP/1.1 400 Bad Request" and took < 1, f"{request!r}: {line!r} after {took:.2f} s")
        # No end of the head yet, but already wrong: 400 at once, without waiting for the rest.
        for request in [b"GET /ready HTTP/1.1 extra", b"GET /metrics\r\n", b"GET /metrics\n", b"GET /\x00"]:
            line, took = exchange(zen.metrics_port, request)
            check(line == b"HTTP/1.1 400 Bad Request" and took < 1, f"{request!r} unfinished: {line!r} after {took:.2f} s")
        for request in [b"GET /ready HTTP/1.1\r\nHost: x\r\nUser-Agent: a\tb\r\n\r\n", b"GET /ready HTTP/1.0\n\n",
                        b"GET /ready?x=1 HTTP/1.1\r\n\r\n"]:
            line, took = exchange(zen.metrics_port, request)
            check(line == b"HTTP/1.1 200 OK" and took < 1, f"{request!r}: {line!r} after {took:.2f} s")
        print("strict request heads: 400 at once for the malformed, 200 at once for the whole", flush=True)
    finally:
        check(zen.stop() == 0, "exit code")


STORM = r"""
import socket, sys, threading, time
port, seconds, sources = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
count = [0]
stop = threading.Event()
def watch_stdin():
    sys.stdin.read()  # the test closes it when its scrapes are done
    stop.set()
def slowloris(source):
    # Holds a half-sent request open until the endpoint closes it, then comes straight back.
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end and count[0] < 200000:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1, source_address=(source, 0)) as s:
                count[0] += 1
                s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
                while not stop.is_set() and time.monotonic() < end and s.recv(4096):
                    pass
        except OSError:
            pass
threading.Thread(target=watch_stdin, daemon=True).start()
threads = [threading.Thread(target=slowloris, args=(source,)) for source in sources]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(count[0], flush=True)
"""


def storm_round(zen_binary, sources, what):
    """A dozen slowloris scrapers (their own process: other hosts) while 20 scrapes are made."""
    zen = Zen(zen_binary, "epoll")
    storm = subprocess.Popen([sys.executable, "-c", STORM, str(zen.metrics_port), "10"] + sources,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the storm is on: every slot taken and retaken
        scrapes = 20
        worst = 0.0
        answered = 0
        for i in range(scrapes):
            started = time.monotonic()
            try:
                status, body = zen.get("/metrics", timeout=3)
                answered += status == 200 and "zen_connections_accepted_total" in body
            except OSError as e:
                print(f"{what}: scrape {i}: {e}", flush=True)
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.05)
        check(storm.poll() is None, f"{what}: the storm lasted through the scrapes")
        out, _ = storm.communicate(timeout=20)  # closes its stdin: it stops
        connections = int(out.strip() or 0)
        check(connections >= 100, f"{what}: the storm made {connections} slowloris connections")
        check(answered == scrapes, f"{what}: {answered} of {scrapes} scrapes answered")
        check(worst < 2, f"{what}: the slowest scrape took {worst:.2f} s")
        print(f"{what}: {answered}/{scrapes} scrapes answered, slowest {worst * 1000:.0f} ms, "
              f"{connections} slowloris connections", flush=True)
    finally:
        if storm.poll() is None:
            storm.kill()
            storm.wait(5)
        check(zen.stop() == 0, "exit code")


def part_storm(zen_binary):
    # From one other host (the per-address limits keep its connections to its own slots), then
    # from a dozen (eviction of the longest waiting, and each address's rate).
    storm_round(zen_binary, ["127.0.0.2"] * 12, "one slowloris host")
    storm_round(zen_binary, [f"127.0.0.{2 + i}" for i in range(12)], "a dozen slowloris hosts")


def part_startup(zen_binary):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = free_port()
        for address in [f"127.0.0.1:{busy}", "no-such-host.invalid:9100", "127.0.0.1", "127.0.0.1:99999"]:
            done = subprocess.run([zen_binary, "serve", "-p", str(port), "--metrics", address],
                                  capture_output=True, text=True, timeout=20)
            lines = done.stderr.strip().splitlines()
            check(done.returncode == 2 and len(lines) == 1 and "--metrics" in lines[0],
                  f"--metrics {address}: exit {done.returncode}, stderr {done.stderr!r}")
            check(done.stdout == "", f"--metrics {address}: nothing logged, so nothing listened: {done.stdout!r}")
    print("bad metrics addresses: exit 2, one line", flush=True)


def main():
    zen_binary, part = sys.argv[1], sys.argv[2]
    globals()["part_" + part](zen_binary)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
