"""Closed-loop HTTP load generator and latency recorder.

*Closed loop*: ``concurrency`` virtual clients each keep one keep-alive connection and
send their next request only when the previous answer is fully read, so the offered
load adapts to the server (wrk/hey style). Latency is measured per request from just
before the request bytes are written to the last body byte read.

Phases:

1. Warm-up (``warmup`` seconds): connections open, each server worker imports and
   caches what it needs, PostgreSQL warms its buffers; nothing is recorded.
2. Window (``duration`` seconds): every request *started* in the window is recorded,
   including the few that complete just after it closes (no tail bias).
3. Drain: clients stop sending at the end of the window and wait for their last answer.

The whole run is bounded: each request by ``timeout``, the run by
``warmup + duration + timeout + 5`` seconds. Any answer with an unexpected status, a
timeout or a broken connection is an error; callers fail the benchmark on errors,
because a throughput made of 429s or 500s means nothing.

Two clients:

``raw`` (default)
    a minimal HTTP/1.1 keep-alive client on asyncio streams (uvloop). On this 2-core
    machine the load generator shares the CPU with the servers, so its own cost per
    request must be small: against a constant-answer raw app it sustains 12,000–25,000
    requests/s on well under one core (each run records this ceiling).
``httpx``
    one ``httpx.AsyncClient`` per virtual client (a single shared pool managed only 355
    requests/s at 32 connections). Measured here at 600–1,300 requests/s while using a
    whole core, the same order as the server under test: with it the ratios would
    measure the client. Kept for comparison (``--client httpx``).

*Open loop* (:func:`open_loop`): requests are sent on a fixed schedule (Poisson or
uniform arrivals at ``rate`` per second) whatever the answers; latency is measured from
each request's **scheduled** send time, so time spent queued behind a slow server (or
waiting for a free connection) counts and coordinated omission cannot hide it. See its
docstring for the connection pool, the schedule check and what is recorded.

Only ``127.0.0.1`` targets are accepted: this is a benchmark, not a load-testing tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import math
import os
import random
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

ClientKind = Literal["raw", "httpx"]
Schedule = Literal["poisson", "uniform"]
Metric = Literal["rps", "mean", "p50", "p90", "p99", "max", "server_cpu"]

ALLOWED_HOSTS = frozenset({"127.0.0.1"})
MAX_ERROR_SAMPLES = 5
# An open-loop connection idle this long is reopened before use: uvicorn closes
# keep-alive connections after 5 s idle, and a request sent as it does so would fail.
IDLE_RECONNECT_S = 4.0


@dataclass(frozen=True)
class Request:
    """One HTTP request of a workload; ``expect`` is the only status counted as success."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    expect: int = 200

    @classmethod
    def get(cls, path: str, headers: Mapping[str, str] | None = None) -> Request:
        return cls("GET", path, tuple((headers or {}).items()))

    @classmethod
    def post_json(
        cls,
        path: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        expect: int = 200,
    ) -> Request:
        """A POST of ``payload`` as UTF-8 JSON (compact, like a mobile client sends it)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        items = {"Content-Type": "application/json", **(headers or {})}
        return cls("POST", path, tuple(items.items()), body, expect)


class LatencyRecorder:
    """Latency samples (seconds) with nearest-rank percentiles.

    Every sample is kept (a float each, about 100 KB for a 10 s run at 1,000 req/s), so
    percentiles are exact rather than histogram-bucketed.
    """

    def __init__(self) -> None:
        self._samples = array("d")

    def __len__(self) -> int:
        return len(self._samples)

    def record(self, seconds: float) -> None:
        self._samples.append(seconds)

    def percentile(self, q: float) -> float:
        """The smallest sample with at least ``q`` % of the samples at or below it."""
        return _nearest_rank(sorted(self._samples), q)

    def summary(self) -> LatencySummary:
        ordered = sorted(self._samples)
        if not ordered:
            return LatencySummary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        return LatencySummary(
            count=len(ordered),
            mean_ms=sum(ordered) / len(ordered) * 1000,
            p50_ms=_nearest_rank(ordered, 50) * 1000,
            p90_ms=_nearest_rank(ordered, 90) * 1000,
            p99_ms=_nearest_rank(ordered, 99) * 1000,
            max_ms=ordered[-1] * 1000,
        )


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class LoadResult:
    """What one closed-loop run measured; the harness fills in the CPU fields."""

    label: str
    targets: tuple[str, ...]
    client: ClientKind
    concurrency: int
    warmup_s: float
    window_s: float
    requests: int
    errors: int
    rps: float
    latency: LatencySummary
    error_samples: tuple[str, ...] = ()
    cpu_cores: Mapping[str, float] = field(default_factory=dict)
    server_process_cores: tuple[float, ...] = ()

    @property
    def server_cpu_ms(self) -> float:
        """CPU milliseconds the server group spent per request (NaN if not sampled).

        Less sensitive than throughput to what else runs on a shared machine, and the
        number capacity planning needs: one core serves 1000 / server_cpu_ms requests/s.
        """
        cores = self.cpu_cores.get("server")
        if cores is None or not self.rps:
            return math.nan
        return cores * 1000 / self.rps

    def metric(self, name: Metric) -> tuple[float, str]:
        """``(value, unit)`` of a figure this run can provide."""
        if name == "rps":
            return self.rps, "req/s"
        if name == "server_cpu":
            return self.server_cpu_ms, "ms CPU/req"
        return float(getattr(self.latency, f"{name}_ms")), "ms"

    def with_cpu(
        self, cpu_cores: Mapping[str, float], server_process_cores: Sequence[float] = ()
    ) -> LoadResult:
        return replace(
            self, cpu_cores=dict(cpu_cores), server_process_cores=tuple(server_process_cores)
        )

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency
        return {
            "label": self.label,
            "targets": list(self.targets),
            "client": self.client,
            "concurrency": self.concurrency,
            "warmup_s": self.warmup_s,
            "window_s": round(self.window_s, 3),
            "requests": self.requests,
            "errors": self.errors,
            "error_samples": list(self.error_samples),
            "rps": round(self.rps, 1),
            "latency_ms": {
                "mean": round(lat.mean_ms, 3),
                "p50": round(lat.p50_ms, 3),
                "p90": round(lat.p90_ms, 3),
                "p99": round(lat.p99_ms, 3),
                "max": round(lat.max_ms, 3),
            },
            "cpu_cores": {key: round(value, 2) for key, value in self.cpu_cores.items()},
            "server_process_cores": [round(value, 2) for value in self.server_process_cores],
            "server_cpu_ms_per_request": (
                None if math.isnan(self.server_cpu_ms) else round(self.server_cpu_ms, 3)
            ),
        }


class Connection(Protocol):
    async def send(self, request: Request) -> tuple[int, bytes]: ...

    async def reset(self) -> None: ...


class RawHttp1Connection:
    """HTTP/1.1 over one keep-alive TCP connection: Content-Length or chunked bodies."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._host_header = f"{host}:{port}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._wire: dict[Request, bytes] = {}

    def _encode(self, request: Request) -> bytes:
        wire = self._wire.get(request)
        if wire is None:
            lines = [
                f"{request.method} {request.path} HTTP/1.1",
                f"Host: {self._host_header}",
                "User-Agent: xems-bench",
                "Accept: application/json",
                *(f"{name}: {value}" for name, value in request.headers),
            ]
            if request.body or request.method not in {"GET", "HEAD"}:
                lines.append(f"Content-Length: {len(request.body)}")
            wire = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body
            self._wire[request] = wire
        return wire

    async def connect(self) -> None:
        """Open the connection now (it is otherwise opened by the first ``send``)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)

    async def send(self, request: Request) -> tuple[int, bytes]:
        if self._reader is not None and self._reader.at_eof():
            await self.reset()  # the server closed it while idle (its keep-alive timeout)
        if self._writer is None:
            await self.connect()
        assert self._reader is not None
        self._writer.write(self._encode(request))
        status, body, keep_alive = await self._read_response(self._reader)
        if not keep_alive:
            await self.reset()
        return status, body

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = value.strip().lower() != b"close"
        if chunked:
            parts: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            return status, b"".join(parts), keep_alive
        if length is not None:
            return status, await reader.readexactly(length), keep_alive
        return status, await reader.read(), False  # body delimited by connection close

    async def reset(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the peer already went away
                await writer.wait_closed()


class HttpxConnection:
    """One ``httpx.AsyncClient`` holding a single connection (see the module docstring)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=base_url,
            trust_env=False,  # a proxy from the environment must never see bench traffic
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"User-Agent": "xems-bench", "Accept": "application/json"},
        )

    async def send(self, request: Request) -> tuple[int, bytes]:
        response = await self._client.request(
            request.method,
            request.path,
            headers=dict(request.headers),
            content=request.body or None,
        )
        return response.status_code, response.content

    async def reset(self) -> None:
        """httpx drops a broken connection from its pool by itself."""

    async def aclose(self) -> None:
        await self._client.aclose()


