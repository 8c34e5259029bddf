#!/usr/bin/env python3
"""Instructions per answer, and where they go: one server under valgrind's callgrind.

Usage: bench/profile.py [--arch ARCH | --peer redis-server|memcached] [--seconds S] [-c N] [-P DEPTH]
                     [--reconnect N] [--top N] [--out DIR] [--json FILE] [--zen PATH]

It starts the server (zen serve --arch ARCH, default epoll; or a peer) under
`valgrind --tool=callgrind`, zeroes its counters (callgrind_control --zero), drives it with
`zen bench -c N -P DEPTH [--reconnect N] -d SECONDS -w 0` (--reconnect 3: the book's short
conversations, whose figures are then also given per conversation), dumps the profile (callgrind_control --dump), so
start-up and shutdown are left out, and stops it with SIGTERM. It prints the instructions the
server executed per answer bench counted, then the top functions by self and by inclusive
cost, each in instructions and calls per answer (a call made before the counters were zeroed,
such as main's, shows as "-"). The profile stays in DIR (callgrind.out.NAME) for
callgrind_annotate or KCachegrind.

What it counts: instructions executed in user space (Ir), the server's own code and the
libraries it calls; what the kernel does in its system calls is not counted (bench/syscalls.py
counts those calls). Ir are close to deterministic for a given build and load. Valgrind runs
the server's threads one at a time, several times slower, so there are fewer answers than
untraced and batching (answers per wake-up) can differ; per answer it is the code path that is
measured. A Release build has no debug information: functions are named, lines are not, and
what the compiler inlined is counted in its caller.

`prefork` is refused: its workers are processes of their own, each with a profile of its own.
Under valgrind (3.19), `uring` after a load does not stop on SIGTERM: the signal is taken but
its handler never runs while the loop waits in io_uring_enter, and the server keeps serving
(it stops on SIGTERM without valgrind, as its tests prove). The profile is dumped before the
stop either way; a server still running 15 s after SIGTERM is killed, and the output says so.

On a machine with two or more CPUs the server runs on CPU 1 and the generator on CPU 0, as in
bench/compare.py. Every process this script starts, it stops, by pid.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import harness
from harness import ARCHITECTURES, PEERS, fail

# Long spellings callgrind_annotate prints, and what a reader calls them.
SHORTER = [
    ("std::chrono::time_point<std::chrono::_V2::steady_clock, std::chrono::duration<long, std::ratio<1l, "
     "1000000000l> > >", "steady_clock::time_point"),
    ("std::basic_string_view<char, std::char_traits<char> >", "std::string_view"),
    ("std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string"),
    ("std::span<char, 18446744073709551615ul>", "std::span<char>"),
    ("std::span<char const, 18446744073709551615ul>", "std::span<char const>"),
]


def server_argv(name, port, zen):
    """As bench/compare.py starts the server (threaded with its 64 workers: fewer threads would do
    under valgrind, but the same server is profiled)."""
    argv = harness.server_argv(name, port, zen)
    if name == "memcached":
        # memcached sets its descriptor limit, soft and hard, to its connection limit; valgrind
        # keeps a few descriptors for itself and refuses any hard limit but its own. So the
        # connection limit is that one (thousands: plenty for the load).
        argv += ["-c", valgrind_fd_limit()]
    return argv


def valgrind_fd_limit():
    done = subprocess.run(["valgrind", "--tool=none", "-q", "sh", "-c", "ulimit -Hn"], capture_output=True,
                          text=True, timeout=60)
    limit = done.stdout.strip()
    if not limit.isdigit():
        fail(f"cannot read the descriptor limit under valgrind: {(done.stdout + done.stderr).strip()}")
    return limit


def control(pid, action):
    """callgrind_control on this one pid (without a pid it would act on every callgrind run)."""
    done = subprocess.run(["callgrind_control", action, str(pid)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or "OK" not in done.stdout:
        raise RuntimeError(f"callgrind_control {action} failed: {(done.stdout + done.stderr).strip()}")


def profile_load(args, name, out_file):
    """The server under callgrind, counters zeroed just before the load and dumped just after it,
    so start-up and shutdown are left out. Returns zen bench's JSON and a note on the stop."""
    port = harness.unused_port()
    # valgrind runs in the server's own process, and taskset execs it: the pid is the server's.
    argv = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={out_file}"]
    server = harness.Server(argv + server_argv(name, port, args.zen), port, args.pin, seconds=120)
    try:
        if not server.listening:
            raise RuntimeError("did not start under valgrind")
        control(server.process.pid, "--zero")
        bench = harness.bench_argv(args.zen, port, args.pin)
        bench += ["-c", str(args.connections), "-P", str(args.depth), "-d", str(args.seconds), "-w", "0",
                  "--timeout", "10", "--json"] + harness.questions_for(name)
        if args.reconnect:
            bench += ["--reconnect", str(args.reconnect)]
        done = subprocess.run(bench, capture_output=True, text=True, timeout=120 + 10 * args.seconds)
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(f"zen bench gave no JSON: {done.stderr.strip() or 'no output'}") from None
        # Dumped to out_file.1 at once; out_file itself is written at exit, and holds the shutdown.
        control(server.process.pid, "--dump")
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        server.stop(10)
        lines = [l for l in server.output().splitlines() if l and not l.startswith("==")]
        fail(f"{name}: {error}{': ' + lines[-1] if lines else ''}")
    note = None
    if server.stop(15):
        note = "did not stop within 15 s of SIGTERM under valgrind, killed (the profile was already dumped)"
    if not os.path.exists(out_file + ".1"):
        fail(f"callgrind wrote no profile for {name}")
    os.replace(out_file + ".1", out_file)
    return result, note


