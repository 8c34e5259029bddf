#!/usr/bin/env python3
"""bench/timeline.py end to end, and its page in a real browser.

Usage: timeline_test.py ZEN_BINARY

Runs the one-at-a-time scene against single and epoll, then opens DIR/timeline.html in headless
Chromium: the page as Chromium built it holds one lane per client per architecture, a screenshot
is taken (and is a real PNG of some size), and nothing in the page points at the network.
Every process started here is stopped by its pid or ends by itself within its timeout.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from netcheck import check, failures  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(folder, *args):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("timeline_test: no chromium on PATH (make peer-deps installs it)")
    profile = tempfile.mkdtemp(prefix="zen-chromium-", dir=folder)
    return subprocess.run([browser] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}"] + list(args),
                          capture_output=True, text=True, timeout=120)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    zen = argv[1]
    with tempfile.TemporaryDirectory(prefix="zen-timeline-test-") as folder:
        out = os.path.join(folder, "report")
        done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "timeline.py"), "--out", out,
                               "--archs", "single,epoll", "--scenes", "one-at-a-time", "--zen", zen],
                              capture_output=True, text=True, timeout=180)
        check(done.returncode == 0, f"timeline.py exit {done.returncode}: {done.stderr[-1500:]}")
        page = os.path.join(out, "timeline.html")
        with open(page) as f:
            text = f.read()
        links = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', text) + re.findall(r"url\(([^)]+)\)", text)
        check(all(not re.match(r"[a-z]+:", link) or link.startswith("#") for link in links),
              f"nothing in the page points at the network: {links}")
        check("<script" not in text, "the page needs no script")
        for arch in ("single", "epoll"):
            check(os.path.exists(os.path.join(out, f"one-at-a-time-{arch}.json")), f"{arch}'s trace beside the page")

        dom = chromium(folder, "--dump-dom", "file://" + page)
        check(dom.returncode == 0, f"chromium --dump-dom exit {dom.returncode}: {dom.stderr[-500:]}")
        rows = re.findall(r'<svg[^>]*aria-label="([^"]+)"[^>]*class="row"(.*?)</svg>', dom.stdout, re.S)
        lanes = {label: len(re.findall(r'<g class="lane"', body)) for label, body in rows}
        check(lanes == {"single": 5, "epoll": 5}, f"one lane per client per architecture, as Chromium built it: {lanes}")

        shot = os.path.join(folder, "timeline.png")
        taken = chromium(folder, "--window-size=960,1400", f"--screenshot={shot}", "file://" + page)
        check(taken.returncode == 0 and os.path.exists(shot), f"chromium took a screenshot ({taken.stderr[-300:]})")
        if os.path.exists(shot):
            with open(shot, "rb") as f:
                png = f.read()
            check(png.startswith(b"\x89PNG") and len(png) > 20_000, f"the screenshot is a picture ({len(png)} bytes)")
    if failures:
        print(f"timeline_test: {len(failures)} failure(s)")
        return 1
    print("timeline_test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
