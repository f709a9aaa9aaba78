"""WebSocket delivery, commit → frame: 500 targeted events/s and 10,000-socket broadcasts.

Every event travels the deployed path: a driver process of the project (``manage.py
shell``, production settings, the bench database) commits it in a transaction with the
real helper, ``apps.realtime.events.emit``, whose on-commit callback publishes it
(``apps.realtime.publisher``) to Redis pub/sub; ``RedisPubSubChannelLayer`` in each
uvicorn process of ``xixian_ems.asgi`` hands it to the event consumer
(``apps.realtime.consumers``) of every subscribed socket, which sends the WebSocket frame.
Latency is the frame's arrival at the client socket − the moment COMMIT returned in the
driver (an on-commit callback registered before the event's), both ``CLOCK_MONOTONIC``.

* **targeted**: ``TARGETED_SOCKETS`` sockets, one per throwaway user, each subscribed to
  its own ``user.<id>`` stream (a responder's phone). ``TARGETED_RATE`` events per second,
  open loop on a fixed schedule (event *i* is due at ``start + i / rate``) from
  ``DRIVER_PROCESSES`` × ``DRIVER_THREADS`` threads, each event in its own transaction
  on one user stream, the sockets taken in a shuffled round robin so every socket gets
  its share. The first ``--warmup`` seconds are not counted; ``--duration`` seconds are.
  The run *measures* the rate it achieved: ``targeted.sent_per_s`` (commits per second
  over the window) and ``targeted.received_per_s`` (frames per second at the clients),
  each with a goal of 99 % of the target; a driver that falls behind its schedule shows
  there (and in ``schedule_lag_ms``), never as a quietly lower load.
* **broadcast**: ``BROADCAST_SOCKETS`` sockets of the new area's commander subscribed to
  ``region.xixian`` (every incident event of the area lands there).
  ``BROADCAST_WARMUP`` unmeasured, then ``BROADCASTS`` measured events, one at a time:
  the next is committed ``BROADCAST_PAUSE_S`` after every frame of the previous one
  arrived (or ``BROADCAST_WAIT_S`` passed). ASGI RSS: the server processes' resident
  memory with every socket connected and subscribed.

**Lost frames fail the run** (``GRACE_S`` after the last commit), and so do duplicates, a
frame on the wrong socket or any frame that is not the driver's, for the project and the
baseline alike.

Raw baseline, same run, same sockets, same rate and driver layout
(``bench/raw_realtime.py``): a bare ASGI app fed by one redis.asyncio pub/sub connection
per process, and drivers PUBLISHing frames of the same shape and size (the same payload)
on the same schedule; latency from just before PUBLISH to arrival. The ratio is the price
of the transaction, the on-commit publish, Channels, the layer's msgpack framing and the
consumer.

The client fleet (``bench/wsfleet.py``) stamps a frame when its bytes arrive and decodes
it after the run: with the ``websockets`` client, parsing 10,000 frames per broadcast on
the servers' 2 cores was itself most of the raw baseline's latency.

Profiling: with ``BENCH_PYSPY=<path to py-spy>`` each project phase is recorded by py-spy
(``--nonblocking``, one file per server process: ``var/bench/pyspy-realtime-*.txt``,
collapsed stacks; ``--idle`` is off, so only time on the CPU counts).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness import (
    DJANGO_APP,
    LOG_DIR,
    ROOT,
    Baseline,
    BenchContext,
    BenchError,
    Better,
    Figure,
    Server,
    cpu_snapshot,
)
from bench.harness import cpu_cores as cores_between
from bench.loadgen import run_async
from bench.wsfleet import Fleet

PREFIX = "bench-rt"
TARGETED_SOCKETS = 5000
TARGETED_RATE = 500  # events per second
# Like the web tier's processes and threads that commit events in production. Threads of
# one process take turns on its GIL: with 2 processes x 4 threads the publish after
# COMMIT waited for it (driver-side publish p99 11-19 ms against 2-3 ms for the raw
# driver in the same runs); 4 x 2 keeps 8 writers with half the contention.
DRIVER_PROCESSES = 4
DRIVER_THREADS = 2  # per driver process, each with its own database connection
BROADCAST_SOCKETS = 10000
BROADCASTS = 20  # measured; one at a time
BROADCAST_WARMUP = 2
BROADCAST_PAUSE_S = 0.5  # quiet time between the last frame of one broadcast and the next
BROADCAST_WAIT_S = 10.0  # at most, per broadcast; later frames still count until GRACE_S
BROADCAST_STREAM = "region.xixian"
CONNECT_PARALLEL = 100
GRACE_S = 5.0
RATE_TOLERANCE = 0.99  # sent/received rate goal: 99 % of the target (schedule jitter)
SEED = 20260105
KIND = "bench.ping"
RAW_APP = "bench.raw_realtime:app"
GOALS = {"p50": 5.0, "p99": 20.0, "broadcast_p99": 1000.0, "lost": 0, "rss": 1024.0}

# The payload of every event: the shape and size of a ``task.dispatched`` payload
# (task, incident, timeline entry; Chinese text), plus ``i``, the event's number in the run.
BODY: dict[str, Any] = {
    "task": {
        "id": 8812,
        "incident_id": 4471,
        "team_id": 37,
        "team": "沣东新城消防救援站第二战斗班",
        "status": "dispatched",
        "instructions": "携带抽水泵和照明设备，从西侧入口进入地下车库",
        "cross_department": False,
        "dispatched_at": "2026-07-01T12:03:11.214512+08:00",
        "delivered_at": None,
    },
    "incident": {
        "id": 4471,
        "number": "XX-20260701-0042",
        "title": "地下车库积水，多辆车被困",
        "status": "accepted",
        "severity": "major",
        "loop": "emergency",
        "priority": 2,
        "category": "N02",
        "region": "fengdong-sanqiao",
        "lat": 34.27713,
        "lng": 108.77251,
        "address": "沣东新城三桥街道车辆厂路与建章路交叉口东北角",
        "is_drill": False,
    },
    "entry": {
        "id": 99120,
        "kind": "dispatched",
        "at": "2026-07-01T12:03:11.214512+08:00",
        "actor_id": 12,
        "public": False,
        "data": {"team_ids": [37], "note": "第一出动"},
    },
}

ProfileHandle = list[subprocess.Popen[bytes]]


# --- Drivers (separate processes) -----------------------------------------------------------


def _payload(i: int) -> dict[str, Any]:
    return {"i": i, **BODY}


def _schedule(
    commit: Callable[[int, str], None],
    items: list[tuple[int, str]],
    *,
    rate: float,
    start_ns: int,
    threads: int,
) -> list[str]:
    """Commit each ``(i, stream)`` at ``start_ns + i / rate`` (open loop: a late thread
    sends at once, and the lateness shows in the stamps); item k goes to thread k mod
    ``threads``. The failures, if any."""
    failures: list[str] = []

    def run(bucket: list[tuple[int, str]]) -> None:
        try:
            for i, stream in bucket:
                delay = (start_ns + i * 1e9 / rate - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                commit(i, stream)
        except Exception as exc:  # reported, and the bench fails
            failures.append(repr(exc))

    workers = [threading.Thread(target=run, args=(items[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures


def _serve(commit: Callable[[int, str], None], stamps: dict[int, list[int]]) -> None:
    """A driver's command loop on stdin/stdout, one JSON object per line.

    ``{"op": "schedule", "start_ns", "rate", "threads", "items": [[i, stream], ...]}``:
    :func:`_schedule`, then answer the stamps. ``{"op": "one", "i", "stream"}``: commit
    one now, answer its stamps. ``{"op": "exit"}``. Stamps per item: ``[COMMIT returned,
    publish began, publish returned]`` (``CLOCK_MONOTONIC`` ns).
    """
    print(json.dumps({"ready": True}), flush=True)
    cpu_start = time.process_time()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "schedule":
            items = [(int(i), str(stream)) for i, stream in command["items"]]
            cpu_start = time.process_time()
            failures = _schedule(
                commit,
                items,
                rate=float(command["rate"]),
                start_ns=int(command["start_ns"]),
                threads=int(command["threads"]),
            )
            answer: dict[str, Any] = {
                "stamps": {i: stamps[i] for i, _ in items if i in stamps},
                "cpu_s": time.process_time() - cpu_start,
                # From the first due time: a driver that fell behind ran longer than planned.
                "wall_s": max(1e-9, (time.monotonic_ns() - int(command["start_ns"])) / 1e9),
                "failures": failures,
            }
        elif command["op"] == "one":
            i = int(command["i"])
            commit(i, str(command["stream"]))
            answer = {"stamps": {i: stamps[i]}}
        else:
            print(json.dumps({"cpu_s": time.process_time() - cpu_start}), flush=True)
            return
        print(json.dumps(answer), flush=True)


def project_driver() -> None:
    """The project's driver: ``manage.py shell -c 'from bench.bench_realtime import
    project_driver; project_driver()'``. Each event is one transaction calling
    ``events.emit``; its on-commit callback publishes it, exactly as in a service."""
    from functools import partial

    from django.db import transaction

    from apps.realtime import events, publisher

    stamps: dict[int, list[int]] = {}
    current = threading.local()
    publish = publisher.publish

    def timed_publish(live: Any) -> None:
        stamp = stamps[current.i]
        stamp[1] = time.monotonic_ns()
        publish(live)
        stamp[2] = time.monotonic_ns()

    publisher.publish = timed_publish  # stamps only; events.py calls publisher.publish

    def committed(stamp: list[int]) -> None:
        stamp[0] = time.monotonic_ns()

    def commit(i: int, stream: str) -> None:
        current.i = i
        stamps[i] = stamp = [0, 0, 0]
        with transaction.atomic():
            # Registered before emit's own callback, which always runs last: the stamp is
            # taken right after COMMIT returned, before the publish.
            transaction.on_commit(partial(committed, stamp))
            events.emit([stream], KIND, _payload(i))

    _serve(commit, stamps)


def _raw_frame(stream: str, seq: int, i: int) -> str:
    """A frame of the project's shape (``apps.realtime.frames``) around the same payload."""
    return json.dumps(
        {
            "type": "event",
            "stream": stream,
            "seq": seq,
            "kind": KIND,
            "at": "2026-07-01T12:03:11.214512+08:00",
            "data": _payload(i),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def raw_driver() -> None:
    """The baseline's driver: ``python -c 'from bench.bench_realtime import raw_driver;
    raw_driver()'``; PUBLISHes each frame to ``<CHANNEL_LAYER_PREFIX>.<stream>``."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    prefix = os.environ["CHANNEL_LAYER_PREFIX"] + "."
    stamps: dict[int, list[int]] = {}
    seqs: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def commit(i: int, stream: str) -> None:
        with lock:
            seqs[stream] += 1
            seq = seqs[stream]
        frame = _raw_frame(stream, seq, i)
        now = time.monotonic_ns()
        stamps[i] = stamp = [now, now, 0]
        client.publish(prefix + stream, frame)
        stamp[2] = time.monotonic_ns()

    _serve(commit, stamps)


class Driver:
    """A driver process seen from the bench (asyncio, stdin/stdout JSON lines)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, env: dict[str, str], *, project: bool, name: str) -> Driver:
        if project:
            code = "from bench.bench_realtime import project_driver; project_driver()"
            command = [sys.executable, "manage.py", "shell", "--no-imports", "-v", "0", "-c", code]
        else:
            code = "from bench.bench_realtime import raw_driver; raw_driver()"
            command = [sys.executable, "-c", code]
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(LOG_DIR / f"driver-{name}.log").open("wb"),
            limit=64 * 1024 * 1024,  # the stamps of a whole run come as one line
        )
        driver = cls(proc, name)
        ready = await driver.read(timeout=120)
        if not ready.get("ready"):
            raise BenchError(f"driver {name} did not start: {ready}")
        return driver

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"driver {self.name} did not answer in {timeout:.0f}s") from None
        if not line:
            await self.proc.wait()
            log = (LOG_DIR / f"driver-{self.name}.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"driver {self.name} exited ({self.proc.returncode}):\n{log}")
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:
            raise BenchError(f"driver {self.name} printed {line[:200]!r}") from None
        if answer.get("failures"):
            raise BenchError(f"driver {self.name}: {answer['failures'][:3]}")
        return answer

    async def finish(self) -> float:
        """Stop the driver; its CPU seconds since the last schedule."""
        await self.send({"op": "exit"})
        answer = await self.read(timeout=30)
        await self.proc.wait()
        return float(answer.get("cpu_s", 0.0))

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


# --- Measuring ------------------------------------------------------------------------------


def _pct(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the harness's definition)."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _dist(samples: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    def r(value: float) -> float | None:
        return None if math.isnan(value) else round(value, digits)

    return {
        "p50": r(_pct(samples, 0.5)),
        "p90": r(_pct(samples, 0.9)),
        "p99": r(_pct(samples, 0.99)),
        "max": r(_pct(samples, 1.0)),
    }


@dataclass(frozen=True)
class Delivery:
    """What one phase measured: latencies (ms) of the counted frames, rates, losses."""

    label: str
    sockets: int
    open_s: float
    latencies_ms: list[float]
    commit_to_publish_ms: list[float]  # COMMIT returned → the publish began (driver)
    publish_ms: list[float]  # the publish call itself (driver → Redis and back)
    after_publish_ms: list[float]  # the publish returned → the frame arrived, per frame
    schedule_lag_ms: list[float]  # COMMIT returned − the event's due time (targeted)
    events: int  # counted events
    expected: int  # counted frames due
    received: int
    duplicates: int
    misrouted: int  # frames on a socket that does not follow their stream
    sent_per_s: float
    received_per_s: float
    cpu_cores: dict[str, float]

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def pct(self, q: float) -> float:
        return _pct(self.latencies_ms, q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sockets": self.sockets,
            "connect_subscribe_s": round(self.open_s, 2),
            "sockets_per_s": round(self.sockets / self.open_s, 1) if self.open_s else None,
            "events": self.events,
            "expected": self.expected,
            "received": self.received,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "misrouted": self.misrouted,
            "sent_per_s": None if math.isnan(self.sent_per_s) else round(self.sent_per_s, 1),
            "received_per_s": (
                None if math.isnan(self.received_per_s) else round(self.received_per_s, 1)
            ),
            "latency_ms": _dist(self.latencies_ms),
            "commit_to_publish_ms": _dist(self.commit_to_publish_ms, 3),
            "publish_ms": _dist(self.publish_ms, 3),
            "after_publish_ms": _dist(self.after_publish_ms),
            "schedule_lag_ms": _dist(self.schedule_lag_ms, 2) if self.schedule_lag_ms else None,
            "cpu_cores": {k: round(v, 3) for k, v in self.cpu_cores.items()},
        }


def _delivery(
    label: str,
    fleet: Fleet,
    streams: list[str],
    stamps: dict[int, list[int]],
    *,
    counted: range,
    copies: int,
    cpu: dict[str, float],
    due_ns: Callable[[int], int] | None = None,
) -> Delivery:
    """Match the recorded frames to the drivers' stamps. ``streams[k]`` is what socket k
    follows; ``copies`` frames are due per event; events outside ``counted`` are warm-up."""
    arrivals: dict[int, list[int]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    duplicates = misrouted = 0
    for arrived, socket_index, text in fleet.frames:
        try:
            frame = json.loads(text)
            i = int(frame["data"]["i"])
        except (ValueError, KeyError, TypeError):
            fleet.unexpected.append(text[:300].decode(errors="replace"))
            continue
        if frame.get("type") != "event" or frame.get("stream") != streams[socket_index]:
            misrouted += 1
            continue
        if (socket_index, i) in seen:
            duplicates += 1
            continue
        seen.add((socket_index, i))
        arrivals[i].append(arrived)
    latencies: list[float] = []
    after_publish: list[float] = []
    received = 0
    last_arrival = 0
    for i in counted:
        committed, _began, published = stamps[i]
        for arrived in arrivals.get(i, ()):
            received += 1
            latencies.append((arrived - committed) / 1e6)
            after_publish.append((arrived - published) / 1e6)
            last_arrival = max(last_arrival, arrived)
    commits = [stamps[i][0] for i in counted]
    sent_per_s = received_per_s = math.nan
    lag: list[float] = []
    if due_ns is not None and commits:
        # The window runs from the first counted event's due time to its last event's
        # due time + one interval; it ends later only when the driver or delivery did.
        first_due, last_due = due_ns(counted[0]), due_ns(counted[-1])
        interval = (last_due - first_due) / max(1, len(counted) - 1)
        span_ns = last_due - first_due + interval
        sent_per_s = len(commits) / (max(span_ns, max(commits) - first_due + interval) / 1e9)
        if last_arrival:
            window = max(span_ns, last_arrival - first_due + interval)
            received_per_s = received / copies / (window / 1e9)
        lag = [(stamps[i][0] - due_ns(i)) / 1e6 for i in counted]
    return Delivery(
        label=label,
        sockets=fleet.opened,
        open_s=fleet.open_s,
        latencies_ms=latencies,
        commit_to_publish_ms=[(stamps[i][1] - stamps[i][0]) / 1e6 for i in counted],
        publish_ms=[(stamps[i][2] - stamps[i][1]) / 1e6 for i in counted],
        after_publish_ms=after_publish,
        schedule_lag_ms=lag,
        events=len(counted),
        expected=len(counted) * copies,
        received=received,
        duplicates=duplicates,
        misrouted=misrouted,
        sent_per_s=sent_per_s,
        received_per_s=received_per_s,
        cpu_cores=cpu,
    )


def _check(delivery: Delivery, fleet: Fleet) -> None:
    """Lost, duplicated or stray frames make every figure of the run meaningless."""
    problems = []
    if delivery.lost:
        problems.append(f"{delivery.lost} of {delivery.expected} frames never arrived")
    if delivery.duplicates:
        problems.append(f"{delivery.duplicates} frames arrived twice")
    if delivery.misrouted:
        problems.append(f"{delivery.misrouted} frames on a socket not following their stream")
    if fleet.unexpected:
        problems.append(f"{len(fleet.unexpected)} unexpected frames, e.g. {fleet.unexpected[0]}")
    closed = fleet.closed_early
    if closed:
        problems.append(f"{closed} sockets were closed by the server")
    if problems:
        raise BenchError(f"{delivery.label}: " + "; ".join(problems))


def _line(delivery: Delivery) -> str:
    cpu = " ".join(f"{k} {v:.2f}" for k, v in delivery.cpu_cores.items())
    rates = ""
    if not math.isnan(delivery.sent_per_s):
        rates = f"  sent {delivery.sent_per_s:.0f}/s recv {delivery.received_per_s:.0f}/s"
    p99 = {
        name: _pct(samples, 0.99)
        for name, samples in (
            ("to publish", delivery.commit_to_publish_ms),
            ("publish", delivery.publish_ms),
            ("after", delivery.after_publish_ms),
        )
    }
    parts = " ".join(f"{name} {value:.1f}" for name, value in p99.items())
    return (
        f"{delivery.sockets:>6} sockets ({delivery.sockets / max(delivery.open_s, 1e-9):5.0f}/s)"
        f"  p50 {delivery.pct(0.5):7.2f} ms  p99 {delivery.pct(0.99):8.2f} ms ({parts})"
        f"  lost {delivery.lost}{rates}\n{'':20} cores[{cpu}]"
    )


async def _until(deadline_ns: int) -> None:
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def _settle(server: Server, quiet_cores: float = 0.05, timeout: float = 60.0) -> None:
    """Wait until the server has finished with the connect storm: its processes used less
    than ``quiet_cores`` over a second (or ``timeout`` passed). Opening thousands of
    sockets grows each process's heap in steps, and the full garbage collections that
    follow (0.3-3 s each on this busy machine, the event loop stopped) must not land in
    the measured window; nor must the last handshakes."""
    deadline = time.monotonic() + timeout
    before = cpu_snapshot(server.pgid)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        after = cpu_snapshot(server.pgid)
        if cores_between(before, after).get("server", 0.0) < quiet_cores:
            return
        before = after


async def _wait_frames(fleet: Fleet, expected: int, deadline_ns: int) -> None:
    while len(fleet.frames) < expected and time.monotonic_ns() < deadline_ns:
        await asyncio.sleep(0.005)


def _profile_start(server: Server, phase: str) -> ProfileHandle:
    """py-spy on every process of ``server`` (``BENCH_PYSPY``), until :func:`_profile_stop`."""
    binary = os.environ.get("BENCH_PYSPY")
    if not binary:
        return []
    handles = []
    for k, (pid, _rss, _peak) in enumerate(server_pids(server)):
        out = LOG_DIR / f"pyspy-realtime-{phase}-{k}.txt"
        handles.append(
            subprocess.Popen(
                [
                    *(binary, "record", "--pid", str(pid), "--rate", "500", "--nonblocking"),
                    *("--format", "raw", "--output", str(out)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(0.5)  # attached before the phase starts
    return handles


def _profile_stop(handles: ProfileHandle) -> None:
    for handle in handles:
        handle.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for handle in handles:
        try:
            handle.wait(30)
        except subprocess.TimeoutExpired:
            handle.kill()


def server_pids(server: Server) -> list[tuple[int, float, float]]:
    return [(m.pid, m.rss_mib, m.peak_rss_mib) for m in server.memory() if m.role == "worker"]


# --- Phases ---------------------------------------------------------------------------------


def _ws_base(server: Server, index: int) -> str:
    return server.base_urls[index % len(server.base_urls)].replace("http://", "ws://", 1)


def _targets(
    server: Server, streams: list[str], tokens: list[str] | None, project: bool
) -> list[tuple[str, dict[str, Any] | None]]:
    if project:
        assert tokens is not None
        return [
            (
                f"{_ws_base(server, k)}/ws/v1/events/?access_token={tokens[k]}",
                {"type": "subscribe", "stream": stream},
            )
            for k, stream in enumerate(streams)
        ]
    return [(f"{_ws_base(server, k)}/ws?stream={stream}", None) for k, stream in enumerate(streams)]


def _cpu(before: Any, after: Any, driver: float) -> dict[str, float]:
    """Cores used in the window by group; ``driver`` (the driver processes' cores, which
    they report themselves) is taken out of ``other``."""
    cores = cores_between(before, after)
    cores["driver"] = driver
    if "other" in cores:
        cores["other"] = max(0.0, cores["other"] - driver)
    return cores


async def _targeted(
    ctx: BenchContext,
    env: dict[str, str],
    server: Server,
    users: list[tuple[int, str]],
    *,
    project: bool,
) -> Delivery:
    label = f"targeted {'project' if project else 'raw'}"
    streams = [f"user.{pk}" for pk, _token in users]
    tokens = [token for _pk, token in users]
    order = list(range(len(streams)))
    random.Random(SEED).shuffle(order)
    skip = int(TARGETED_RATE * ctx.options.warmup)
    count = skip + int(TARGETED_RATE * ctx.options.duration)
    plan = [(i, streams[order[i % len(order)]]) for i in range(count)]

    fleet = Fleet(parallel=CONNECT_PARALLEL)
    drivers: list[Driver] = []
    profile: ProfileHandle = []
    try:
        await fleet.open(_targets(server, streams, tokens, project))
        await _settle(server)
        drivers = list(
            await asyncio.gather(
                *(
                    Driver.start(env, project=project, name=f"{label.replace(' ', '-')}-{p}")
                    for p in range(DRIVER_PROCESSES)
                )
            )
        )
        if project:
            profile = await asyncio.to_thread(_profile_start, server, "targeted")
        start_ns = time.monotonic_ns() + 1_500_000_000  # every driver thread up by then
        fleet.recording = True
        for p, driver in enumerate(drivers):
            await driver.send(
                {
                    "op": "schedule",
                    "start_ns": start_ns,
                    "rate": TARGETED_RATE,
                    "threads": DRIVER_THREADS,
                    "items": plan[p::DRIVER_PROCESSES],
                }
            )

        def due(i: int) -> int:
            return start_ns + int(i * 1e9 / TARGETED_RATE)

        await _until(due(skip))
        before = cpu_snapshot(server.pgid)
        await _until(due(count))
        after = cpu_snapshot(server.pgid)
        answers = [await driver.read(timeout=ctx.options.duration + 120) for driver in drivers]
        stamps = {int(i): s for answer in answers for i, s in answer["stamps"].items()}
        if len(stamps) != count:
            raise BenchError(f"{label}: the drivers committed {len(stamps)} of {count} events")
        last_commit = max(stamp[0] for stamp in stamps.values())
        await _wait_frames(fleet, count, last_commit + int(GRACE_S * 1e9))
        fleet.recording = False
        # Each driver's cores over its whole schedule (warm-up included).
        driver_cores = sum(float(a["cpu_s"]) / float(a["wall_s"]) for a in answers)
        cpu = _cpu(before, after, driver_cores)
        for driver in drivers:
            await driver.finish()
    finally:
        _profile_stop(profile)
        for driver in drivers:
            driver.kill()
        await fleet.close()
    delivery = _delivery(
        label,
        fleet,
        streams,
        stamps,
        counted=range(skip, count),
        copies=1,
        cpu=cpu,
        due_ns=due,
    )
    print(f"  {label:<18} {_line(delivery)}")
    _check(delivery, fleet)
    return delivery


async def _broadcast(
    ctx: BenchContext, env: dict[str, str], server: Server, token: str, *, project: bool
) -> tuple[Delivery, float]:
    label = f"broadcast {'project' if project else 'raw'}"
    streams = [BROADCAST_STREAM] * BROADCAST_SOCKETS
    tokens = [token] * BROADCAST_SOCKETS
    total = BROADCAST_WARMUP + BROADCASTS
    fleet = Fleet(parallel=CONNECT_PARALLEL)
    driver: Driver | None = None
    profile: ProfileHandle = []
    stamps: dict[int, list[int]] = {}
    try:
        await fleet.open(_targets(server, streams, tokens, project))
        await _settle(server)
        rss = sum(rss for _pid, rss, _peak in server_pids(server))
        driver = await Driver.start(env, project=project, name=label.replace(" ", "-"))
        fleet.recording = True
        before = None
        for i in range(total):
            if i == BROADCAST_WARMUP:
                if project:
                    profile = await asyncio.to_thread(_profile_start, server, "broadcast")
                before = cpu_snapshot(server.pgid)
            await driver.send({"op": "one", "i": i, "stream": BROADCAST_STREAM})
            answer = await driver.read(timeout=60)
            stamps.update({int(k): v for k, v in answer["stamps"].items()})
            deadline = stamps[i][0] + int(BROADCAST_WAIT_S * 1e9)
            await _wait_frames(fleet, (i + 1) * BROADCAST_SOCKETS, deadline)
            if i < total - 1:
                await asyncio.sleep(BROADCAST_PAUSE_S)
        after = cpu_snapshot(server.pgid)
        _profile_stop(profile)
        profile = []
        last_commit = stamps[total - 1][0]
        await _wait_frames(fleet, total * BROADCAST_SOCKETS, last_commit + int(GRACE_S * 1e9))
        fleet.recording = False
        drivers_cpu = await driver.finish()
        assert before is not None
        # The driver's CPU since it started, spread evenly over the broadcasts.
        cpu = _cpu(before, after, drivers_cpu * BROADCASTS / total / (after.at - before.at))
    finally:
        _profile_stop(profile)
        if driver is not None:
            driver.kill()
        await fleet.close()
    delivery = _delivery(
        label,
        fleet,
        streams,
        stamps,
        counted=range(BROADCAST_WARMUP, total),
        copies=BROADCAST_SOCKETS,
        cpu=cpu,
    )
    print(f"  {label:<18} {_line(delivery)}  rss {rss:.0f} MiB")
    _check(delivery, fleet)
    return delivery, rss


# --- The benchmark --------------------------------------------------------------------------


def _figure(
    name: str,
    unit: str,
    value: float,
    base: float,
    base_name: str,
    goal: float | None,
    text: str,
    better: Better = "lower",
) -> Figure:
    return Figure(
        name=name,
        unit=unit,
        value=value,
        baseline=Baseline(name=base_name, value=base, unit=unit),
        better=better,
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


COMMANDER_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
print(json.dumps(str(AccessToken.for_user(get_user_model().objects.get(username="cmd-xixian")))))
"""


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
    users = list(zip(ids, tokens, strict=True))

    targeted = run_async(_targeted(ctx, env, app, users, project=True))
    raw_targeted = run_async(_targeted(ctx, env, raw, users, project=False))
    broadcast, rss = run_async(_broadcast(ctx, env, app, commander, project=True))
    raw_broadcast, raw_rss = run_async(_broadcast(ctx, env, raw, commander, project=False))

    if targeted.sent_per_s < RATE_TOLERANCE * TARGETED_RATE:
        print(
            f"  warning: the project's drivers committed {targeted.sent_per_s:.0f} events/s, "
            f"not {TARGETED_RATE}: the targeted figures are for a lower load"
        )
    frame_bytes = len(_raw_frame("user.1", 1, 0).encode())
    ctx.note(
        "realtime",
        {
            "targeted": {
                "rate_per_s": TARGETED_RATE,
                "sockets": TARGETED_SOCKETS,
                "drivers": f"{DRIVER_PROCESSES} processes x {DRIVER_THREADS} threads",
                "project": targeted.to_dict(),
                "raw": raw_targeted.to_dict(),
            },
            "broadcast": {
                "stream": BROADCAST_STREAM,
                "sockets": BROADCAST_SOCKETS,
                "events": BROADCASTS,
                "warmup_events": BROADCAST_WARMUP,
                "pause_s": BROADCAST_PAUSE_S,
                "project": broadcast.to_dict(),
                "raw": raw_broadcast.to_dict(),
                "asgi_rss_mib": round(rss, 1),
                "raw_rss_mib": round(raw_rss, 1),
            },
            "frame_bytes": frame_bytes,
            "grace_s": GRACE_S,
            "connect_parallel": CONNECT_PARALLEL,
            "seed": SEED,
        },
    )
    raw_name = "raw Redis PUBLISH → bare ASGI socket"
    targeted_text = f"commit → frame, {TARGETED_RATE}/s to {TARGETED_SOCKETS} sockets' user streams"
    broadcast_text = (
        f"commit → frame, one {BROADCAST_STREAM} event to {BROADCAST_SOCKETS} sockets, "
        f"{BROADCASTS} events one at a time"
    )
    rate_goal = RATE_TOLERANCE * TARGETED_RATE
    return [
        _figure(
            "targeted.p50",
            "ms",
            targeted.pct(0.5),
            raw_targeted.pct(0.5),
            f"{raw_name} p50",
            GOALS["p50"],
            targeted_text,
        ),
        _figure(
            "targeted.p99",
            "ms",
            targeted.pct(0.99),
            raw_targeted.pct(0.99),
            f"{raw_name} p99",
            GOALS["p99"],
            targeted_text,
        ),
        _figure(
            "targeted.sent_per_s",
            "events/s",
            targeted.sent_per_s,
            raw_targeted.sent_per_s,
            "raw driver PUBLISH/s",
            rate_goal,
            f"events committed per second in the window (target {TARGETED_RATE}; "
            f"goal {RATE_TOLERANCE:.0%} of it)",
            better="higher",
        ),
        _figure(
            "targeted.received_per_s",
            "events/s",
            targeted.received_per_s,
            raw_targeted.received_per_s,
            "raw frames/s",
            rate_goal,
            "frames per second at the client sockets in the window",
            better="higher",
        ),
        _figure(
            "broadcast.p50",
            "ms",
            broadcast.pct(0.5),
            raw_broadcast.pct(0.5),
            f"{raw_name} p50",
            None,
            broadcast_text,
        ),
        _figure(
            "broadcast.p99",
            "ms",
            broadcast.pct(0.99),
            raw_broadcast.pct(0.99),
            f"{raw_name} p99",
            GOALS["broadcast_p99"],
            broadcast_text,
        ),
        _figure(
            "broadcast.lost",
            "frames",
            float(broadcast.lost),
            float(raw_broadcast.lost),
            f"{raw_name} lost",
            GOALS["lost"],
            f"frames of {BROADCASTS} broadcasts that never arrived ({GRACE_S:.0f} s grace); "
            "any lost frame also fails the run",
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
