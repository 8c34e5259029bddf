#!/usr/bin/env python3
"""Proves the simulation able to fail: plants one deliberate bug (a mutant) at a time in a copy of
one src/conn or src/proto source file, compiles only that translation unit with the flags the
build used (compile_commands.json), links it ahead of the build's static libraries into a mutant
zen_simulation, runs the seed budget and requires the mutant to be caught. Prints which seed
caught it, at which step, and the command that replays it (docs/simulation.md).

  mutants.py --list
  mutants.py --build BUILD --source REPO --seeds 1..N [--only NAME] --link ARCHIVES_AND_LIBS...

Exit status: 0 if every mutant run was caught; 1 if one survived (or the build of one failed);
2 if a mutant's pattern no longer occurs exactly once in its file (the mutant must be updated).
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

# name: (file, the text replaced, its replacement, the bug in words)
MUTANTS = {
    "too_long_off_by_one": (
        "src/proto/session.cpp",
        "const std::size_t window = std::min(data.size(), limits_.max_question);",
        "const std::size_t window = std::min(data.size(), limits_.max_question + 1);",
        "a question one byte over --max-question is answered instead of refused",
    ),
    "deadline_not_rearmed": (
        "src/conn/connection.cpp",
        "    sent_total_ += n;\n    last_activity_ = now;\n",
        "    sent_total_ += n;\n",
        "a send does not re-arm the idle/send deadline",
    ),
    "counter_not_incremented": (
        "src/conn/client_log.cpp",
        "    context.tracker.count(Counter::resets);\n",
        "",
        "a reset after the client sent something is logged but not counted",
    ),
    "drain_forgets_held_answers": (
        "src/conn/connection.cpp",
        "if (stopping() && drained_ && session_.pending_output().empty()) {",
        "if (stopping() && drained_ && releasable_ == 0) {",
        "the drain closes while --wait still holds answers",
    ),
    "answer_order": (
        "src/proto/session.cpp",
        "output_.append(table_->answer(data.substr(0, length)));",
        "output_.insert(output_sent_, table_->answer(data.substr(0, length)));",
        "a new answer goes before the answers still pending",
    ),
    "linger_ignores_drain_deadline": (
        "src/conn/connection.cpp",
        "limit = std::min({limit, stop_deadline_, now + close_linger});",
        "limit = std::min(limit, now + close_linger);",
        "a linger may outlast the drain deadline",
    ),
    "busy_refusal_off_by_one": (
        "src/conn/intake.cpp",
        "if (limit > 0 && context.tracker.active() >= limit) {",
        "if (limit > 0 && context.tracker.active() > limit) {",
        "--max-connections N admits N+1 clients",
    ),
    "proxy_remainder_lost": (
        "src/conn/connection.cpp",
        "const std::string after_header = intake_.take_remainder();",
        "const std::string after_header = (intake_.take_remainder(), std::string());",
        "bytes that came in the same read as the PROXY header are dropped",
    ),
    "question_deadline_restarts": (
        "src/conn/connection.cpp",
        "} else if (question_deadline_ == never) {",
        "} else {",
        "every byte of a partial question restarts --question-timeout",
    ),
    "answer_time_not_recorded": (
        "src/conn/connection.cpp",
        "        context_.tracker.answer_took(now - batch.made, batch.answers);\n",
        "        (void)now;\n",
        "answers sent whole are left out of the answer-time histogram",
    ),
}


def plant(source_root, name, out_dir):
    path, old, new, _ = MUTANTS[name]
    with open(os.path.join(source_root, path), encoding="utf-8") as f:
        text = f.read()
    count = text.count(old)
    if count != 1:
        print(f"mutants.py: the pattern of mutant {name} occurs {count} times in {path}, not once: "
              f"update tests/sim/mutants.py", file=sys.stderr)
        sys.exit(2)
    planted = os.path.join(out_dir, os.path.basename(path))
    with open(planted, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new))
    return path, planted


def compile_command(build, source_root, path):
    """The build's own command for `path`, as a list, and the directory it runs in."""
    database = os.path.join(build, "compile_commands.json")
    if not os.path.exists(database):
        print(f"mutants.py: {database} is missing (tests/CMakeLists.txt turns on "
              f"EXPORT_COMPILE_COMMANDS for zen_conn and zen_proto)", file=sys.stderr)
        sys.exit(1)
    with open(database, encoding="utf-8") as f:
        entries = json.load(f)
    wanted = os.path.realpath(os.path.join(source_root, path))
    for entry in entries:
        file = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
        if file == wanted:
            args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
            return args, entry["directory"]
    print(f"mutants.py: no entry for {path} in {database}", file=sys.stderr)
    sys.exit(1)


