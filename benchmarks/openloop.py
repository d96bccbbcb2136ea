"""A small open-loop HTTP/1.1 load generator (loopback only), for latency at a fixed rate.

Plain ``wrk`` has no rate control (``-R`` is wrk2's, which Debian does not
package), and a closed-loop tool under-reports latency when the server stalls
(coordinated omission). This one sends requests on a fixed schedule, ``rate``
per second for ``duration`` seconds, over ``connections`` keep-alive
connections, and measures each latency from the request's *intended* send time:
a request that finds every connection busy waits in a backlog and that wait
counts. It prints one JSON line with the figures.

With ``--closed`` it is a closed-loop client instead (each connection sends its
next request as soon as an answer arrives): api_seq.py's stand-in for wrk's
maximum-rate run in ``--quick`` mode when wrk is not installed.

Run by benchmarks/api_seq.py; by hand::

    SEQ_BENCH_API_KEY=SG.... python benchmarks/openloop.py --port 8000 \\
        --path '/v3/engagementquality/scores?from=2026-10-21&to=2026-11-19' --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque

HOST = "127.0.0.1"
#: not loop.time(): uvloop's is in whole milliseconds, cached per loop iteration
clock = time.perf_counter


class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time (no pipelining)."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.in_body = False
        self.remaining = 0
        self.status = 0
        self.intended = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def send(self, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.busy = True
        self.head.clear()
        self.in_body = False
        self.transport.write(self.gen.request)

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.gen.protocol_errors += 1
            return
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            header = bytes(self.head[:end]).lower()
            self.status = int(header[9:12])
            start = header.find(b"\r\ncontent-length:")
            if start < 0:  # every answer of the API has a Content-Length
                self.gen.protocol_errors += 1
                self.transport.close()  # type: ignore[union-attr]
                return
            stop = header.find(b"\r\n", start + 2)
            length = int(header[start + 17 : stop if stop > 0 else None])
            self.remaining = length - (len(self.head) - end - 4)
            self.in_body = True
        else:
            self.remaining -= len(data)
        if self.remaining <= 0:
            if self.remaining < 0:
                self.gen.protocol_errors += 1
            self.busy = False
            self.gen.completed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class Generator:
    def __init__(self, port: int, path: str, api_key: str, connections: int) -> None:
        self.port = port
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {api_key}\r\nAccept: application/json\r\n\r\n"
        ).encode("ascii")
        self.n_connections = connections
        self.idle: deque[Connection] = deque()
        self.backlog: deque[float] = deque()
        self.latencies: list[float] = []
        self.non_2xx = 0
        self.protocol_errors = 0
        self.lost_connections = 0
        self.max_backlog = 0
        self.max_dispatch_lag = 0.0
        self.outstanding = 0
        self.closed_loop = False  # True: each answer is followed at once by the next request
        self.stopped = False
        self.closing = False  # set when this client closes its own connections
        self.loop = asyncio.get_running_loop()
        self.all_done: asyncio.Future[None] | None = None

    async def connect(self) -> None:
        for _ in range(self.n_connections):
            _transport, conn = await self.loop.create_connection(
                lambda: Connection(self), HOST, self.port)
            self.idle.append(conn)

    def dispatch(self, intended: float) -> None:
        self.outstanding += 1
        if self.idle:
            self.idle.popleft().send(intended)
        else:
            self.backlog.append(intended)
            self.max_backlog = max(self.max_backlog, len(self.backlog))

    def completed(self, conn: Connection) -> None:
        now = clock()
        self.latencies.append(now - conn.intended)
        if not 200 <= conn.status < 300:
            self.non_2xx += 1
        if self.closed_loop and not self.stopped:
            conn.send(now)  # the next request takes this one's place: outstanding unchanged
            return
        self.outstanding -= 1
        if self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)
        if self.outstanding == 0 and self.all_done is not None and not self.all_done.done():
            self.all_done.set_result(None)

    def lost(self, conn: Connection) -> None:
        if self.closing:
            return
        self.lost_connections += 1
        if conn.busy:
            conn.busy = False
            self.outstanding -= 1
            if self.outstanding == 0 and self.all_done is not None and not self.all_done.done():
                self.all_done.set_result(None)
        if conn in self.idle:
            self.idle.remove(conn)

    async def run(self, rate: float | None, duration: float,
                  drain_timeout: float) -> dict[str, float]:
        """Open loop at ``rate`` per second; closed loop (as fast as answered) if None."""
        await self.connect()
        start = clock() + 0.01
        sent = 0
        if rate is None:
            self.closed_loop = True
            await asyncio.sleep(0.01)
            while self.idle:
                self.dispatch(clock())
                sent += 1
            await asyncio.sleep(duration)
            self.stopped = True
        else:
            total = max(1, int(rate * duration))
            interval = 1.0 / rate
            while sent < total:  # bounded: `total` requests, each due at a fixed instant
                now = clock()
                due = start + sent * interval
                if due > now:
                    # at least 1 ms: loop timers have millisecond resolution and a shorter
                    # sleep spins. A request sent late still counts from its due time.
                    await asyncio.sleep(max(due - now, 0.001))
                    continue
                self.max_dispatch_lag = max(self.max_dispatch_lag, now - due)
                while sent < total and start + sent * interval <= now:
                    self.dispatch(start + sent * interval)
                    sent += 1
        send_end = clock()
        if self.outstanding:
            self.all_done = self.loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_done, drain_timeout)
        end = clock()
        self.closing = True
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            if not lat:
                return float("nan")
            return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] * 1e6

        return {
            "target_rate": rate or 0.0,
            "sent": sent if rate is not None else len(lat),
            "completed": len(lat),
            "unanswered": self.outstanding,
            "achieved_rate": len(lat) / max(end - start, 1e-9),
            "send_seconds": send_end - start,
            "non_2xx": self.non_2xx,
            "protocol_errors": self.protocol_errors,
            "lost_connections": self.lost_connections,
            "max_backlog": self.max_backlog,
            "max_dispatch_lag_us": self.max_dispatch_lag * 1e6,
            "p50_us": pct(50),
            "p90_us": pct(90),
            "p99_us": pct(99),
            "p999_us": pct(99.9),
            "max_us": lat[-1] * 1e6 if lat else float("nan"),
        }


async def _main(args: argparse.Namespace) -> dict[str, float]:
    api_key = os.environ.get("SEQ_BENCH_API_KEY", "")
    if not api_key:
        raise SystemExit("openloop.py: SEQ_BENCH_API_KEY is not set")
    gen = Generator(args.port, args.path, api_key, args.connections)
    return await gen.run(None if args.closed else args.rate, args.duration, args.drain_timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--rate", type=float, default=None, help="requests per second")
    parser.add_argument("--closed", action="store_true",
                        help="closed loop instead: each connection sends its next request as "
                             "soon as an answer arrives (maximum rate; used when wrk is absent)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--drain-timeout", type=float, default=10.0,
                        help="seconds to wait for the last answers")
    args = parser.parse_args()
    if (args.rate is None) == (not args.closed):
        parser.error("give either --rate or --closed")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        runner = asyncio.run
    result = runner(_main(args))
    sys.stdout.write("OPENLOOP_JSON " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
