"""What the packaging tests share: the check() that collects failures, the eleven --arch names as
the README lists them, and the ones `zen serve --help` prints today."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from architectures import names  # noqa: E402

ARCHITECTURES = names()  # the registry's (src/servers/architectures.def)
SUBCOMMANDS = ["serve", "client", "bench", "streamer", "blocks"]
MAN_PAGES = ["zen"] + [f"zen-{name}" for name in SUBCOMMANDS]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)
    return condition


def run(command, timeout=120, **kwargs):
    """Runs a command and returns it done, output captured as text; never raises on exit codes."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def architectures_in_help(zen):
    """The --arch set CLI11 prints in `zen serve --help` (TEXT:{single,threaded,...})."""
    text = run([zen, "serve", "--help"]).stdout
    match = re.search(r"--arch \S*\{([^}]*)\}", text)
    return match.group(1).split(",") if match else []


def finish(name):
    if failures:
        print(f"{name}: {len(failures)} failure(s)")
        sys.exit(1)
    print(f"{name}: all checks passed")
