#!/usr/bin/env python3
"""The fault matrix on a real wire: each fault against each architecture, under `zen bench`.

    matrix.py --zen ZEN --out DIR --fault loss5              one fault, its short set of architectures
    matrix.py --zen ZEN --out DIR --fault loss5 --arch epoll,single
    matrix.py --zen ZEN --out DIR --all                      every fault x every architecture
    matrix.py --out DIR --report                             DIR/matrix-*.json -> DIR/wire-matrix.md

Two hosts in network namespaces of their own (tests/wire/netns.py), the server at 198.18.N.1 and
the clients at 198.18.N.2. The kernel's own tools make the faults: nftables (random loss with
`numgen`, partitions one way and both ways, `reject with tcp reset`), tbf (bandwidth) and netem
where the kernel has it (checked at start); tests/wire/faultproxy.py, in the server's namespace,
makes the rest (latency and jitter without netem, slicing, a slow close, resets, a black hole).

Each run loads the server with `zen bench -r` (open loop, its answer checking on) and, beside it,
tests/wire/checker.py (its own questions, every answer compared, a byte after the last one
counted as an answer given twice). A run passes when: no answer is wrong and none comes twice;
every question bench asked is answered, or lost to a named error, or counted unanswered (due
when the run ended); every question the checker asked is answered or lost to a named error; the
fault really bit (the nft rule's counter, tbf's overlimits, the proxy's tally); the faults that
only delay (latency, slicer, slow close) lose nothing; after the fault heals and the load ends,
the server's open connections (SIGUSR1's `active`) fall to 0 within the bound, and a new client
is answered. Its figures go to DIR/matrix-FAULT.json and the table of them all to DIR/wire-matrix.md.
Exit 0 all passed, 1 a failure (each named), 77 no namespaces here (the reason on one line).
"""
import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
import architectures  # noqa: E402
import netns  # noqa: E402

