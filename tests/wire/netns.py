"""A two-host wire for the fault tests: network namespaces joined by a veth pair.

    with Wire("loss") as wire:            # zw-<pid>-<n>-srv and zw-<pid>-<n>-cli
        server = wire.serve(zen, "--arch", "epoll")
        wire.nft_srv("ip saddr {cli} numgen random mod 100 < 5 drop")   # the table zenwire
        result = wire.bench(zen, rate=400, connections=8, seconds=3)

The server's namespace holds 198.18.N.1/24, the client's 198.18.N.2/24 (and 198.18.N.3, an
address a fault can spare: a "new client" after the peer at .2 vanished). N is drawn from the pid
and a counter, so two tests in parallel never share a name; the namespaces are their own
networks, with no route out. Everything started here is ended by its pid, and deleting the
namespaces takes their links, qdiscs and nft tables with them: on close, also when a test fails.
A start sweeps namespaces of this prefix whose pid is gone (a test killed by ctest's timeout).
"""
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

PREFIX = "zw-"
SKIP = 77
_counter = itertools.count()


def run(*command, check=True, timeout=20):
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def process_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def sweep_stale():
    """Deletes zw-<pid>-... namespaces whose pid no longer runs, and what runs in them; returns their names."""
    listed = run("ip", "netns", "list", check=False).stdout
    removed = []
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.match(rf"^{PREFIX}(\d+)-", name)
        if match and not process_alive(int(match.group(1))):
            # What a dead run started there is still ours to end (by its pid) before the namespace goes.
            for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", name, check=False)
            removed.append(name)
    return removed