def shorter(name):
    for long, short in SHORTER:
        name = name.replace(long, short)
    return name


def function_key(function, obj):
    return f"{shorter(function)} [{os.path.basename(obj)}]" if obj else shorter(function)


def self_costs(out_file):
    """Read from the profile itself: (total Ir, {function [object]: self Ir}, {function [object]: calls}).

    callgrind_annotate 3.19 counts a call made before the counters were zeroed (written as
    `calls=0`) as the caller's own cost, so main would own every instruction; here the line
    after each `calls=` line is a call's inclusive cost, left out of the caller's self cost."""
    names = {"ob": {}, "fn": {}}
    total, costs, calls = None, {}, {}
    obj = function = callee_obj = callee = None
    after_call = False
    with open(out_file) as profile:
        for line in profile:
            line = line.rstrip("\n")
            key, sep, value = line.partition("=")
            if sep and key in ("ob", "cob", "fn", "cfn", "fl", "fi", "fe", "cfi", "cfl", "calls", "jump", "jcnd"):
                space = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}.get(key)
                if space:
                    match = re.match(r"\((\d+)\)(?: (.*))?$", value)
                    if match:
                        if match.group(2) is not None:
                            names[space][match.group(1)] = match.group(2)
                        value = names[space].get(match.group(1), value)
                if key == "ob":
                    obj = value
                elif key == "fn":
                    function, callee_obj = value, None
                elif key == "cob":
                    callee_obj = value
                elif key == "cfn":
                    callee = function_key(value, callee_obj or obj)
                    callee_obj = None
                elif key == "calls":
                    count = int(value.split()[0])
                    calls[callee] = calls.get(callee, 0) + count
                after_call = key == "calls"
                continue
            if line.startswith("summary:"):
                total = int(line.split()[1])
                continue
            fields = line.split()
            if len(fields) == 2 and re.fullmatch(r"[+-]?\d+|\*", fields[0]) and fields[1].isdigit():
                if after_call:
                    after_call = False
                elif function is not None:
                    key = function_key(function, obj)
                    costs[key] = costs.get(key, 0) + int(fields[1])
    if total is None:
        fail(f"no summary line in {out_file}")
    return total, costs, calls


def annotate(out_file):
    """callgrind_annotate --inclusive=yes, every function: (total Ir, {function [object]: Ir})."""
    argv = ["callgrind_annotate", "--threshold=100", "--inclusive=yes", out_file]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        fail(f"callgrind_annotate failed: {done.stderr.strip()}")
    total, functions = None, {}
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if not match:
            continue
        ir, what = int(match.group(1).replace(",", "")), match.group(2)
        if what == "PROGRAM TOTALS":
            total = ir
            continue
        # "file:function [object]": the source file says little without line numbers.
        function, _, obj = what.rpartition(" [") if what.endswith("]") else (what, "", "")
        function = function.split(":", 1)[1] if re.match(r"^(\?\?\?|[^ :]*\.\w+):", function) else function
        key = function_key(function, obj.rstrip("]"))
        functions[key] = functions.get(key, 0) + ir
    if total is None:
        fail(f"no PROGRAM TOTALS in callgrind_annotate's output for {out_file}")
    return total, functions