def local_target(base_url: str) -> tuple[str, int]:
    """``(host, port)`` of ``base_url``; refuses anything but a loopback target."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or parts.hostname not in ALLOWED_HOSTS or parts.port is None:
        raise ValueError(f"load is only generated against http://127.0.0.1:<port>, not {base_url}")
    return parts.hostname, parts.port


async def closed_loop(
    base_urls: Sequence[str],
    requests: Sequence[Request],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    client: ClientKind = "raw",
    timeout: float = 10.0,
    label: str = "",
    on_window: Callable[[Literal["start", "end"]], None] | None = None,
) -> LoadResult:
    """Run ``concurrency`` clients cycling through ``requests`` (shared round robin).

    Client ``i`` talks to ``base_urls[i % len(base_urls)]``: one URL per server process
    spreads the connections evenly. ``on_window`` is called at the start and the end of
    the measured window (the harness samples CPU there).
    """
    if not requests:
        raise ValueError("a workload needs at least one request")
    if concurrency < 1 or duration <= 0 or warmup < 0:
        raise ValueError("concurrency >= 1, duration > 0 and warmup >= 0 are required")
    targets = [local_target(url) for url in base_urls]
    if not targets:
        raise ValueError("no target")
    recorder = LatencyRecorder()
    next_index = itertools.count()
    error_samples: list[str] = []
    errors = 0
    window_start = time.perf_counter() + warmup
    window_end = window_start + duration
    last_done = window_start

    async def virtual_client(index: int) -> None:
        nonlocal errors, last_done
        host, port = targets[index % len(targets)]
        httpx_conn = None
        if client == "httpx":
            httpx_conn = HttpxConnection(f"http://{host}:{port}", timeout)
        conn: Connection = httpx_conn or RawHttp1Connection(host, port)
        try:
            while (started := time.perf_counter()) < window_end:
                request = requests[next(next_index) % len(requests)]
                try:
                    async with asyncio.timeout(timeout):
                        status, body = await conn.send(request)
                except Exception as exc:  # any failure is an error sample; the run then fails
                    status, body = -1, f"{type(exc).__name__}: {exc}".encode()
                    await conn.reset()
                done = time.perf_counter()
                if status != request.expect:
                    errors += 1
                    if len(error_samples) < MAX_ERROR_SAMPLES:
                        error_samples.append(
                            f"{request.method} {request.path} -> {status}: {body[:300]!r}"
                        )
                elif started >= window_start:
                    recorder.record(done - started)
                    last_done = max(last_done, done)
        finally:
            await conn.reset()
            if httpx_conn is not None:
                await httpx_conn.aclose()

    async def window_marks() -> None:
        if on_window is None:
            return
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        on_window("start")
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        on_window("end")

    async with asyncio.timeout(warmup + duration + timeout + 5):
        await asyncio.gather(window_marks(), *(virtual_client(i) for i in range(concurrency)))

    window = max(last_done - window_start, 1e-9)
    return LoadResult(
        label=label,
        targets=tuple(base_urls),
        client=client,
        concurrency=concurrency,
        warmup_s=warmup,
        window_s=window,
        requests=len(recorder),
        errors=errors,
        rps=len(recorder) / window,
        latency=recorder.summary(),
        error_samples=tuple(error_samples),
    )


# --- Open loop ---------------------------------------------------------------------------------


def schedule_offsets(
    rate: float, seconds: float, schedule: Schedule = "poisson", seed: int = 0
) -> array[float]:
    """Send times (seconds from the start) of an open-loop run: ``rate`` arrivals per
    second for ``seconds``. ``poisson``: exponential gaps (independent arrivals, as many
    citizens reporting at once are; seeded, so a run is repeatable); ``uniform``: exactly
    every ``1 / rate`` seconds."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate > 0 and seconds > 0 are required")
    offsets = array("d")
    if schedule == "uniform":
        offsets.extend(i / rate for i in range(math.ceil(seconds * rate)))
        return offsets
    if schedule != "poisson":
        raise ValueError(f"unknown schedule {schedule!r}")
    rng = random.Random(seed)
    at = rng.expovariate(rate)
    while at < seconds:
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


