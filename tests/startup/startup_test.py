#!/usr/bin/env python3
"""Honest start-up and exits of `zen serve` (issue 19 item 5, issue 14 item 6), in every
architecture of tests/conformance/architectures.hpp.

    startup_test.py ZEN bad-inputs    each unusable input x each architecture: exit 2, one line
                                      on stderr, nothing ever listening, no READY=1
    startup_test.py ZEN descriptors   prlimit --nofile=N:N for N in 8..20: either the server
                                      announces (READY=1 only once the port accepts) or it exits 1
                                      with one stderr line, no "Listening at", no READY=1
    startup_test.py ZEN log-lines     --version; the first log line; READY=1 after the port
                                      accepts; "Stopped on SIGQUIT"; --exit-idle's one line; JSON
                                      peer fields (IPv4, IPv6); --log-timestamps

systemd's side is played by the test itself: NOTIFY_SOCKET names a unix datagram socket it binds,
and whatever zen sends there is what systemd would have heard.
"""
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from architectures import variants as registry_variants  # noqa: E402

failures = []
failures_lock = threading.Lock()


def check(condition, message):
    if not condition:
        with failures_lock:
            failures.append(message)
    return condition


def architectures():
    """The conformance suite's variants, from the registry, so a new architecture is covered here too."""
    return registry_variants()


_ports_handed_out = set()
_ports_lock = threading.Lock()