def collapse(ranked, total):
    """The frames every instruction passes through (_start, main, ... the event loop) say nothing
    apiece: keep the innermost of them and name the rest on it."""
    whole = [f for f, ir in ranked if ir >= 0.999 * total]
    if len(whole) < 2:
        return ranked
    innermost = whole[-1]
    callers = len(whole) - 1
    label = f"{innermost}  (and its {callers} caller{'s' if callers > 1 else ''} at 100%)"
    return [(label, ranked[len(whole) - 1][1])] + ranked[len(whole):]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--arch", default="epoll", help="the zen architecture to profile (default epoll)")
    which.add_argument("--peer", choices=PEERS, help="profile a peer instead")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load (default 5)")
    parser.add_argument("-c", "--connections", type=int, default=50, help="connections (default 50)")
    parser.add_argument("-P", "--depth", type=int, default=1, help="questions in flight per connection (default 1)")
    parser.add_argument("--reconnect", type=int, default=0, metavar="N",
                        help="close and reconnect after N answers (3: the book's client; default 0, never)")
    parser.add_argument("--top", type=int, default=20, help="functions to list (default 20)")
    parser.add_argument("--out", default=os.path.join(harness.ROOT, "build", "profile"),
                        help="where the profile is kept (default: build/profile)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--zen", default=harness.DEFAULT_ZEN, help="the zen executable")
    args = parser.parse_args()

    args.zen = harness.zen_executable(args.zen)
    name = args.peer or args.arch
    if not args.peer and args.arch not in ARCHITECTURES:
        fail(f"unknown architecture {args.arch!r}: choose from {', '.join(ARCHITECTURES)}")
    if name == "prefork":
        fail("prefork forks its workers, each profiled apart by callgrind: profile a non-forking architecture")
    if not 0 < args.seconds <= 120:
        fail("--seconds must be more than 0 and at most 120")
    if args.connections < 1 or args.depth < 1 or args.top < 1 or args.reconnect < 0:
        fail("-c, -P and --top must be at least 1, --reconnect at least 0")
    if args.reconnect and args.depth > 1:
        fail("--reconnect counts answers one at a time: use it with -P 1")
    for tool in ("valgrind", "callgrind_annotate") + ((args.peer,) if args.peer else ()):
        if not shutil.which(tool):
            fail(f"{tool} is not installed ({'make peer-deps' if tool in PEERS else 'apt-get install valgrind'})")
    args.pin = harness.can_pin()
    os.makedirs(args.out, exist_ok=True)

    started = time.monotonic()
    profile = os.path.join(args.out, f"callgrind.out.{name}")
    result, note = profile_load(args, name, profile)
    answers = result["requests"]
    if answers == 0:
        fail(f"{name} gave no answers under valgrind ({result['errors']} errors)")
    tables = {}
    total, own, calls = self_costs(profile)
    for kind, functions in (("self", own), ("inclusive", annotate(profile)[1])):
        tables[kind] = collapse(sorted(functions.items(), key=lambda item: -item[1]), total)[:args.top]

    per_answer = total / answers
    relative = os.path.relpath(profile)
    relative = profile if relative.startswith("..") else relative
    reconnect = f" --reconnect {args.reconnect}" if args.reconnect else ""
    print(f"{name} under callgrind: {answers:,} answers ({result['rps']:,.0f}/s under valgrind,"
          f" {result['errors']} errors), zen bench -c {args.connections} -P {args.depth}{reconnect}"
          f" -d {args.seconds:g} -w 0")
    if note:
        print(f"  note: {name} {note}")
    print(f"  {total:,} instructions (Ir) during the load: {per_answer:,.0f} per answer (user space only)"
          + (f", {per_answer * args.reconnect:,.0f} per conversation of {args.reconnect}" if args.reconnect else ""))
    for kind, title in (("self", "self cost (the function's own instructions)"),
                        ("inclusive", "inclusive cost (with everything it calls)")):
        print(f"\ntop {args.top} functions by {title}, per answer:")
        print(f"  {'Ir/answer':>10} {'share':>6} {'calls/answer':>12}  function [object]")
        for function, ir in tables[kind]:
            share = 100.0 * ir / total if total else 0.0
            called = calls.get(function.split("  (and its ")[0])
            called = f"{called / answers:.3f}" if called else "-"
            label = function if len(function) <= 140 else function[:137] + "..."
            print(f"  {ir / answers:>10,.1f} {share:>5.1f}% {called:>12}  {label}")
    print(f"\nprofile: {relative} (callgrind_annotate {relative}); done in {time.monotonic() - started:.0f} s")
    if args.json:
        report = {
            "command": "bench/profile.py " + " ".join(sys.argv[1:]), "server": name,
            "connections": args.connections, "depth": args.depth, "reconnect": args.reconnect,
            "seconds": args.seconds,
            "answers": answers, "rps_under_valgrind": result["rps"], "errors": result["errors"],
            "ir_total": total, "ir_per_answer": per_answer, "note": note,
            "self": [{"function": f, "ir": ir, "ir_per_answer": ir / answers, "calls": calls.get(f)}
                     for f, ir in tables["self"]],
            "inclusive": [{"function": f, "ir": ir, "ir_per_answer": ir / answers, "calls": calls.get(f)}
                          for f, ir in tables["inclusive"]],
        }
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
