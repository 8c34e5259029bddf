"""The registry's architectures (src/servers/architectures.def), for the Python tests and bench/:
the one list every Python list of architectures derives from."""

import os
import re

REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "servers",
                        "architectures.def")
LINE = re.compile(r'^ZEN_ARCHITECTURE\("([a-z-]+)",\s*(blocking|event),\s*(true|false),', re.MULTILINE)


def registry():
    """[(name, kind, own_listeners)] in the registry's order; kind is 'blocking' or 'event'."""
    with open(REGISTRY, encoding="utf-8") as source:
        entries = [(name, kind, own == "true") for name, kind, own in LINE.findall(source.read())]
    if len(entries) < 2:
        raise RuntimeError(f"{REGISTRY}: found only {entries}")
    return entries


def names():
    return [name for name, _, _ in registry()]


def variants():
    """The conformance suite's variants, as tests/conformance/architectures.hpp makes them: one per
    architecture (reuseport with two loops), then uring on its one-shot path."""
    found = []
    for name, _, _ in registry():
        args = ["--arch", name] + (["--workers", "2"] if name == "reuseport" else [])
        found.append((name.replace("-", "_"), args))
    if "uring" in names():
        found.append(("uring_oneshot", ["--arch", "uring", "--no-multishot"]))
    return found
