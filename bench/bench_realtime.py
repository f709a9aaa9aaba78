"""WebSocket delivery, commit → frame: targeted sends and a region broadcast, beside raw pub/sub.

Project (``xixian_ems.asgi``, production settings, ``RedisPubSubChannelLayer``):

* **targeted**: ``TARGETED_SOCKETS`` sockets, one per throwaway user, each subscribed to its
  own ``user.<id>`` stream (a responder's phone). A driver process (Django, production
  settings, the bench database) commits ``TARGETED_RATE`` events per second, each one
  ``events.emit`` on one random user stream in its own transaction, open loop from 8
  threads. Latency = the frame's arrival at its socket − the moment COMMIT returned (an
  on-commit callback registered before the event; the publish runs after it), both
  ``CLOCK_MONOTONIC`` on this machine. The first ``warmup`` seconds are not counted.
* **broadcast**: ``BROADCAST_SOCKETS`` sockets of the new area's commander subscribed to
  ``region.xixian`` (every incident event of the area lands there); ``BROADCASTS`` events,
  one every ``BROADCAST_GAP_S`` seconds (one at a time). Latency per socket and event as
  above; *lost* = frames that never came (``GRACE_S`` after the last commit). ASGI RSS:
  the server processes' resident memory with every socket connected and subscribed.

Raw baseline, same run and machine (``bench/raw_realtime.py``): the same number of sockets
on a bare ASGI app fed by one redis.asyncio pub/sub connection per process, and a driver
PUBLISHing frames of the same shape and size at the same rate; latency from just before
PUBLISH to arrival. The ratio is the price of the database commit path's publish,
Channels, the layer's msgpack framing and the consumer.

Sockets are opened ``CONNECT_PARALLEL`` at a time, split evenly over the server's
processes; the connect-and-subscribe rate is noted (a reconnect storm's speed).
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.harness import (
    DJANGO_APP,
    ROOT,
    Baseline,
    BenchContext,
    BenchError,
    Figure,
    Server,
    cpu_snapshot,
)
from bench.harness import cpu_cores as cores_between
from bench.loadgen import run_async

PREFIX = "bench-rt"
TARGETED_SOCKETS = 5000
TARGETED_RATE = 500  # events per second
BROADCAST_SOCKETS = 10000
BROADCASTS = 3
BROADCAST_GAP_S = 5.0  # one event at a time: each delivered (or lost) before the next
BROADCAST_STREAM = "region.xixian"
CONNECT_PARALLEL = 100
GRACE_S = 5.0
SEED = 20260105
KIND = "bench.ping"
RAW_APP = "bench.raw_realtime:app"
GOALS = {"p50": 5.0, "p99": 20.0, "broadcast_p99": 1000.0, "lost": 0, "rss": 1024.0}

# Runs inside ``manage.py shell`` (the project, production settings, bench database).
PROJECT_DRIVER = """
import json, random, time
from concurrent.futures import ThreadPoolExecutor
from django.db import transaction
from apps.realtime import events
streams, rate, count, seed, kind = {streams}, {rate}, {count}, {seed}, {kind}
rng = random.Random(seed)
plan = [rng.choice(streams) for _ in range(count)]
commits = [0] * count
published = [0] * count
from apps.realtime import publisher
_publish = publisher.publish
def stamped(live):
    now = time.monotonic_ns()
    for event in live:
        published[json.loads(event.frame)["data"]["i"]] = now
    _publish(live)
publisher.publish = stamped
def send(i):
    with transaction.atomic():
        transaction.on_commit(lambda: commits.__setitem__(i, time.monotonic_ns()))
        events.emit([plan[i]], kind, {{"i": i}})
start = time.monotonic()
with ThreadPoolExecutor(8) as pool:
    futures = []
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        futures.append(pool.submit(send, i))
    for future in futures:
        future.result()
print(json.dumps({{"sent": commits, "published": published}}))
"""

COMMANDER_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
print(json.dumps(str(AccessToken.for_user(get_user_model().objects.get(username="cmd-xixian")))))
"""

# Plain Python: PUBLISH frames shaped like the project's to the raw app's channels.
RAW_DRIVER = """
import json, random, sys, time
import redis
url, prefix, streams, rate, count = {url}, {prefix}, {streams}, {rate}, {count}
seed, kind = {seed}, {kind}
rng = random.Random(seed)
plan = [rng.choice(streams) for _ in range(count)]
client = redis.Redis.from_url(url)
stamps = [0] * count
start = time.monotonic()
for i, stream in enumerate(plan):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    frame = json.dumps({{"type": "event", "stream": stream, "seq": i + 1, "kind": kind,
                        "at": "2026-01-01T08:00:00.000000+08:00", "data": {{"i": i}}}})
    stamps[i] = time.monotonic_ns()
    client.publish(prefix + "." + stream, frame)
print(json.dumps({{"sent": stamps, "published": stamps}}))
"""


