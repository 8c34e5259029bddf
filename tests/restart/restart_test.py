#!/usr/bin/env python3
"""Zero-downtime restart, each recipe of docs/deploy.md, under `zen bench -r` open-loop load.

    restart_test.py ZEN usr2 ARCH        SIGUSR2 hands the listener to a new process
    restart_test.py ZEN reuseport        reuseport: the new process binds beside the old one
    restart_test.py ZEN systemd ARCH     what systemd does on `systemctl restart` with zen.socket
    restart_test.py ZEN failing ARCH     a new binary that exits 1 leaves the old one serving
    restart_test.py ZEN bench-retry      zen bench sends again a question a clean close cut

Each restart case asserts: zen bench reports zero errors and zero mismatches (questions sent
again after a clean close are allowed and printed), the old process exits 0 by itself, the new
one answered questions after it, and the two processes' answers add up to exactly the answers
bench received (none lost, none answered twice).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ZEN = os.path.abspath(sys.argv[1])
RECIPE = sys.argv[2]
ARCH = sys.argv[3] if len(sys.argv) > 3 else "reuseport"

RATE = "1000"          # questions per second, open loop
DURATION = "3"         # seconds of load; the restart comes after about one
# single serves one client at a time (the others would wait in its backlog for seconds);
# threaded and prefork have 4 workers.
CONNECTIONS = "1" if ARCH == "single" else "4"


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    fail("timed out waiting for " + what)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent, the old server, has not reaped it).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Log:
    """The servers' shared stdout: the new process inherits the old one's."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "zen.log")
        self.file = open(self.path, "wb")

    def text(self):
        with open(self.path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait(self, needle, timeout=10):
        wait_for(lambda: needle in self.text(), timeout, repr(needle) + " in the log:\n" + self.text())


def start_bench(port):
    return subprocess.Popen([ZEN, "bench", "127.0.0.1", "-p", str(port), "-r", RATE, "-c", CONNECTIONS,
                             "-d", DURATION, "-w", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bench_report(bench):
    out, err = bench.communicate(timeout=30)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        fail("zen bench printed no JSON: " + out + err)
    cycle = report["cycles"][0] if "cycles" in report else report
    print(f"zen bench: {cycle['requests']} answered, {cycle['errors']} errors {cycle['errors_by_kind']}, "
          f"{cycle['reconnects']} reconnects, {cycle['retried']} retried after the server closed", flush=True)
    return cycle


def answered_at_exit(log_text):
    return [int(n) for n in re.findall(r"Counters \(at exit\): .*?answered (\d+)", log_text)]


def check_load(cycle, log, expected_exits=2):
    if cycle["errors"] != 0 or cycle["errors_by_kind"]["mismatch"] != 0:
        fail(f"errors under the restart: {cycle['errors_by_kind']}\n" + log.text())
    if cycle["requests"] == 0:
        fail("zen bench got no answer")
    answered = answered_at_exit(log.text())
    if len(answered) != expected_exits:
        fail(f"expected {expected_exits} 'Counters (at exit)' lines:\n" + log.text())
    old, new = answered[0], answered[-1]
    print(f"answered: old process {old}, new process {new}", flush=True)
    if new == 0:
        fail("the new process answered nothing after the restart")
    if old + new != cycle["requests"]:
        fail(f"the servers answered {old} + {new}, zen bench received {cycle['requests']}")


def stop_successor(log, pid):
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), 10, f"the new process (pid {pid}) to exit on SIGTERM")
    log.wait("Stopped on SIGTERM")


def usr2(directory, arch, extra=()):
    log = Log(directory)
    port_args = ["-p", "0"] if arch != "reuseport" else ["-p", str(free_port())]
    old = subprocess.Popen([ZEN, "serve", "127.0.0.1", *port_args, "--arch", arch, "-q", *extra],
                           stdout=log.file, stderr=subprocess.STDOUT)
    successor = None
    try:
        log.wait("Listening at")
        port = int(re.search(r"Listening at \('127\.0\.0\.1', (\d+)\)", log.text()).group(1))
        bench = start_bench(port)
        time.sleep(1)
        old.send_signal(signal.SIGUSR2)
        code = old.wait(timeout=15)
        text = log.text()
        ready = re.search(r"The new process \(pid (\d+)\) is ready", text)
        if ready:
            successor = int(ready.group(1))
        if code != 0:
            fail(f"the old process exited {code}:\n{text}")
        if not ready or f"Stopped on SIGUSR2: pid {successor} took over" not in text:
            fail("no hand-over in the log:\n" + text)
        cycle = bench_report(bench)
        # The new process holds its listeners and nothing the old one had open: a client's
        # connection inherited across exec would never be closed.
        listeners = 2 if arch == "reuseport" else 1
        wait_for(lambda: open_sockets(successor) == listeners, 5,
                 f"the new process to hold only its {listeners} listener(s), not {open_sockets(successor)} sockets")
        stop_successor(log, successor)
        successor = None
        check_load(cycle, log)
    finally:
        if old.poll() is None:
            old.kill()
        if successor is not None and pid_alive(successor):
            os.kill(successor, signal.SIGKILL)


def open_sockets(pid):
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return count


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def systemd(directory, arch):
    """What systemd does for zen.socket + zen.service (Accept=no) on `systemctl restart zen`: it
    holds the listening socket, SIGTERMs the running zen, waits for it to exit, and starts a new one
    with the same socket (LISTEN_FDS=1, LISTEN_PID). Clients meanwhile wait in the backlog."""
    log = Log(directory)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]

    def start():
        return subprocess.Popen(
            ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", ZEN, "serve", "--arch", arch, "-q"],
            stdout=log.file, stderr=subprocess.STDOUT, close_fds=False,
            preexec_fn=lambda: os.dup2(listener.fileno(), 3))

    first = start()
    second = None
    try:
        log.wait("Listening at")
        bench = start_bench(port)
        time.sleep(1)
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=15)
        if code != 0:
            fail(f"the first process exited {code}:\n" + log.text())
        second = start()
        cycle = bench_report(bench)
        second.send_signal(signal.SIGTERM)
        if second.wait(timeout=10) != 0:
            fail("the second process did not exit 0 on SIGTERM:\n" + log.text())
        check_load(cycle, log)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()


