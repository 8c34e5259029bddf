#!/usr/bin/env python3
"""Every architecture's accepted sockets have TCP_NODELAY, though zen sets it only once, on the
listening socket (Linux copies it to each accepted one): an answer must never wait for Nagle's
algorithm behind an earlier one the client has not acknowledged yet.

    nodelay_test.py ZEN

For each architecture (and for a listener systemd passes, when systemd-socket-activate is
there) the test connects, gets an answer, finds the server's end of that connection among the
descriptors of the server and its worker processes (/proc/net/tcp gives the socket's inode),
takes a copy of it with pidfd_getfd(2) and reads TCP_NODELAY from it. Needs Linux 5.6 and the
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


def no_delay_of(pid, fd):
    """TCP_NODELAY of another process's socket, read from a copy taken with pidfd_getfd()."""
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            raise OSError(ctypes.get_errno(), f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
        with socket.socket(fileno=copy) as sock:
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        os.close(pidfd)


def check_one(name, port, process, server_pid_of):
    """One connection: answered, and its server end has TCP_NODELAY."""
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
            value = no_delay_of(*found)
            check(value != 0, f"{name}: TCP_NODELAY is {value} on the accepted socket")
            print(f"{name}: accepted socket fd {found[1]} of pid {found[0]}: TCP_NODELAY {value}", flush=True)


def probe(name, argv, port, server_pid_of):
    """The first client (for systemd's listener, the one queued before zen ran) and a second one."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        check_one(f"{name}, first client", port, process, server_pid_of)
        check_one(f"{name}, second client", port, process, server_pid_of)
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
        probe(arch, [zen, "serve", "127.0.0.1", "-p", str(port), "--arch", arch, "--quiet"], port, lambda p: p.pid)
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        check(False, "systemd-socket-activate is not installed (the systemd package)")
    else:
        # systemd's listener, without TCP_NODELAY: zen sets it on the listener for the clients to
        # come, and on the one queued before zen ran (it started zen) by itself.
        for arch in ("epoll", "threaded", "uring", "coroutines"):
            port = free_port()
            probe(f"{arch}, socket from systemd", [activate, "-l", f"127.0.0.1:{port}", zen, "serve", "--arch", arch,
                                                   "--quiet"], port, lambda p: p.pid)
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
