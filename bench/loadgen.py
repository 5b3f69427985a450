"""Closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending one POST after
another, recording time to first body byte and time to the end of the reply.

A bare asyncio protocol on uvloop with httptools parsing, run pinned to its own core by the
runner; its ceiling is visible as the "direct" rows (client + upstream alone), which are far
above any proxy's numbers. Prints one JSON object on stdout.

    python bench/loadgen.py --url URL --body JSON [--header k:v]... --concurrency N
        (--duration S | --once) [--expect MARKER] [--warmup S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop


class Exchange(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, float, bytes]] | None = None
        self.first_byte = 0.0
        self.body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed mid-reply"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.done is not None and not self.done.done():
                self.done.set_exception(exc)

    def on_body(self, body: bytes) -> None:
        if not self.first_byte:
            self.first_byte = time.perf_counter()
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(
                (self.parser.get_status_code(), self.first_byte, b"".join(self.body))
            )

    async def send(self, request: bytes) -> tuple[int, float, bytes]:
        assert self.transport is not None
        self.first_byte = 0.0
        self.body = []
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.done


class Stats:
    def __init__(self) -> None:
        self.total: list[float] = []
        self.ttfb: list[float] = []
        self.errors = 0
        self.first_error = ""
        # Every good reply, warm-up included: what the proxy's CPU time over the whole run
        # (bench/run.py) is divided by.
        self.completed = 0


async def worker(
    host: str,
    port: int,
    request: bytes,
    until: float,
    warm_until: float,
    once: bool,
    expect: bytes,
    stats: Stats,
) -> None:
    loop = asyncio.get_running_loop()
    conn: Exchange | None = None
    while once or time.perf_counter() < until:
        try:
            if conn is None or conn.closed:
                _, conn = await loop.create_connection(Exchange, host, port)
            started = time.perf_counter()
            status, first, body = await conn.send(request)
            ended = time.perf_counter()
            if status != 200 or (expect and expect not in body):
                raise ValueError(f"status {status}: {body[:200]!r}")
            stats.completed += 1
            if started >= warm_until:
                stats.total.append(ended - started)
                stats.ttfb.append((first or ended) - started)
        except (OSError, ValueError, httptools.HttpParserError) as exc:
            stats.errors += 1
            stats.first_error = stats.first_error or f"{exc.__class__.__name__}: {exc}"
            conn = None
            if not once:
                await asyncio.sleep(0.01)
        if once:
            break
    if conn is not None and conn.transport is not None:
        conn.transport.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    body = args.body.encode()
    headers = "".join(
        f"{h.split(':', 1)[0]}: {h.split(':', 1)[1].strip()}\r\n" for h in args.header
    )
    request = (
        f"POST {url.path} HTTP/1.1\r\nhost: {url.netloc}\r\ncontent-type: application/json\r\n"
        f"{headers}content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    stats = Stats()
    started = time.perf_counter()
    warm_until = started + (0 if args.once else args.warmup)
    until = warm_until + args.duration
    workers = [
        worker(
            url.hostname or "127.0.0.1",
            url.port or 80,
            request,
            until,
            warm_until,
            args.once,
            args.expect.encode(),
            stats,
        )
        for _ in range(args.concurrency)
    ]
    await asyncio.gather(*workers)
    ended = time.perf_counter()
    elapsed = ended - (started if args.once else warm_until)
    return {
        "completed": stats.completed,
        "wall_seconds": round(ended - started, 3),
        "requests": len(stats.total),
        "errors": stats.errors,
        "first_error": stats.first_error,
        "seconds": round(elapsed, 3),
        "rps": round(len(stats.total) / elapsed, 1),
        "p50_ms": round(percentile(stats.total, 0.50), 3),
        "p99_ms": round(percentile(stats.total, 0.99), 3),
        "ttfb_p50_ms": round(percentile(stats.ttfb, 0.50), 3),
        "ttfb_p99_ms": round(percentile(stats.ttfb, 0.99), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--once", action="store_true", help="each connection sends one request")
    parser.add_argument("--expect", default="", help="a marker every good reply contains")
    result = uvloop.run(main(parser.parse_args()))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
