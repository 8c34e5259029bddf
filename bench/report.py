#!/usr/bin/env python3
"""Turn a bench/compare.py JSON report into one self-contained HTML page.

Usage: python3 bench/report.py REPORT.json REPORT.html

The page has no external resources: CSS and SVG charts are inline, so it can
be mailed, archived or opened offline.  A short inline script counts the
drawn marks of each chart on load (see bench/check_report.py), which lets a
headless browser prove the charts really rendered.
"""

import html
import json
import math
import sys

# Fixed colours so a server keeps its colour from one report to the next.
PALETTE = {
    "single": "#1f77b4", "threaded": "#ff7f0e", "per-client": "#2ca02c",
    "prefork": "#d62728", "poll": "#9467bd", "epoll": "#8c564b",
    "reuseport": "#e377c2", "callbacks": "#17becf", "chat": "#637939",
    "coroutines": "#393b79", "uring": "#b8860b",
    "redis-server": "#222222", "memcached": "#888888",
}
# For names the palette does not know; picked by a stable hash of the name.
SPARE = ["#a6761d", "#1b9e77", "#e7298a", "#7570b3", "#66a61e", "#5e3c99"]
LOAD_ORDER = ["c1", "c50", "c50-p16", "short", "sweep", "conns", "rate", "delay", "wait"]
ITALIC, PEER, ERR = ' font-style="italic"', ' class="peer"', ' class="err"'
DASH = "6,4"  # peers are drawn dashed everywhere, so they stand out as "not zen"