def retarget(args, directory, source, planted, obj):
    """The same command, compiling `planted` into `obj`, without the build's dependency files."""
    def is_source(arg):
        candidate = os.path.join(directory, arg)
        return os.path.exists(candidate) and os.path.samefile(candidate, source)

    out = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MT", "-MF", "-MQ"):
            skip = True
            continue
        if arg in ("-MD", "-MMD"):
            continue
        if not arg.startswith("-") and is_source(arg):
            out.append(planted)
            continue
        out.append(arg)
    if planted not in out:
        print(f"mutants.py: the compile command names no {source}", file=sys.stderr)
        sys.exit(1)
    return out + ["-o", obj]


def run(cmd, cwd=None):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"mutants.py: failed ({result.returncode}): {shlex.join(cmd)}\n{result.stdout}{result.stderr}",
              file=sys.stderr)
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print the mutants' names, one a line, and exit")
    parser.add_argument("--build", help="the build directory (with compile_commands.json)")
    parser.add_argument("--source", help="the repository's root")
    parser.add_argument("--seeds", default="1..50000", help="the seed budget, FIRST..LAST")
    parser.add_argument("--only", action="append", help="this mutant only (repeatable)")
    parser.add_argument("--link", nargs=argparse.REMAINDER, default=[],
                        help="what to link after the mutant: the simulation's and zen's archives, then libraries")
    args = parser.parse_args()
    if args.list:
        print("\n".join(MUTANTS))
        return 0
    if not args.build or not args.source or not args.link:
        parser.error("--build, --source and --link are needed")
    names = args.only or list(MUTANTS)
    for name in names:
        if name not in MUTANTS:
            parser.error(f"no mutant {name}; --list names them")

    survived = []
    for name in names:
        started = time.monotonic()
        path, old, new, words = MUTANTS[name]
        out_dir = os.path.join(args.build, "tests", "sim", "mutants", name)
        os.makedirs(out_dir, exist_ok=True)
        source, planted = plant(args.source, name, out_dir)
        command, directory = compile_command(args.build, args.source, source)
        obj = os.path.join(os.path.realpath(out_dir), "mutant.o")
        if not run(retarget(command, directory, os.path.join(args.source, source), os.path.realpath(planted), obj), directory):
            survived.append(f"{name} (did not build)")
            continue
        compiler = command[0]
        main_obj = os.path.join(os.path.realpath(out_dir), "main.o")
        if not run([compiler, "-c", os.path.join(args.source, "tests", "sim", "main.cpp"), "-o", main_obj]):
            survived.append(f"{name} (did not build)")
            continue
        binary = os.path.join(os.path.realpath(out_dir), "zen_simulation_mutant")
        archives = [a for a in args.link if a.endswith(".a")]
        libraries = [a for a in args.link if not a.endswith(".a")]
        link = [compiler, obj, main_obj, "-o", binary, "-Wl,--start-group", *archives, "-Wl,--end-group", *libraries]
        if not run(link):
            survived.append(f"{name} (did not link)")
            continue
        shown_binary = os.path.relpath(binary, args.source)
        result = subprocess.run([binary, "--seeds", args.seeds, "--quiet", "--replay", shown_binary],
                                capture_output=True, text=True, timeout=600)
        took = time.monotonic() - started
        found = re.search(r"seed (\d+) failed at step (\d+) \([^)]*\): (.*)", result.stdout)
        if result.returncode == 1 and found:
            # The catch must replay: the one seed alone fails the same way.
            again = subprocess.run([binary, "--seed", found.group(1), "--quiet", "--replay", shown_binary],
                                   capture_output=True, text=True, timeout=60)
            if again.returncode != 1 or found.group(0) not in again.stdout:
                print(f"mutant {name}: seed {found.group(1)} does not replay its failure:\n{again.stdout}")
                survived.append(f"{name} (not replayable)")
                continue
            print(f"mutant {name} ({path}: {words}): caught by seed {found.group(1)} at step {found.group(2)} "
                  f"in {took:.1f} s (replayed alone: the same failure)\n  {found.group(3)}\n"
                  f"  replay: {shown_binary} --seed {found.group(1)} --verbose")
        elif result.returncode not in (0, 1, 2):
            print(f"mutant {name} ({path}: {words}): caught: the mutant simulation died with status "
                  f"{result.returncode} in {took:.1f} s\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        else:
            print(f"mutant {name} ({path}: {words}): SURVIVED seeds {args.seeds} (status {result.returncode}) "
                  f"in {took:.1f} s\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
            survived.append(name)
    if survived:
        print("mutants.py: not caught: " + ", ".join(survived))
        return 1
    print(f"mutants.py: all {len(names)} mutant(s) caught within seeds {args.seeds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
