"""The report's verdict: which architecture for which load, and why, computed from the run's own
numbers (bench/compare.py prints it; bench/report.py puts it at the top of the page).

For each load, the zen architectures are ranked by answers per second (the medians of the
rounds). The line names the winner, the runner-up and the margin between them, and says whether
the margin is beyond the rounds' spread: it is when every round of the winner beat every round
of the runner-up; otherwise the two are a tie on this machine. An architecture that lost more
than 1 % of its questions to errors does not compete on that load, and the line says so. The
"why" compares what the run measured of the two (server CPU per answer, and whether the server
had one core or all of them) and names each one's model.

Pure functions over the report's runs, so tests/report/verdict_test.py drives them with numbers.
"""

# What each architecture is, in a few words (docs/architectures/).
MODELS = {
    "single": "one client at a time",
    "threaded": "a fixed pool of threads, each accepting in turn",
    "per-client": "a new thread for every client",
    "prefork": "a fixed pool of processes, each accepting in turn",
    "poll": "one thread, poll() over every socket",
    "epoll": "one thread, epoll readiness events",
    "reuseport": "one epoll loop per core, each with its own SO_REUSEPORT listener",
    "callbacks": "one thread, callbacks on readiness events",
    "chat": "one thread, asynchat-style buffered handlers",
    "coroutines": "one thread, C++20 coroutines on Asio",
    "uring": "one thread, io_uring completions",
}
# Those that use more than one core when the machine gives them more than one.
MULTICORE = {"threaded", "per-client", "prefork", "reuseport"}
ERROR_LIMIT = 0.01  # more than 1 % of questions lost to errors: out of the running


def load_label(run):
    """The load a run belongs to, sweep levels apart: 'c50', 'sweep c=20', 'conns c=1000'."""
    if run["load"] in ("sweep", "conns"):
        return f"{run['load']} c={run['connections']}"
    return run["load"]


def error_share(run):
    asked = (run.get("requests") or 0) + (run.get("errors") or 0)
    return (run.get("errors") or 0) / asked if asked else 0.0


def beyond_spread(winner, runner_up):
    """True when every round of the winner beat every round of the runner-up; None with one round."""
    ours, theirs = winner.get("round_rps") or [], runner_up.get("round_rps") or []
    if len(ours) < 2 or len(theirs) < 2:
        return None
    return min(ours) > max(theirs)


def why(winner, runner_up, pinned, beyond):
    """What the run measured of the two that explains the order (or, for a tie, what it measured)."""
    a, b = winner["server"], runner_up["server"]
    parts = [f"{a}: {MODELS.get(a, a)}"]
    ca, cb = winner.get("server_cpu_us_per_answer"), runner_up.get("server_cpu_us_per_answer")
    la, lb = winner.get("p50_us"), runner_up.get("p50_us")
    measured = isinstance(ca, (int, float)) and isinstance(cb, (int, float)) and ca > 0 and cb > 0
    if beyond is False:
        parts.append("the difference is within this machine's noise"
                     + (f" (server CPU per answer {ca:.2f} µs against {b}'s {cb:.2f})" if measured else ""))
    elif measured and ca < cb:
        parts.append(f"it spends less server CPU per answer ({ca:.2f} µs against {b}'s {cb:.2f})")
    elif measured and not pinned and a in MULTICORE:
        parts.append(f"it spends more CPU per answer ({ca:.2f} µs against {cb:.2f}) but on more than one core")
    elif measured:
        latency = (f"; median latency {la:,.0f} µs against {lb:,.0f}"
                   if isinstance(la, (int, float)) and isinstance(lb, (int, float)) else "")
        parts.append(f"it spends more CPU per answer ({ca:.2f} µs against {b}'s {cb:.2f}) and still answered "
                     f"more{latency}")
    return "; ".join(parts)


def error_kinds(run):
    kinds = {k: v for k, v in (run.get("errors_by_kind") or {}).items() if v}
    return ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])) or "errors"


def sustained(runs):
    """The open-loop sweep of one server: its highest achieved rate that kept up with the offered
    one (not behind, errors within the limit), and that run; (0, None) when none kept up."""
    kept = [r for r in runs if r.get("fell_behind") is False and error_share(r) <= ERROR_LIMIT
            and isinstance(r.get("achieved_rps"), (int, float))]
    best = max(kept, key=lambda r: r["achieved_rps"], default=None)
    return (best["achieved_rps"], best) if best else (0, None)


