#!/usr/bin/env python3
"""Peers that vanish give back their slots, in every architecture: on a real wire between two
network namespaces the test creates, clients stop existing (nftables drops everything they send and
everything sent to them: no FIN, no reset), and the server's kernel gives up on them by itself.

    vanished_test.py ZEN [ARCH ...]

Each architecture serves with --max-connections 2 --idle-timeout 0 (so no timer of zen's can
reclaim anything) --tcp-keepalive 1 --send-timeout 2 --wait 1. Two clients take both slots:

* "idle" asks, is answered, and then vanishes: the keepalive probes go unanswered, and the log
  says `vanished: no reply to keepalive probes (--tcp-keepalive 1 s)`;
* "unacked" asks and vanishes before its answer (held 1 s by --wait) is sent: the answer is never
  acknowledged, TCP_USER_TIMEOUT (the --send-timeout) ends it, and the log says `vanished: an
  answer unacknowledged for 2 s (--send-timeout)`.

`single` serves one client at a time: "unacked" waits in the listen backlog while "idle" holds the
thread, and the kernel's probes run there too, so both of its clients end as keepalive ones.

Then the wire is whole again and a third client must be answered (not `Error: server busy.`)
within the bound docs/lifecycle.md gives; the counters at exit say timeout_keepalive 1 and
timeout_unacknowledged 1. All architectures run at once, each on its own port. Exit 77 (a
skip, with its reason) where network namespaces cannot be made.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from netcheck import check, failures  # noqa: E402
from architectures import names  # noqa: E402

SERVER_ADDRESS, CLIENT_ADDRESS = "198.18.7.1", "198.18.7.2"
PREFIX = f"zv{os.getpid()}"
SERVER_NS, CLIENT_NS = f"{PREFIX}s", f"{PREFIX}c"
BOUND = 12  # seconds: the slower death (unacked: 1 s --wait, then 2 s of retransmissions) with room

CLIENTS = r'''
import socket, sys, time
host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
def ask(port):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"Beautiful is better than?")
    return s
idle = {}
for port in ports:
    idle[port] = ask(port)
for port, s in idle.items():
    got = s.recv(64)
    print("idle-answer", port, got.decode(errors="replace"), flush=True)
unacked = {port: ask(port) for port in ports}
print("vanish", flush=True)   # the test drops this namespace's traffic now
sys.stdin.readline()           # ... and says when the wire is whole again
print("third", flush=True)
for port in ports:
    try:
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"Beautiful is better than?")
        print("third-answer", port, s.recv(64).decode(errors="replace"), flush=True)
        s.close()
    except OSError as e:
        print("third-answer", port, "error", e, flush=True)
print("done", flush=True)
'''


def run(*argv, check_status=True):
    return subprocess.run(argv, check=check_status, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def make_namespaces():
    for namespace in (SERVER_NS, CLIENT_NS):
        run("ip", "netns", "add", namespace)
    run("ip", "link", "add", f"{PREFIX}a", "netns", SERVER_NS, "type", "veth", "peer", "name", f"{PREFIX}b",
        "netns", CLIENT_NS)
    for namespace, device, address in ((SERVER_NS, f"{PREFIX}a", SERVER_ADDRESS),
                                       (CLIENT_NS, f"{PREFIX}b", CLIENT_ADDRESS)):
        run("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", device)
        run("ip", "-n", namespace, "link", "set", device, "up")
        run("ip", "-n", namespace, "link", "set", "lo", "up")


def remove_namespaces():
    for namespace in (SERVER_NS, CLIENT_NS):
        run("ip", "netns", "del", namespace, check_status=False)  # takes its end of the veth pair along


def cut_client_off(cut):
    """Drops every packet the client namespace sends or receives (or lets them through again)."""
    if cut:
        rules = ("add table inet vanish; "
                 "add chain inet vanish in { type filter hook input priority 0; policy drop; }; "
                 "add chain inet vanish out { type filter hook output priority 0; policy drop; }")
        run("ip", "netns", "exec", CLIENT_NS, "nft", rules)
    else:
        run("ip", "netns", "exec", CLIENT_NS, "nft", "delete table inet vanish")


def main(zen, archs):
    if os.geteuid() != 0:
        print("SKIP: network namespaces need root")
        return 77
    try:
        make_namespaces()
    except (OSError, subprocess.CalledProcessError) as error:
        remove_namespaces()
        print(f"SKIP: cannot make network namespaces: {getattr(error, 'stderr', '') or error}")
        return 77
    if run("ip", "netns", "exec", CLIENT_NS, "nft", "list ruleset", check_status=False).returncode != 0:
        remove_namespaces()
        print("SKIP: nft (the nftables package) cannot run here")
        return 77
    folder = tempfile.mkdtemp(prefix="zen-vanished-")
    servers, clients = {}, None
    try:
        ports = {arch: 7100 + index for index, arch in enumerate(archs)}
        for arch, port in ports.items():
            log = os.path.join(folder, f"{arch}.log")
            servers[arch] = (subprocess.Popen(
                ["ip", "netns", "exec", SERVER_NS, zen, "serve", SERVER_ADDRESS, "-p", str(port), "--arch", arch,
                 "--max-connections", "2", "--idle-timeout", "0", "--tcp-keepalive", "1", "--send-timeout", "2",
                 "--wait", "1", "--log-file", log], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), log)
        for arch, (process, log) in servers.items():
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "Listening at" not in read(log) and process.poll() is None:
                time.sleep(0.05)
            check("Listening at" in read(log), f"{arch}: not listening: {read(log)} {process.poll()}")
        clients = subprocess.Popen(["ip", "netns", "exec", CLIENT_NS, sys.executable, "-c", CLIENTS, SERVER_ADDRESS,
                                    *map(str, ports.values())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
        by_port = {port: arch for arch, port in ports.items()}
        for line in iter(clients.stdout.readline, ""):
            words = line.split()
            if words[0] == "idle-answer":
                check(words[2:] == ["Ugly."], f"{by_port[int(words[1])]}: idle client answered {words[2:]}")
            if words[0] == "vanish":
                break
        cut_client_off(True)
        cut_at = time.monotonic()
        # Both ends are logged by each server once its kernel gives up.
        waiting = dict(servers)
        while waiting and time.monotonic() < cut_at + BOUND:
            for arch, (process, log) in list(waiting.items()):
                text = read(log)
                if text.count("error: vanished: ") == 2:
                    print(f"{arch}: both reclaimed {time.monotonic() - cut_at:.1f} s after the cut", flush=True)
                    del waiting[arch]
            time.sleep(0.1)
        for arch in waiting:
            check(False, f"{arch}: not both reclaimed within {BOUND} s: {read(servers[arch][1])[-600:]}")
        cut_client_off(False)
        clients.stdin.write("go\n")
        clients.stdin.flush()
        for line in iter(clients.stdout.readline, ""):
            words = line.split()
            if words[0] == "third-answer":
                check(words[2:] == ["Ugly."], f"{by_port[int(words[1])]}: a client after the vanished two got "
                                              f"{' '.join(words[2:])}, not Ugly. (slots not given back)")
            if words[0] == "done":
                break
        clients.wait(timeout=30)
        for arch, (process, log) in servers.items():
            process.send_signal(signal.SIGTERM)
            check(process.wait(timeout=15) == 0, f"{arch}: exit status {process.returncode}")
            text = read(log)
            idle = re.search(r"Client \('198\.18\.7\.2', \d+\) error: vanished: no reply to keepalive probes "
                             r"\(--tcp-keepalive 1 s\)", text)
            unacked = re.search(r"Client \('198\.18\.7\.2', \d+\) error: vanished: an answer unacknowledged for 2 s "
                                r"\(--send-timeout\)", text)
            one_at_a_time = arch == "single"
            check(idle is not None, f"{arch}: no keepalive line in the log")
            check((unacked is None) == one_at_a_time, f"{arch}: {'an' if one_at_a_time else 'no'} unacknowledged line "
                                                      f"in the log")
            counters = re.findall(r"timeout_keepalive (\d+), timeout_unacknowledged (\d+)", text)
            want = ("2", "0") if one_at_a_time else ("1", "1")
            check(counters and counters[-1] == want, f"{arch}: counters at exit {counters}, not {want}")
            check("server busy" not in text, f"{arch}: someone was refused as busy")
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
            clients.wait()
        for process, _ in servers.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        remove_namespaces()
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:] or names()))
