#!/usr/bin/env python3
"""Check that a report written by bench/report.py really renders its charts.

Usage: python3 bench/check_report.py REPORT.html

Loads the page in headless Chromium and reads back the DOM after the page's
own on-load script ran.  That script stamps data-rendered="N" on every
<svg class="chart"> (N = data marks with a non-empty bounding box) and
data-charts-rendered on <body>.  Reading geometry from a real layout engine
catches what a text check of the HTML cannot: charts that parse but draw
nothing (NaN coordinates, zero-size bars, a script error).

It also requires the verdict (bench/verdict.py): a section with one line or more naming a
winner, as the browser laid it out.

Exit 0 when every chart (at least 3) drew marks and the verdict is there, 1 otherwise.
"""

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHROMIUM = "/usr/bin/chromium"
MIN_CHARTS = 3
TIMEOUT_S = 60

SVG_TAG = re.compile(r'<svg\b[^>]*\bclass="(?:[^"]*\s)?chart(?:\s[^"]*)?"[^>]*>')
RENDERED = re.compile(r'\bdata-rendered="(\d+)"')
TITLE = re.compile(r'\s*<title>([^<]*)</title>')
BODY = re.compile(r'<body\b[^>]*\bdata-charts-rendered="(\d+)"')
VERDICT = re.compile(r'<ol class="verdict">(.*?)</ol>', re.S)


def bad(reason):
    print(f"check_report.py: {reason}")
    sys.exit(1)


def dump_dom(path):
    """DOM after load, as Chromium serialises it; a fresh profile each time."""
    profile = tempfile.mkdtemp(prefix="check_report-")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
           "--dump-dom", "file://" + os.path.abspath(path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        bad(f"chromium did not finish within {TIMEOUT_S} s")
    except OSError as e:
        bad(f"cannot run {CHROMIUM}: {e.strerror}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if done.returncode != 0 or not done.stdout.strip():
        # Chromium's stderr is noisy; its last line is usually the reason.
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        bad(f"chromium failed (exit {done.returncode}): {last}")
    return done.stdout


def main(argv):
    if len(argv) != 2:
        bad("usage: check_report.py REPORT.html")
    path = argv[1]
    if not os.path.isfile(path):
        bad(f"no such file: {path}")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        # Never pass without a browser: the whole point is a real render.
        bad(f"{CHROMIUM} not found; install Debian's chromium package to check reports")
    dom = dump_dom(path)

    svgs = list(SVG_TAG.finditer(dom))
    if len(svgs) < MIN_CHARTS:
        bad(f"only {len(svgs)} <svg class=\"chart\"> elements, need at least {MIN_CHARTS}")
    body = BODY.search(dom)
    if not body:
        bad("body has no data-charts-rendered: the on-load script did not run")

    empty = []
    for i, svg in enumerate(svgs, 1):
        # Name charts by their <title> so the message says which one is empty.
        title = TITLE.match(dom, svg.end())
        name = f"chart {i}" + (f" '{html.unescape(title.group(1))}'" if title else "")
        m = RENDERED.search(svg.group(0))
        if not m:
            empty.append(f"{name} (no data-rendered)")
        elif int(m.group(1)) == 0:
            empty.append(f"{name} (0 marks)")
    if empty:
        bad("charts drew nothing: " + ", ".join(empty))
    if int(body.group(1)) != len(svgs):
        bad(f"data-charts-rendered={body.group(1)} but the page has {len(svgs)} charts")

    verdict = VERDICT.search(dom)
    lines = re.findall(r"<li\b", verdict.group(1)) if verdict else []
    if not lines or " wins with " not in verdict.group(1):
        bad("the page has no verdict naming a winner")

    print(f"check_report.py: {len(svgs)} charts rendered, a verdict of {len(lines)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
