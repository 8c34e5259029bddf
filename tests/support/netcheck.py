"""What the Python socket tests share: a check() that collects failures instead of stopping at
the first, a free port on 127.0.0.1, connecting until a server listens, and reading an exact
number of bytes.

A test in tests/NAME/ imports it after putting this folder on its path:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
"""
import socket
import time

failures = []


def check(condition, message):
    """Records a failure (and prints it) when condition is false; returns condition."""
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return condition


def free_port():
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connect(port, process=None, seconds=15):
    """A connection to 127.0.0.1:port, retried while the server starts; raises once `process`
    (if given) has ended or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def receive(client, size):
    """Up to `size` bytes: fewer only when the peer closed first."""
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
