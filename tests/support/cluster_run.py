"""What the tests of deploy/cluster share: its scripts run as an operator runs them, for a
cluster of the test's own name with its state in a temporary folder, its state.json, and
haproxy's `show stat` through the runtime socket.

A test in tests/NAME/ imports it after putting this folder on its path:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "cluster")


def fail(message):
    print("FAIL: " + message, flush=True)
    sys.exit(1)


class ClusterRun:
    """One cluster a test brings up: NAME is the prefix of its namespaces."""

    def __init__(self, name, state_prefix):
        self.name = name
        self.state_root = tempfile.mkdtemp(prefix=state_prefix)
        self.env = dict(os.environ, ZEN_CLUSTER_STATE=self.state_root)

    def script(self, command, *arguments, expect=0, timeout=120):
        """Runs deploy/cluster/COMMAND as an operator would; returns its stdout + stderr."""
        started = time.monotonic()
        result = subprocess.run([os.path.join(SCRIPTS, command), "--name", self.name, *arguments], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        output = result.stdout + result.stderr
        print(f"$ deploy/cluster/{command} {' '.join(arguments)}  [exit {result.returncode}, "
              f"{time.monotonic() - started:.1f} s]\n{output}", end="" if output.endswith("\n") else "\n", flush=True)
        if expect is not None and result.returncode != expect:
            fail(f"deploy/cluster/{command} exited {result.returncode}, expected {expect}")
        return output

    def remove(self):
        """deploy/cluster/down for this cluster if it is (still) up, then its state folder."""
        if os.path.exists(os.path.join(self.state_root, self.name)):
            subprocess.run([os.path.join(SCRIPTS, "down"), "--name", self.name], env=self.env)
        shutil.rmtree(self.state_root, ignore_errors=True)

    def state(self):
        with open(os.path.join(self.state_root, self.name, "state.json")) as f:
            return json.load(f)

    def haproxy_stat(self):
        """haproxy's `show stat`, through its runtime socket: {server: row} of the nodes."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(5)
            connection.connect(os.path.join(self.state_root, self.name, "haproxy.sock"))
            connection.sendall(b"show stat\n")
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row["pxname"] == "nodes"}