@dataclass(frozen=True)
class OpenLoopStats:
    """How an open-loop run kept its schedule (measured window only, except connections).

    ``scheduled_rate`` is the rate of the window's arrivals over the span of their scheduled
    times; ``send_rate`` the same arrivals over the span of the times they were actually
    handed to a connection task: a generator that falls behind stretches that span
    (``sent`` counts those handed over before the window closed). ``lag`` is how late a
    request was dispatched behind its scheduled time (the generator's own delay; a wait for
    a free connection is not lag, it is ``waited_for_connection`` and counts in the
    latency). ``kept_rate`` is false when ``send_rate`` fell under ``min_send_ratio`` of
    ``scheduled_rate`` (the server saw less than the claimed load: the figures are void);
    ``kept_time`` when the p99 lag exceeds ``max_lag_ms`` (the client was starved or
    overwhelmed; its lag is in every latency sample, so the figures are pessimistic, never
    flattering).
    """

    rate: float
    schedule: str
    seed: int
    scheduled: int
    scheduled_rate: float
    sent: int
    send_rate: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    max_lag_ms: float
    min_send_ratio: float
    max_connections: int
    connections_opened: int
    peak_in_flight: int
    waited_for_connection: int
    timeouts: int
    timeout_s: float
    priority_raised_by: int = 0

    @property
    def kept_rate(self) -> bool:
        """The window's arrivals went out at their rate: the server saw the claimed load."""
        return self.send_rate >= self.min_send_ratio * self.scheduled_rate

    @property
    def kept_time(self) -> bool:
        """Dispatch lag p99 within the bound (lag is part of every latency sample, so it
        can only make the latency figures worse, never better)."""
        return self.lag_p99_ms <= self.max_lag_ms

    @property
    def kept_schedule(self) -> bool:
        return self.kept_rate and self.kept_time

    def to_dict(self) -> dict[str, Any]:
        data = {
            key: (round(value, 3) if isinstance(value, float) else value)
            for key, value in self.__dict__.items()
        }
        data.update(
            kept_rate=self.kept_rate, kept_time=self.kept_time, kept_schedule=self.kept_schedule
        )
        return data