def free_port():
    """A free port on 127.0.0.1, never the same twice in this run: the descriptor cases run four
    at a time, and one that fails before binding its port must not find another case's server
    on it (the kernel may hand a just-closed port to the next bind)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with _ports_lock:
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port


def port_accepts(port, host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as client:
        client.settimeout(1)
        try:
            client.connect((host, port))
            return True
        except OSError:
            return False


class Notifications:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)
        self.socket.setblocking(False)
        self.received = []

    def poll(self):
        while True:
            try:
                self.received.append(self.socket.recv(4096).decode(errors="replace"))
            except BlockingIOError:
                return self.received

    def ready(self):
        return any("READY=1" in message.split("\n") for message in self.poll())

    def close(self):
        self.socket.close()


def start(argv, notifications):
    env = dict(os.environ, NOTIFY_SOCKET=notifications.path)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                            errors="replace")


def finish(process, timeout=10):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return None, out, err
    return process.returncode, out, err


def stop(process, signal_number=signal.SIGTERM, timeout=10):
    process.send_signal(signal_number)
    return finish(process, timeout)


# --- bad inputs -----------------------------------------------------------------------------

def bad_inputs(directory):
    malformed = os.path.join(directory, "malformed.txt")
    with open(malformed, "w") as f:
        f.write("Beautiful is better than? Ugly.\nthis line has no question mark\n")
    twisting = os.path.join(directory, "hosts.deny")
    with open(twisting, "w") as f:
        f.write("ALL: 127.0.0.2 : twist /bin/echo go away\n")
    return {
        "log file in a missing directory": ["--log-file", os.path.join(directory, "missing", "zen.log")],
        "log file that is a directory": ["--log-file", directory],
        "missing aphorism file": ["--aphorisms", os.path.join(directory, "missing.txt")],
        "aphorism file that is a directory": ["--aphorisms", directory],
        "malformed aphorism file": ["--aphorisms", malformed],
        "hosts table with a twist option": ["--hosts-deny", twisting],
        "hosts table that is a directory": ["--hosts-allow", directory],
    }


def bad_input_case(name, arch_args, input_name, input_args):
    what = f"{name}, {input_name}"
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        port = free_port()
        process = start([ZEN, "serve", "127.0.0.1", "-p", str(port), *arch_args, *input_args], notifications)
        listened = False
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            listened = listened or port_accepts(port)
            time.sleep(0.002)
        code, out, err = finish(process)
        listened = listened or port_accepts(port)
        check(code == 2, f"{what}: exit {code}, expected 2; stderr {err!r}")
        lines = err.splitlines()
        check(len(lines) == 1 and lines[0].startswith("zen "), f"{what}: stderr is not one 'zen ...' line: {err!r}")
        check("Listening at" not in out, f"{what}: said 'Listening at': {out!r}")
        check(not listened, f"{what}: something listened on port {port}")
        check(not notifications.poll(), f"{what}: told systemd {notifications.received}")
        notifications.close()


def test_bad_inputs():
    with tempfile.TemporaryDirectory() as directory:
        inputs = bad_inputs(directory)
        cases = [(name, args, input_name, input_args)
                 for name, args in architectures() for input_name, input_args in inputs.items()]
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for future in [pool.submit(bad_input_case, *case) for case in cases]:
                future.result()
        print(f"{len(cases)} bad-input cases")


# --- short of descriptors -------------------------------------------------------------------

def descriptor_case(name, arch_args, limit):
    """Returns 'served', 'failed in set-up' (past binding) or 'failed before binding'."""
    what = f"{name}, --nofile={limit}"
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        port = free_port()
        process = start(["prlimit", f"--nofile={limit}:{limit}", ZEN, "serve", "127.0.0.1", "-p", str(port),
                         *arch_args], notifications)
        deadline = time.monotonic() + 10
        ready = False
        while process.poll() is None and time.monotonic() < deadline:
            if notifications.ready():
                ready = True
                break
            time.sleep(0.002)
        if ready:
            check(port_accepts(port), f"{what}: READY=1 came but the port does not accept")
            code, out, err = stop(process)
            check(code in (0, 1), f"{what}: exit {code} after serving: {err!r}")
            check("Listening at" in out, f"{what}: READY=1 without 'Listening at': {out!r}")
            outcome = "served"
        else:
            code, out, err = finish(process)
            lines = err.splitlines()
            check(code == 1, f"{what}: exit {code}, expected 1 (or READY=1); stderr {err!r}")
            check(len(lines) == 1 and lines[0].startswith("zen serve: "),
                  f"{what}: stderr is not one 'zen serve: ...' line: {err!r}")
            check("Listening at" not in out, f"{what}: said 'Listening at' and failed: {out!r}")
            check(not notifications.poll(), f"{what}: told systemd {notifications.received} and failed")
            check(not port_accepts(port), f"{what}: port {port} still accepts after the exit")
            outcome = "failed in set-up" if "--arch" in out else "failed before binding"
        notifications.close()
        return outcome


def test_descriptors():
    variants = architectures()
    limits = range(8, 21)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {(name, limit): pool.submit(descriptor_case, name, args, limit)
                   for name, args in variants for limit in limits}
        outcomes = {key: future.result() for key, future in futures.items()}
    for name, _ in variants:
        seen = [outcomes[(name, limit)] for limit in limits]
        print(f"{name}: " + ", ".join(f"{limit} {outcome}" for limit, outcome in zip(limits, seen)))
        check("served" in seen, f"{name}: never served even with {limits[-1]} descriptors")
        # The architectures with descriptors of their own (an epoll instance, a ring, Asio's
        # copies) run out inside their set-up at some limit: the case issue 19 found.
        if name in ("epoll", "callbacks", "chat", "coroutines", "reuseport", "uring"):
            check("failed in set-up" in seen, f"{name}: no limit failed inside the architecture's set-up: {seen}")


# --- log lines and exits ----------------------------------------------------------------------

def serve(args, notifications, host="127.0.0.1"):
    """Starts a server on a free port and waits for READY=1; returns (process, port)."""
    port = free_port()
    process = start([ZEN, "serve", host, "-p", str(port), *args], notifications)
    deadline = time.monotonic() + 10
    while not notifications.ready():
        if process.poll() is not None or time.monotonic() > deadline:
            code, out, err = finish(process)
            raise AssertionError(f"zen serve {args} did not become ready: exit {code} {out!r} {err!r}")
        time.sleep(0.002)
    return process, port


def ask(port, host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as client:
        client.settimeout(5)
        client.connect((host, port))
        client.sendall(b"Beautiful is better than?")
        answer = client.recv(100)
        return client.getsockname()[1], answer


def version_check():
    done = subprocess.run([ZEN, "--version"], capture_output=True, text=True, timeout=10)
    lines = done.stdout.splitlines()
    check(done.returncode == 0, f"--version: exit {done.returncode}")
    check(bool(lines) and re.fullmatch(r"zen \d+\.\d+\.\d+", lines[0]) is not None, f"--version: {lines[:1]}")
    check(any(re.fullmatch(r"commit: ([0-9a-f]{7,40}|unknown)", line) for line in lines), f"--version: no commit: {lines}")
    check(any(re.fullmatch(r"compiler: (g\+\+|clang\+\+) \d+\.\d+.*", line) for line in lines),
          f"--version: no compiler: {lines}")
    uring = [line for line in lines if line.startswith("io_uring")]
    check(bool(uring), f"--version: nothing about io_uring: {lines}")
    if uring and not uring[0].startswith("io_uring: unavailable ("):
        check(re.fullmatch(r"io_uring features:( [A-Z0-9_]+)*", uring[0]) is not None, f"--version: {uring}")
        check(any(line.startswith("io_uring opcodes:") and " RECV" in line for line in uring),
              f"--version: no opcodes: {uring}")


TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def first_lines_and_sigquit(name, arch_args):
    """The first log line, 'Listening at' after it, an answer once READY=1 came, and SIGQUIT's line."""
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        process, port = serve([*arch_args, "--max-connections", "7", "--idle-timeout", "9"], notifications)
        _, answer = ask(port)  # READY=1 came, so the port must answer
        check(answer == b"Ugly.", f"{name}: answer {answer!r} right after READY=1")
        code, out, err = stop(process, signal.SIGQUIT)
        notifications.close()
    lines = out.splitlines()
    check(code == 0, f"{name}: SIGQUIT exit {code}: {err!r}")
    pattern = (rf"zen \d+\.\d+\.\d+ \(commit \S+\) --arch {re.escape(arch_args[1])} at \('127\.0\.0\.1', {port}\): "
               r"max-connections 7, idle-timeout 9 s, question-timeout 30 s, send-timeout 60 s, tcp-keepalive 300 s, "
               r"max-question 4096 bytes, max-pending 65536 bytes, workers \S+, drain-timeout 5 s")
    check(bool(lines) and re.fullmatch(pattern, lines[0]) is not None, f"{name}: first line {lines[:1]}")
    listening = [i for i, line in enumerate(lines) if line == f"Listening at ('127.0.0.1', {port})"]
    check(len(listening) == 1 and listening[0] >= 1, f"{name}: 'Listening at' not once after the first line: {lines}")
    check(lines.count("Stopped on SIGQUIT") == 1, f"{name}: no single 'Stopped on SIGQUIT': {lines}")


