#!/usr/bin/python3
"""A zen cluster on one machine: one network namespace per node, haproxy in front on loopback.

    cluster.py up [--nodes N] [--arch ARCH] ...   bring a cluster up (root)
    cluster.py down                               take it down: what `up` recorded, nothing else
    cluster.py status                             each node: haproxy's view and zen's counters
    cluster.py rolling-restart                    drain, restart and put back every node in turn
    cluster.py kill-node N                        SIGKILL node N (a crash, for failover drills)
    cluster.py start-node N                       start node N's zen again and wait until haproxy has it
    cluster.py add-node                           a new node under load (scale out)

The layout (docs/scaling.md): a namespace NAME-lb holds a bridge with haproxy's side of the
network, 198.18.0.1/24 (the benchmarking range, RFC 2544, never routed out). Node i lives in
namespace NAME-nodei at 198.18.0.(10+i), joined to the bridge by a veth pair, and runs
`zen serve` with the PROXY protocol, trusting only 198.18.0.1, and `--metrics` on port 9100.
haproxy runs in the main namespace: it listens on 127.0.0.1:PORT and opens its connections to
the nodes from inside NAME-lb (haproxy's `namespace` keyword), so the main namespace gets no new
link or address. Prometheus runs in NAME-lb, scraping every node and haproxy's own exporter;
haproxy makes its web interface reachable on 127.0.0.1:PROMETHEUS-PORT.

Everything `up` creates is written to the state file (/run/zen-cluster/NAME/state.json) the
moment it exists, so `down` removes exactly that, even after an `up` that failed half way, and
says so when there is nothing to remove.
"""
import argparse
import csv
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

PROGRAM = "zen-cluster"
STATE_ROOT = os.environ.get("ZEN_CLUSTER_STATE", "/run/zen-cluster")
SUBNET = ipaddress.ip_network("198.18.0.0/24")
LB_ADDRESS = "198.18.0.1"
ZEN_PORT = 1060       # every node's service port, inside its own namespace
METRICS_PORT = 9100   # every node's --metrics port
EXPORTER_PORT = 8405  # haproxy's Prometheus exporter, in NAME-lb
PROMETHEUS_PORT = 9090  # Prometheus, in NAME-lb
MAX_NODES = 200


class ClusterError(Exception):
    """A failure to report in one line (and, if given, the log that explains it)."""

    def __init__(self, message, log=""):
        super().__init__(message)
        self.log = log


def node_address(index):
    return str(SUBNET.network_address + 10 + index)


def run(*command, check=True):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and result.returncode != 0:
        raise ClusterError(f"{' '.join(command)}: {result.stderr.strip() or 'exit ' + str(result.returncode)}")
    return result


