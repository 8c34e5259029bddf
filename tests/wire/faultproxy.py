#!/usr/bin/env python3
"""A small TCP fault proxy, in toxiproxy's vocabulary, for the wire tests (stdlib only).

    faultproxy.py --listen 198.18.4.2:2060 --upstream 127.0.0.1:1060 \\
        --toxic down:latency:ms=200,jitter=50 --toxic up:slicer:size=3,delay=5

It accepts on --listen, opens a connection to --upstream for each client and copies bytes both
ways, through the toxics of each direction: `up` is client to server, `down` server to client.

    latency:ms=M,jitter=J         each chunk held M ms, plus or minus up to J (order kept)
    bandwidth:rate=B              at most B bytes a second
    slicer:size=N,delay=D         chunks cut into segments of N bytes, D ms apart (TCP_NODELAY)
    slow_close:ms=M               the FIN (EOF) passed on M ms late
    reset_peer:ms=M | bytes=N     both sides reset (SO_LINGER 0) M ms after the connection opened,
                                  or once N bytes went this way
    timeout:ms=M[,close=C]        from M ms after the connection opened (0: at once), nothing more
                                  is passed on, the connection stays open; with close=C it is
                                  closed C ms after that (toxiproxy's timeout)

Every toxic also takes `start=S` and `stop=T` (ms since the proxy started: the toxic applies to
connections opened in [S, T), and a timeout/reset from S at the latest), and `toxicity=P` (the
share of connections it applies to, 0..1, drawn with --seed). The proxy prints `listening HOST
PORT` once ready, and, on SIGTERM or SIGINT, one JSON line of what it did (connections, bytes,
toxics applied), then exits 0. `faultproxy.py --self-test` checks each toxic on loopback.
"""
import argparse
import asyncio
import json
import random
import signal
import socket
import struct
import sys
import time

TOXICS = {
    "latency": {"ms": 0.0, "jitter": 0.0},
    "bandwidth": {"rate": 0.0},
    "slicer": {"size": 1.0, "delay": 0.0},
    "slow_close": {"ms": 0.0},
    "reset_peer": {"ms": -1.0, "bytes": -1.0},
    "timeout": {"ms": 0.0, "close": -1.0},
}
COMMON = {"start": 0.0, "stop": float("inf"), "toxicity": 1.0}


class Toxic:
    def __init__(self, direction, name, params):
        self.direction, self.name, self.params = direction, name, params

    def __getitem__(self, key):
        return self.params[key]

    def __repr__(self):
        defaults = TOXICS[self.name] | COMMON
        shown = ",".join(f"{k}={v:g}" for k, v in self.params.items() if v != defaults.get(k))
        return f"{self.direction}:{self.name}" + (f":{shown}" if shown else "")


def parse_toxic(text):
    """DIRECTION:NAME[:k=v,...] -> Toxic; ValueError names what is wrong."""
    parts = text.split(":", 2)
    if len(parts) < 2 or parts[0] not in ("up", "down"):
        raise ValueError(f"{text!r}: expected up:NAME[:k=v,...] or down:NAME[:k=v,...]")
    direction, name = parts[0], parts[1]
    if name not in TOXICS:
        raise ValueError(f"{text!r}: unknown toxic {name!r} (known: {', '.join(TOXICS)})")
    params = dict(TOXICS[name]) | dict(COMMON)
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, _, value = item.partition("=")
            if key not in params:
                raise ValueError(f"{text!r}: {name} takes {', '.join(params)}, not {key!r}")
            try:
                params[key] = float(value)
            except ValueError:
                raise ValueError(f"{text!r}: {key}={value!r} is not a number") from None
    if name == "slicer" and params["size"] < 1:
        raise ValueError(f"{text!r}: slicer size must be at least 1")
    if name == "bandwidth" and params["rate"] <= 0:
        raise ValueError(f"{text!r}: bandwidth rate must be positive")
    if name == "reset_peer" and params["ms"] < 0 and params["bytes"] < 0:
        raise ValueError(f"{text!r}: reset_peer needs ms= or bytes=")
    return Toxic(direction, name, params)