def why_no_namespaces():
    """None if this process can build a wire here, else the one-line reason."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "nft", "tc"):
        if run("sh", "-c", f"command -v {tool}", check=False).returncode != 0:
            return f"{tool} is not installed (make test installs nftables and iproute2)"
    name = f"{PREFIX}{os.getpid()}-probe"
    probe = run("ip", "netns", "add", name, check=False)
    if probe.returncode != 0:
        return "this machine cannot create network namespaces: " + probe.stderr.strip()
    try:
        veth = run("ip", "-n", name, "link", "add", "zwprobe0", "type", "veth", "peer", "name", "zwprobe1",
                   check=False)
        if veth.returncode != 0:
            return "this kernel cannot make a veth pair: " + veth.stderr.strip()
        nft = run("ip", "netns", "exec", name, "nft", "add", "table", "inet", "zenwire", check=False)
        if nft.returncode != 0:
            return "nftables is not usable in a namespace: " + nft.stderr.strip()
    finally:
        run("ip", "netns", "del", name, check=False)
    return None


def netem_available():
    """True where the kernel has the netem qdisc (checked in a namespace of our own)."""
    name = f"{PREFIX}{os.getpid()}-netem"
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        return run("ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                   check=False).returncode == 0
    finally:
        run("ip", "netns", "del", name, check=False)


class Wire:
    def __init__(self, tag=""):
        number = next(_counter)
        self.subnet = 1 + (os.getpid() * 7 + number * 31) % 250
        base = f"{PREFIX}{os.getpid()}-{number}"
        self.srv, self.cli = base + "-srv", base + "-cli"
        self.srv_ip, self.cli_ip, self.spare_ip = (f"198.18.{self.subnet}.{host}" for host in (1, 2, 3))
        self.srv_link, self.cli_link = "zwsrv0", "zwcli0"
        self.tag = tag
        self.processes = []
        self.counted = {}
        self.scratch = tempfile.mkdtemp(prefix="zen-wire-")

    # --- building and tearing down ---

    def __enter__(self):
        try:
            run("ip", "netns", "add", self.srv)
            run("ip", "netns", "add", self.cli)
            run("ip", "-n", self.srv, "link", "add", self.srv_link, "type", "veth", "peer", "name", self.cli_link,
                "netns", self.cli)
            for namespace, link, address in ((self.srv, self.srv_link, self.srv_ip),
                                             (self.cli, self.cli_link, self.cli_ip)):
                run("ip", "-n", namespace, "addr", "add", address + "/24", "dev", link)
                run("ip", "-n", namespace, "link", "set", link, "up")
                run("ip", "-n", namespace, "link", "set", "lo", "up")
            run("ip", "-n", self.cli, "addr", "add", self.spare_ip + "/24", "dev", self.cli_link)
            for namespace in (self.srv, self.cli):
                self.nft(namespace, "add table inet zenwire")
                for hook in ("input", "output"):
                    self.nft(namespace, f"add chain inet zenwire {hook} {{ type filter hook {hook} priority 0; }}")
            self.wait_reachable()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for namespace in (self.srv, self.cli):
            run("ip", "netns", "del", namespace, check=False)
        subprocess.run(["rm", "-rf", self.scratch])

    def wait_reachable(self):
        # A connect to a port nobody listens on: refused means the packets went both ways.
        probe = ("import socket, sys, time\n"
                 "deadline = time.monotonic() + 10\n"
                 "while time.monotonic() < deadline:\n"
                 "    try:\n"
                 "        socket.create_connection((sys.argv[1], 9), timeout=1).close()\n"
                 "    except ConnectionRefusedError:\n"
                 "        sys.exit(0)\n"
                 "    except OSError:\n"
                 "        time.sleep(0.05)\n"
                 "sys.exit(1)\n")
        if self.python(self.cli, probe, self.srv_ip).returncode != 0:
            raise RuntimeError("the veth pair carries nothing")

    # --- faults ---

    def nft(self, namespace, rule):
        run("ip", "netns", "exec", namespace, "nft", *rule.split())

    def add_rule(self, namespace, hook, rule):
        """A rule in the zenwire table's hook chain; {srv}, {cli}, {spare} are the addresses."""
        text = rule.format(srv=self.srv_ip, cli=self.cli_ip, spare=self.spare_ip)
        self.nft(namespace, f"add rule inet zenwire {hook} {text}")

    def flush_rules_keeping_counts(self):
        """Heals: every rule of the zenwire tables goes, what their counters saw is kept."""
        for namespace in (self.srv, self.cli):
            self.counted[namespace] = self.dropped(namespace)
            for hook in ("input", "output"):
                self.nft(namespace, f"flush chain inet zenwire {hook}")

    def dropped(self, namespace):
        """Packets the zenwire table's `counter` rules saw, those of flushed rules included."""
        return self.counted.get(namespace, 0) + self._counted_now(namespace)

    def _counted_now(self, namespace):
        listed = run("ip", "netns", "exec", namespace, "nft", "-j", "list", "table", "inet", "zenwire").stdout
        total = 0
        for item in json.loads(listed)["nftables"]:
            for expression in item.get("rule", {}).get("expr", []):
                if "counter" in expression:
                    total += expression["counter"]["packets"]
        return total

    def tc(self, namespace, link, *arguments):
        """tc qdisc VERB dev LINK ARGUMENTS... in the namespace."""
        run("ip", "netns", "exec", namespace, "tc", "qdisc", *arguments[:1], "dev", link, *arguments[1:])

    def qdiscs(self, namespace, link):
        return run("ip", "netns", "exec", namespace, "tc", "-s", "qdisc", "show", "dev", link).stdout

    # --- processes ---

    def start(self, namespace, command, log_name):
        log = open(os.path.join(self.scratch, log_name), "w+")
        process = subprocess.Popen(["ip", "netns", "exec", namespace, *command], stdout=log,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        process.log_path = log.name
        self.processes.append(process)
        return process

    def serve(self, zen, *arguments, port=1060):
        """`zen serve` in the server's namespace, on its veth address; waits for `Listening at`."""
        server = self.start(self.srv, [zen, "serve", self.srv_ip, "-p", str(port), *arguments], "serve.log")
        deadline = time.monotonic() + 10
        while "Listening at" not in read(server.log_path):
            if server.poll() is not None or time.monotonic() > deadline:
                if server.poll() is None:
                    server.kill()
                server.wait()
                raise RuntimeError(f"zen serve did not start (exit {server.returncode}):\n" + read(server.log_path))
            time.sleep(0.02)
        server.port = port
        return server

    def counters(self, server, timeout=3.0):
        """The server's counters from the line SIGUSR1 makes it log: {name: int}."""
        before = read(server.log_path).count("Counters (SIGUSR1)")
        os.kill(zen_pid(server), signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in read(server.log_path).splitlines() if "Counters (SIGUSR1)" in line]
            if len(lines) > before:
                return {key: int(value) for key, value in re.findall(r"([a-z_]+) (\d+)", lines[-1].split(":", 1)[1])}
            time.sleep(0.02)
        raise RuntimeError("no counters line after SIGUSR1:\n" + read(server.log_path)[-2000:])

    def python(self, namespace, code, *arguments, timeout=60):
        return run("ip", "netns", "exec", namespace, sys.executable, "-c", code, *arguments, check=False,
                   timeout=timeout)


def zen_pid(process):
    """`ip netns exec` execs its command, so the Popen's pid is zen's own."""
    return process.pid


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