def exit_idle_line(name, arch_args):
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        process, _ = serve([*arch_args, "--exit-idle", "0.3"], notifications)
        code, out, err = finish(process)
        notifications.close()
    check(code == 0, f"{name}: --exit-idle exit {code}: {err!r}")
    said = [line for line in out.splitlines() if "--exit-idle" in line and not line.startswith("zen ")]
    check(said == ["No connection for 300 ms: exiting (--exit-idle)"], f"{name}: --exit-idle lines {said}")
    check("Stopped on" not in out, f"{name}: --exit-idle also said 'Stopped on': {out!r}")


def json_peer_fields(host):
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        process, port = serve(["--arch", "epoll", "--log-format", "json"], notifications, host)
        client_port, answer = ask(port, host)
        time.sleep(0.2)
        code, out, err = stop(process)
        notifications.close()
    check(answer == b"Ugly.", f"json {host}: answer {answer!r}")
    objects = [json.loads(line) for line in out.splitlines()]
    for line in objects:
        check(re.fullmatch(TIMESTAMP, line.get("time", "")) is not None, f"json: no ISO time in {line}")
    accepted = [o for o in objects if o.get("event") == "accepted"]
    check(len(accepted) == 1, f"json {host}: accepted lines {accepted}")
    for o in accepted:
        check(o.get("peer_address") == host and o.get("peer_port") == client_port,
              f"json {host}: peer fields {o}, expected {host} and {client_port}")


def text_timestamps():
    with tempfile.TemporaryDirectory() as directory:
        notifications = Notifications(directory)
        process, port = serve(["--arch", "poll", "--log-timestamps"], notifications)
        ask(port)
        time.sleep(0.2)
        code, out, err = stop(process)
        notifications.close()
    lines = out.splitlines()
    check(len(lines) >= 4, f"timestamps: too few lines {lines}")
    for line in lines:
        check(re.match(TIMESTAMP + " ", line) is not None, f"timestamps: line without one: {line!r}")
    check(any(re.fullmatch(TIMESTAMP + r" Listening at \('127\.0\.0\.1', \d+\)", line) for line in lines),
          f"timestamps: no stamped 'Listening at': {lines}")


def test_log_lines():
    version_check()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(first_lines_and_sigquit, name, args) for name, args in architectures()]
        futures += [pool.submit(exit_idle_line, name, args) for name, args in architectures()]
        futures += [pool.submit(json_peer_fields, host) for host in ("127.0.0.1", "::1")]
        futures.append(pool.submit(text_timestamps))
        for future in futures:
            try:
                future.result()
            except AssertionError as e:
                check(False, str(e))


if __name__ == "__main__":
    ZEN = sys.argv[1]
    group = {"bad-inputs": test_bad_inputs, "descriptors": test_descriptors, "log-lines": test_log_lines}[sys.argv[2]]
    started = time.monotonic()
    group()
    print(f"{sys.argv[2]}: {time.monotonic() - started:.1f} s")
    for failure in failures:
        print("FAIL:", failure)
    sys.exit(1 if failures else 0)