@dataclass
class Fleet:
    """Many WebSocket clients in this process; every frame is timestamped on arrival."""

    sockets: list[ClientConnection] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    arrivals: list[tuple[int, int]] = field(default_factory=list)  # (i, monotonic ns)
    unexpected: list[str] = field(default_factory=list)  # frames that are not ours
    open_s: float = 0.0

    async def open(self, targets: Sequence[tuple[str, dict[str, Any] | None]]) -> None:
        """Connect to ``(url, subscribe message or None for the raw app)`` and wait for
        each ``subscribed``."""
        gate = asyncio.Semaphore(CONNECT_PARALLEL)
        started = time.perf_counter()

        async def one(url: str, subscribe: dict[str, Any] | None) -> None:
            async with gate:
                ws = await connect(url, compression=None, ping_interval=None, open_timeout=60)
                if subscribe is not None:
                    hello = json.loads(await ws.recv())
                    if hello.get("type") != "hello":
                        raise BenchError(f"no hello: {hello}")
                    await ws.send(json.dumps(subscribe))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if answer.get("type") != "subscribed":
                    raise BenchError(f"subscribe refused: {answer}")
                self.sockets.append(ws)
                self.readers.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one(url, message) for url, message in targets))
        self.open_s = time.perf_counter() - started

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                now = time.monotonic_ns()
                frame = json.loads(text)
                if frame.get("type") != "event" or "i" not in frame.get("data", {}):
                    self.unexpected.append(text[:300])
                    continue
                self.arrivals.append((int(frame["data"]["i"]), now))
        except ConnectionClosed:
            return

    async def wait_for(self, expected: int, deadline_s: float) -> None:
        """Until ``expected`` frames arrived or ``deadline_s`` passed (lost ones never do)."""
        deadline = time.monotonic() + deadline_s
        while len(self.arrivals) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        for start in range(0, len(self.sockets), 500):
            await asyncio.gather(
                *(ws.close() for ws in self.sockets[start : start + 500]),
                return_exceptions=True,
            )
        self.sockets.clear()
        self.readers.clear()


@dataclass(frozen=True)
class Delivery:
    """Latencies (ms) of the counted frames, and how many never arrived."""

    latencies_ms: list[float]
    publish_delay_ms: list[float]  # COMMIT returned → the publish began (driver side)
    expected: int
    received: int
    duplicates: int
    open_s: float
    sockets: int
    cpu_cores: dict[str, float]

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def pct(self, q: float, samples: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if samples is None else samples)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sockets": self.sockets,
            "connect_subscribe_s": round(self.open_s, 2),
            "sockets_per_s": round(self.sockets / self.open_s, 1) if self.open_s else None,
            "expected": self.expected,
            "received": self.received,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "latency_ms": {
                "p50": round(self.pct(0.50), 2),
                "p90": round(self.pct(0.90), 2),
                "p99": round(self.pct(0.99), 2),
                "max": round(self.pct(1.0), 2),
            },
            "commit_to_publish_ms": {
                "p50": round(self.pct(0.50, self.publish_delay_ms), 3),
                "p99": round(self.pct(0.99, self.publish_delay_ms), 3),
            },
            "cpu_cores": self.cpu_cores,
        }


def _ws_base(server: Server, index: int) -> str:
    return server.base_urls[index % len(server.base_urls)].replace("http://", "ws://", 1)