def host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, upstream, toxics, seed=1):
        self.upstream = upstream
        self.toxics = toxics
        self.random = random.Random(seed)
        self.born = time.monotonic()
        self.stats = {"connections": 0, "upstream_failures": 0, "bytes_up": 0, "bytes_down": 0,
                      "applied": {repr(t): 0 for t in toxics}}
        self.tasks = set()

    def now_ms(self):
        return (time.monotonic() - self.born) * 1000

    async def handle(self, client_reader, client_writer):
        self.stats["connections"] += 1
        opened = self.now_ms()
        chosen = [t for t in self.toxics
                  if t["start"] <= opened < t["stop"] and self.random.random() < t["toxicity"]]
        # Timeouts and resets with a start in the future still apply to this connection then.
        chosen += [t for t in self.toxics if t not in chosen and t.name in ("timeout", "reset_peer")
                   and opened < t["start"] < t["stop"] and self.random.random() < t["toxicity"]]
        for toxic in chosen:
            self.stats["applied"][repr(toxic)] += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats["upstream_failures"] += 1
            abort(client_writer)
            return
        for writer in (client_writer, server_writer):
            nodelay(writer)
        link = Link(self, opened, client_writer, server_writer)
        pumps = [asyncio.ensure_future(link.pump(client_reader, server_writer, "up",
                                                 [t for t in chosen if t.direction == "up"])),
                 asyncio.ensure_future(link.pump(server_reader, client_writer, "down",
                                                 [t for t in chosen if t.direction == "down"]))]
        for toxic in chosen:
            if toxic.name == "reset_peer" and toxic["ms"] >= 0:
                pumps.append(asyncio.ensure_future(link.reset_at(max(opened + toxic["ms"], toxic["start"]))))
            if toxic.name == "timeout" and toxic["close"] >= 0:
                at = max(opened + toxic["ms"], toxic["start"]) + toxic["close"]
                pumps.append(asyncio.ensure_future(link.close_at(at)))
        await link.done.wait()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        link.close_both()


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def abort(writer):
    """Closes with SO_LINGER 0: the peer gets a reset, not a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Link:
    """One client's connection and its upstream twin."""

    def __init__(self, proxy, opened, client_writer, server_writer):
        self.proxy, self.opened = proxy, opened
        self.writers = (client_writer, server_writer)
        self.done = asyncio.Event()
        self.eofs = 0
        self.reset = False

    async def sleep_until(self, at_ms):
        delay = (at_ms - self.proxy.now_ms()) / 1000
        if delay > 0:
            await asyncio.sleep(delay)

    async def reset_at(self, at_ms):
        await self.sleep_until(at_ms)
        self.reset_both()

    async def close_at(self, at_ms):
        await self.sleep_until(at_ms)
        self.done.set()

    def reset_both(self):
        self.reset = True
        for writer in self.writers:
            abort(writer)
        self.done.set()

    def close_both(self):
        if self.reset:
            return
        for writer in self.writers:
            writer.close()

    async def pump(self, reader, writer, direction, toxics):
        by_name = {t.name: t for t in toxics}
        latency, bandwidth = by_name.get("latency"), by_name.get("bandwidth")
        slicer, slow_close = by_name.get("slicer"), by_name.get("slow_close")
        reset, blackhole = by_name.get("reset_peer"), by_name.get("timeout")
        blackhole_from = max(self.opened + blackhole["ms"], blackhole["start"]) if blackhole else None
        queue = asyncio.Queue()
        counter = "bytes_" + direction
        passed = 0

        async def deliver():
            while True:
                at, data = await queue.get()
                if data is None:
                    break
                await self.sleep_until(at)
                size = len(data)
                if slicer:
                    size = int(slicer["size"])
                elif bandwidth:
                    size = max(1, int(bandwidth["rate"] / 20))  # paced in twentieths of a second
                for number, offset in enumerate(range(0, len(data), size)):
                    piece = data[offset:offset + size]
                    if number and slicer and slicer["delay"] > 0:
                        await asyncio.sleep(slicer["delay"] / 1000)
                    if bandwidth:
                        await asyncio.sleep(len(piece) / bandwidth["rate"])
                    writer.write(piece)
                    await writer.drain()
            if slow_close and slow_close["ms"] > 0:
                await asyncio.sleep(slow_close["ms"] / 1000)
            if writer.can_write_eof():
                writer.write_eof()

        delivery = asyncio.ensure_future(deliver())
        previous_at = 0.0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                now = self.proxy.now_ms()
                if blackhole_from is not None and now >= blackhole_from:
                    continue  # taken and dropped: the connection stays open, nothing passes
                if reset and reset["bytes"] >= 0 and passed + len(data) >= reset["bytes"]:
                    keep = int(reset["bytes"]) - passed
                    if keep > 0:
                        await queue.put((now, data[:keep]))
                        await asyncio.sleep(0.05)
                    self.reset_both()
                    return
                passed += len(data)
                self.proxy.stats[counter] += len(data)
                at = now
                if latency:
                    at += latency["ms"] + self.proxy.random.uniform(-latency["jitter"], latency["jitter"])
                at = max(at, previous_at)  # jitter never reorders bytes
                previous_at = at
                await queue.put((at, data))
            await queue.put((0, None))
            await delivery
            self.eofs += 1
            if self.eofs == 2:
                self.done.set()
        except (ConnectionError, OSError):
            self.done.set()
        finally:
            delivery.cancel()


