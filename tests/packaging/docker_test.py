#!/usr/bin/env python3
"""deploy/Dockerfile's build stage without a container engine (none runs here, and no image can
be pulled): the build context is a copy of the tree with a stale local build/ (this build's own
CMakeCache.txt, made for another directory), filtered by .dockerignore as the engine filters
it; the stage's RUN commands after `COPY . .` then run in that copy and must leave the .deb the
runtime stage installs. The same configure in an unfiltered copy must fail, so the stale cache
is known to be one, and .dockerignore is what keeps it out.

Not checked here: the apt-get lines (their packages are the Makefile's, installed on this
machine), the base images, the runtime stage, and running the image.

Usage: docker_test.py BUILD_DIR
"""

import fnmatch
import os
import re
import shutil
import sys
import tempfile

from checks import ROOT, check, finish, run


def ignore_patterns():
    """.dockerignore as the engine reads it: one pattern a line, # comments, ! to re-include."""
    patterns = []
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip("/"))
            patterns.append((negated, pattern))
    return patterns


def pattern_regex(pattern):
    """A Docker context pattern (Go filepath.Match plus **) as a regex over a relative path."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.compile(regex + "$")


def excluded(relative, patterns):
    """The last matching pattern decides; a path is out when it or a parent directory matches."""
    parts = relative.split("/")
    out = False
    for negated, pattern in patterns:
        regex = pattern_regex(pattern)
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            out = not negated
    return out


def copy_tree(source, target, patterns):
    for directory, subdirectories, names in os.walk(source):
        relative_directory = os.path.relpath(directory, source)
        for name in names:
            relative = os.path.normpath(os.path.join(relative_directory, name))
            if patterns and excluded(relative, patterns):
                continue
            os.makedirs(os.path.join(target, os.path.dirname(relative)), exist_ok=True)
            shutil.copy2(os.path.join(source, relative), os.path.join(target, relative), follow_symlinks=False)


def build_stage_commands():
    """The first stage's RUN commands after its `COPY . .`, continuation lines joined."""
    with open(os.path.join(ROOT, "deploy", "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    check(len(stages) >= 2, "deploy/Dockerfile is not multi-stage")
    build, runtime = stages[0], stages[-1]
    check(re.search(r"^USER (?!root\b)\S+", runtime, re.M) is not None, "the runtime stage does not set a non-root USER")
    check("slim" in runtime.splitlines()[0], "the runtime stage is not a slim image")
    lines = build.splitlines()
    copy = next((i for i, line in enumerate(lines) if line.strip() == "COPY . ."), None)
    check(copy is not None, "the build stage has no COPY . .")
    workdir = next((line.split()[1] for line in lines if line.startswith("WORKDIR ")), None)
    check(workdir == "/src", f"the build stage's WORKDIR is {workdir}")
    return [line[len("RUN "):] for line in lines[(copy or 0) + 1:] if line.startswith("RUN ")]


def stale_tree(build, parent, name):
    """A copy of the source tree with a local build/ whose cache was made in another directory."""
    tree = os.path.join(parent, name)
    copy_tree(ROOT, tree, [(False, "build"), (False, "build-*"), (False, ".git")])
    os.makedirs(os.path.join(tree, "build"))
    shutil.copy(os.path.join(build, "CMakeCache.txt"), os.path.join(tree, "build", "CMakeCache.txt"))
    return tree


def main():
    build = os.path.abspath(sys.argv[1])
    commands = build_stage_commands()
    check(commands and commands[0].startswith("cmake -S . -B build"), f"build stage commands: {commands}")
    patterns = ignore_patterns()
    for path in ["build/CMakeCache.txt", "build-asan/zen", ".git/HEAD", "src/main.cpp", "deploy/Dockerfile"]:
        expected = path.startswith(("build", ".git"))
        check(excluded(path, patterns) == expected, f".dockerignore {'keeps' if expected else 'drops'} {path}")

    with tempfile.TemporaryDirectory() as parent:
        unfiltered = stale_tree(build, parent, "unfiltered")
        configure = commands[0].split("&&")[0]
        done = run(["sh", "-c", configure], cwd=unfiltered)
        check(done.returncode != 0 and "CMakeCache.txt" in done.stderr,
              f"the stale cache did not break the configure: {done.returncode} {done.stderr[-1000:]}")

        source = stale_tree(build, parent, "source")
        context = os.path.join(parent, "context")
        copy_tree(source, context, patterns)
        check(not os.path.exists(os.path.join(context, "build")), "build/ reached the build context")
        for command in commands:
            print("RUN", command, flush=True)
            done = run(["sh", "-c", command], cwd=context, timeout=540)
            print(done.stdout[-1500:], done.stderr[-3000:])
            check(done.returncode == 0, f"RUN {command}: exit {done.returncode}")
            if done.returncode != 0:
                break
        debs = [name for name in os.listdir(os.path.join(context, "build")) if re.match(r"zen_.*\.deb$", name)] \
            if os.path.isdir(os.path.join(context, "build")) else []
        check(len(debs) == 1, f"the build stage left {debs}, not one zen_*.deb")
    finish("docker_test")


if __name__ == "__main__":
    main()