SCRIPT = """
window.addEventListener('load', function () {
  // Count marks with a real box: proves the browser laid out the data.
  var charts = document.querySelectorAll('svg.chart'), drawn = 0;
  charts.forEach(function (svg) {
    var n = 0;
    svg.querySelectorAll('.mark').forEach(function (m) {
      try {
        var b = m.getBBox();
        if (b.width > 0 || b.height > 0) n++;
      } catch (e) { /* not rendered: does not count */ }
    });
    svg.setAttribute('data-rendered', String(n));
    if (n > 0) drawn++;
  });
  document.body.dataset.chartsRendered = String(drawn);
});
"""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 18px; margin-top: 32px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
figure { margin: 24px 0; } figcaption { color: #444; margin-top: 4px; }
svg.chart { width: 100%; max-width: 1000px; height: auto; display: block; }
svg text { font-family: system-ui, sans-serif; fill: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.err td { background: #fde2e2; } tr.err td.e { color: #b00; font-weight: 700; }
.peer { font-style: italic; }
.notice { background: #fff4d6; border: 1px solid #e0c36b; padding: 8px 12px; border-radius: 4px; }
ol.verdict li { margin: 6px 0; } .tie { color: #666; }
"""


def esc(value):
    return html.escape(str(value), quote=True)


def num(value):
    """Numeric value or None: the driver may write null, strings or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fmt(value, decimals=1):
    """Readable number: thousands separators, fewer decimals for big values."""
    v = num(value)
    if v is None:
        return "–"
    if abs(v) >= 100 or decimals == 0:
        return f"{v:,.0f}"
    return f"{v:,.{decimals}f}"


def short(v):
    """Compact tick label: 50k, 1.2M."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.4g}{suffix}"
    return f"{v:.4g}"


def nice_ticks(vmax, count=5):
    """0..top in round steps (1, 2, 2.5, 5 x 10^k) covering vmax."""
    vmax = vmax if vmax and vmax > 0 else 1.0
    raw = vmax / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    steps = math.ceil(vmax / step - 1e-9)
    return [i * step for i in range(steps + 1)]


class Servers:
    """Server order, colour and kind: the servers list first, then strays from runs."""

    def __init__(self, servers, runs):
        self.order, self.kind = [], {}
        for s in servers:
            if isinstance(s, dict) and s.get("name") is not None:
                self._add(str(s["name"]), s.get("kind"))
        for r in runs:
            self._add(str(r.get("server")), None)

    def _add(self, name, kind):
        if name not in self.kind:
            self.order.append(name)
            self.kind[name] = kind
        elif kind and not self.kind[name]:
            self.kind[name] = kind

    def peer(self, name):
        return self.kind.get(name) == "peer"

    def color(self, name):
        if name in PALETTE:
            return PALETTE[name]
        return SPARE[sum(name.encode()) % len(SPARE)]


def svg_open(width, height, title, out):
    out.append(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
               f'width="{width}" height="{height}" role="img"><title>{esc(title)}</title>')
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>')


def no_data(width, height, out):
    out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="18" '
               'fill="#888">no data</text></svg>')
    return "".join(out)


def line_chart(title, lines, xlabel, ylabel, srv):
    """lines: [(server, [(x, y), ...])]; one polyline + point markers each."""
    W, H, L, R, T, B = 1000, 460, 80, 190, 20, 60
    out = []
    svg_open(W, H, title, out)
    lines = [(s, pts) for s, pts in lines if pts]
    if not lines:
        return no_data(W, H, out)
    xt = nice_ticks(max(x for _, p in lines for x, _ in p), 10)
    yt = nice_ticks(max(y for _, p in lines for _, y in p), 6)
    px = lambda x: L + (W - L - R) * x / xt[-1]
    py = lambda y: H - B - (H - T - B) * y / yt[-1]
    for t in yt:
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{L - 8}" y="{py(t) + 4:.1f}" text-anchor="end" font-size="12">{short(t)}</text>')
    for t in xt:
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{H - B}" y2="{H - B + 5}" stroke="#444"/>'
                   f'<text x="{px(t):.1f}" y="{H - B + 19}" text-anchor="middle" font-size="12">{short(t)}</text>')
    axes(out, L, T, W - R, H - B, xlabel, ylabel)
    for i, (name, pts) in enumerate(lines):
        col, dash = srv.color(name), (f' stroke-dasharray="{DASH}"' if srv.peer(name) else "")
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline class="mark" points="{coords}" fill="none" stroke="{col}" stroke-width="2"{dash}>'
                   f'<title>{esc(name)}</title></polyline>')
        for x, y in pts:
            out.append(f'<circle class="mark" cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{col}">'
                       f'<title>{esc(name)}: {fmt(x, 0)} connections, {fmt(y, 0)} answers/s</title></circle>')
        ly = T + 10 + i * 20  # legend, right of the plot
        out.append(f'<line x1="{W - R + 20}" x2="{W - R + 50}" y1="{ly}" y2="{ly}" stroke="{col}" '
                   f'stroke-width="2"{dash}/><text x="{W - R + 58}" y="{ly + 4}" font-size="13"'
                   f'{ITALIC if srv.peer(name) else ""}>{esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def axes(out, x0, y0, x1, y1, xlabel, ylabel):
    """Axis lines and their labels (never class mark: they are not data)."""
    out.append(f'<line x1="{x0}" x2="{x0}" y1="{y0}" y2="{y1}" stroke="#444"/>'
               f'<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="#444"/>'
               f'<text x="{(x0 + x1) / 2}" y="{y1 + 42}" text-anchor="middle" font-size="13">{esc(xlabel)}</text>'
               f'<text transform="translate({x0 - 62},{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle" '
               f'font-size="13">{esc(ylabel)}</text>')


def bar_chart(title, rows, series, xlabel, srv):
    """Grouped horizontal bars: rows [(server, [value per series])].

    Horizontal, because eleven-plus server names read better on the left than
    rotated under vertical bars.  Series differ by opacity; peers get a dashed
    outline and an italic name.
    """
    W, L, R, T, B, BH, GAP = 1000, 130, 90, 40, 60, 12, 10
    rows = [(n, v) for n, v in rows if any(x is not None for x in v)]
    H = T + B + max(1, len(rows)) * (len(series) * BH + GAP)
    out = []
    svg_open(W, H, title, out)
    for i, (label, opacity) in enumerate(series):  # series legend, above the plot
        x = L + i * 170
        out.append(f'<rect x="{x}" y="10" width="14" height="14" fill="#555" fill-opacity="{opacity}"/>'
                   f'<text x="{x + 20}" y="22" font-size="13">{esc(label)}</text>')
    if any(srv.peer(n) for n, _ in rows):
        x = L + len(series) * 170
        out.append(f'<rect x="{x}" y="10" width="14" height="14" fill="#fff" stroke="#000" '
                   f'stroke-dasharray="3,2"/><text x="{x + 20}" y="22" font-size="13">peer (not zen)</text>')
    if not rows:
        return no_data(W, H, out)
    xt = nice_ticks(max(x for _, v in rows for x in v if x is not None), 8)
    px = lambda x: L + (W - L - R) * x / xt[-1]
    for t in xt:
        out.append(f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{T}" y2="{H - B + 5}" stroke="#e5e5e5"/>'
                   f'<text x="{px(t):.1f}" y="{H - B + 19}" text-anchor="middle" font-size="12">{short(t)}</text>')
    axes(out, L, T, W - R, H - B, xlabel, "")
    for r, (name, values) in enumerate(rows):
        y0 = T + GAP / 2 + r * (len(series) * BH + GAP)
        peer = srv.peer(name)
        out.append(f'<text x="{L - 8}" y="{y0 + len(series) * BH / 2 + 4:.1f}" text-anchor="end" font-size="13"'
                   f'{ITALIC if peer else ""}>{esc(name)}</text>')
        for s, value in enumerate(values):
            if value is None:  # missing: leave the gap, say so
                out.append(f'<text x="{L + 4}" y="{y0 + s * BH + BH - 2:.1f}" font-size="10" fill="#888">– (no value)</text>')
                continue
            y = y0 + s * BH
            stroke = ' stroke="#000" stroke-dasharray="3,2"' if peer else ""
            out.append(f'<rect class="mark" x="{L}" y="{y:.1f}" width="{max(0.0, px(value) - L):.1f}" height="{BH - 1}" '
                       f'fill="{srv.color(name)}" fill-opacity="{series[s][1]}"{stroke}>'
                       f'<title>{esc(name)} {esc(series[s][0])}: {fmt(value)}</title></rect>'
                       f'<text x="{px(value) + 4:.1f}" y="{y + BH - 2:.1f}" font-size="10">{fmt(value)}</text>')
    out.append("</svg>")
    return "".join(out)


def pick(runs, server, load, field):
    """Field of the (last) run of a server under a load, or None."""
    for r in reversed(runs):
        if r.get("server") == server and r.get("load") == load and num(r.get(field)) is not None:
            return num(r.get(field))
    return None


def figure(svg, caption):
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def series(runs, srv, load, x_field, y_field, y_scale=1.0):
    """One line per server: the (x, y) points of its runs under a load, sorted by x."""
    lines = []
    for name in srv.order:
        pts = sorted((num(r.get(x_field)), num(r.get(y_field)) * y_scale) for r in runs
                     if r.get("server") == name and r.get("load") == load
                     and num(r.get(x_field)) is not None and num(r.get(y_field)) is not None)
        lines.append((name, pts))
    return lines


def charts(runs, srv):
    figs = []
    # 1: sweep throughput vs concurrency.
    figs.append(figure(line_chart("Throughput vs concurrency (sweep)", series(runs, srv, "sweep", "connections", "rps"),
                                  "concurrent connections", "throughput (answers/s)", srv),
                       "Chart 1. Throughput as connections grow (depth 1). Dashed lines are peers."))
    # 1b: the connection sweep to thousands, when the run has it.
    if any(r.get("load") == "conns" for r in runs):
        figs.append(figure(line_chart("Throughput with thousands of connections",
                                      series(runs, srv, "conns", "connections", "rps"),
                                      "concurrent connections", "throughput (answers/s)", srv),
                           "Chart 1b. The connection sweep (every connection asking, depth 1). Errors at "
                           "each level, by kind, are in the table of every run."))
    # 1c: the hockey stick, when the run has the open-loop sweep.
    if any(r.get("load") == "rate" for r in runs):
        figs.append(figure(line_chart("Latency against offered rate (open loop)",
                                      series(runs, srv, "rate", "offered_rps", "p99_us", 1 / 1000),
                                      "offered rate (questions/s)", "p99 latency (ms)", srv),
                           "Chart 1c. zen bench -r at 25 % to 125 % of each server's own closed-loop "
                           "capacity, 50 connections: p99 latency, corrected for coordinated omission, "
                           "stays flat until the server cannot keep up, then turns up (the hockey stick)."))
    # 2: latency percentiles at c50.
    rows = [(n, [pick(runs, n, "c50", "p50_us"), pick(runs, n, "c50", "p99_us")]) for n in srv.order]
    figs.append(figure(bar_chart("Latency at 50 connections", rows, [("p50 (µs)", 0.45), ("p99 (µs)", 1.0)],
                                 "latency (µs)", srv),
                       "Chart 2. Latency percentiles at 50 connections, depth 1: median and 99th percentile."))
    # 3: server CPU per answer, sorted by c50 so the cheapest server is on top.
    rows = [(n, [pick(runs, n, "c50", "server_cpu_us_per_answer"),
                 pick(runs, n, "c50-p16", "server_cpu_us_per_answer")]) for n in srv.order]
    rows.sort(key=lambda r: (r[1][0] is None, r[1][0] or 0))
    figs.append(figure(bar_chart("Server CPU time per answer", rows, [("c50 (µs/answer)", 1.0),
                                 ("c50-p16 (µs/answer)", 0.45)], "server CPU time per answer (µs)", srv),
                       "Chart 3. Server CPU (user + system) per answer, at 50 connections without and with "
                       "16-deep pipelining; sorted by the c50 value. Dashed outlines are peers."))
    # 4: the lesson: blocking work vs waiting, zen servers only (peers have no --delay/--wait).
    rows = [(n, [pick(runs, n, "delay", "rps"), pick(runs, n, "wait", "rps")])
            for n in srv.order if not srv.peer(n)]
    figs.append(figure(bar_chart("Blocking work vs waiting", rows, [("delay: blocking 1 ms", 1.0),
                                 ("wait: non-blocking 1 ms", 0.45)], "throughput (answers/s)", srv),
                       "Chart 4. Throughput with 20 connections when each answer costs 1 ms. "
                       "<code>--delay</code> blocks the thread (CPU-bound work): only architectures "
                       "with several threads or processes overlap it. <code>--wait</code> waits without "
                       "blocking: the event-driven ones overlap all 20 waits in one thread."))
    return figs


def idle_chart(data, srv):
    """Server memory per idle connection, when the run measured it."""
    results = [r for r in data.get("idle_memory") or [] if isinstance(r, dict)
               and num(r.get("bytes_per_connection")) is not None]
    if not results:
        return []
    rows = sorted(((str(r.get("arch")), [num(r.get("bytes_per_connection"))]) for r in results),
                  key=lambda row: row[1][0])
    count = results[0].get("connections")
    return [figure(bar_chart("Server memory per idle connection", rows, [("bytes per idle connection", 1.0)],
                             "bytes of server RSS per connection", srv),
                   f"Chart 6. Server memory per idle connection: RSS after opening {esc(count)} connections "
                   "(each asked one question and was answered), minus before, divided by their number "
                   "(bench/idle_memory.py). single, threaded and prefork are left out: they leave idle "
                   "connections unaccepted in the backlog.")]


def run_table(runs, srv):
    cols = [("server", None), ("load", None), ("connections", 0), ("depth", 0), ("requests", 0),
            ("offered_rps", 0), ("rps", 0), ("errors", 0), ("errors_by_kind", None), ("p50_us", 1),
            ("p90_us", 1), ("p99_us", 1), ("p999_us", 1), ("max_us", 1), ("server_cpu_us_per_answer", 2)]
    heads = ["server", "load", "conns", "depth", "requests", "offered/s", "answers/s", "errors",
             "error kinds (all rounds)", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "server CPU µs/answer"]
    order = {n: i for i, n in enumerate(srv.order)}
    key = lambda r: (order.get(str(r.get("server")), 1e9),
                     LOAD_ORDER.index(r.get("load")) if r.get("load") in LOAD_ORDER else 99,
                     num(r.get("connections")) or 0, num(r.get("offered_rps")) or 0)
    out = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead><tbody>"]
    for r in sorted(runs, key=key):
        bad = (num(r.get("errors")) or 0) > 0
        cells = []
        for field, decimals in cols:
            if field == "errors_by_kind":
                kinds = r.get(field) if isinstance(r.get(field), dict) else {}
                text = ", ".join(f"{esc(k)} {fmt(v, 0)}" for k, v in kinds.items() if num(v)) or "–"
                cells.append(f"<td>{text}</td>")
            elif decimals is None:
                peer = field == "server" and srv.peer(str(r.get(field)))
                text = "–" if r.get(field) is None else esc(r.get(field))
                cells.append(f'<td{PEER if peer else ""}>{text}</td>')
            else:
                cls = "n e" if field == "errors" else "n"
                cells.append(f'<td class="{cls}">{fmt(r.get(field), decimals)}</td>')
        out.append(f'<tr{ERR if bad else ""}>' + "".join(cells) + "</tr>")
    if not runs:
        out.append(f'<tr><td colspan="{len(cols)}">no runs</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def header(data, srv):
    machine = data.get("machine") if isinstance(data.get("machine"), dict) else {}
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    mtext = ", ".join(p for p in [
        f"{machine['cpus']} CPUs" if machine.get("cpus") is not None else "",
        str(machine.get("cpu_model") or ""),
        f"{machine['memory_gib']} GiB RAM" if machine.get("memory_gib") is not None else "",
        f"Linux {machine['kernel']}" if machine.get("kernel") else ""] if p) or "–"
    stext = ", ".join(f"{k}={v}" for k, v in settings.items()) or "–"
    servers = [s for s in data.get("servers") or [] if isinstance(s, dict)]
    slist = "".join(
        f'<li><span style="color:{srv.color(str(s.get("name")))}">&#9632;</span> '
        f'<b{PEER if s.get("kind") == "peer" else ""}>{esc(s.get("name"))}</b>'
        f' ({esc(s.get("kind") or "?")}{", " + esc(s["version"]) if s.get("version") else ""}): '
        f'<code>{esc(s.get("command") or "–")}</code></li>' for s in servers)
    manifest = data.get("manifest") if isinstance(data.get("manifest"), dict) else {}
    pinning = manifest.get("pinning") or ("pinned" if settings.get("pinned") else "unpinned"
                                          if "pinned" in settings else "–")
    zen_version = manifest.get("zen_version") if isinstance(manifest.get("zen_version"), list) else []
    peers = manifest.get("peers") if isinstance(manifest.get("peers"), dict) else {}
    notice = ""
    if settings.get("quick"):
        notice = ('<p class="notice"><b>--quick:</b> every run lasted 0.3 s. These figures are '
                  "indicative only: they show the report works, not which architecture is faster.</p>")
    left_out = settings.get("conns_left_out") or []
    if left_out:
        notice += (f'<p class="notice">The connection sweep left out {esc(left_out)} connections: '
                   f"this machine's descriptor limit ({esc(manifest.get('descriptor_limit', '?'))}) "
                   "cannot hold them.</p>")
    return (f"<h1>zen: architectures side by side</h1>" + notice +
            f'<dl class="meta"><dt>generated</dt><dd>{esc(data.get("generated") or "–")}</dd>'
            f"<dt>machine</dt><dd>{esc(mtext)}</dd>"
            f"<dt>CPUs</dt><dd><b>{esc(pinning)}</b></dd>"
            f"<dt>zen</dt><dd>{'<br>'.join(esc(line) for line in zen_version) or '–'}</dd>"
            f"<dt>peers</dt><dd>{esc(', '.join(f'{k} {v}' for k, v in peers.items())) or '–'}</dd>"
            f'<dt>command</dt><dd><code>{esc(data.get("command") or "–")}</code></dd>'
            f"<dt>settings</dt><dd>{esc(stext)}</dd></dl>"
            + (f"<h2>Servers</h2><ul>{slist}</ul>" if slist else ""))

def verdict_section(data):
    """The verdict computed by bench/verdict.py when the run was made: one line per load."""
    lines = [v for v in data.get("verdict") or [] if isinstance(v, dict) and v.get("line")]
    if not lines:
        return '<h2 id="verdict">Verdict</h2><p>No verdict: the report has no zen runs to compare.</p>'
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    items = "".join(f'<li class="{"tie" if v.get("beyond") is False else "win"}">{esc(v["line"])}</li>'
                    for v in lines)
    how = (f"Ranked by answers per second (the median of {esc(settings.get('rounds', 1))} round(s)); a margin is "
           "beyond the spread when every round of the winner beat every round of the runner-up. "
           "Architectures that lost over 1 % of their questions to errors do not compete on that load.")
    return ('<h2 id="verdict">Verdict: which architecture for which load</h2>'
            f'<p>{how}</p><ol class="verdict">{items}</ol>')



def render(data):
    runs = [r for r in data.get("runs") or [] if isinstance(r, dict)]
    servers = data.get("servers") or []
    srv = Servers(servers if isinstance(servers, list) else [], runs)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>zen: architectures side by side</title>"
            f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>"
            + header(data, srv) + verdict_section(data) + "<h2>Charts</h2>" + "".join(charts(runs, srv) + idle_chart(data, srv))
            + f"<h2>Every run ({len(runs)})</h2>" + run_table(runs, srv) + "</body></html>\n")


def fail(reason):
    print(f"report.py: {reason}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) != 3:
        fail("usage: report.py REPORT.json REPORT.html")
    try:
        with open(argv[1], encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        fail(f"cannot read {argv[1]}: {e.strerror}")
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{argv[1]} is not valid JSON: {e}")
    if not isinstance(data, dict):
        fail(f"{argv[1]}: top level is not a JSON object")
    if not isinstance(data.get("runs", []), list):
        fail(f"{argv[1]}: 'runs' is not a list")
    page = render(data)
    try:
        with open(argv[2], "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as e:
        fail(f"cannot write {argv[2]}: {e.strerror}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