PROXY = os.path.join(HERE, "faultproxy.py")
CHECKER = os.path.join(HERE, "checker.py")
PORT, PROXY_PORT = 1060, 2060
# After the load ends and the fault is healed, a connection still open is closing: its FIN (or
# the data before it) may wait for a retransmission the partition or the loss delayed. 5 s
# covers the kernel's backoff after the longest partition here (2 s: retries at about 0.2,
# 0.6, 1.4, 3.0 s) with room for a busy machine.
RECLAIM_BOUND_S = 5.0
KEEPALIVE_S, SEND_TIMEOUT_S = 2, 3
# Item 1's bound for a vanished idle peer: S + 2 * max(1, S / 3) + 2 s after its last packet.
VANISH_BOUND_S = KEEPALIVE_S + 2 * max(1, KEEPALIVE_S // 3) + 2
VANISH_SLACK_S = 1.0  # SIGUSR1 polling and a busy machine


# --- the faults ---


class Fault:
    """One fault: what it does to the wire before, during and after the load."""
    path = "nft"
    through_proxy = False
    lossless = False  # it only delays: nothing may be lost
    toxics = ()
    bench_seconds = 3
    reconnect = None
    reclaim_bound = RECLAIM_BOUND_S
    cheap = False  # in the short form against every architecture

    def __init__(self, name):
        self.name = name

    def before(self, wire):
        pass

    def timeline(self):
        """[(seconds after the load starts, action(wire))]"""
        return []

    def bit(self, wire, proxy_stats):
        """How much the fault did (packets dropped, toxics applied): must be > 0."""
        return wire.dropped(wire.srv) + wire.dropped(wire.cli)


class Loss(Fault):
    def __init__(self, name, percent):
        super().__init__(name)
        self.percent = percent
        self.cheap = percent == 5

    def timeline(self):
        # From 0.3 s into the load: bench's first connect (which, failing, ends its run before
        # it starts) has then been made.
        def lose(wire):
            wire.add_rule(wire.srv, "input", f"ip saddr {{cli}} numgen random mod 100 < {self.percent} counter drop")
            wire.add_rule(wire.srv, "output", f"ip daddr {{cli}} numgen random mod 100 < {self.percent} counter drop")
        return [(0.3, lose)]


class Partition(Fault):
    bench_seconds = 5

    def __init__(self, name, two_way):
        super().__init__(name)
        self.two_way = two_way

    def timeline(self):
        def cut(wire):
            wire.add_rule(wire.srv, "output", "ip daddr {cli} counter drop")
            if self.two_way:
                wire.add_rule(wire.srv, "input", "ip saddr {cli} counter drop")
        return [(1.0, cut), (3.0, lambda wire: wire.flush_rules_keeping_counts())]


class Reject(Fault):
    cheap = True
    # The client's kernel forgets a connection it was told to reset; the server's side of one
    # that was idle then hears nothing more, and only a keepalive probe (answered by a reset)
    # ends it: the vanished-peer bound, from the load's end (after the heal).
    reclaim_bound = VANISH_BOUND_S + VANISH_SLACK_S

    def timeline(self):
        def reject(wire):
            wire.add_rule(wire.srv, "input", f"ip saddr {{cli}} tcp dport {PORT} counter reject with tcp reset")
        return [(1.0, reject), (1.6, lambda wire: wire.flush_rules_keeping_counts())]


class Bandwidth(Fault):
    path = "tbf"

    def before(self, wire):
        for namespace, link in ((wire.srv, wire.srv_link), (wire.cli, wire.cli_link)):
            wire.tc(namespace, link, "add", "root", "tbf", "rate", "256kbit", "burst", "1600", "latency", "300ms")

    def bit(self, wire, proxy_stats):
        total = 0
        for namespace, link in ((wire.srv, wire.srv_link), (wire.cli, wire.cli_link)):
            shown = wire.qdiscs(namespace, link)
            for word, value in zip(shown.split(), shown.split()[1:]):
                if word == "overlimits":
                    total += int(value)
        return total


class NetemLatency(Fault):
    path = "netem"
    lossless = True

    def before(self, wire):
        wire.tc(wire.srv, wire.srv_link, "add", "root", "netem", "delay", "40ms", "30ms")
        wire.tc(wire.cli, wire.cli_link, "add", "root", "netem", "delay", "20ms", "10ms")

    def bit(self, wire, proxy_stats):
        return 1 if "netem" in wire.qdiscs(wire.srv, wire.srv_link) else 0


class ProxyFault(Fault):
    path = "proxy"
    through_proxy = True

    def __init__(self, name, toxics, lossless=False, reconnect=None, reclaim_extra=0.0, cheap=False):
        super().__init__(name)
        self.toxics, self.lossless, self.reconnect, self.cheap = toxics, lossless, reconnect, cheap
        self.reclaim_bound = RECLAIM_BOUND_S + reclaim_extra

    def bit(self, wire, proxy_stats):
        return sum(proxy_stats.get("applied", {}).values())


class Vanish(Fault):
    """The client's host goes silent for good while its connections are open (no FIN, no RST)."""
    bench_seconds = 4
    vanish_at = 1.5

    def timeline(self):
        def vanish(wire):
            wire.add_rule(wire.srv, "input", "ip saddr {cli} counter drop")
            wire.add_rule(wire.srv, "output", "ip daddr {cli} counter drop")
            # At once, the vanished host's connections hold every slot: a new client (from the
            # address the fault spares) is turned away by --max-connections.
            return ask(wire, wire.spare_ip, PORT, timeout=1.0)
        return [(self.vanish_at, vanish)]


def faults(netem):
    found = [Loss("loss5", 5), Loss("loss20", 20), Bandwidth("bandwidth"), Partition("partition2", True),
             Partition("partition1", False), Reject("reject"), Vanish("vanish")]
    if netem:
        found.append(NetemLatency("latency"))
    else:
        found.append(ProxyFault("latency", ["up:latency:ms=20,jitter=10", "down:latency:ms=40,jitter=30"],
                                lossless=True))
    found += [ProxyFault("slicer", ["up:slicer:size=3,delay=1", "down:slicer:size=2,delay=1"], lossless=True,
                         cheap=True),
              ProxyFault("slow_close", ["up:slow_close:ms=1500", "down:slow_close:ms=1500"], lossless=True,
                         reconnect=20, reclaim_extra=1.5),
              ProxyFault("reset", ["up:reset_peer:bytes=400,toxicity=0.5"], reconnect=30),
              ProxyFault("timeout", ["up:timeout:ms=0,start=1000,stop=2000"])]
    return {fault.name: fault for fault in found}


# --- one run ---


def load_profile(arch):
    """(server arguments, bench connections, bench --reconnect, checker one batch per connection)"""
    if arch == "single":
        return [], 1, 5, True  # one client at a time: everyone must take turns
    if arch in ("threaded", "prefork"):
        return ["--workers", "4"], 3, None, False  # one worker left for the checker
    if arch == "reuseport":
        return ["--workers", "2"], 6, None, False
    return [], 6, None, False


def proxy_stats_of(process):
    if process is None:
        return {}
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return {}
    for line in reversed(netns.read(process.log_path).splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


def wait_active_zero(wire, server, since, bound):
    """Seconds from `since` until SIGUSR1's `active` is 0, or None past the bound."""
    deadline = since + bound + 2  # looked at a little past the bound, so a miss is measured
    while True:
        counters = wire.counters(server)
        now = time.monotonic()
        if counters.get("active") == 0:
            return now - since, counters
        if now > deadline:
            return None, counters
        time.sleep(0.1)


ASK = ("import socket, sys\n"
       "s = socket.socket()\n"
       "s.settimeout(float(sys.argv[4]))\n"
       "s.bind((sys.argv[3], 0))\n"
       "try:\n"
       "    s.connect((sys.argv[1], int(sys.argv[2])))\n"
       "    s.sendall(b'Beautiful is better than?')\n"
       "    print(s.recv(100).decode('latin-1'))\n"
       "except OSError as error:\n"
       "    print('error: ' + type(error).__name__)\n")


def ask(wire, source, port, timeout=2.0):
    result = wire.python(wire.cli, ASK, wire.srv_ip, str(port), source, str(timeout), timeout=timeout + 10)
    return result.stdout.strip()


def has_keepalive(zen):
    """Whether this zen has `serve --tcp-keepalive` (item 1 of the issue: vanished peers)."""
    shown = subprocess.run([zen, "serve", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return "--tcp-keepalive" in shown.stdout


def run_case(zen, arch, fault, keepalive):
    record = {"fault": fault.name, "arch": arch, "path": fault.path, "keepalive": keepalive, "failures": []}
    kind = {name: kind for name, kind, _ in architectures.registry()}[arch]
    failures = record["failures"]
    extra, connections, reconnect, one_batch = load_profile(arch)
    reconnect = fault.reconnect if fault.reconnect and not reconnect else reconnect
    # The proxy is Python: a lighter load keeps its own CPU out of the figures.
    rate = (60 if fault.through_proxy else 150) if arch == "single" else (120 if fault.through_proxy else 300)
    server_args = ["--arch", arch, *extra, "--quiet"]
    if isinstance(fault, Vanish):
        if not keepalive:
            raise RuntimeError("this zen has no `serve --tcp-keepalive`: a vanished peer cannot be reclaimed "
                               "(the vanished-peers change is not in it)")
        # Slots the bench's connections and the idle holders fill exactly.
        # threaded, prefork: 3 + 1 = their 4 workers; single serves one connection at a time: none
        holders = 0 if arch == "single" else 1 if arch in ("threaded", "prefork") else 4
        if arch not in ("single",):
            server_args += ["--max-connections", str(connections + holders)]
        server_args += ["--tcp-keepalive", str(KEEPALIVE_S), "--send-timeout", str(SEND_TIMEOUT_S),
                        "--idle-timeout", "0"]
    else:
        server_args += ["--send-timeout", str(SEND_TIMEOUT_S)]
        if keepalive:
            server_args += ["--tcp-keepalive", str(KEEPALIVE_S)]
    with netns.Wire(fault.name) as wire:
        server = wire.serve(zen, *server_args, port=PORT)
        proxy = None
        port = PORT
        if fault.through_proxy:
            proxy = wire.start(wire.srv, [sys.executable, PROXY, "--listen", f"{wire.srv_ip}:{PROXY_PORT}",
                                          "--upstream", f"{wire.srv_ip}:{PORT}",
                                          *[f"--toxic={t}" for t in fault.toxics]], "proxy.log")
            deadline = time.monotonic() + 10
            while "listening" not in netns.read(proxy.log_path):
                if proxy.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("faultproxy did not start:\n" + netns.read(proxy.log_path))
                time.sleep(0.02)
            port = PROXY_PORT
        fault.before(wire)
        holders_process = None
        if isinstance(fault, Vanish) and arch != "single":
            holders_process = wire.start(wire.cli, [sys.executable, "-c", HOLD, wire.srv_ip, str(port),
                                                    str(holders)], "holders.log")
            deadline = time.monotonic() + 10
            while "held" not in netns.read(holders_process.log_path):
                if holders_process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the idle holders did not connect:\n" + netns.read(holders_process.log_path))
                time.sleep(0.02)
        bench_command = [zen, "bench", wire.srv_ip, "-p", str(port), "-r", str(rate), "-c", str(connections),
                         "-d", str(fault.bench_seconds), "-w", "0", "--timeout", "2", "-P", "4", "--json"]
        if reconnect:
            bench_command += ["--reconnect", str(reconnect)]
        bench = wire.start(wire.cli, bench_command, "bench.json")
        checker_command = [sys.executable, CHECKER, wire.srv_ip, str(port), "--seconds", str(fault.bench_seconds)]
        if one_batch:
            checker_command.append("--one-batch-per-connection")
        checker = None if isinstance(fault, Vanish) else wire.start(wire.cli, checker_command, "checker.json")
        started = time.monotonic()
        marks = {}
        outcomes = {}
        for at, action in fault.timeline():
            time.sleep(max(0.0, started + at - time.monotonic()))
            marks[at] = time.monotonic()
            outcomes[at] = action(wire)
        for process in (bench, checker):
            if process is not None:
                try:
                    process.wait(timeout=fault.bench_seconds + 30)
                except subprocess.TimeoutExpired:
                    failures.append(f"{os.path.basename(process.args[3])} did not end")
        load_ended = time.monotonic()
        record["bench"] = bench_report(bench, failures)
        record["checker"] = checker_report(checker, failures) if checker else None
        proxy_stats = proxy_stats_of(proxy) if proxy else {}
        record["proxy"] = proxy_stats or None
        bit = fault.bit(wire, proxy_stats)
        record["fault_bit"] = bit
        if bit <= 0:
            failures.append(f"the fault never bit (its counter is {bit})")
        if isinstance(fault, Vanish):
            record["new_client_at_once"] = outcomes[fault.vanish_at]
            check_vanish(wire, server, arch, kind, marks[fault.vanish_at], connections + holders, record, failures)
        else:
            if not fault.through_proxy:
                wire.flush_rules_keeping_counts()
            reclaim, counters = wait_active_zero(wire, server, load_ended, fault.reclaim_bound)
            record["reclaim_s"] = None if reclaim is None else round(reclaim, 2)
            record["server"] = counters
            if reclaim is None or reclaim > fault.reclaim_bound:
                failures.append(f"{counters.get('active')} connections still open "
                                f"{fault.reclaim_bound:g} s after the load ended")
            answer = ask(wire, wire.cli_ip, PORT)
            if answer != "Ugly.":
                failures.append(f"a new client after the fault got {answer!r}")
        check_accounting(fault, kind, record, failures)
        if server.poll() is not None:
            failures.append(f"zen serve exited {server.returncode}:\n" + netns.read(server.log_path)[-2000:])
        record["log_excerpt"] = [line for line in netns.read(server.log_path).splitlines() if "vanished" in line][:3]
    return record


HOLD = ("import socket, sys, time\n"
        "held = []\n"
        "for _ in range(int(sys.argv[3])):\n"
        "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
        "    s.sendall(b'Simple is better than?')\n"
        "    assert s.recv(100) == b'Complex.'\n"
        "    held.append(s)\n"
        "print('held', len(held), flush=True)\n"
        "time.sleep(120)\n")


def check_vanish(wire, server, arch, kind, vanished, vanished_connections, record, failures):
    """After the client's host went silent: slots come back by keepalive and the user timeout."""
    limit = VANISH_BOUND_S + VANISH_SLACK_S
    # Right after, the vanished host's connections held every slot: a new client was turned away
    # (an event loop's --max-connections), so the reclaim below is what lets one in.
    if kind == "event" and record["new_client_at_once"] != "Error: server busy.":
        failures.append(f"the slots were not full after the host vanished: a new client got "
                        f"{record['new_client_at_once']!r}")
    reclaim, counters = wait_active_zero(wire, server, vanished, limit)
    record["reclaim_s"] = None if reclaim is None else round(reclaim, 2)
    record["server"] = counters
    record["reclaim_bound_s"] = VANISH_BOUND_S
    if reclaim is None or reclaim > limit:
        failures.append(f"{counters.get('active')} connections of the vanished host still open "
                        f"{limit:g} s after it vanished (bound {VANISH_BOUND_S} s + {VANISH_SLACK_S:g} s)")
    kinds = {key: counters.get(key, 0) for key in ("timeout_keepalive", "timeout_unacknowledged")}
    record["vanished_by"] = kinds
    if "timeout_keepalive" not in counters:
        failures.append("the counters have no timeout_keepalive (needs `zen serve --tcp-keepalive`)")
    elif arch != "single" and kinds["timeout_keepalive"] < 1:
        failures.append(f"no idle holder was dropped by keepalive: {kinds}")
    elif arch != "single" and reclaim is not None and sum(kinds.values()) != vanished_connections:
        # Every one of its connections ended by the kernel's probes or its user timeout, not
        # by anything else (single holds one at a time: the rest wait in its backlog)
        failures.append(f"{vanished_connections} connections vanished, {sum(kinds.values())} ended as "
                        f"vanished: {kinds}")
    # A new client, from the address the fault spares, is served.
    answer = ask(wire, wire.spare_ip, PORT)
    if answer != "Ugly.":
        failures.append(f"a new client after the reclaim got {answer!r}")


def bench_report(bench, failures):
    text = netns.read(bench.log_path)
    try:
        report = json.loads(text[text.index("{"):])
    except ValueError:
        failures.append("zen bench printed no JSON: " + text[-500:])
        return None
    cycle = report["cycles"][0] if "cycles" in report else report
    keep = ("asked", "requests", "errors", "errors_by_kind", "unanswered", "retried", "reconnects", "late", "opened")
    return {key: cycle[key] for key in keep}


def checker_report(checker, failures):
    text = netns.read(checker.log_path).strip()
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        failures.append("checker.py printed no JSON: " + text[-500:])
        return None


def check_accounting(fault, kind, record, failures):
    bench = record.get("bench")
    if bench:
        kinds = bench["errors_by_kind"]
        if kinds["mismatch"]:
            failures.append(f"zen bench saw {kinds['mismatch']} wrong answers")
        lost = bench["asked"] - bench["requests"] - bench["unanswered"]
        bench["lost"] = lost
        if lost < 0:
            failures.append(f"zen bench counts more answers than questions: {bench}")
        elif lost > bench["errors"]:
            failures.append(f"{lost} questions lost but only {bench['errors']} named errors: {bench}")
        if bench["requests"] == 0:
            failures.append("zen bench got no answer at all")
        # (questions still unsent when the window closed are the load outrunning a slowed wire:
        # counted `unanswered` by bench, and no loss)
        # A fault that only delays loses nothing to a reset, a close or a refused connect; an
        # event loop serves every connection at once, so there nothing may time out either. A
        # blocking architecture's client may wait its turn past the timeout (a slow close holds
        # its worker): counted as `timeout`.
        if fault.lossless:
            allowed = ("mismatch",) + (("timeout",) if kind == "blocking" else ())
            lost_kinds = {k: v for k, v in kinds.items() if v and k not in allowed}
            if lost_kinds:
                failures.append(f"a fault that only delays lost questions: {lost_kinds}")
    checker = record.get("checker")
    if checker:
        if checker["wrong"]:
            failures.append(f"checker: {checker['wrong']} wrong answers {checker.get('wrong_examples')}")
        if checker["twice"]:
            failures.append(f"checker: {checker['twice']} conversations got an answer twice "
                            f"({checker.get('twice_bytes')!r})")
        named = sum(count for kind, count in checker["errors"].items() if kind != "connect")
        if checker["asked"] != checker["answered"] + checker["wrong"] + named:
            failures.append(f"checker: {checker['asked']} asked, {checker['answered']} answered, "
                            f"{named} lost to named errors: some are unaccounted for")
        if fault.lossless:
            allowed = ("timeout",) if kind == "blocking" else ()
            lost_kinds = {k: v for k, v in checker["errors"].items() if v and k not in allowed}
            if lost_kinds:
                failures.append(f"checker: a fault that only delays lost questions: {lost_kinds}")
        if checker["answered"] == 0:
            failures.append("checker: no answer at all")


# --- the selections, the figures ---


def short_arches(fault, names):
    """The short form: every architecture for the cheap faults, epoll and threaded for the rest."""
    return names if fault.cheap else [name for name in ("epoll", "threaded") if name in names]


def write_atomically(path, text):
    """Tests of other faults write beside this one at the same time: readers see whole files."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def write_figures(out, name, records):
    os.makedirs(out, exist_ok=True)
    write_atomically(os.path.join(out, f"matrix-{name}.json"), json.dumps(records, indent=1))
    write_report(out)


def errors_text(record):
    parts = []
    bench = record.get("bench") or {}
    for kind, count in (bench.get("errors_by_kind") or {}).items():
        if count:
            parts.append(f"{kind} {count}")
    if bench.get("unanswered"):
        parts.append(f"unanswered {bench['unanswered']}")
    if bench.get("retried"):
        parts.append(f"retried {bench['retried']}")
    return ", ".join(parts) or "none"


def write_report(out):
    records = []
    for path in sorted(glob.glob(os.path.join(out, "matrix-*.json"))):
        with open(path) as f:
            records += json.load(f)
    lines = ["| fault | path | arch | asked | answered | errors by kind (bench) | checker answered / lost "
             "| wrong, twice | fault bit | reclaim s | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        bench = r.get("bench") or {}
        checker = r.get("checker") or {}
        wrong = (bench.get("errors_by_kind") or {}).get("mismatch", 0) + checker.get("wrong", 0)
        checker_text = "-" if not checker else \
            f"{checker['answered']} / {sum(v for k, v in checker['errors'].items() if k != 'connect')}"
        if r.get("vanished_by"):
            checker_text = "by keepalive {timeout_keepalive}, unacked {timeout_unacknowledged}".format(
                **r["vanished_by"])
        verdict = "pass" if not r["failures"] else "FAIL: " + "; ".join(r["failures"])[:160]
        lines.append(f"| {r['fault']} | {r['path']} | {r['arch']} | {bench.get('asked', '-')} | "
                     f"{bench.get('requests', '-')} | {errors_text(r)} | {checker_text} | "
                     f"{wrong}, {checker.get('twice', 0)} | {r.get('fault_bit')} | {r.get('reclaim_s')} | {verdict} |")
    lines += ["", *compact_table(records)]
    write_atomically(os.path.join(out, "wire-matrix.md"), "\n".join(lines) + "\n")


def compact_table(records):
    """Faults x architectures, a cell each: answered/asked by bench, questions lost (each to a
    named error), seconds to reclaim; then each fault's errors by kind over every architecture."""
    arches = [name for name in architectures.names() if any(r["arch"] == name for r in records)]
    order = list(dict.fromkeys(r["fault"] for r in records))
    cells = {(r["fault"], r["arch"]): r for r in records}
    lines = ["| fault (path) | " + " | ".join(arches) + " | errors by kind, all architectures |",
             "|---|" + "---|" * (len(arches) + 1)]
    for fault in order:
        totals = {}
        row = []
        for arch in arches:
            r = cells.get((fault, arch))
            if r is None:
                row.append("")
                continue
            bench = r.get("bench") or {}
            for kind, count in (bench.get("errors_by_kind") or {}).items():
                totals[kind] = totals.get(kind, 0) + count
            totals["unanswered"] = totals.get("unanswered", 0) + bench.get("unanswered", 0)
            if not bench:
                row.append("FAIL" if r["failures"] else "-")
                continue
            lost = bench["asked"] - bench["requests"] - bench["unanswered"]
            reclaim = "-" if r.get("reclaim_s") is None else f"{r['reclaim_s']:g}s"
            row.append(f"{bench['requests']}/{bench['asked']} · {lost} · {reclaim}"
                       + (" FAIL" if r["failures"] else ""))
        path = next(r["path"] for r in records if r["fault"] == fault)
        kinds = ", ".join(f"{k} {v}" for k, v in totals.items() if v) or "none"
        lines.append(f"| {fault} ({path}) | " + " | ".join(row) + f" | {kinds} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zen")
    parser.add_argument("--out", required=True, help="where the figures go (the build directory's wire/)")
    parser.add_argument("--fault", help="one fault's name")
    parser.add_argument("--arch", help="comma-separated architectures (default: the short set of the fault)")
    parser.add_argument("--all", action="store_true", help="every fault against every architecture")
    parser.add_argument("--report", action="store_true", help="only write DIR/wire-matrix.md from DIR/matrix-*.json")
    options = parser.parse_args()
    if options.report:
        write_report(options.out)
        print(open(os.path.join(options.out, "wire-matrix.md")).read())
        return 0
    reason = netns.why_no_namespaces()
    if reason:
        print("SKIPPED: " + reason, flush=True)
        return netns.SKIP
    # SIGTERM (an operator's, or a timeout's) still runs every cleanup on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    swept = netns.sweep_stale()
    if swept:
        print(f"removed stale namespaces of dead runs: {swept}", flush=True)
    netem = netns.netem_available()
    print(f"netem: {'present: delay and jitter by netem' if netem else 'absent: delay and jitter by faultproxy.py'}",
          flush=True)
    keepalive = has_keepalive(options.zen)
    print("keepalive: " + (f"zen serve --tcp-keepalive {KEEPALIVE_S}" if keepalive else
                           "absent from this zen (before the vanished-peers change): servers run without it"),
          flush=True)
    known = faults(netem)
    names = architectures.names()
    if options.all:
        plan = [(fault, names) for fault in known.values()]
    else:
        if options.fault not in known:
            parser.error(f"--fault: one of {', '.join(known)}")
        fault = known[options.fault]
        plan = [(fault, options.arch.split(",") if options.arch else short_arches(fault, names))]
    zen = os.path.abspath(options.zen)
    failed = 0
    for fault, arches in plan:
        records = []
        for arch in arches:
            started = time.monotonic()
            try:
                record = run_case(zen, arch, fault, keepalive)
            except RuntimeError as error:
                record = {"fault": fault.name, "arch": arch, "path": fault.path, "failures": [str(error)]}
            record["seconds"] = round(time.monotonic() - started, 1)
            records.append(record)
            bench = record.get("bench") or {}
            print(f"{fault.name} [{fault.path}] {arch}: asked {bench.get('asked')}, answered {bench.get('requests')}, "
                  f"errors {errors_text(record)}; checker {json.dumps(record.get('checker'))}; "
                  f"fault bit {record.get('fault_bit')}; reclaim {record.get('reclaim_s')} s; "
                  f"{record['seconds']} s: {'pass' if not record['failures'] else 'FAIL'}", flush=True)
            for failure in record["failures"]:
                print(f"  FAIL {fault.name} {arch}: {failure}", flush=True)
            failed += bool(record["failures"])
        write_figures(options.out, fault.name, records)
    print(f"figures: {os.path.join(options.out, 'wire-matrix.md')}", flush=True)
    print("PASS" if not failed else f"FAIL: {failed} runs", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