async def _drive(
    env: dict[str, str], fleet: Fleet, server: Server, code: str, *, django: bool, expected: int
) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Run a driver process while the fleet listens; its stamps (``sent``: COMMIT returned,
    ``published``: the publish began) and the CPU use."""
    if django:
        command = [sys.executable, "manage.py", "shell", "-c", code]
    else:
        command = [sys.executable, "-c", code]
    before = cpu_snapshot(server.pgid)
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"driver failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    await fleet.wait_for(expected, GRACE_S)
    after = cpu_snapshot(server.pgid)
    if fleet.unexpected:
        raise BenchError(
            f"{len(fleet.unexpected)} frames that are not the driver's, e.g. {fleet.unexpected[0]}"
        )
    return json.loads(out.decode().strip().splitlines()[-1]), cores_between(before, after)


def _delivery(
    fleet: Fleet, stamps: dict[str, list[int]], *, copies: int, skip: int, cpu: dict[str, float]
) -> Delivery:
    """Match arrivals to send stamps; ``copies`` frames are due per send (sockets per
    stream); sends before ``skip`` are warm-up and not counted."""
    sent, published = stamps["sent"], stamps["published"]
    by_send: dict[int, list[int]] = defaultdict(list)
    for i, arrived in fleet.arrivals:
        by_send[i].append(arrived)
    latencies: list[float] = []
    received = duplicates = 0
    for i in range(skip, len(sent)):
        arrivals = by_send.get(i, [])
        duplicates += max(0, len(arrivals) - copies)
        counted = arrivals[:copies]
        received += len(counted)
        latencies += [(arrived - sent[i]) / 1e6 for arrived in counted]
    return Delivery(
        latencies_ms=latencies,
        publish_delay_ms=[(published[i] - sent[i]) / 1e6 for i in range(skip, len(sent))],
        expected=(len(sent) - skip) * copies,
        received=received,
        duplicates=duplicates,
        open_s=fleet.open_s,
        sockets=len(fleet.sockets),
        cpu_cores=cpu,
    )


async def _targeted(
    ctx: BenchContext,
    env: dict[str, str],
    app: Server,
    raw: Server,
    users: list[tuple[int, str]],
) -> tuple[Delivery, Delivery]:
    count = int(TARGETED_RATE * (ctx.options.warmup + ctx.options.duration))
    skip = int(TARGETED_RATE * ctx.options.warmup)
    streams = [f"user.{pk}" for pk, _token in users]
    results = []
    for label, server in (("project", app), ("raw", raw)):
        fleet = Fleet()
        if label == "project":
            targets = [
                (
                    f"{_ws_base(app, k)}/ws/v1/events/?access_token={token}",
                    {"type": "subscribe", "stream": f"user.{pk}"},
                )
                for k, (pk, token) in enumerate(users)
            ]
            code = PROJECT_DRIVER.format(
                streams=streams, rate=TARGETED_RATE, count=count, seed=SEED, kind=repr(KIND)
            )
        else:
            targets = [
                (f"{_ws_base(raw, k)}/ws?stream=user.{pk}", None)
                for k, (pk, _t) in enumerate(users)
            ]
            code = RAW_DRIVER.format(
                url=repr(ctx.options.redis_url),
                prefix=repr(env["CHANNEL_LAYER_PREFIX"]),
                streams=streams,
                rate=TARGETED_RATE,
                count=count,
                seed=SEED,
                kind=repr(KIND),
            )
        await fleet.open(targets)
        stamps, cpu = await _drive(
            env, fleet, server, code, django=label == "project", expected=count
        )
        results.append(_delivery(fleet, stamps, copies=1, skip=skip, cpu=cpu))
        await fleet.close()
        print(f"  targeted {label:<8} {_line(results[-1])}")
    return results[0], results[1]


async def _broadcast(
    ctx: BenchContext, env: dict[str, str], app: Server, raw: Server, token: str
) -> tuple[Delivery, Delivery, float, float]:
    rss: list[float] = []
    results = []
    for label, server in (("project", app), ("raw", raw)):
        fleet = Fleet()
        if label == "project":
            targets = [
                (
                    f"{_ws_base(app, k)}/ws/v1/events/?access_token={token}",
                    {"type": "subscribe", "stream": BROADCAST_STREAM},
                )
                for k in range(BROADCAST_SOCKETS)
            ]
            code = PROJECT_DRIVER.format(
                streams=[BROADCAST_STREAM],
                rate=1 / BROADCAST_GAP_S,
                count=BROADCASTS,
                seed=SEED,
                kind=repr(KIND),
            )
        else:
            targets = [
                (f"{_ws_base(raw, k)}/ws?stream={BROADCAST_STREAM}", None)
                for k in range(BROADCAST_SOCKETS)
            ]
            code = RAW_DRIVER.format(
                url=repr(ctx.options.redis_url),
                prefix=repr(env["CHANNEL_LAYER_PREFIX"]),
                streams=[BROADCAST_STREAM],
                rate=1 / BROADCAST_GAP_S,
                count=BROADCASTS,
                seed=SEED,
                kind=repr(KIND),
            )
        await fleet.open(targets)
        rss.append(sum(process.rss_mib for process in server.memory()))
        stamps, cpu = await _drive(
            env,
            fleet,
            server,
            code,
            django=label == "project",
            expected=BROADCASTS * BROADCAST_SOCKETS,
        )
        results.append(_delivery(fleet, stamps, copies=BROADCAST_SOCKETS, skip=0, cpu=cpu))
        await fleet.close()
        print(f"  broadcast {label:<7} {_line(results[-1])}  rss {rss[-1]:.0f} MiB")
    return results[0], results[1], rss[0], rss[1]


def _line(delivery: Delivery) -> str:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in delivery.cpu_cores.items())
    return (
        f"{delivery.sockets:>6} sockets ({delivery.sockets / max(delivery.open_s, 1e-9):6.0f}/s)"
        f"  p50 {delivery.pct(0.5):7.2f} ms  p99 {delivery.pct(0.99):8.2f} ms"
        f"  lost {delivery.lost}"
        f"  (publish p99 {delivery.pct(0.99, delivery.publish_delay_ms):.1f} ms)  cores[{cpu}]"
    )


def _figure(
    name: str, unit: str, value: float, base: float, base_name: str, goal: float | None, text: str
) -> Figure:
    return Figure(
        name=name,
        unit=unit,
        value=value,
        baseline=Baseline(name=base_name, value=base, unit=unit),
        better="lower",
        goal=goal,
        description=text,
    )


def _servers(ctx: BenchContext, env: dict[str, str], started: list[Server]) -> None:
    """The project and the raw app with this run's own pub/sub prefix (not ``ctx.django()``:
    Redis pub/sub channels are server-wide, and another bench run on this machine - any
    Redis db - would publish into the same ``asgi__group__region.xixian``; measured: an
    SLA bench's events reached these sockets). Appended to ``started`` before starting,
    so the caller stops whatever did start."""
    for name, app in (("django-realtime", DJANGO_APP), ("raw_realtime", RAW_APP)):
        server = Server(name, app, workers=ctx.options.workers, env=env)
        print(f"  starting {server.name}: {server.description}")
        started.append(server)
        server.start()


def run(ctx: BenchContext) -> list[Figure]:
    env = {**ctx.env, "CHANNEL_LAYER_PREFIX": f"bench-rt-{secrets.token_hex(6)}"}
    started: list[Server] = []
    try:
        _servers(ctx, env, started)
        return _run(ctx, env, started[0], started[1])
    finally:
        for server in started:
            server.stop()


def _run(ctx: BenchContext, env: dict[str, str], app: Server, raw: Server) -> list[Figure]:
    tokens = ctx.mint_tokens(PREFIX, TARGETED_SOCKETS)
    ids = [
        int(pk)
        for (pk,) in ctx.sql(
            "SELECT id FROM accounts_user WHERE username LIKE %s ORDER BY username",
            [f"{PREFIX}-%"],
        )
    ]
    if len(ids) != len(tokens):
        raise BenchError(f"{len(ids)} users for {len(tokens)} tokens")
    commander = json.loads(ctx.manage("shell", "-c", COMMANDER_SCRIPT).strip().splitlines()[-1])

    targeted, raw_targeted = run_async(
        _targeted(ctx, env, app, raw, list(zip(ids, tokens, strict=True)))
    )
    broadcast, raw_broadcast, rss, raw_rss = run_async(_broadcast(ctx, env, app, raw, commander))
    for delivery, what in ((targeted, "targeted"), (broadcast, "broadcast")):
        if delivery.duplicates:
            raise BenchError(f"{what}: {delivery.duplicates} frames arrived twice")

    ctx.note(
        "realtime",
        {
            "targeted": {
                "rate_per_s": TARGETED_RATE,
                "project": targeted.to_dict(),
                "raw": raw_targeted.to_dict(),
            },
            "broadcast": {
                "stream": BROADCAST_STREAM,
                "events": BROADCASTS,
                "project": broadcast.to_dict(),
                "raw": raw_broadcast.to_dict(),
                "asgi_rss_mib": round(rss, 1),
                "raw_rss_mib": round(raw_rss, 1),
            },
            "grace_s": GRACE_S,
            "connect_parallel": CONNECT_PARALLEL,
            "seed": SEED,
        },
    )
    raw_name = "raw Redis PUBLISH → bare ASGI socket"
    return [
        _figure(
            "targeted.p50",
            "ms",
            targeted.pct(0.5),
            raw_targeted.pct(0.5),
            f"{raw_name} p50",
            GOALS["p50"],
            f"commit → frame, {TARGETED_RATE}/s to {TARGETED_SOCKETS} sockets' user streams",
        ),
        _figure(
            "targeted.p99",
            "ms",
            targeted.pct(0.99),
            raw_targeted.pct(0.99),
            f"{raw_name} p99",
            GOALS["p99"],
            f"commit → frame, {TARGETED_RATE}/s to {TARGETED_SOCKETS} sockets' user streams",
        ),
        _figure(
            "broadcast.p99",
            "ms",
            broadcast.pct(0.99),
            raw_broadcast.pct(0.99),
            f"{raw_name} p99",
            GOALS["broadcast_p99"],
            f"one {BROADCAST_STREAM} event to {BROADCAST_SOCKETS} sockets, x{BROADCASTS}",
        ),
        _figure(
            "broadcast.lost",
            "frames",
            float(broadcast.lost),
            float(raw_broadcast.lost),
            f"{raw_name} lost",
            GOALS["lost"],
            f"frames of {BROADCASTS} broadcasts that never arrived ({GRACE_S:.0f} s grace)",
        ),
        _figure(
            "broadcast.asgi_rss",
            "MiB",
            rss,
            raw_rss,
            "bare ASGI app RSS",
            GOALS["rss"],
            f"server processes' resident memory with {BROADCAST_SOCKETS} sockets subscribed",
        ),
    ]
