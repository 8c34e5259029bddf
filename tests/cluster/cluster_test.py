#!/usr/bin/env python3
"""deploy/cluster/ as an operator runs it: nodes in network namespaces behind the real haproxy.

    cluster_test.py ZEN lifecycle   up/down, the PROXY trust, Prometheus, and every refusal of up
    cluster_test.py ZEN rolling ARCH   rolling restart under `zen bench -r`: zero errors
    cluster_test.py ZEN failover    SIGKILL of a node under load: haproxy takes it out, it rejoins
    cluster_test.py ZEN scaleout    a node added under load takes its share of new connections

Each case brings up its own cluster (its own name, so its own namespaces, and free ports on
127.0.0.1), with the state in a temporary directory, and checks after `down` that no namespace
and no process of it is left. Exit 77 (skipped, with the reason) where this machine cannot
create network namespaces.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from cluster_run import ClusterRun, fail  # noqa: E402

ZEN = os.path.abspath(sys.argv[1])
CASE = sys.argv[2]
ARCH = sys.argv[3] if len(sys.argv) > 3 else "epoll"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPTS = os.path.join(ROOT, "deploy", "cluster")
NAME = f"zt{CASE[:4]}{os.getpid() % 10000}"
CLUSTER = ClusterRun(NAME, "zen-cluster-test-")
STATE_ROOT, ENV, script, state, haproxy_stat = (
    CLUSTER.state_root, CLUSTER.env, CLUSTER.script, CLUSTER.state, CLUSTER.haproxy_stat)
CHECK_INTERVAL_MS = 300




def skip(reason):
    print("SKIPPED: " + reason, flush=True)
    sys.exit(77)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]






def our_namespaces():
    listed = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
    return sorted(line.split()[0] for line in listed.splitlines() if line.startswith(NAME + "-"))


def process_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def recorded_pids(recorded):
    pids = [record["pid"] for record in recorded["nodes"].values()]
    pids += [recorded[key]["pid"] for key in ("haproxy", "prometheus") if recorded.get(key)]
    return pids


def check_nothing_left(pids):
    left = our_namespaces()
    if left:
        fail(f"namespaces left after down: {left}")
    alive = [pid for pid in pids if process_alive(pid)]
    if alive:
        fail(f"processes left after down: {alive}")
    if os.path.exists(os.path.join(STATE_ROOT, NAME)):
        fail("the state directory is left after down")




def ask(port, questions=(b"Beautiful is better than?",)):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        answers = []
        for question in questions:
            connection.sendall(question)
            answers.append(connection.recv(100))
        return answers


def in_namespace(namespace, code, *arguments):
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", code, *arguments],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)


def start_bench(port, rate, connections, duration):
    return subprocess.Popen([ZEN, "bench", "127.0.0.1", "-p", str(port), "-r", str(rate), "-c", str(connections),
                             "-d", str(duration), "-w", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def bench_result(bench, what):
    out, err = bench.communicate(timeout=60)
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        fail(f"zen bench ({what}) printed no JSON: {out}{err}")
    cycle = report["cycles"][0] if "cycles" in report else report
    print(f"zen bench ({what}): {cycle['requests']} answered, {cycle['errors']} errors {cycle['errors_by_kind']}, "
          f"{cycle['reconnects']} reconnects, {cycle['retried']} sent again after a clean close", flush=True)
    return cycle


def up(*arguments):
    ports = {"port": free_port(), "stats": free_port(), "prometheus": free_port()}
    script("up", "--zen", ZEN, "--port", str(ports["port"]), "--stats-port", str(ports["stats"]),
           "--prometheus-port", str(ports["prometheus"]), "--check-interval", str(CHECK_INTERVAL_MS),
           *arguments)
    return ports


def down():
    pids = recorded_pids(state())
    script("down")
    check_nothing_left(pids)


def node_log(index):
    with open(os.path.join(STATE_ROOT, NAME, f"node{index}.log"), encoding="utf-8", errors="replace") as f:
        return f.read()


# --- the cases ---


def case_lifecycle():
    # Refusals that need no namespace: not root, and bad options.
    # (from a copy any user can read: the checkout may sit in a directory only root enters)
    with tempfile.TemporaryDirectory() as scratch:
        os.chmod(scratch, 0o755)
        for name in ("up", "cluster.py"):
            shutil.copy(os.path.join(SCRIPTS, name), scratch)
        nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 os.path.join(scratch, "up"), "--name", NAME], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if nobody.returncode != 1 or "needs root" not in nobody.stderr or len(nobody.stderr.splitlines()) != 1:
        fail(f"up as nobody: exit {nobody.returncode}, {nobody.stderr!r}")
    for bad, needle in [(["--nodes", "0"], "--nodes"), (["--nodes", "x"], "not a number"),
                        (["--port", "70000"], "port"), (["--nodes", "9", "--max-nodes", "8"], "--max-nodes")]:
        output = script("up", *bad, expect=2)
        if needle not in output:
            fail(f"up {' '.join(bad)} does not name the problem: {output!r}")

    # A node that cannot start: up fails with its log, and leaves nothing behind.
    output = script("up", "--zen", ZEN, "--nodes", "2", "--port", str(free_port()), "--prometheus-port", "0",
                    "--", "--aphorisms", "/nonexistent/aphorisms.txt", expect=1)
    if "node1's zen exited with status 2" not in output or "aphorisms" not in output:
        fail("up did not report the failing node with its log")
    check_nothing_left([])

    # A namespace of ours that no state records (what a crash of the machine's state leaves):
    # up refuses with one line naming it.
    subprocess.run(["ip", "netns", "add", f"{NAME}-lb"], check=True)
    try:
        output = script("up", "--zen", ZEN, expect=1)
        if f"namespace {NAME}-lb exists" not in output or len(output.strip().splitlines()) != 1:
            fail("up did not refuse a stray namespace in one line")
    finally:
        subprocess.run(["ip", "netns", "del", f"{NAME}-lb"], check=True)

    ports = up("--nodes", "3", "--arch", "epoll", "--scrape-interval", "1")
    recorded = state()
    if our_namespaces() != sorted([f"{NAME}-lb", f"{NAME}-node1", f"{NAME}-node2", f"{NAME}-node3"]):
        fail(f"namespaces after up: {our_namespaces()}")
    # The main namespace got no address of the benchmarking range.
    addresses = subprocess.run(["ip", "-o", "addr"], stdout=subprocess.PIPE, text=True).stdout
    if "198.18." in addresses:
        fail("up put a 198.18.0.0/15 address in the main namespace:\n" + addresses)

    # A second up on a cluster that is up: one line, nothing touched.
    output = script("up", "--zen", ZEN, expect=1)
    if "already up" not in output or len(output.strip().splitlines()) != 1:
        fail("a second up did not refuse in one line")

    # Through haproxy: the book's three questions, on 12 connections (leastconn spreads them).
    for _ in range(12):
        answers = ask(ports["port"], [b"Beautiful is better than?", b"Explicit is better than?",
                                      b"Simple is better than?"])
        if answers != [b"Ugly.", b"Implicit.", b"Complex."]:
            fail(f"answers through haproxy: {answers}")
    stat = haproxy_stat()
    totals = {name: int(stat[name]["stot"]) for name in ("node1", "node2", "node3")}
    print(f"connections per node: {totals}", flush=True)
    if sum(totals.values()) != 12 or min(totals.values()) < 3:
        fail(f"leastconn did not spread 12 connections over 3 nodes: {totals}")

    # Each node logs the real client (127.0.0.1, told by haproxy's PROXY v2 header) ...
    for index in (1, 2, 3):
        if not re.search(r"Client \('127\.0\.0\.1', \d+\) comes through proxy \('198\.18\.0\.1', \d+\)",
                         node_log(index)):
            fail(f"node{index} did not log the real client:\n" + node_log(index))
    # ... and believes a header only from haproxy's address: from node2's namespace, a header that
    # claims another client gets no answer, and node1 logs the refusal.
    lying = in_namespace(
        f"{NAME}-node2",
        "import socket, sys\n"
        "s = socket.create_connection(('198.18.0.11', 1060), timeout=5)\n"
        "s.sendall(b'PROXY TCP4 203.0.113.9 198.18.0.11 4000 1060\\r\\nBeautiful is better than?')\n"
        "print(repr(s.recv(100)))\n")
    if lying.returncode != 0 or "Ugly" in lying.stdout:
        fail(f"a header from an untrusted address was believed: {lying.stdout}{lying.stderr}")
    if "203.0.113.9" in node_log(1) or "198.18.0.12" not in node_log(1):
        fail("node1 did not refuse (and log) the untrusted header:\n" + node_log(1))

    # haproxy's own exporter, and Prometheus scraping every node and haproxy.
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['stats']}/metrics", timeout=5) as response:
        exported = response.read().decode()
    sessions = {server: int(value) for server, value in
                re.findall(r'^haproxy_server_sessions_total\{proxy="nodes",server="(node\d)"\} (\d+)$', exported, re.M)}
    if {server: sessions.get(server) for server in totals} != totals:
        fail(f"haproxy's exporter counts {sessions} sessions, its stats {totals}")
    query = f"http://127.0.0.1:{ports['prometheus']}/api/v1/query?query=up"
    deadline = time.monotonic() + 30
    targets = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(query, timeout=5) as response:
                result = json.load(response)["data"]["result"]
            targets = {sample["metric"]["instance"]: sample["value"][1] for sample in result}
        except OSError:
            pass
        if len(targets) == 4 and all(value == "1" for value in targets.values()):
            break
        time.sleep(0.5)
    print(f"Prometheus targets: {targets}", flush=True)
    expected = {"198.18.0.11:9100", "198.18.0.12:9100", "198.18.0.13:9100", "198.18.0.1:8405"}
    if set(targets) != expected or any(value != "1" for value in targets.values()):
        fail(f"Prometheus does not scrape every node and haproxy: {targets}")
    # The answers Prometheus sees add up to at least the 36 asked (health checks ask too).
    total_query = f"http://127.0.0.1:{ports['prometheus']}/api/v1/query?query=sum(zen_answers_total)"
    deadline = time.monotonic() + 15
    answered = 0.0
    while time.monotonic() < deadline and answered < 36:
        time.sleep(0.5)
        with urllib.request.urlopen(total_query, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        answered = float(result[0]["value"][1]) if result else 0.0
    if answered < 36:
        fail(f"Prometheus sees {answered} answers, fewer than the 36 asked")

    output = script("status")
    if len(re.findall(r"^node\d\s+198\.18\.0\.1\d\s+\d+ UP ", output, re.M)) != 3:
        fail("status does not list three running nodes UP")

    pids = recorded_pids(recorded)
    script("down")
    check_nothing_left(pids)
    output = script("down")
    if "nothing to remove" not in output:
        fail("a second down did not say there was nothing to remove")


def case_rolling():
    rate, duration = 600, 10
    ports = up("--nodes", "3", "--arch", ARCH, "--prometheus-port", "0")
    before = {key: record["pid"] for key, record in state()["nodes"].items()}
    bench = start_bench(ports["port"], rate=rate, connections=6, duration=duration)
    time.sleep(1)
    started = time.monotonic()
    script("rolling-restart")
    took = time.monotonic() - started
    result = bench_result(bench, "during the rolling restart")
    if took > duration - 1.5:
        fail(f"the rolling restart took {took:.1f} s, longer than the load that should cover it")
    after = {key: record["pid"] for key, record in state()["nodes"].items()}
    for key in before:
        if before[key] == after[key]:
            fail(f"node{key} was not restarted")
        log = node_log(int(key))
        if log.count("Stopped on SIGTERM") != 1 or log.count("Listening at") != 2:
            fail(f"node{key} was not stopped once and started twice:\n{log}")
    if result["errors"] != 0 or result["errors_by_kind"]["mismatch"] != 0:
        fail(f"errors during the rolling restart: {result['errors_by_kind']}")
    if result["requests"] < rate * duration * 0.95:
        fail(f"only {result['requests']} of {rate * duration} questions were answered")
    down()


def case_failover():
    # Each answer waits 10 ms on the node (--delay), so a question is in flight on a connection
    # about half the time and the kill is likely to cut some: 150 questions/s on 6 connections
    # keep each node's one loop half busy.
    rate, duration = 150, 6
    ports = up("--nodes", "3", "--arch", "epoll", "--prometheus-port", "0", "--", "--delay", "0.01")
    bench = start_bench(ports["port"], rate=rate, connections=6, duration=duration)
    time.sleep(1.5)
    on_victim = int(haproxy_stat()["node2"]["scur"])
    if on_victim == 0:
        fail("node2 has no connection to lose")
    killed = time.monotonic()
    script("kill-node", "2")
    # haproxy's checks (every 300 ms, down after 2 failures, each failure a refused connect)
    # take it out well within 2 intervals plus a check timeout, plus slack for a busy machine.
    limit = 2 * CHECK_INTERVAL_MS / 1000 + 0.5 + 2.5
    while haproxy_stat()["node2"]["status"] != "DOWN":
        if time.monotonic() - killed > limit:
            fail(f"haproxy still has node2 {haproxy_stat()['node2']['status']} after {limit:.1f} s")
        time.sleep(0.02)
    print(f"haproxy took node2 out {time.monotonic() - killed:.2f} s after the kill", flush=True)
    result = bench_result(bench, "across the kill")
    # bench keeps at most one question in flight per connection: what node2 can have taken with
    # it is one question per connection it held. Those are errors (reset) or sent again after a
    # clean close; every other question is answered.
    lost = result["errors"] + result["retried"]
    print(f"node2 held {on_victim} connections; {lost} questions were cut", flush=True)
    if lost > on_victim:
        fail(f"{lost} questions cut, more than the {on_victim} node2 could have had in flight")
    if result["errors_by_kind"]["mismatch"] != 0:
        fail("mismatched answers")
    if result["requests"] < rate * duration - on_victim - rate * 0.05:
        fail(f"only {result['requests']} answered of {rate * duration}")

    # Restarted, it rejoins: UP in haproxy, and new connections reach it.
    script("start-node", "2")
    if haproxy_stat()["node2"]["status"] != "UP":
        fail("node2 is not UP after start-node")
    before = int(haproxy_stat()["node2"]["stot"])
    for _ in range(6):
        if ask(ports["port"]) != [b"Ugly."]:
            fail("no answer through haproxy after node2 rejoined")
    if int(haproxy_stat()["node2"]["stot"]) - before < 2:
        fail("node2 took fewer than 2 of 6 new connections after it rejoined")
    down()


def case_scaleout():
    ports = up("--nodes", "2", "--arch", "epoll", "--prometheus-port", "0")
    steady = start_bench(ports["port"], rate=400, connections=4, duration=6)
    time.sleep(1)
    script("add-node")
    if set(state()["nodes"]) != {"1", "2", "3"}:
        fail(f"nodes after add-node: {sorted(state()['nodes'])}")
    # New load after the scale-out: leastconn sends new connections to the node with fewest,
    # the new one, until it holds as many as the others.
    newcomers = start_bench(ports["port"], rate=300, connections=6, duration=2)
    second = bench_result(newcomers, "new connections after add-node")
    first = bench_result(steady, "steady load across add-node")
    stat = haproxy_stat()
    totals = {name: int(stat[name]["stot"]) for name in ("node1", "node2", "node3")}
    print(f"connections per node: {totals}", flush=True)
    if totals["node3"] < 2:
        fail(f"node3 took {totals['node3']} of the 6 new connections: less than its share of 2")
    log = node_log(3)
    answered = sum(1 for _ in re.finditer(r"Client \('127\.0\.0\.1'", log))
    if answered < 2:
        fail("node3's log shows no client of the new load:\n" + log)
    for result in (first, second):
        if result["errors"] != 0 or result["errors_by_kind"]["mismatch"] != 0:
            fail(f"errors across the scale-out: {result['errors_by_kind']}")
    down()


def main():
    if os.geteuid() != 0:
        skip("needs root to create network namespaces")
    if not shutil.which("haproxy"):
        fail("haproxy is not installed (make test installs it)")
    probe = subprocess.run(["ip", "netns", "add", NAME + "-probe"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        skip("this machine cannot create network namespaces: " + probe.stderr.strip())
    subprocess.run(["ip", "netns", "del", NAME + "-probe"], check=True)
    try:
        {"lifecycle": case_lifecycle, "rolling": case_rolling, "failover": case_failover,
         "scaleout": case_scaleout}[CASE]()
    finally:
        CLUSTER.remove()
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
