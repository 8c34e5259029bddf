"""What the bench/ scripts share: the architectures and peers they measure, the book's questions,
each server's command line, free ports on 127.0.0.1, starting a server and stopping it by its pid,
and pinning servers and generator to CPUs of their own.

The scripts are run as bench/NAME.py or python3 bench/NAME.py, from the repository root or
elsewhere; either way Python puts the script's own directory first on sys.path, so `import
harness` finds this file. It is not run itself.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ZEN = os.path.join(ROOT, "build", "zen")
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from architectures import names as registered_architectures  # noqa: E402

# The registry's list (src/servers/architectures.def), in its order.
ARCHITECTURES = registered_architectures()
PEERS = ["redis-server", "memcached"]
# Fixed pools big enough to hold 50 connections at once; `single` keeps its nature (one client at a time).
POOLS = {"threaded": ["--workers", "64"], "prefork": ["--workers", "64"]}
# The book's three questions and their answers, the table `zen serve` answers by default.
BOOK = [(b"Beautiful is better than?", b"Ugly."), (b"Explicit is better than?", b"Implicit."),
        (b"Simple is better than?", b"Complex.")]
# With two CPUs or more the server runs on one and `zen bench` on the other, so the two never
# compete for one core and every server gets the same budget.
SERVER_CPU, GENERATOR_CPU = 1, 0
# The script's name in its messages: "compare" for bench/compare.py.
PROGRAM = os.path.basename(sys.argv[0]).removesuffix(".py")


def fail(message):
    """The script cannot go on: the message on stderr, exit status 2."""
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    sys.exit(2)


def zen_executable(path):
    """--zen as an absolute path, or fail() when there is no executable there."""
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        fail(f"no zen executable at {path} (run make build, or pass --zen)")
    return path


def architectures(text):
    """--archs: a comma-separated list of architectures, each one zen has."""
    archs = [a for a in text.split(",") if a]
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown:
        fail(f"unknown architecture {unknown[0]!r}: choose from {', '.join(ARCHITECTURES)}")
    return archs


def can_pin():
    """Whether servers and generator can each have a CPU of their own (two CPUs and taskset)."""
    return (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None


def on_cpu(cpu, pin):
    """The prefix that runs a command on one CPU (none when not pinning). taskset execs the
    command, so its pid is the command's own."""
    return ["taskset", "-c", str(cpu)] if pin else []


def unused_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process=None, seconds=10.0):
    """True once 127.0.0.1:port accepts a connection; False when `process` ends first or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


def stop(process, seconds=10.0):
    """SIGTERM to the process by its pid, then SIGKILL if it has not ended within `seconds`.
    True when it had to be killed."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return True


def children_of(pid):
    """The pids of a process's children (of its main thread)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def zen_argv(zen, arch, port):
    """`zen serve` with one architecture on 127.0.0.1:port (0: the kernel picks the port)."""
    return [zen, "serve", "127.0.0.1", "-p", str(port), "--arch", arch, "--quiet"]


def descriptor_budget():
    """How many connections a server started from here may hold: the (soft) descriptor limit it
    inherits, less room for its own files. raise_descriptor_limit() lifts it to the hard limit."""
    return max(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64, 64)


def raise_descriptor_limit():
    """Soft RLIMIT_NOFILE up to the hard one, for this script and every server and bench it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_argv(name, port, zen):
    """The command line of a zen architecture (with POOLS) or a peer, listening on 127.0.0.1:port.
    The peers may hold as many connections as the descriptor limit allows, as zen may (their own
    defaults are 1,024 for memcached and 10,000 for redis-server)."""
    if name == "redis-server":
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--loglevel", "warning", "--maxclients", str(min(descriptor_budget(), 65000))]
    if name == "memcached":
        argv = ["memcached", "-t", "1", "-l", "127.0.0.1", "-p", str(port), "-U", "0",
                "-c", str(min(descriptor_budget(), 65000))]
        return argv + (["-u", "root"] if os.geteuid() == 0 else [])
    return zen_argv(zen, name, port) + POOLS.get(name, [])


def memcached_version():
    return subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.split()[-1]


def questions_for(name, version=None):
    """zen bench's options to ask a peer what it answers as cheaply as zen answers a question:
    redis's inline PING, memcached's `version` (its version read when not given); none for zen."""
    if name == "redis-server":
        return ["--question", "PING\\r\\n", "--answer", "+PONG\\r\\n"]
    if name == "memcached":
        return ["--question", "version\\r\\n", "--answer", f"VERSION {version or memcached_version()}\\r\\n"]
    return []


def bench_argv(zen, port, pin):
    """`zen bench` against 127.0.0.1:port, on GENERATOR_CPU when pinning; the load's options follow."""
    return on_cpu(GENERATOR_CPU, pin) + [zen, "bench", "127.0.0.1", "-p", str(port)]


class Server:
    """A server started on 127.0.0.1:port (on SERVER_CPU when pinning) and waited for, up to
    `seconds`; stop() stops it by its pid. argv may put a tracer before the server (strace,
    valgrind); what they all print goes to a log, read with output()."""

    def __init__(self, argv, port, pin, seconds=10.0):
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(on_cpu(SERVER_CPU, pin) + argv, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.listening = wait_for_port(port, self.process, seconds)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, seconds=10.0):
        """As stop(): True when SIGTERM was not enough and it was killed. The log stays readable."""
        return stop(self.process, seconds)

    def close(self):
        """Lets the log go, once stopped."""
        self.log.close()


def serve_on_any_port(zen, arch, extra=()):
    """`zen serve --arch ARCH -p 0` (the kernel picks the port): (process, port, line). The port is
    read from its "Listening at (ADDRESS, PORT)" line, which follows the banner (and the metrics
    line); port None, with the last line read, when the server says something else or exits first."""
    process = subprocess.Popen(zen_argv(zen, arch, 0) + list(extra), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    line = ""
    for _ in range(10):
        line = process.stdout.readline()
        match = re.search(r"Listening at \(.*, (\d+)\)", line)
        if match:
            return process, int(match.group(1)), line.strip()
        if not line:
            break
    return process, None, line.strip()
