#!/usr/bin/env python3
"""The layer check (check_layers.py) on src/ as it is, and on copies with a planted fault.

Usage: layers_test.py SRC_DIR LAYER=BELOW,... ...   (the rules CMakeLists.txt declares)

src/ itself must pass; a copy where src/proto/ includes a server header, one where src/conn/
includes a runtime header, and one where two headers include each other must each fail with a
line naming the file and the fault, so the check is shown able to fail.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_layers.py")
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def run(src, rules):
    return subprocess.run([sys.executable, CHECK, src, *rules], capture_output=True, text=True, timeout=60)


def plant(src, path, line):
    with open(os.path.join(src, path), encoding="utf-8") as source:
        text = source.read()
    with open(os.path.join(src, path), "w", encoding="utf-8") as source:
        source.write(line + "\n" + text)


def main():
    src, rules = sys.argv[1], sys.argv[2:]
    clean = run(src, rules)
    check(clean.returncode == 0, f"src/ breaks its own layers:\n{clean.stderr}")
    planted = [
        ("proto/session.cpp", '#include "servers/registry.hpp"', "proto includes \"servers/registry.hpp\""),
        ("conn/connection.cpp", '#include "runtime/options.hpp"', "conn includes \"runtime/options.hpp\""),
        ("metrics/exposition.cpp", '#include "runtime/startup.hpp"', "metrics includes \"runtime/startup.hpp\""),
        ("base/clock.hpp", '#include "base/result.hpp"\n#include "base/text.hpp"', None),
    ]
    for path, line, expected in planted:
        with tempfile.TemporaryDirectory() as scratch:
            copy = os.path.join(scratch, "src")
            shutil.copytree(src, copy)
            if expected is None:
                # A cycle: clock.hpp includes text.hpp, which is made to include clock.hpp.
                plant(copy, path, line)
                plant(copy, "base/text.hpp", '#include "base/clock.hpp"')
                expected = "include cycle: "
            else:
                plant(copy, path, line)
            broken = run(copy, rules)
            check(broken.returncode == 1, f"{path} with {line!r}: exit {broken.returncode}, not 1")
            check(expected in broken.stderr, f"{path} with {line!r}: no {expected!r} in:\n{broken.stderr}")
            check(f"src/{path}" in broken.stderr, f"{path}: the fault does not name the file:\n{broken.stderr}")
    usage = run(src, ["proto=nothing"])
    check(usage.returncode == 2 and "no rule defines" in usage.stderr, f"a bad rule: {usage.returncode} {usage.stderr}")
    for failure in failures:
        print("FAIL:", failure)
    print(f"layers: src/ clean, {len(planted)} planted faults caught, a bad rule refused:",
          "ok" if not failures else f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