def decide_rate(rate_runs):
    """The open-loop line: which architecture sustains the highest rate without falling behind."""
    by_server = {}
    for run in rate_runs:
        by_server.setdefault(run["server"], []).append(run)
    ranked = sorted(((server, *sustained(runs)) for server, runs in by_server.items()), key=lambda t: -t[1])
    ranked = [t for t in ranked if t[2] is not None]
    if not ranked:
        return {"load": "rate", "winner": None,
                "line": "rate (open loop): no architecture kept up with any offered rate."}
    server, rate, run = ranked[0]
    line = (f"rate (open loop): {server} sustains {rate:,.0f} answers/s without falling behind "
            f"(p99 {run.get('p99_us') or 0:,.0f} µs there)")
    runner_up = None
    if len(ranked) > 1:
        runner_up, other_rate, other = ranked[1]
        line += (f"; runner-up {runner_up} {other_rate:,.0f} answers/s (p99 {other.get('p99_us') or 0:,.0f} µs); "
                 f"margin {rate / other_rate - 1:+.1%}")
    line += (f". Why: {server}: {MODELS.get(server, server)}; the rates offered were fractions of each "
             "server's own closed-loop capacity, so this ranks where each one's latency turns up.")
    return {"load": "rate", "winner": server, "runner_up": runner_up, "beyond": None, "line": line}


def decide(runs, servers_kind, pinned):
    """One verdict per load: a list of dicts (load, winner, runner_up, margin, beyond, line)."""
    by_load = {}
    rate_runs = []
    for run in runs:
        if servers_kind.get(run["server"]) != "zen":
            continue
        if run["load"] == "rate":
            rate_runs.append(run)
            continue
        by_load.setdefault(load_label(run), []).append(run)
    verdicts = []
    for load, candidates in by_load.items():
        out = [r for r in candidates if error_share(r) > ERROR_LIMIT]
        ranked = sorted((r for r in candidates if error_share(r) <= ERROR_LIMIT and (r.get("rps") or 0) > 0),
                        key=lambda r: r["rps"], reverse=True)
        excluded = (f" Out of the running (over 1 % of questions lost to errors): "
                    + "; ".join(f"{r['server']} ({error_share(r):.0%}: {error_kinds(r)})" for r in out) + ".") if out else ""
        if not ranked:
            verdicts.append({"load": load, "winner": None, "line": f"{load}: no architecture answered without errors."
                             + excluded})
            continue
        winner = ranked[0]
        if len(ranked) == 1:
            verdicts.append({"load": load, "winner": winner["server"], "runner_up": None,
                             "line": f"{load}: {winner['server']} ({winner['rps']:,.0f} answers/s), the only one "
                                     f"without errors." + excluded})
            continue
        runner_up = ranked[1]
        margin = winner["rps"] / runner_up["rps"] - 1
        beyond = beyond_spread(winner, runner_up)
        if beyond is None:
            judgement = "one round, so no spread to judge it by: indicative only"
        elif beyond:
            judgement = "beyond the rounds' spread"
        else:
            judgement = "within the rounds' spread: a tie on this machine"
        conversations = (f" ({winner['rps'] / 3:,.0f} conversations of 3 questions)" if load == "short" else "")
        line = (f"{load}: {winner['server']} wins with {winner['rps']:,.0f} answers/s{conversations}; runner-up "
                f"{runner_up['server']} with {runner_up['rps']:,.0f}; margin {margin:+.1%}, {judgement}. "
                f"Why: {why(winner, runner_up, pinned, beyond)}." + excluded)
        verdicts.append({"load": load, "winner": winner["server"], "runner_up": runner_up["server"],
                         "margin": margin, "beyond": beyond, "line": line})
    if rate_runs:
        verdicts.append(decide_rate(rate_runs))
    return verdicts


def decide_idle(results):
    """The idle-memory line: the architecture that holds an idle connection in the fewest bytes."""
    ranked = sorted((r for r in results if isinstance(r.get("bytes_per_connection"), (int, float))),
                    key=lambda r: r["bytes_per_connection"])
    if not ranked:
        return []
    winner = ranked[0]
    line = (f"idle memory: {winner['arch']} holds an idle connection in {winner['bytes_per_connection']:,} bytes "
            f"of server memory ({winner['connections']:,} connections)")
    if len(ranked) > 1:
        runner_up = ranked[1]
        line += (f"; runner-up {runner_up['arch']} with {runner_up['bytes_per_connection']:,}; "
                 f"the most, {ranked[-1]['arch']}, {ranked[-1]['bytes_per_connection']:,}")
    line += (f". Why: {winner['arch']}: {MODELS.get(winner['arch'], winner['arch'])}; one measurement, "
             "no rounds: the RSS difference over the connections opened.")
    return [{"load": "idle memory", "winner": winner["arch"], "runner_up": ranked[1]["arch"] if len(ranked) > 1
             else None, "beyond": None, "line": line}]