def failing(directory, arch):
    """A broken binary installed at zen's path: SIGUSR2 runs it, it exits 1, the old server logs
    that and keeps serving; the real binary put back, SIGUSR2 hands over as usual."""
    installed = os.path.join(directory, "zen")
    shutil.copy(ZEN, installed)
    log = Log(directory)
    old = subprocess.Popen([installed, "serve", "127.0.0.1", "-p", "0", "--arch", arch, "-q"],
                           stdout=log.file, stderr=subprocess.STDOUT)
    successor = None
    try:
        log.wait("Listening at")
        port = int(re.search(r"Listening at \('127\.0\.0\.1', (\d+)\)", log.text()).group(1))
        broken = installed + ".new"
        with open(broken, "w") as f:
            f.write("#!/bin/sh\necho 'broken zen' >&2\nexit 1\n")
        os.chmod(broken, 0o755)
        os.rename(broken, installed)  # as an upgrade does: the running one keeps its old inode
        old.send_signal(signal.SIGUSR2)
        log.wait("before it was ready; still serving")
        if "exited with code 1" not in log.text() and not (arch == "prefork" and "ended before" in log.text()):
            fail("the new process's exit code is not in the log:\n" + log.text())
        if old.poll() is not None:
            fail("the old process exited after a failed restart:\n" + log.text())
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"Beautiful is better than?")
            if client.recv(64) != b"Ugly.":
                fail("the old process does not answer after a failed restart")
        shutil.copy(ZEN, broken)
        os.rename(broken, installed)
        old.send_signal(signal.SIGUSR2)
        if old.wait(timeout=15) != 0:
            fail("the old process did not exit 0 after the second SIGUSR2:\n" + log.text())
        successor = int(re.search(r"The new process \(pid (\d+)\) is ready", log.text()).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"Simple is better than?")
            if client.recv(64) != b"Complex.":
                fail("the new process does not answer")
        stop_successor(log, successor)
        successor = None
    finally:
        if old.poll() is None:
            old.kill()
        if successor is not None and pid_alive(successor):
            os.kill(successor, signal.SIGKILL)