def namespaces():
    result = run("ip", "netns", "list", check=False)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def process_start_time(pid):
    """The start time of a live (not zombie) process, to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] == "Z":
        return None
    return fields[19]


def alive(record):
    return record is not None and record.get("pid") and process_start_time(record["pid"]) == record["start"]


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def find_zen(explicit):
    if explicit:
        path = explicit
    else:
        checkout = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "zen")
        path = shutil.which("zen") or checkout
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        raise ClusterError(f"no zen executable at {path} (build it with make build, or pass --zen PATH)")
    return path


class Cluster:
    def __init__(self, name):
        self.name = name
        self.directory = os.path.join(STATE_ROOT, name)
        self.state_path = os.path.join(self.directory, "state.json")
        self.state = None

    # --- the state file: everything up created, written as soon as it exists ---

    def exists(self):
        return os.path.exists(self.state_path)

    def load(self):
        if not self.exists():
            raise ClusterError(f"no cluster named {self.name!r} is up (no {self.state_path})")
        with open(self.state_path) as f:
            self.state = json.load(f)

    def save(self):
        temporary = self.state_path + ".new"
        with open(temporary, "w") as f:
            json.dump(self.state, f, indent=2)
        os.replace(temporary, self.state_path)

    @property
    def lb_namespace(self):
        return f"{self.name}-lb"

    def node_namespace(self, index):
        return f"{self.name}-node{index}"

    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    # --- processes ---

    def spawn(self, key, command, log_path):
        """Starts a detached process, records it under key, and returns its record."""
        log = open(log_path, "ab")
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True)
        log.close()
        start = None
        wait_until(lambda: process_start_time(process.pid) is not None or process.poll() is not None, 2, 0.005)
        start = process_start_time(process.pid)
        record = {"pid": process.pid, "start": start, "command": command, "log": log_path}
        return process, record

    @staticmethod
    def stop_process(record, sig=signal.SIGTERM, timeout=10.0):
        """Signals a recorded process (only if it is still the one recorded) and waits for its end."""
        if not alive(record):
            return
        try:
            os.kill(record["pid"], sig)
        except ProcessLookupError:
            return
        if not wait_until(lambda: not alive(record), timeout):
            try:
                os.kill(record["pid"], signal.SIGKILL)
            except ProcessLookupError:
                return
            wait_until(lambda: not alive(record), 5)

    # --- haproxy's runtime API ---

    def haproxy(self, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(self.path("haproxy.sock"))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self):
        """haproxy's view of each node: {index: {status, scur, stot, ...}} from `show stat`."""
        text = self.haproxy("show stat")
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        result = {}
        for row in rows:
            if row.get("pxname") == "nodes" and row.get("svname", "").startswith("node"):
                result[int(row["svname"][4:])] = row
        return result

    def wait_server(self, index, wanted, timeout):
        last = {}

        def check():
            last.update(self.servers()[index])
            return last["status"] == wanted  # not "UP 1/2" (going down) nor "DOWN 1/2" (going up)

        if not wait_until(check, timeout, 0.05):
            raise ClusterError(f"haproxy still says node{index} is {last['status']}, not {wanted}, after {timeout:g} s "
                               f"(last check: {last.get('check_status')} {last.get('last_chk')})")

    # --- nodes ---

    def node_command(self, index):
        address = node_address(index)
        state = self.state
        return ["ip", "netns", "exec", self.node_namespace(index), state["zen"], "serve", address,
                "-p", str(ZEN_PORT), "--arch", state["arch"], "--proxy-protocol",
                "--trusted-proxy", LB_ADDRESS + "/32", "--metrics", f"{address}:{METRICS_PORT}",
                "--drain-timeout", str(state["drain_timeout"]), *state["zen_args"]]

    def create_node_network(self, index):
        namespace = self.node_namespace(index)
        run("ip", "netns", "add", namespace)
        self.state["namespaces"].append(namespace)
        self.save()
        # The veth pair: veth<i> on the bridge in NAME-lb, eth0 in the node's namespace.
        host_side = f"veth{index}"
        run("ip", "-n", self.lb_namespace, "link", "add", host_side, "type", "veth", "peer", "name", "eth0",
            "netns", namespace)
        run("ip", "-n", self.lb_namespace, "link", "set", host_side, "master", "br0", "up")
        run("ip", "-n", namespace, "link", "set", "lo", "up")
        run("ip", "-n", namespace, "addr", "add", f"{node_address(index)}/{SUBNET.prefixlen}", "dev", "eth0")
        run("ip", "-n", namespace, "link", "set", "eth0", "up")

    def start_node(self, index):
        """Starts node index's zen and waits for its "Listening at" line; raises with its log if it fails."""
        log_path = self.path(f"node{index}.log")
        offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        process, record = self.spawn(f"node{index}", self.node_command(index), log_path)
        self.state["nodes"][str(index)] = record
        self.save()

        def log_since():
            with open(log_path, encoding="utf-8", errors="replace") as f:
                f.seek(offset)
                return f.read()

        if not wait_until(lambda: "Listening at" in log_since() or process.poll() is not None, 15):
            raise ClusterError(f"node{index}'s zen did not start listening within 15 s", log_since())
        if process.poll() is not None:
            raise ClusterError(f"node{index}'s zen exited with status {process.returncode} at start-up", log_since())
        return record

    def stop_node(self, index, sig=signal.SIGTERM):
        record = self.state["nodes"].get(str(index))
        timeout = self.state["drain_timeout"] + 5
        self.stop_process(record, sig, timeout)

    def write_targets(self):
        """Prometheus's file_sd list of nodes: rewritten on scale out, read again by Prometheus."""
        targets = [{"targets": [f"{node_address(int(i))}:{METRICS_PORT}"], "labels": {"node": f"node{i}"}}
                   for i in sorted(self.state["nodes"], key=int)]
        temporary = self.path("nodes.json.new")
        with open(temporary, "w") as f:
            json.dump(targets, f)
        os.replace(temporary, self.path("nodes.json"))

    # --- configuration files ---

    def haproxy_config(self):
        s = self.state
        inter = s["check_interval_ms"]
        lines = [
            "# Written by deploy/cluster/cluster.py up; see docs/scaling.md for each setting.",
            "global",
            f"    maxconn {s['maxconn']}",
            f"    stats socket {self.path('haproxy.sock')} mode 600 level admin",
            "",
            "defaults",
            "    mode tcp",
            "    timeout connect 1s",
            f"    timeout check {max(inter, 500)}ms",
            "    timeout client 310s",
            "    timeout server 310s",
            "    # A connection refused by a node that just died or stopped is tried once more, on",
            "    # another node, before the client hears of it.",
            "    retries 2",
            "    option redispatch 1",
            "",
            "frontend zen",
            f"    bind 127.0.0.1:{s['port']}",
            "    default_backend nodes",
            "",
            "backend nodes",
            "    balance leastconn",
            "    # A check asks a real question on the service port and expects its answer, then asks the",
            "    # node's /ready: the first proves it answers, the second turns false the moment a",
            "    # drain begins (SIGTERM, SIGQUIT), before the listener goes.",
            "    option tcp-check",
            "    tcp-check connect default linger",
            '    tcp-check send "Beautiful is better than?"',
            "    tcp-check expect string Ugly.",
            f"    tcp-check connect port {METRICS_PORT} linger",
            '    tcp-check send "GET /ready HTTP/1.0\\r\\n\\r\\n"',
            '    tcp-check expect rstring "^HTTP/1\\.[01] 200"',
            f"    default-server send-proxy-v2 check check-send-proxy inter {inter}ms fall 2 rise 2",
            "    # `namespace` on each server line: haproxy 2.6 ignores it on default-server (its issue",
            "    # 2038), which would send the nodes' traffic out of the main namespace's default route.",
        ]
        for index in range(1, s["max_nodes"] + 1):
            disabled = "" if str(index) in s["nodes"] else " disabled"
            lines.append(f"    server node{index} {node_address(index)}:{ZEN_PORT} namespace {self.lb_namespace}{disabled}")
        lines += [
            "",
            "frontend stats",
            "    mode http",
            f"    bind 127.0.0.1:{s['stats_port']}",
            f"    bind {LB_ADDRESS}:{EXPORTER_PORT} namespace {self.lb_namespace}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    stats enable",
            "    stats uri /",
            "    timeout client 10s",
        ]
        if s["prometheus_port"]:
            lines += [
                "",
                "listen prometheus",
                f"    bind 127.0.0.1:{s['prometheus_port']}",
                f"    server prometheus 127.0.0.1:{PROMETHEUS_PORT} namespace {self.lb_namespace}",
            ]
        return "\n".join(lines) + "\n"

    def prometheus_config(self):
        interval = self.state["scrape_interval"]
        return (
            "# Written by deploy/cluster/cluster.py up.\n"
            "global:\n"
            f"  scrape_interval: {interval}s\n"
            f"  evaluation_interval: {interval}s\n"
            "scrape_configs:\n"
            "  - job_name: zen\n"
            "    file_sd_configs:\n"
            f"      - files: ['{self.path('nodes.json')}']\n"
            "        refresh_interval: 1s\n"
            "  - job_name: haproxy\n"
            "    static_configs:\n"
            f"      - targets: ['{LB_ADDRESS}:{EXPORTER_PORT}']\n"
        )

    # --- the commands ---

    def up(self, options):
        if os.geteuid() != 0:
            raise ClusterError("up needs root (it creates network namespaces): run it with sudo")
        if self.exists():
            raise ClusterError(f"a cluster named {self.name!r} is already up or half up: "
                               f"run deploy/cluster/down{'' if self.name == 'zen' else ' --name ' + self.name} first")
        ours = sorted(n for n in namespaces() if n == self.lb_namespace or n.startswith(self.name + "-node"))
        if ours:
            raise ClusterError(f"namespace {ours[0]} exists but no cluster state records it "
                               f"(remove it with: ip netns del {ours[0]})")
        if not shutil.which("haproxy"):
            raise ClusterError("haproxy is not installed (apt-get install haproxy)")
        if options.prometheus_port and not shutil.which("prometheus"):
            raise ClusterError("prometheus is not installed (apt-get install prometheus, or --prometheus-port 0)")
        os.makedirs(self.directory, mode=0o700)
        self.state = {
            "name": self.name, "zen": find_zen(options.zen), "arch": options.arch, "port": options.port,
            "stats_port": options.stats_port, "prometheus_port": options.prometheus_port,
            "max_nodes": options.max_nodes, "maxconn": options.maxconn,
            "check_interval_ms": options.check_interval, "scrape_interval": options.scrape_interval,
            "drain_timeout": options.drain_timeout, "zen_args": options.zen_args,
            "namespaces": [], "nodes": {}, "haproxy": None, "prometheus": None,
        }
        self.save()
        try:
            run("ip", "netns", "add", self.lb_namespace)
            self.state["namespaces"].append(self.lb_namespace)
            self.save()
            lb = self.lb_namespace
            run("ip", "-n", lb, "link", "set", "lo", "up")
            run("ip", "-n", lb, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", lb, "addr", "add", f"{LB_ADDRESS}/{SUBNET.prefixlen}", "dev", "br0")
            run("ip", "-n", lb, "link", "set", "br0", "up")
            for index in range(1, options.nodes + 1):
                self.create_node_network(index)
                self.start_node(index)
            self.start_haproxy()
            if options.prometheus_port:
                self.start_prometheus()
            for index in range(1, options.nodes + 1):
                self.wait_server(index, "UP", 10 + 3 * options.check_interval / 1000)
        except BaseException:
            self.down(quiet=True)
            raise
        print(f"{PROGRAM}: {options.nodes} nodes ({options.arch}) behind haproxy at 127.0.0.1:{options.port}; "
              f"haproxy stats at http://127.0.0.1:{options.stats_port}/"
              + (f"; Prometheus at http://127.0.0.1:{options.prometheus_port}/" if options.prometheus_port else ""))

    def start_haproxy(self):
        config = self.path("haproxy.cfg")
        with open(config, "w") as f:
            f.write(self.haproxy_config())
        check = run("haproxy", "-c", "-q", "-f", config, check=False)
        if check.returncode != 0:
            raise ClusterError("haproxy rejects its configuration", check.stdout + check.stderr)
        log_path = self.path("haproxy.log")
        process, record = self.spawn("haproxy", ["haproxy", "-db", "-f", config], log_path)
        self.state["haproxy"] = record
        self.save()
        if not wait_until(lambda: os.path.exists(self.path("haproxy.sock")) or process.poll() is not None, 10):
            raise ClusterError("haproxy did not open its runtime socket within 10 s", open(log_path).read())
        if process.poll() is not None:
            raise ClusterError(f"haproxy exited with status {process.returncode}", open(log_path).read())
        wait_until(lambda: self.try_haproxy(), 5)

    def try_haproxy(self):
        try:
            self.haproxy("show info")
            return True
        except OSError:
            return False

    def start_prometheus(self):
        self.write_targets()
        config = self.path("prometheus.yml")
        with open(config, "w") as f:
            f.write(self.prometheus_config())
        command = ["ip", "netns", "exec", self.lb_namespace, "prometheus", f"--config.file={config}",
                   f"--storage.tsdb.path={self.path('prometheus-data')}",
                   f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--web.enable-lifecycle"]
        process, record = self.spawn("prometheus", command, self.path("prometheus.log"))
        self.state["prometheus"] = record
        self.save()

    def down(self, quiet=False):
        if self.state is None:
            if not self.exists():
                if not quiet:
                    print(f"{PROGRAM}: no cluster named {self.name!r} is up: nothing to remove")
                return
            self.load()
        s = self.state
        for key in ("prometheus", "haproxy"):
            self.stop_process(s.get(key))
        for record in s["nodes"].values():
            self.stop_process(record, signal.SIGTERM, s["drain_timeout"] + 5)
        failures = []
        for namespace in reversed(s["namespaces"]):
            if namespace in namespaces():
                result = run("ip", "netns", "del", namespace, check=False)
                if result.returncode != 0:
                    failures.append(f"{namespace}: {result.stderr.strip()}")
        if failures:
            raise ClusterError("could not remove namespace " + "; ".join(failures) + f" (state kept in {self.directory})")
        shutil.rmtree(self.directory)
        if not quiet:
            print(f"{PROGRAM}: cluster {self.name!r} is down: {len(s['nodes'])} nodes, haproxy"
                  + (", Prometheus" if s.get("prometheus") else "") + f" and {len(s['namespaces'])} namespaces removed")

    def status(self):
        self.load()
        servers = self.servers()
        print(f"{'node':<7} {'address':<14} {'pid':>7} {'haproxy':<12} {'now':>5} {'total':>7} {'answers':>9}")
        for key in sorted(self.state["nodes"], key=int):
            index = int(key)
            record = self.state["nodes"][key]
            row = servers.get(index, {})
            answers = self.node_metric(index, "zen_answers_total")
            print(f"node{index:<3} {node_address(index):<14} {record['pid'] if alive(record) else '-':>7} "
                  f"{row.get('status', '?'):<12} {row.get('scur', '?'):>5} {row.get('stot', '?'):>7} "
                  f"{'-' if answers is None else int(answers):>9}")

    def in_lb(self, *arguments):
        """Runs this script's inner command in NAME-lb, haproxy's side of the network."""
        return subprocess.run(["ip", "netns", "exec", self.lb_namespace, sys.executable, os.path.abspath(__file__),
                               *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def probe(self, index):
        """None if node index answers what haproxy's check asks, else what failed."""
        result = self.in_lb(INNER_PROBE, node_address(index))
        return None if result.returncode == 0 else (result.stderr.strip() or f"exit {result.returncode}")

    def put_back(self, index):
        """Puts a (re)started node into haproxy once it answers the way haproxy's check asks."""
        problem = self.probe(index)
        if problem is not None:
            raise ClusterError(f"node{index} started but does not answer haproxy's check: {problem}")
        self.haproxy(f"set server nodes/node{index} state ready")
        self.wait_server(index, "UP", 10 + 3 * self.state["check_interval_ms"] / 1000)

    def node_metrics(self, index):
        """Node index's /metrics as {name{labels}: value}; None if it cannot be read."""
        result = self.in_lb(INNER_METRICS, node_address(index))
        if result.returncode != 0:
            return None
        values = {}
        for line in result.stdout.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def node_metric(self, index, name):
        values = self.node_metrics(index)
        return None if values is None else values.get(name)

    def restart_node(self, index):
        """Drains node index out of haproxy, stops it with SIGTERM, starts it again and puts it back."""
        self.haproxy(f"set server nodes/node{index} state maint")
        self.stop_node(index)
        record = self.state["nodes"][str(index)]
        if alive(record):
            raise ClusterError(f"node{index}'s zen (pid {record['pid']}) did not exit after SIGTERM")
        self.start_node(index)
        self.put_back(index)

    def rolling_restart(self):
        self.load()
        for key in sorted(self.state["nodes"], key=int):
            started = time.monotonic()
            self.restart_node(int(key))
            print(f"{PROGRAM}: node{key} drained, restarted and back in haproxy in {time.monotonic() - started:.1f} s",
                  flush=True)

    def kill_node(self, index):
        self.load()
        record = self.state["nodes"].get(str(index))
        if not alive(record):
            raise ClusterError(f"node{index} is not running")
        os.kill(record["pid"], signal.SIGKILL)
        wait_until(lambda: not alive(record), 5)
        print(f"{PROGRAM}: node{index} (pid {record['pid']}) killed with SIGKILL", flush=True)

    def start_again(self, index):
        self.load()
        record = self.state["nodes"].get(str(index))
        if record is None:
            raise ClusterError(f"there is no node{index} (add one with add-node)")
        if alive(record):
            raise ClusterError(f"node{index} is already running (pid {record['pid']})")
        self.start_node(index)
        self.put_back(index)
        print(f"{PROGRAM}: node{index} is back in haproxy", flush=True)

    def add_node(self):
        self.load()
        index = max((int(k) for k in self.state["nodes"]), default=0) + 1
        if index > self.state["max_nodes"]:
            raise ClusterError(f"haproxy was configured for {self.state['max_nodes']} nodes (up --max-nodes)")
        self.create_node_network(index)
        self.start_node(index)
        self.put_back(index)
        if self.state.get("prometheus"):
            self.write_targets()
        print(f"{PROGRAM}: node{index} at {node_address(index)} added and UP in haproxy", flush=True)


INNER_PROBE = "inner-probe"
INNER_METRICS = "inner-metrics"
PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0x00, 0x00])


def inner_probe(address):
    """haproxy's check, run inside NAME-lb: a question behind a PROXY v2 LOCAL header gets its
    answer, and GET /ready says 200."""
    try:
        with socket.create_connection((address, ZEN_PORT), timeout=2) as connection:
            connection.sendall(PROXY_V2_LOCAL + b"Beautiful is better than?")
            answer = connection.recv(100)
        if answer != b"Ugly.":
            return f"the question got {answer!r}"
        with socket.create_connection((address, METRICS_PORT), timeout=2) as connection:
            connection.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
            status = connection.recv(200).split(b"\r\n")[0].decode(errors="replace")
        if status.split()[1:2] != ["200"]:
            return f"/ready said {status!r}"
    except OSError as error:
        return str(error)
    return None


def inner_metrics(address):
    import urllib.request
    with urllib.request.urlopen(f"http://{address}:{METRICS_PORT}/metrics", timeout=2) as response:
        sys.stdout.write(response.read().decode())


def positive(kind, upper=None):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number")
        if value <= 0 or (upper is not None and value > upper):
            raise argparse.ArgumentTypeError(f"{text} is out of range (1..{upper})" if upper else f"{text} must be above 0")
        return value
    return parse


def port(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0..65535)")
    return value


def main(argv):
    if argv[:1] == [INNER_PROBE]:
        problem = inner_probe(argv[1])
        if problem:
            print(problem, file=sys.stderr)
        return 1 if problem else 0
    if argv[:1] == [INNER_METRICS]:
        inner_metrics(argv[1])
        return 0
    parser = argparse.ArgumentParser(prog=PROGRAM, description="A zen cluster on one machine: nodes in network "
                                     "namespaces behind haproxy (docs/scaling.md). Needs root.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default="zen", help="cluster name, the prefix of its namespaces (default zen)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", parents=[common], help="bring a cluster up")
    up.add_argument("--nodes", type=positive(int, MAX_NODES), default=3, help="nodes to start (default 3)")
    up.add_argument("--max-nodes", type=positive(int, MAX_NODES), default=8,
                    help="nodes haproxy has room for, for add-node (default 8)")
    up.add_argument("--arch", default="epoll", help="zen serve --arch of every node (default epoll)")
    up.add_argument("--port", type=port, default=1060, help="haproxy's port on 127.0.0.1 (default 1060)")
    up.add_argument("--stats-port", type=port, default=8404,
                    help="haproxy's stats page and /metrics on 127.0.0.1 (default 8404)")
    up.add_argument("--prometheus-port", type=port, default=9090,
                    help="Prometheus on 127.0.0.1 (default 9090; 0: no Prometheus)")
    up.add_argument("--check-interval", type=positive(int), default=1000, metavar="MS",
                    help="haproxy's health check interval in ms (default 1000; down after 2 failures)")
    up.add_argument("--scrape-interval", type=positive(int), default=5, metavar="S",
                    help="Prometheus scrape interval in seconds (default 5)")
    up.add_argument("--drain-timeout", type=positive(float), default=5, metavar="S",
                    help="every node's zen serve --drain-timeout (default 5)")
    up.add_argument("--maxconn", type=positive(int), default=400,
                    help="haproxy's global maxconn (default 400: two descriptors each within 1024)")
    up.add_argument("--zen", help="the zen executable (default: zen on PATH, else the checkout's build/zen)")
    up.add_argument("zen_args", nargs="*", metavar="-- ZEN-SERVE-OPTIONS",
                    help="more options for every node's zen serve, after --")
    commands.add_parser("down", parents=[common], help="take the cluster down: what up recorded, nothing else")
    commands.add_parser("status", parents=[common], help="every node: haproxy's status, its connections and zen's answers")
    commands.add_parser("rolling-restart", parents=[common], help="drain, restart and put back each node in turn")
    kill = commands.add_parser("kill-node", parents=[common], help="SIGKILL one node's zen")
    kill.add_argument("index", type=positive(int, MAX_NODES), metavar="N")
    start = commands.add_parser("start-node", parents=[common], help="start a stopped node again and wait until haproxy has it")
    start.add_argument("index", type=positive(int, MAX_NODES), metavar="N")
    commands.add_parser("add-node", parents=[common], help="start one more node and add it to haproxy")
    options = parser.parse_args(argv)
    if not options.name.replace("-", "").isalnum() or len(options.name) > 20:
        parser.error(f"--name {options.name!r}: letters, digits and '-', at most 20")
    if options.command == "up" and options.nodes > options.max_nodes:
        up.error(f"--nodes {options.nodes} is more than --max-nodes {options.max_nodes}")
    if options.command != "up" and os.geteuid() != 0:
        print(f"{PROGRAM}: {options.command} needs root (the cluster's namespaces and processes are root's)",
              file=sys.stderr)
        return 1
    cluster = Cluster(options.name)
    try:
        if options.command == "up":
            cluster.up(options)
        elif options.command == "down":
            cluster.down()
        elif options.command == "status":
            cluster.status()
        elif options.command == "rolling-restart":
            cluster.rolling_restart()
        elif options.command == "kill-node":
            cluster.kill_node(options.index)
        elif options.command == "start-node":
            cluster.start_again(options.index)
        elif options.command == "add-node":
            cluster.add_node()
    except ClusterError as error:
        print(f"{PROGRAM} {options.command}: {error}", file=sys.stderr)
        if error.log:
            sys.stderr.write(error.log if error.log.endswith("\n") else error.log + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
