#!/usr/bin/env python3
"""Every architecture's accepted sockets have the options zen gives its clients, though zen sets
them only once, on the listening socket (Linux copies them to each accepted one): TCP_NODELAY (an
answer must never wait for Nagle's algorithm behind an earlier one the client has not
acknowledged yet), keepalive probes after --tcp-keepalive (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL
a third of it, TCP_KEEPCNT 3) and TCP_USER_TIMEOUT at --send-timeout (a vanished peer gives back
its slot; docs/lifecycle.md).

    socket_options_test.py ZEN

For each architecture (and for a listener systemd passes, when systemd-socket-activate is
there) the test connects, gets an answer, finds the server's end of that connection among the
descriptors of the server and its worker processes (/proc/net/tcp gives the socket's inode),
takes a copy of it with pidfd_getfd(2) and reads the options from it. A listener systemd passes
without them, a connection systemd accepted (Accept=yes), and --tcp-keepalive 0 are checked too. Needs Linux 5.6 and the
right to trace the server (it is our own child; root or ptrace_scope 0 or 1).
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

SYS_PIDFD_GETFD = 438
libc = ctypes.CDLL(None, use_errno=True)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from netcheck import check, connect, failures, free_port  # noqa: E402
from architectures import names  # noqa: E402

ARCHITECTURES = names()  # the registry's (src/servers/architectures.def)


def descendants(pid):
    """pid, its threads' children, theirs, and so on."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    queue += [int(child) for child in f.read().split()]
        except OSError:
            pass
    return found


def inode_of(local_port, remote_port):
    """The inode of the IPv4 socket 127.0.0.1:local_port <-> 127.0.0.1:remote_port."""
    want = (f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}")
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                return fields[9]
    return None


def server_end(root_pid, inode):
    """(pid, fd) of the process holding socket:[inode]."""
    for pid in descendants(root_pid):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid, int(fd)
        except OSError:
            continue
    return None


def expected(keepalive=300, send_timeout=60):
    """The options zen's clients get for --tcp-keepalive and --send-timeout (idle-timeout longer)."""
    want = {"TCP_NODELAY": 1, "SO_KEEPALIVE": 1 if keepalive else 0, "TCP_USER_TIMEOUT": send_timeout * 1000}
    if keepalive:
        want.update(TCP_KEEPIDLE=keepalive, TCP_KEEPINTVL=max(1, keepalive // 3), TCP_KEEPCNT=3)
    return want


OPTIONS = {"TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
           "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
           "TCP_KEEPIDLE": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
           "TCP_KEEPINTVL": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
           "TCP_KEEPCNT": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
           "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)}


def options_of(pid, fd, names):
    """The named options of another process's socket, read from a copy taken with pidfd_getfd()."""
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            raise OSError(ctypes.get_errno(), f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
        with socket.socket(fileno=copy) as sock:
            return {name: sock.getsockopt(*OPTIONS[name]) for name in names}
    finally:
        os.close(pidfd)


def check_one(name, port, process, server_pid_of, want):
    """One connection: answered, and its server end has the options `want`."""
    with connect(port, process) as client:
        client.sendall(b"Beautiful is better than?")
        check(client.recv(16) == b"Ugly.", f"{name}: no answer")
        inode = inode_of(port, client.getsockname()[1])
        check(inode is not None, f"{name}: the connection is not in /proc/net/tcp")
        if inode is None:
            return
        found = None
        deadline = time.monotonic() + 5
        while found is None and time.monotonic() < deadline:
            found = server_end(server_pid_of(process), inode)
            if found is None:
                time.sleep(0.02)
        check(found is not None, f"{name}: no server process holds the connection's socket")
        if found is not None:
            got = options_of(*found, want)
            for option, value in want.items():
                check(got[option] == value, f"{name}: {option} is {got[option]} on the accepted socket, not {value}")
            print(f"{name}: accepted socket fd {found[1]} of pid {found[0]}: {got}", flush=True)


def probe(name, argv, port, server_pid_of, want, clients=2):
    """The first client (for systemd's listener, the one queued before zen ran) and a second one."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        for number in range(clients):
            check_one(f"{name}, client {number + 1}", port, process, server_pid_of, want)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(zen):
    for arch in ARCHITECTURES:
        port = free_port()
        probe(arch, [zen, "serve", "127.0.0.1", "-p", str(port), "--arch", arch, "--quiet", "--tcp-keepalive", "7",
                     "--send-timeout", "11"], port, lambda p: p.pid, expected(7, 11))
    for arch in ("epoll", "threaded"):  # off: no probes, the kernel's own retransmission limit
        port = free_port()
        probe(f"{arch}, keepalive off", [zen, "serve", "127.0.0.1", "-p", str(port), "--arch", arch, "--quiet",
                                         "--tcp-keepalive", "0", "--send-timeout", "0", "--idle-timeout", "0"],
              port, lambda p: p.pid, expected(0, 0))
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        check(False, "systemd-socket-activate is not installed (the systemd package)")
    else:
        # systemd's listener, without TCP_NODELAY: zen sets it on the listener for the clients to
        # come, and on the one queued before zen ran (it started zen) by itself.
        for arch in ("epoll", "threaded", "uring", "coroutines", "callbacks"):
            port = free_port()
            probe(f"{arch}, socket from systemd", [activate, "-l", f"127.0.0.1:{port}", zen, "serve", "--arch", arch,
                                                   "--quiet"], port, lambda p: p.pid, expected())
        # Accept=yes: systemd accepted the one client; zen sets the options on it.
        port = free_port()
        probe("connection from systemd (Accept=yes)", [activate, "-a", "-l", f"127.0.0.1:{port}", zen, "serve",
                                                        "--quiet", "--tcp-keepalive", "5"], port, lambda p: p.pid,
              expected(5), clients=1)
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
