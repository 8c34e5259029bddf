#!/usr/bin/env python3
"""bench/verdict.py driven by numbers: a clear winner, a tie within the rounds' spread, a single
round, an architecture out of the running for its errors, peers never judged, sweep levels
judged apart, and the "why" drawn from the run's CPU figures."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import verdict  # noqa: E402

KINDS = {"epoll": "zen", "uring": "zen", "poll": "zen", "reuseport": "zen", "redis-server": "peer"}


def run(server, load, rps, rounds, cpu=5.0, errors=0, connections=50):
    return {"server": server, "load": load, "connections": connections, "rps": rps, "requests": rps * 3,
            "errors": errors, "round_rps": rounds, "server_cpu_us_per_answer": cpu}


class Verdict(unittest.TestCase):
    def test_a_winner_beyond_the_spread(self):
        runs = [run("epoll", "c50", 100_000, [98_000, 100_000, 103_000], cpu=5.0),
                run("uring", "c50", 120_000, [118_000, 120_000, 125_000], cpu=4.0),
                run("poll", "c50", 90_000, [85_000, 90_000, 99_000]),
                run("redis-server", "c50", 200_000, [200_000, 200_000, 200_000])]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertEqual(line["winner"], "uring")  # the peer is never judged
        self.assertEqual(line["runner_up"], "epoll")
        self.assertAlmostEqual(line["margin"], 0.2)
        self.assertTrue(line["beyond"])
        self.assertIn("beyond the rounds' spread", line["line"])
        self.assertIn("less server CPU per answer (4.00 µs against epoll's 5.00)", line["line"])

    def test_overlapping_rounds_are_a_tie(self):
        runs = [run("epoll", "c50", 101_000, [95_000, 101_000, 104_000]),
                run("uring", "c50", 100_000, [96_000, 100_000, 106_000])]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertEqual(line["winner"], "epoll")
        self.assertFalse(line["beyond"])
        self.assertIn("a tie on this machine", line["line"])
        self.assertIn("within this machine's noise", line["line"])

    def test_one_round_is_indicative_only(self):
        runs = [run("epoll", "c1", 20_000, [20_000]), run("uring", "c1", 10_000, [10_000])]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertIsNone(line["beyond"])
        self.assertIn("indicative only", line["line"])

    def test_errors_take_an_architecture_out(self):
        runs = [run("epoll", "conns", 50_000, [50_000], errors=20_000, connections=10_000),
                run("uring", "conns", 40_000, [40_000], connections=10_000),
                run("poll", "conns", 30_000, [30_000], connections=10_000)]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertEqual(line["load"], "conns c=10000")
        self.assertEqual(line["winner"], "uring")
        self.assertIn("Out of the running", line["line"])
        self.assertIn("epoll (12%: errors)", line["line"])

    def test_sweep_levels_are_judged_apart(self):
        runs = [run("epoll", "sweep", 10, [10], connections=1), run("uring", "sweep", 20, [20], connections=1),
                run("epoll", "sweep", 40, [40], connections=20), run("uring", "sweep", 30, [30], connections=20)]
        lines = {line["load"]: line["winner"] for line in verdict.decide(runs, KINDS, pinned=True)}
        self.assertEqual(lines, {"sweep c=1": "uring", "sweep c=20": "epoll"})

    def test_unpinned_multicore_win_says_so(self):
        runs = [run("reuseport", "c50", 200_000, [190_000, 210_000], cpu=8.0),
                run("epoll", "c50", 100_000, [95_000, 105_000], cpu=5.0)]
        (line,) = verdict.decide(runs, KINDS, pinned=False)
        self.assertIn("on more than one core", line["line"])

    def test_error_kinds_are_named(self):
        out = run("epoll", "c50", 10, [10], errors=100)
        out["errors_by_kind"] = {"connect": 70, "timeout": 30, "reset": 0}
        runs = [out, run("uring", "c50", 10, [10])]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertIn("epoll (77%: connect 70, timeout 30)", line["line"])

    def test_open_loop_ranks_the_rate_sustained(self):
        def level(server, achieved, behind, p99):
            r = run(server, "rate", achieved, [achieved])
            r.update(achieved_rps=achieved, fell_behind=behind, p99_us=p99)
            return r
        runs = [level("epoll", 50_000, False, 300), level("epoll", 90_000, False, 900),
                level("epoll", 95_000, True, 90_000),
                level("uring", 60_000, False, 250), level("uring", 80_000, False, 700),
                level("uring", 81_000, True, 50_000)]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertEqual((line["load"], line["winner"], line["runner_up"]), ("rate", "epoll", "uring"))
        self.assertIn("sustains 90,000 answers/s without falling behind (p99 900 µs there)", line["line"])
        self.assertIn("margin +12.5%", line["line"])

    def test_short_conversations_count_conversations(self):
        runs = [run("epoll", "short", 30_000, [30_000]), run("uring", "short", 27_000, [27_000])]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertIn("30,000 answers/s (10,000 conversations of 3 questions)", line["line"])

    def test_nobody_without_errors(self):
        runs = [run("epoll", "conns", 10, [10], errors=100), run("uring", "conns", 10, [10], errors=100)]
        (line,) = verdict.decide(runs, KINDS, pinned=True)
        self.assertIsNone(line["winner"])
        self.assertIn("no architecture answered without errors", line["line"])


if __name__ == "__main__":
    unittest.main()