@dataclass(frozen=True)
class OpenLoopResult(LoadResult):
    """A :class:`LoadResult` of an open-loop run (``concurrency`` is the connection cap).

    ``requests`` and the latency cover every request *scheduled* in the window, failed
    ones included (at the time they failed: a timeout counts as at least ``timeout_s``);
    ``rps`` is the successful ones per second of window.
    """

    open_loop: OpenLoopStats | None = None

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["mode"] = "open loop"
        if self.open_loop is not None:
            data["open_loop"] = self.open_loop.to_dict()
        return data


def _raise_priority(steps: int) -> int | None:
    """Lower this process's niceness by ``steps`` (root only); the old value, or ``None``.

    The generator stands for the world outside the server: its arrivals must not wait
    while the server under test (and PostgreSQL) use every core, which on a saturated
    2-core machine they otherwise do, by whole scheduler slices. It needs about a tenth of
    a core, so what it takes from the server is what it would have taken anyway, sooner.
    """
    if steps <= 0 or not hasattr(os, "getpriority"):
        return None
    try:
        old = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, old - steps)
    except OSError:  # not permitted (not root): run at the normal priority
        return None
    return old


async def open_loop(
    base_urls: Sequence[str],
    requests: Sequence[Request],
    *,
    rate: float,
    duration: float,
    warmup: float = 0.0,
    schedule: Schedule = "poisson",
    seed: int = 0,
    max_connections: int = 512,
    initial_connections: int | None = None,
    timeout: float = 5.0,
    max_lag_ms: float = 20.0,
    min_send_ratio: float = 0.99,
    priority: int = 10,
    label: str = "",
    on_window: Callable[[Literal["start", "end"]], None] | None = None,
    on_response: Callable[[int, int, float], None] | None = None,
) -> OpenLoopResult:
    """Send ``requests`` on a fixed schedule of ``rate`` per second, whatever the answers.

    The schedule (:func:`schedule_offsets`) covers ``warmup + duration`` seconds; request
    ``i`` is ``requests[i]`` (the caller supplies at least as many as are scheduled, so
    none is sent twice) and goes to ``base_urls[i % len(base_urls)]``.

    Connections: a pool of keep-alive HTTP/1.1 connections per target (HTTP/1.1 has one
    request in flight per connection). ``initial_connections`` (default: enough for 50 ms
    of arrivals, at least 8 per target) are opened before the clock starts; a request
    that finds none idle opens another, up to ``max_connections`` in all, and past that
    waits for the first one freed (FIFO). Each request is one task: the dispatcher never
    waits for an answer, so a slow server cannot slow the arrivals.

    Measured: latency from the **scheduled** send time to the last byte of the answer,
    for every request scheduled in the window (``warmup`` seconds after the start, for
    ``duration`` seconds), including the wait for a connection and any dispatch lag. A
    request fails on a status other than ``expect``, a broken connection, or no answer
    within ``timeout`` of its scheduled time (its connection is then dropped).

    The process runs ``priority`` steps of niceness above normal for the run where it may
    (:func:`_raise_priority`; recorded as ``priority_raised_by``), and the garbage
    collector leaves the objects that exist at the start alone.

    ``on_window`` is called at the start and end of the window (the harness samples CPU
    there). ``on_response(i, status, wall_time)`` is called for every answered or failed
    request ``i`` with ``time.time()`` at completion (status -1 for a failure without an
    answer), e.g. to relate answers to database timestamps afterwards.
    """
    if not requests:
        raise ValueError("a workload needs at least one request")
    if duration <= 0 or warmup < 0 or max_connections < 1:
        raise ValueError("duration > 0, warmup >= 0 and max_connections >= 1 are required")
    targets = [local_target(url) for url in base_urls]
    if not targets:
        raise ValueError("no target")
    offsets = schedule_offsets(rate, warmup + duration, schedule, seed)
    if len(offsets) > len(requests):
        raise ValueError(f"{len(offsets)} requests scheduled, only {len(requests)} supplied")
    loop = asyncio.get_running_loop()
    per_target = max(1, max_connections // len(targets))
    if initial_connections is None:
        initial_connections = max(8 * len(targets), math.ceil(rate * 0.05))
    initial = min(per_target, max(1, initial_connections // len(targets)))
    idle: list[list[tuple[RawHttp1Connection, float]]] = [[] for _ in targets]
    opened = [0] * len(targets)
    waiters: list[deque[asyncio.Future[RawHttp1Connection]]] = [deque() for _ in targets]
    recorder = LatencyRecorder()
    lags = LatencyRecorder()
    error_samples: list[str] = []
    counts = {"errors": 0, "ok": 0, "waited": 0, "timeouts": 0, "in_flight": 0, "peak": 0}
    sent_in_window = 0

    # The workload and everything else alive now is never garbage: keep the collector's
    # full passes (which stall the loop, and so the schedule) away from it.
    gc.collect()
    gc.freeze()
    niceness = _raise_priority(priority)

    def restore() -> None:
        gc.unfreeze()
        if niceness is not None:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)

    try:
        for index, (host, port) in enumerate(targets):
            for _ in range(initial):
                conn = RawHttp1Connection(host, port)
                await conn.connect()
                idle[index].append((conn, time.perf_counter()))
                opened[index] += 1
    except BaseException:
        restore()
        raise

    def release(target: int, conn: RawHttp1Connection) -> None:
        queue = waiters[target]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        idle[target].append((conn, time.perf_counter()))

    async def acquire(target: int) -> RawHttp1Connection:
        if idle[target]:
            conn, last_used = idle[target].pop()
            if time.perf_counter() - last_used > IDLE_RECONNECT_S:
                await conn.reset()  # uvicorn closes a connection idle for 5 s: reconnect
            return conn
        if opened[target] < per_target:
            opened[target] += 1
            host, port = targets[target]
            return RawHttp1Connection(host, port)  # connects on send: counted in latency
        counts["waited"] += 1
        waiter: asyncio.Future[RawHttp1Connection] = loop.create_future()
        waiters[target].append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                release(target, waiter.result())  # handed over just as we gave up
            raise

    start = time.perf_counter() + 0.05
    window_start = start + warmup
    window_end = window_start + duration
    wall_offset = time.time() - time.perf_counter()

    async def one(index: int, scheduled: float) -> None:
        target = index % len(targets)
        request = requests[index]
        recorded = scheduled >= window_start
        conn: RawHttp1Connection | None = None
        counts["in_flight"] += 1
        counts["peak"] = max(counts["peak"], counts["in_flight"])
        try:
            deadline = loop.time() + (scheduled + timeout - time.perf_counter())
            async with asyncio.timeout_at(deadline):
                conn = await acquire(target)
                status, body = await conn.send(request)
        except Exception as exc:  # timeouts and broken connections: an error each
            if isinstance(exc, TimeoutError):
                counts["timeouts"] += 1
            status, body = -1, f"{type(exc).__name__}: {exc}".encode()
            if conn is not None:
                await conn.reset()  # a half-read answer must not reach the next request
        finally:
            counts["in_flight"] -= 1
        if conn is not None:
            release(target, conn)
        done = time.perf_counter()
        if on_response is not None:
            on_response(index, status, done + wall_offset)
        if status != request.expect:
            counts["errors"] += 1
            if len(error_samples) < MAX_ERROR_SAMPLES:
                error_samples.append(f"{request.method} {request.path} -> {status}: {body[:300]!r}")
        elif recorded:
            counts["ok"] += 1
        if recorded:
            recorder.record(done - scheduled)

    async def window_marks() -> None:
        if on_window is None:
            return
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        on_window("start")
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        on_window("end")

    tasks: set[asyncio.Task[None]] = set()
    marks = asyncio.create_task(window_marks())
    scheduled_in_window = 0
    first: tuple[float, float] | None = None  # (scheduled, dispatched) of the window's first
    last = (0.0, 0.0)
    try:
        async with asyncio.timeout(warmup + duration + timeout + 10):
            for index, offset in enumerate(offsets):
                scheduled = start + offset
                now = time.perf_counter()
                if scheduled > now:
                    await asyncio.sleep(scheduled - now)
                    now = time.perf_counter()
                task = asyncio.create_task(one(index, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if window_start <= scheduled < window_end:
                    scheduled_in_window += 1
                    lags.record(max(0.0, now - scheduled))
                    last = (scheduled, now)
                    if first is None:
                        first = last
                    if now < window_end:
                        sent_in_window += 1
            await marks
            while tasks:
                await asyncio.gather(*list(tasks))
    finally:
        marks.cancel()
        for task in list(tasks):
            task.cancel()
        for pool in idle:
            for conn, _last_used in pool:
                await conn.reset()
        restore()

    lag = lags.summary()
    spans = (last[0] - first[0], last[1] - first[1]) if first else (0.0, 0.0)
    stats = OpenLoopStats(
        rate=rate,
        schedule=schedule,
        seed=seed,
        scheduled=scheduled_in_window,
        scheduled_rate=(scheduled_in_window - 1) / spans[0] if spans[0] > 0 else math.nan,
        sent=sent_in_window,
        send_rate=(scheduled_in_window - 1) / spans[1] if spans[1] > 0 else math.nan,
        lag_p50_ms=lag.p50_ms,
        lag_p99_ms=lag.p99_ms,
        lag_max_ms=lag.max_ms,
        max_lag_ms=max_lag_ms,
        min_send_ratio=min_send_ratio,
        max_connections=per_target * len(targets),
        connections_opened=sum(opened),
        peak_in_flight=counts["peak"],
        waited_for_connection=counts["waited"],
        timeouts=counts["timeouts"],
        timeout_s=timeout,
        priority_raised_by=0 if niceness is None else priority,
    )
    return OpenLoopResult(
        label=label,
        targets=tuple(base_urls),
        client="raw",
        concurrency=stats.max_connections,
        warmup_s=warmup,
        window_s=duration,
        requests=len(recorder),
        errors=counts["errors"],
        rps=counts["ok"] / duration,
        latency=recorder.summary(),
        error_samples=tuple(error_samples),
        open_loop=stats,
    )


def run_async(coro: Any) -> Any:
    """Run ``coro`` on uvloop when available (the client's own overhead matters here)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