async def serve(options):
    proxy = Proxy(options.upstream, options.toxic, options.seed)
    server = await asyncio.start_server(proxy.handle, *options.listen, reuse_address=True)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host} {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    server.close()
    print(json.dumps(proxy.stats), flush=True)


# --- self-test: each toxic against a loopback echo-ish upstream ---


async def self_test():
    failures = []

    async def upstream(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data.upper())
                await writer.drain()
            writer.write_eof()
            await asyncio.sleep(0.5)
        except (ConnectionError, asyncio.CancelledError):
            pass
        writer.close()

    target = await asyncio.start_server(upstream, "127.0.0.1", 0)
    target_address = target.sockets[0].getsockname()[:2]

    async def through(toxics, send, expect_bytes, read_timeout=5.0, half_close=True):
        proxy = Proxy(target_address, [parse_toxic(t) for t in toxics])
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        started = time.monotonic()
        chunks, arrivals, outcome = [], [], "eof"
        writer.write(send)
        await writer.drain()
        if half_close:
            writer.write_eof()
        try:
            while sum(map(len, chunks)) < expect_bytes or half_close:
                data = await asyncio.wait_for(reader.read(65536), read_timeout)
                if not data:
                    break
                chunks.append(data)
                arrivals.append(time.monotonic() - started)
        except asyncio.TimeoutError:
            outcome = "timeout"
        except ConnectionResetError:
            outcome = "reset"
        eof_at = time.monotonic() - started
        writer.close()
        server.close()
        return b"".join(chunks), arrivals, eof_at, outcome

    def check(what, condition, detail):
        print(f"{'ok' if condition else 'FAIL'}: {what} ({detail})", flush=True)
        if not condition:
            failures.append(what)

    data, arrivals, _, outcome = await through([], b"abc?", 4)
    check("no toxic passes bytes both ways", data == b"ABC?" and outcome == "eof", f"{data!r} {outcome}")
    data, arrivals, _, _ = await through(["down:latency:ms=300,jitter=50"], b"abc?", 4)
    check("latency holds the answer 250-350 ms", data == b"ABC?" and 0.25 <= arrivals[0] < 1.0, f"{arrivals[0]:.3f} s")
    data, arrivals, _, _ = await through(["up:slicer:size=2,delay=100"], b"abcdef", 6)
    check("slicer: three 2-byte segments 100 ms apart reach the upstream", data == b"ABCDEF" and arrivals[-1] >= 0.18,
          f"{len(arrivals)} reads, last at {arrivals[-1]:.3f} s")
    data, arrivals, _, _ = await through(["down:bandwidth:rate=2000"], b"x" * 1000, 1000)
    check("bandwidth 2000 B/s: 1000 bytes take about 0.5 s", data == b"X" * 1000 and arrivals[-1] >= 0.4,
          f"{arrivals[-1]:.3f} s")
    data, _, eof_at, outcome = await through(["down:slow_close:ms=600"], b"q?", 2)
    check("slow_close: EOF 600 ms late", data == b"Q?" and eof_at >= 0.55 and outcome == "eof",
          f"EOF at {eof_at:.3f} s")
    data, _, eof_at, outcome = await through(["up:reset_peer:ms=200"], b"", 1, half_close=False)
    check("reset_peer ms=200: a reset at 200 ms", outcome == "reset" and 0.15 <= eof_at < 2,
          f"{outcome} at {eof_at:.3f} s")
    data, _, _, outcome = await through(["up:reset_peer:bytes=3"], b"abcdef", 6, half_close=False)
    check("reset_peer bytes=3: 3 bytes pass, then a reset", outcome == "reset" and data in (b"", b"ABC"),
          f"{data!r} {outcome}")
    data, _, _, outcome = await through(["up:timeout:ms=0"], b"abc?", 4, read_timeout=1.0, half_close=False)
    check("timeout: nothing passes and the connection stays open", data == b"" and outcome == "timeout",
          f"{data!r} {outcome}")
    data, _, eof_at, outcome = await through(["up:timeout:ms=0,close=300"], b"abc?", 4, half_close=False)
    check("timeout close=300: closed at 300 ms", data == b"" and outcome == "eof" and eof_at >= 0.25,
          f"{outcome} at {eof_at:.3f} s")
    for bad in ("sideways:latency", "up:nosuch", "up:latency:ms=x", "up:latency:colour=1", "up:reset_peer"):
        try:
            parse_toxic(bad)
            check(f"{bad!r} is refused", False, "accepted")
        except ValueError as error:
            check(f"{bad!r} is refused", True, str(error))
    target.close()
    return not failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--listen", type=host_port, help="HOST:PORT to accept on (port 0: any free one)")
    parser.add_argument("--upstream", type=host_port, help="HOST:PORT of the server")
    parser.add_argument("--toxic", action="append", default=[], help="DIRECTION:NAME[:k=v,...] (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="for jitter and toxicity (1)")
    parser.add_argument("--self-test", action="store_true", help="check every toxic on loopback and exit")
    options = parser.parse_args()
    if options.self_test:
        sys.exit(0 if asyncio.run(self_test()) else 1)
    if not options.listen or not options.upstream:
        parser.error("--listen and --upstream are needed")
    try:
        options.toxic = [parse_toxic(text) for text in options.toxic]
    except ValueError as error:
        parser.error(str(error))
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
