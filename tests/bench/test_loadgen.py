"""The open-loop load generator (bench/loadgen.py) against a tiny local HTTP server.

What matters about an open loop is that a slow server cannot slow the arrivals and that
its latency counts the time requests wait (no coordinated omission): with one
connection and a server slower than the arrival rate, latency from the scheduled send
time must grow far past the service time, where a closed loop would report about the
service time itself.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bench.loadgen import Request, open_loop, schedule_offsets


@asynccontextmanager
async def http_server(
    delay: float, status: int = 201, *, close_after: bool = False
) -> AsyncIterator[str]:
    """A keep-alive HTTP/1.1 server answering every request after ``delay`` seconds
    (``close_after``: then closing the connection, as a server whose keep-alive timer
    ran out does)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await asyncio.sleep(delay)
                body = b'{"ok":true}'
                writer.write(
                    b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
                )
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def workload(count: int) -> list[Request]:
    return [Request.post_json("/r", {"i": i}, expect=201) for i in range(count)]


def test_poisson_schedule_has_the_rate_and_is_repeatable() -> None:
    offsets = schedule_offsets(1000, 20, "poisson", seed=7)
    assert abs(len(offsets) - 20_000) < 4 * math.sqrt(20_000)
    assert list(offsets) == sorted(offsets)
    assert offsets == schedule_offsets(1000, 20, "poisson", seed=7)
    assert len(schedule_offsets(100, 2, "uniform")) == 200


async def test_enough_connections_latency_is_the_service_time() -> None:
    async with http_server(delay=0.01) as url:
        result = await open_loop(
            [url], workload(1000), rate=200, duration=1.0, warmup=0.2, seed=1, max_lag_ms=50
        )
    stats = result.open_loop
    assert stats is not None
    assert result.errors == 0
    assert stats.kept_rate  # (times are not asserted: a test machine may be busy)
    assert result.requests == stats.scheduled
    assert 10 <= result.latency.p50_ms < 60
    assert stats.peak_in_flight > 1  # answers overlapped: arrivals did not wait for them


async def test_queueing_counts_from_the_scheduled_time() -> None:
    # One connection, 20 ms per answer (50/s) against 100 arrivals/s: the queue grows by
    # ~50 requests/s, so the last of a 1 s window waits ~0.5 s. A closed loop would say 20 ms.
    async with http_server(delay=0.02) as url:
        result = await open_loop(
            [url],
            workload(200),
            rate=100,
            duration=1.0,
            schedule="uniform",
            max_connections=1,
            initial_connections=1,
            timeout=10,
        )
    stats = result.open_loop
    assert stats is not None
    assert result.errors == 0
    assert stats.kept_rate  # the generator kept sending...
    assert stats.waited_for_connection > 50  # ...while requests queued for the connection
    assert result.latency.max_ms > 300
    assert result.latency.p50_ms > 100


async def test_late_and_wrong_answers_are_errors() -> None:
    answered: list[tuple[int, int]] = []
    async with http_server(delay=0.3, status=500) as url:
        result = await open_loop(
            [url],
            workload(100),
            rate=20,
            duration=0.5,
            timeout=0.1,
            on_response=lambda i, status, _at: answered.append((i, status)),
        )
    stats = result.open_loop
    assert stats is not None
    assert result.errors == len(answered) == stats.scheduled
    assert stats.timeouts == result.errors
    assert {status for _i, status in answered} == {-1}
    assert result.rps == 0


async def test_a_generator_that_falls_behind_is_seen() -> None:
    # The client's own loop blocked 50 ms per answer at 100 arrivals/s: it cannot keep up.
    async with http_server(delay=0.001) as url:
        result = await open_loop(
            [url],
            workload(400),
            rate=100,
            duration=1.0,
            on_response=lambda _i, _status, _at: time.sleep(0.05),
        )
    stats = result.open_loop
    assert stats is not None
    assert not stats.kept_rate
    assert not stats.kept_time
    assert stats.send_rate < 0.9 * stats.scheduled_rate


async def test_connections_the_server_closed_are_reopened() -> None:
    async with http_server(delay=0.001, close_after=True) as url:
        result = await open_loop(
            [url], workload(200), rate=100, duration=0.5, max_connections=2, max_lag_ms=50
        )
    assert result.errors == 0
    assert result.requests > 0


async def test_too_few_requests_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduled"):
        await open_loop(["http://127.0.0.1:9"], workload(5), rate=100, duration=1)