def closing_peer(listener, close_every_connection, stop):
    """A server that, once (or on every connection), reads two pipelined questions, answers the
    first, and closes cleanly: the second question crossed the server's FIN, as it can during a
    drain. Otherwise it answers normally. (zen bench's first connection only probes the address.)"""
    import threading

    answers = {b"Beautiful is better than?": b"Ugly.", b"Explicit is better than?": b"Implicit.",
               b"Simple is better than?": b"Complex."}

    cut_once = threading.Event()

    def serve(client):
        with client:
            client.settimeout(5)
            data = b""
            try:
                while True:
                    if data.count(b"?") >= 2 and (close_every_connection or not cut_once.is_set()):
                        cut_once.set()
                        first = data[:data.index(b"?") + 1].strip()
                        client.sendall(answers[first])
                        client.shutdown(socket.SHUT_WR)
                        while client.recv(4096):  # read to its EOF: closing with unread input resets
                            pass
                        return
                    while b"?" in data and not close_every_connection and cut_once.is_set():
                        question, data = data.split(b"?", 1)
                        client.sendall(answers[question.strip() + b"?"])
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return

    listener.settimeout(0.1)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(client,), daemon=True).start()


def bench_retry():
    """zen bench's side of a restart, made deterministic: a question crossing the server's clean
    close is sent again on a new connection and counted as retried, not as an error; a retried
    question that meets a clean close again is an error ("closed")."""
    import threading

    for close_every_connection in (False, True):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        stop = threading.Event()
        peer = threading.Thread(target=closing_peer, args=(listener, close_every_connection, stop), daemon=True)
        peer.start()
        try:
            run = subprocess.run([ZEN, "bench", "127.0.0.1", "-p", str(listener.getsockname()[1]), "-c", "1",
                                  "-P", "2", "-d", "0.5", "-w", "0", "--json"],
                                 capture_output=True, text=True, timeout=30)
        finally:
            stop.set()
            peer.join()
            listener.close()
        report = json.loads(run.stdout)
        print(f"closing every connection: {close_every_connection}: {report['requests']} answered, "
              f"errors {report['errors_by_kind']}, retried {report['retried']}", flush=True)
        if report["retried"] < 1:
            fail("the question cut by the clean close was not retried")
        if not close_every_connection:
            if report["errors"] != 0 or run.returncode != 0 or report["requests"] < 10:
                fail("a retried question should be answered on the new connection: " + run.stdout)
        elif report["errors_by_kind"]["closed"] < 1 or run.returncode == 0:
            fail("a retried question closed again must be an error: " + run.stdout)


def main():
    if RECIPE == "reuseport" and os.environ.get("ZEN_RESTART_NETNS") != "1":
        # Closing a SO_REUSEPORT listener resets the connections queued in it unless the kernel
        # moves them to a sibling (net.ipv4.tcp_migrate_req=1, Linux 5.14). The test sets it in a
        # network namespace of its own rather than on the machine.
        script = ("ip link set lo up && sysctl -q -w net.ipv4.tcp_migrate_req=1 && "
                  'exec env ZEN_RESTART_NETNS=1 python3 "$@"')
        # Not root: a user namespace of our own grants what the network namespace needs.
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        sys.exit(subprocess.run(["unshare", *user, "--net", "sh", "-c", script, "sh", *sys.argv]).returncode)
    with tempfile.TemporaryDirectory() as directory:
        if RECIPE == "usr2":
            usr2(directory, ARCH)
        elif RECIPE == "reuseport":
            usr2(directory, "reuseport", ("--workers", "2"))
        elif RECIPE == "systemd":
            systemd(directory, ARCH)
        elif RECIPE == "bench-retry":
            bench_retry()
        elif RECIPE == "failing":
            failing(directory, ARCH)
        else:
            fail("unknown recipe " + RECIPE)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
