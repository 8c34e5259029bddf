#!/usr/bin/env python3
"""A partitioned node of deploy/cluster: haproxy's checks take it out, and it comes back.

    cluster_partition.py ZEN OUT_DIR

Three epoll nodes behind haproxy (deploy/cluster/up, checks every 300 ms, down after 2 failures),
under `zen bench -r` through haproxy. Node 2 is cut off by an nft table in its own namespace that
drops every packet but loopback's (not a kill: its zen keeps running and keeps its connections).
Checked: haproxy marks it DOWN; the questions it held are counted by bench as named errors (or
sent again after a clean close), no answer is wrong, every question is answered, lost to a named
error or unanswered at the end; new connections go to the other nodes meanwhile. Then the table
goes: haproxy marks node 2 UP again, new connections reach it, and its zen's open connections
(SIGUSR1's `active`) fall back to 0. The figures (time to DOWN, to UP, to reclaim, bench's
errors by kind) go to OUT_DIR/cluster-partition.json. Exit 77 where namespaces cannot be made.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import netns  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from cluster_run import ClusterRun, fail  # noqa: E402

ZEN = os.path.abspath(sys.argv[1])
OUT = sys.argv[2]
NAME = f"zwp{os.getpid() % 100000}"
CLUSTER = ClusterRun(NAME, "zen-wire-cluster-")
STATE_ROOT, ENV, script, state, haproxy_stat = (
    CLUSTER.state_root, CLUSTER.env, CLUSTER.script, CLUSTER.state, CLUSTER.haproxy_stat)
CHECK_INTERVAL_MS = 300
VICTIM = 2
# haproxy's server-side connections to the node, closed while it was cut off, end when their
# FINs are retransmitted after the heal: the kernel's backoff after a partition of about 4 s
# retries at about 6.2 s after the close, so 10 s after the heal with room for a busy machine.
RECLAIM_BOUND_S = 10.0




def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]








def wait_status(server, wanted, since, limit):
    while True:
        status = haproxy_stat()[server]["status"]
        if status == wanted:
            return time.monotonic() - since
        if time.monotonic() - since > limit:
            fail(f"haproxy still has {server} {status}, not {wanted}, {limit:g} s on")
        time.sleep(0.02)


def ask(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"Explicit is better than?")
        return connection.recv(100)


def node_counters(index):
    record = state()["nodes"][str(index)]
    log_path = os.path.join(STATE_ROOT, NAME, f"node{index}.log")
    before = netns.read(log_path).count("Counters (SIGUSR1)")
    os.kill(record["pid"], signal.SIGUSR1)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [line for line in netns.read(log_path).splitlines() if "Counters (SIGUSR1)" in line]
        if len(lines) > before:
            return {k: int(v) for k, v in re.findall(r"([a-z_]+) (\d+)", lines[-1].split("Counters (SIGUSR1):", 1)[1])}
        time.sleep(0.05)
    fail(f"node{index} logged no counters after SIGUSR1")


def partition(namespace, on):
    if on:
        for command in ("add table inet zenwire",
                        "add chain inet zenwire input { type filter hook input priority 0 ; }",
                        "add chain inet zenwire output { type filter hook output priority 0 ; }",
                        'add rule inet zenwire input iifname != "lo" counter drop',
                        'add rule inet zenwire output oifname != "lo" counter drop'):
            netns.run("ip", "netns", "exec", namespace, "nft", command)
    else:
        listed = netns.run("ip", "netns", "exec", namespace, "nft", "-j", "list", "table", "inet", "zenwire").stdout
        dropped = sum(e["counter"]["packets"] for item in json.loads(listed)["nftables"]
                      for e in item.get("rule", {}).get("expr", []) if "counter" in e)
        netns.run("ip", "netns", "exec", namespace, "nft", "delete", "table", "inet", "zenwire")
        return dropped


def case():
    figures = {}
    port = free_port()
    script("up", "--zen", ZEN, "--nodes", "3", "--arch", "epoll", "--port", str(port), "--stats-port",
           str(free_port()), "--prometheus-port", "0", "--check-interval", str(CHECK_INTERVAL_MS))
    rate, duration = 150, 8
    bench = subprocess.Popen([ZEN, "bench", "127.0.0.1", "-p", str(port), "-r", str(rate), "-c", "6", "-d",
                              str(duration), "-w", "0", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    time.sleep(1.5)
    held = int(haproxy_stat()[f"node{VICTIM}"]["scur"])
    if held == 0:
        bench.kill()
        fail(f"node{VICTIM} holds no connection to lose")
    cut = time.monotonic()
    partition(f"{NAME}-node{VICTIM}", True)
    # Two failed checks 300 ms apart, each failing at its timeout (500 ms), plus a busy machine.
    figures["down_s"] = round(wait_status(f"node{VICTIM}", "DOWN", cut, 2 * 0.8 + 3), 2)
    print(f"haproxy took node{VICTIM} out {figures['down_s']} s after the partition", flush=True)
    # While it is out, new connections go to the others.
    before = int(haproxy_stat()[f"node{VICTIM}"]["stot"])
    for _ in range(6):
        if ask(port) != b"Implicit.":
            fail("a new connection while the node is out got no right answer")
    if int(haproxy_stat()[f"node{VICTIM}"]["stot"]) != before:
        fail(f"haproxy sent a new connection to node{VICTIM} while it was DOWN")
    time.sleep(max(0.0, cut + 3.5 - time.monotonic()))
    healed = time.monotonic()
    figures["partition_s"] = round(healed - cut, 2)
    figures["dropped_packets"] = partition(f"{NAME}-node{VICTIM}", False)
    figures["up_s"] = round(wait_status(f"node{VICTIM}", "UP", healed, 2 * 0.8 + 3), 2)
    print(f"haproxy has node{VICTIM} UP {figures['up_s']} s after the heal", flush=True)

    out, err = bench.communicate(timeout=duration + 30)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        fail(f"zen bench printed no JSON: {out}{err}")
    cycle = report["cycles"][0] if "cycles" in report else report
    lost = cycle["asked"] - cycle["requests"] - cycle["unanswered"]
    figures.update({key: cycle[key] for key in ("asked", "requests", "errors", "errors_by_kind", "unanswered",
                                                "retried", "reconnects")})
    figures["lost"] = lost
    figures["victim_connections"] = held
    print(f"zen bench: {json.dumps(figures)}", flush=True)
    if cycle["errors_by_kind"]["mismatch"]:
        fail("wrong answers through haproxy")
    if lost < 0 or lost > cycle["errors"]:
        fail(f"{lost} questions lost, {cycle['errors']} named errors")
    if cycle["requests"] == 0:
        fail("no answers at all")

    # Its zen lets go of the connections haproxy closed while it was cut off.
    deadline = healed + RECLAIM_BOUND_S
    while True:
        counters = node_counters(VICTIM)
        if counters["active"] == 0:
            figures["reclaim_after_heal_s"] = round(time.monotonic() - healed, 2)
            break
        if time.monotonic() > deadline:
            fail(f"node{VICTIM} still has {counters['active']} connections open {RECLAIM_BOUND_S:g} s after the heal")
        time.sleep(0.2)
    print(f"node{VICTIM}'s open connections back to 0 {figures['reclaim_after_heal_s']} s after the heal", flush=True)
    # Back: new connections reach it again. Six held open at once: leastconn gives it its share.
    before = int(haproxy_stat()[f"node{VICTIM}"]["stot"])
    held_open = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(6)]
    try:
        for connection in held_open:
            connection.sendall(b"Explicit is better than?")
            if connection.recv(100) != b"Implicit.":
                fail(f"no right answer through haproxy after node{VICTIM} came back")
        figures["new_connections_after_heal"] = int(haproxy_stat()[f"node{VICTIM}"]["stot"]) - before
    finally:
        for connection in held_open:
            connection.close()
    print(f"node{VICTIM} took {figures['new_connections_after_heal']} of 6 new connections", flush=True)
    if figures["new_connections_after_heal"] < 1:
        fail(f"node{VICTIM} took none of 6 new connections after it came back")
    script("down")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "cluster-partition.json"), "w") as f:
        json.dump(figures, f, indent=1)


def main():
    reason = netns.why_no_namespaces()
    if reason:
        print("SKIPPED: " + reason, flush=True)
        sys.exit(netns.SKIP)
    if not shutil.which("haproxy"):
        fail("haproxy is not installed (make test installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        case()
    finally:
        CLUSTER.remove()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
