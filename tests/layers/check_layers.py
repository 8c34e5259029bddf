#!/usr/bin/env python3
"""The layers of src/, checked include by include.

Usage: check_layers.py SRC_DIR LAYER=BELOW,... ...

Each rule names a layer (a folder of src/) and the layers right below it, as CMakeLists.txt's
zen_layer() calls declare them; a layer may include its own headers and those of every layer
below it, directly or through others. src/main.cpp stands above every layer. Two faults are
reported, one line each, and make the exit status 1: an #include "LAYER/..." that runs upward or
sideways (or names no layer at all), and a cycle of headers that include each other. Exit 2 is a
usage error.
"""

import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def parse_rules(arguments):
    rules = {}
    for argument in arguments:
        name, equals, below = argument.partition("=")
        if not equals or not name:
            raise ValueError(f"a rule is LAYER=BELOW,..., not {argument!r}")
        rules[name] = [layer for layer in below.split(",") if layer]
    for name, below in rules.items():
        for layer in below:
            if layer not in rules:
                raise ValueError(f"layer {name!r} stands on {layer!r}, which no rule defines")
    return rules


def closure(rules):
    """Every layer each layer may include: itself and everything below it."""
    allowed = {}

    def reach(name, seen):
        if name in seen:
            raise ValueError(f"the layer rules run in a circle through {name!r}")
        if name not in allowed:
            found = {name}
            for layer in rules[name]:
                found |= reach(layer, seen | {name})
            allowed[name] = found
        return allowed[name]

    for name in rules:
        reach(name, set())
    return allowed


def source_files(src):
    for folder, _, names in os.walk(src):
        for name in sorted(names):
            if name.endswith((".cpp", ".hpp", ".def")):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, src).replace(os.sep, "/")


def check(src, rules):
    allowed = closure(rules)
    faults = []
    graph = {}
    for path in source_files(src):
        layer = path.split("/")[0] if "/" in path else None  # None: src/main.cpp, above all
        with open(os.path.join(src, path), encoding="utf-8") as source:
            text = source.read()
        graph[path] = []
        for line_number, target in ((text.count("\n", 0, m.start()) + 1, m.group(1)) for m in INCLUDE.finditer(text)):
            graph[path].append(target)
            target_layer = target.split("/")[0] if "/" in target else None
            if target_layer not in rules:
                faults.append(f"src/{path}:{line_number}: includes \"{target}\", which is in no layer")
            elif layer is not None and layer not in rules:
                faults.append(f"src/{path}:{line_number}: src/{layer}/ is no layer of the rules")
            elif layer is not None and target_layer not in allowed[layer]:
                faults.append(f"src/{path}:{line_number}: {layer} includes \"{target}\", "
                              f"but {target_layer} is not below {layer}")
            elif not os.path.exists(os.path.join(src, target)):
                faults.append(f"src/{path}:{line_number}: includes \"{target}\", which does not exist")
    faults += cycles(graph)
    return faults


def cycles(graph):
    faults = []
    state = {}

    def visit(path, trail):
        state[path] = "open"
        for target in graph.get(path, []):
            if target not in graph:
                continue
            if state.get(target) == "open":
                loop = trail[trail.index(target):] + [target]
                faults.append("include cycle: " + " -> ".join("src/" + p for p in loop))
            elif target not in state:
                visit(target, trail + [target])
        state[path] = "done"

    for path in graph:
        if path not in state:
            visit(path, [path])
    return faults


def main(arguments):
    if len(arguments) < 2 or not os.path.isdir(arguments[0]):
        print("usage: check_layers.py SRC_DIR LAYER=BELOW,... ...", file=sys.stderr)
        return 2
    try:
        rules = parse_rules(arguments[1:])
        faults = check(arguments[0], rules)
    except ValueError as error:
        print(f"check_layers.py: {error}", file=sys.stderr)
        return 2
    for fault in faults:
        print(fault, file=sys.stderr)
    if faults:
        print(f"check_layers.py: {len(faults)} include(s) break the layers (docs/design.md)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
