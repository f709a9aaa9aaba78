"""SLA escalation: lateness to the committed escalation and its push, two workers among
100,000 open clocks, recovery after ``kill -9``, and capacity against a report flood.

Deployment as in production (``xixian_ems.settings.production``): Celery beat sending
``sla_sweep`` every ``SLA_SWEEP_INTERVAL_SECONDS`` (0.5 s) and Celery **worker processes**
(``--pool threads --concurrency 2`` each, consuming the default queue) that both sweep and
deliver the pushes (``notification_deliver``, console push backend). Nothing is called
in-process: every escalation and every delivery runs in a real worker.

Setup (one ``manage.py shell`` script): the default policies; a **street duty officer**
(an operator holding the street, with an active device: ladder step 1 of both policies
used tells the street duty officer, so every escalation pushes one message); **100,000
open clocks** due in one to four days (the sweep index is full of work that is not due);
and the **stream**: ``RATE`` accepted incidents per second over ``STREAM_S`` seconds, each
with a dispatch clock (policy ``dispatch-default``) whose deadline falls at its own moment
of the stream. Each clock's deadline is a real escalation: the breach and ladder step 1
at the same moment — two escalation rows, two incident timeline rows, realtime events,
and one outbox row (the push to the duty officer), all in one transaction; delivery is
enqueued on commit.

**What "escalated" means here.** A clock is escalated when its escalation transaction has
**committed** — the escalation rows and the push's outbox row become visible together —
and the push's delivery has been **enqueued**. Commit time cannot be read from the row
(``track_commit_timestamp`` is off, and ``Escalation.at``/``Notification.created_at`` are
taken inside the transaction, before COMMIT), so a **visibility poller** in the bench
process — its own connection, every ``POLL_S`` — records when each step-1 escalation row
(same transaction as the outbox row) is first visible: that time is at or after the commit,
by at most one polling interval plus a query (``config.poller`` gives the intervals it
achieved: the resolution). The enqueue is observed as its consequence: the worker's claim
of the outbox row (``Notification.claimed_at``), which can only follow the enqueue.

Raw baseline (``bench/raw_sla.py``), same run and machine: sweeper threads in this process,
psycopg only, on copies of the same tables holding the same clocks, escalating each clock
with the same rows in one transaction (clock claim, escalation rows, timeline rows, events,
outbox row), then ``LPUSH`` of the push on a Redis list that a delivery thread claims;
measured by the same poller.

Figures:

* ``lateness.p50`` / ``.p99`` (goal ≤ 1 s) / ``.max``: stream deadlines, two workers,
  100,000 open clocks: due → escalation and push committed (first visible), ms;
* ``lateness_claimed.p99``: due → the push's outbox row claimed by a worker (delivery
  enqueued and taken), ms;
* ``duplicates`` (goal 0): (clock, kind, step) escalated twice, outbox rows beyond one per
  recipient, and failed sweeps, over the whole run;
* ``recovery.first_after_ready`` (goal ≤ 5 s): both workers are killed with SIGKILL (beat
  goes on), a backlog of ``FLOOD`` report triage clocks falls due while none runs, one
  worker is started again: seconds from its "ready" log line to the first committed
  escalation; baseline its boot time;
* ``capacity.one_worker`` / ``.two_workers``: clocks per second escalated (committed, each
  with its push) while one, then two workers clear a backlog of ``FLOOD`` triage clocks
  — a second of a 1,000 reports/s flood, all breaching at once — the rate between the
  first and last commit; baseline the raw sweeper with as many threads (2 and 4). The goal
  of ``two_workers`` is the flood's arrival rate, 1,000 clocks/s: met means the sweepers
  keep up with a flood that breaches. ``config.flood`` states whether they keep up and
  how many workers at the measured one-worker rate would (``workers_needed``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import LOG_DIR, ROOT, Baseline, BenchContext, BenchError, Figure
from bench.raw_sla import QUEUE, RawSweeper, copy_clocks, create_tables

BACKGROUND = 100_000
RATE = 10  # deadlines per second in the stream
STREAM_S = 20
FLOOD = 1000  # triage clocks per backlog: one second of a 1,000 reports/s flood
FLOOD_RATE = 1000.0  # reports (so triage clocks) per second arriving in the flood
# The stream is written far in the future, then moved (every clock by the same shift, in
# both tables) to start LEAD_S after the workers are ready, however long setup took.
START_MARGIN_S = 3600.0
LEAD_S = 3.0
INTERVAL_S = 0.5
POLL_S = 0.01  # visibility poller: the resolution of commit times
THREADS_PER_WORKER = 2

SETUP_SCRIPT = """
import json
from datetime import datetime, timedelta, timezone as tz
from django.db import connection, transaction
from django.core.management import call_command
from apps.accounts.models import Device, Membership, User
from apps.accounts.services import device_token_hash
from apps.incidents.models import Category, Incident
from apps.incidents.services.sla import incident_label
from apps.regions.models import Region
from apps.sla.models import SlaClock
from apps.sla.services.clocks import sla_clock_start

prefix, background, deadlines = {prefix}, {background}, {deadlines}
call_command("load_categories", verbosity=0)
call_command("load_sla_policies", verbosity=0)
street = Region.objects.filter(level="street", is_active=True).order_by("path").first()
category = Category.objects.get(code="A04")
duty = User.objects.create(username=prefix + "-duty", password="!")
Membership.objects.create(user=duty, region=street, role="operator")
token = "bench-sla-device-" + prefix
Device.objects.create(user=duty, token=token, token_hash=device_token_hash(token),
                      platform="android", locale="zh-hans", is_active=True)
with connection.cursor() as cursor:
    cursor.execute(
        '''INSERT INTO sla_slaclock (created_at, updated_at, kind, subject_type, subject_id,
            subject_label, region_id, category_code, severity, loop, is_drill, status,
            started_at, due_at, ladder, step, next_check_at, paused_total, stop_reason,
            failures, last_error)
        SELECT now(), now(), 'incident_resolution', 'incident', 900000000 + g,
            'background ' || g, %s, '', '', 'small', false, 'running',
            now(), now() + interval '1 day' + g * interval '2 seconds', '[]'::jsonb, 0,
            now() + interval '1 day' + g * interval '2 seconds', interval '0', '', 0, ''
        FROM generate_series(1, %s) AS g''',
        [street.pk, background],
    )
made = []
with transaction.atomic():
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                number=f"{{prefix}}-{{i:06d}}", title=f"SLA bench {{i}}", category=category,
                region=street, lat=street.centre_lat or 34.3, lng=street.centre_lng or 108.8,
                source="operator", status="accepted",
            )
            for i in range(len(deadlines))
        ]
    )
    for incident, due in zip(incidents, deadlines):
        due_at = datetime.fromtimestamp(due, tz=tz.utc)
        clock = sla_clock_start(
            kind="dispatch", subject_type="incident", subject_id=incident.pk,
            region_id=street.pk, label=incident_label(incident), category=category.code,
            started_at=due_at - timedelta(minutes=10),
        )
        made.append(clock.pk)
first = SlaClock.objects.get(pk=made[0])
with connection.cursor() as cursor:
    cursor.execute("ANALYZE sla_slaclock")
print(json.dumps({{"clocks": made, "street": street.code, "duty": duty.pk,
                  "ladder": first.ladder,
                  "open": SlaClock.objects.filter(status="running").count()}}))
"""

# A second of the flood: FLOOD citizen reports of the street, each with its triage clock
# (the hook every report's insert calls), started five minutes before ``due`` so that
# all breach at ``due``.
FLOOD_SCRIPT = """
import json, secrets
from datetime import datetime, timedelta, timezone as tz
from django.db import transaction
from apps.incidents.models import Category, Report
from apps.regions.models import Region
from apps.sla.models import SlaClock, SlaKind
from apps.sla.services.clocks import ClockStart, sla_clocks_start_many

prefix, count, due = {prefix}, {count}, {due}
street = Region.objects.get(code={street})
category = Category.objects.get(code="N02")
started = datetime.fromtimestamp(due, tz=tz.utc) - timedelta(minutes=5)
with transaction.atomic():
    reports = Report.objects.bulk_create(
        [
            Report(token=secrets.token_urlsafe(32), channel="app", category=category,
                   text=f"{{prefix}} 积水 {{i}}", lat=street.centre_lat or 34.3,
                   lng=street.centre_lng or 108.8, region=street)
            for i in range(count)
        ]
    )
    clocks = sla_clocks_start_many(
        [
            ClockStart(kind=SlaKind.REPORT_TRIAGE, subject_type="report", subject_id=r.pk,
                       region_id=street.pk, label=f"N02 积水 · {{r.pk}}", category="N02",
                       started_at=started)
            for r in reports
        ]
    )
print(json.dumps([c.pk for c in clocks]))
"""


class Celery:
    """A Celery worker or beat process of the bench, in its own process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = LOG_DIR / f"sla-{name}.log"
        self.log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "xixian_ems", *argv],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while "ready." not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not start:\n{self.output()[-2000:]}")
            time.sleep(0.02)
        return time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def _worker(env: dict[str, str], name: str) -> Celery:
    argv = ["worker", "--pool", "threads", "--concurrency", str(THREADS_PER_WORKER)]
    return Celery(
        name, [*argv, "--loglevel", "INFO", "--hostname", f"{name}@bench", "--without-mingle"], env
    )


class Visibility:
    """When each tracked clock's step-1 escalation row first became visible to another
    connection: the commit of its escalation (the outbox row is in the same transaction).

    One thread, one autocommit connection; every ``interval`` s it asks for the rows of
    the tracked clocks already due and not yet seen. A row first seen by a poll was
    committed before that poll's snapshot and (as a rule) after the previous poll's: the
    recorded time, taken when the poll's answer has arrived, is at most one interval plus
    one query after the commit — never before it.
    """

    def __init__(self, url: str, table: str, interval: float = POLL_S) -> None:
        self.url = url
        self.sql = (
            f"SELECT clock_id FROM {table} WHERE kind = 'step' AND step = 1 "  # noqa: S608
            "AND clock_id = ANY(%s)"
        )
        self.interval = interval
        self.pending: dict[int, float] = {}  # clock id → due (epoch s)
        self.seen: dict[int, float] = {}  # clock id → first visible (epoch s)
        self.gaps: list[float] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def track(self, due: dict[int, float]) -> None:
        with self.lock:
            self.pending.update(due)

    def count(self, clock_ids: list[int]) -> int:
        with self.lock:
            return sum(1 for c in clock_ids if c in self.seen)

    def times(self, clock_ids: list[int]) -> list[float]:
        with self.lock:
            return sorted(self.seen[c] for c in clock_ids if c in self.seen)

    def close(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)

    def resolution(self) -> dict[str, float]:
        gaps = sorted(self.gaps)
        return {
            "polls": len(gaps),
            "interval_ms_p50": round(_percentile(gaps, 50) * 1000, 1),
            "interval_ms_p99": round(_percentile(gaps, 99) * 1000, 1),
            "interval_ms_max": round(max(gaps, default=math.nan) * 1000, 1),
        }

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                last = None
                while not self.stop_event.is_set():
                    now = time.time()
                    with self.lock:
                        due = [c for c, at in self.pending.items() if at <= now + 0.05]
                    if due:
                        started = time.time()
                        rows = conn.execute(self.sql, (due,)).fetchall()
                        answered = time.time()
                        if last is not None:
                            self.gaps.append(started - last)
                        last = started
                        with self.lock:
                            for (clock_id,) in rows:
                                if self.pending.pop(clock_id, None) is not None:
                                    self.seen[clock_id] = answered
                    else:
                        last = None  # idle: gaps count only while something is awaited
                    self.stop_event.wait(self.interval)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"


def _percentile(values: list[float], pct: float) -> float:
    """Nearest rank (as the rest of bench/)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _wait(condition: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return time.monotonic()


def _rows(url: str, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _claims(url: str, table: str, clock_ids: list[int]) -> dict[int, tuple[float | None, str]]:
    """clock id → (epoch of the push's claim by a worker, status), one push per clock."""
    rows = _rows(
        url,
        f"SELECT (data->>'clock_id')::bigint, EXTRACT(EPOCH FROM claimed_at), status "  # noqa: S608
        f"FROM {table} WHERE kind = 'escalation' AND data->>'clock_id' = ANY(%s)",
        ([str(c) for c in clock_ids],),
    )
    found: dict[int, tuple[float | None, str]] = {}
    for clock_id, claimed, status in rows:
        if int(clock_id) in found:
            raise BenchError(f"{table}: clock {clock_id} has more than one push")
        found[int(clock_id)] = (None if claimed is None else float(claimed), str(status))
    return found


def _wait_delivered(url: str, table: str, clock_ids: list[int], timeout: float) -> None:
    def done() -> bool:
        claims = _claims(url, table, clock_ids)
        return len(claims) == len(clock_ids) and all(
            status == "sent" for _c, status in claims.values()
        )

    _wait(done, timeout, f"every push of {table} sent")


def _duplicates(url: str) -> dict[str, int]:
    escalations = _rows(
        url,
        "SELECT count(*) FROM (SELECT 1 FROM sla_escalation GROUP BY clock_id, kind, step "
        "HAVING count(*) > 1) AS twice",
    )[0][0]
    pushes = _rows(
        url,
        "SELECT count(*) FROM (SELECT 1 FROM notifications_notification WHERE kind = "
        "'escalation' GROUP BY data->>'clock_id', data->>'event', data->>'step', user_id "
        "HAVING count(*) > 1) AS twice",
    )[0][0]
    return {"escalations": int(escalations), "pushes": int(pushes)}


def _capacity(times: list[float]) -> float:
    """Clocks per second between the first and the last commit of a backlog."""
    if len(times) < 2 or times[-1] <= times[0]:
        return math.nan
    return (len(times) - 1) / (times[-1] - times[0])


def _flood(ctx: BenchContext, prefix: str, street: str, due: float) -> list[int]:
    script = FLOOD_SCRIPT.format(
        prefix=json.dumps(prefix), count=FLOOD, due=due, street=json.dumps(street)
    )
    return [int(pk) for pk in json.loads(ctx.manage("shell", "-c", script).splitlines()[-1])]


def _due(url: str, table: str, clock_ids: list[int]) -> dict[int, float]:
    rows = _rows(
        url,
        f"SELECT id, EXTRACT(EPOCH FROM due_at) FROM {table} WHERE id = ANY(%s)",  # noqa: S608
        (clock_ids,),
    )
    return {int(pk): float(at) for pk, at in rows}


def run(ctx: BenchContext) -> list[Figure]:
    prefix = f"bench-sla-{uuid.uuid4().hex[:6]}"
    env = {
        **ctx.env,
        "SLA_SWEEP_INTERVAL_SECONDS": str(INTERVAL_S),
        "XEMS_VAR_DIR": str(LOG_DIR / "sla-var"),
        "NOTIFICATIONS_PUSH_BACKEND": "apps.notifications.backends.ConsolePushBackend",
    }
    (LOG_DIR / "sla-var").mkdir(parents=True, exist_ok=True)
    url, redis_url = ctx.database_url, ctx.options.redis_url

    # 1. The stream of deadlines; the raw copies of the same clocks.
    first_due = time.time() + START_MARGIN_S
    deadlines = [first_due + i / RATE for i in range(RATE * STREAM_S)]
    print(f"  sla: {BACKGROUND:,} open clocks + a stream of {len(deadlines)} deadlines")
    script = SETUP_SCRIPT.format(
        prefix=json.dumps(prefix), background=BACKGROUND, deadlines=json.dumps(deadlines)
    )
    seeded = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    stream: list[int] = seeded["clocks"]
    ladder = seeded["ladder"]
    if not ladder or ladder[0]["after_s"] != 0 or ladder[0]["audiences"] != ["street_duty"]:
        raise BenchError(f"dispatch-default's step 1 is no longer the breach's push: {ladder}")
    with psycopg.connect(url, autocommit=True) as conn:
        create_tables(conn)
        copy_clocks(conn)
    ctx.note("open_clocks", seeded["open"])
    ctx.note("stream", {"rate_per_s": RATE, "seconds": STREAM_S, "clocks": len(stream)})
    ctx.note("sweep_interval_s", INTERVAL_S)

    # 2. Beat and two workers; the raw sweeper beside them; the pollers.
    beat = Celery(
        "beat",
        ["beat", "--loglevel", "INFO", "--schedule", str(LOG_DIR / "sla-var" / "celerybeat")],
        env,
    )
    workers = [_worker(env, "worker-1"), _worker(env, "worker-2")]
    started = [beat, *workers]
    project_seen = Visibility(url, "sla_escalation")
    raw_seen = Visibility(url, "bench_raw_escalation")
    raw = RawSweeper(url, redis_url, threads=1, interval=INTERVAL_S)
    try:
        for worker in workers:
            worker.wait_ready()
        shift = time.time() + LEAD_S - first_due
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("sla_slaclock", "bench_raw_slaclock"):
                conn.execute(
                    f"UPDATE {table} SET started_at = started_at + %(s)s, "  # noqa: S608
                    "due_at = due_at + %(s)s, next_check_at = next_check_at + %(s)s "
                    "WHERE id = ANY(%(ids)s)",
                    {"s": timedelta(seconds=shift), "ids": stream},
                )
        deadlines = [at + shift for at in deadlines]
        due = _due(url, "sla_slaclock", stream)
        project_seen.track(due)
        raw_seen.track(due)
        raw.start()
        timeout = deadlines[-1] - time.time() + 60
        _wait(lambda: project_seen.count(stream) == len(stream), timeout, "the stream")
        _wait(lambda: raw_seen.count(stream) == len(stream), 60, "the raw stream")
        _wait_delivered(url, "notifications_notification", stream, 60)
        _wait_delivered(url, "bench_raw_notification", stream, 60)
        raw.stop()
        lateness = {
            "project": _lateness(
                url, "sla_escalation", "notifications_notification", stream, due, project_seen
            ),
            "raw": _lateness(
                url, "bench_raw_escalation", "bench_raw_notification", stream, due, raw_seen
            ),
        }
        sweeps = {w.name: w.output().count("sla sweep:") for w in workers}
        ctx.note("sweeps_with_work_per_worker", sweeps)

        # 3. kill -9 of both workers; a second of the flood falls due; one comes back.
        for worker in workers:
            worker.kill()
        backlog_due = time.time() + 2.0
        backlog = _flood(ctx, prefix + "-a", seeded["street"], backlog_due)
        while time.time() < backlog_due + 1.0:
            time.sleep(0.05)  # let the backlog fall due while no worker runs
        if _rows(url, "SELECT count(*) FROM sla_escalation WHERE clock_id = ANY(%s)", (backlog,))[
            0
        ][0]:
            raise BenchError("escalations ran with no worker alive")
        project_seen.track(_due(url, "sla_slaclock", backlog))
        successor = _worker(env, "worker-3")
        started.append(successor)
        ready = successor.wait_ready()
        ready_epoch = time.time() - (time.monotonic() - ready)
        _wait(lambda: project_seen.count(backlog) > 0, 60, "the first escalation")
        _wait(lambda: project_seen.count(backlog) == FLOOD, 600, "the backlog, one worker")
        first_commit = project_seen.times(backlog)[0]
        one_worker = _capacity(project_seen.times(backlog))
        _wait_delivered(url, "notifications_notification", backlog, 120)

        # 4. Two workers, another second of the flood, due at once.
        second = _worker(env, "worker-4")
        started.append(second)
        second.wait_ready()
        flood = _flood(ctx, prefix + "-b", seeded["street"], time.time())
        project_seen.track(_due(url, "sla_slaclock", flood))
        _wait(lambda: project_seen.count(flood) == FLOOD, 600, "the flood, two workers")
        two_workers = _capacity(project_seen.times(flood))
        _wait_delivered(url, "notifications_notification", flood, 120)
        flood_claims = _claims(url, "notifications_notification", flood)
        failed = sum(
            p.output().count("sla: escalating clock") for p in [*workers, successor, second]
        )
    finally:
        raw.stop()
        for process in started:
            process.stop()
    duplicates = _duplicates(url)

    # 5. The raw sweeper on the same two backlogs, as many threads as the workers had.
    raw_capacity: dict[str, float] = {}
    for label, clocks, threads in (("one", backlog, 1), ("two", flood, 2)):
        with psycopg.connect(url, autocommit=True) as conn:
            copy_clocks(conn, clocks)
        raw_seen.track(_due(url, "bench_raw_slaclock", clocks))
        sweeper = RawSweeper(
            url, redis_url, threads=threads * THREADS_PER_WORKER, interval=INTERVAL_S
        )
        sweeper.start()
        try:
            _wait(lambda c=clocks: raw_seen.count(c) == FLOOD, 600, f"the raw backlog ({label})")
            _wait_delivered(url, "bench_raw_notification", clocks, 120)
        finally:
            sweeper.stop()
        if sweeper.errors:
            raise BenchError(f"raw sweeper: {sweeper.errors[:3]}")
        raw_capacity[label] = _capacity(raw_seen.times(clocks))
    project_seen.close()
    raw_seen.close()
    for poller in (project_seen, raw_seen):
        if poller.error:
            raise BenchError(f"visibility poller failed: {poller.error}")
    if raw.errors:
        raise BenchError(f"raw sweeper: {raw.errors[:3]}")
    leftover = _redis_len(redis_url)
    boot_s = ready - successor.started
    first_after_ready = first_commit - ready_epoch
    needed = math.ceil(FLOOD_RATE / one_worker) if one_worker > 0 else None
    flood_due = _due(url, "sla_slaclock", flood)
    flood_lag = [
        claimed - flood_due[c] for c, (claimed, _s) in flood_claims.items() if claimed is not None
    ]
    ctx.note(
        "poller",
        {"project": project_seen.resolution(), "raw": raw_seen.resolution(), "target_s": POLL_S},
    )
    ctx.note("lateness_ms", {side: data["summary"] for side, data in lateness.items()})
    ctx.note(
        "recovery",
        {
            "backlog_clocks": FLOOD,
            "worker_boot_s": round(boot_s, 2),
            "first_commit_after_ready_s": round(first_after_ready, 2),
            "backlog_cleared_after_ready_s": round(
                project_seen.times(backlog)[-1] - ready_epoch, 2
            ),
        },
    )
    ctx.note(
        "flood",
        {
            "arrival_clocks_per_s": FLOOD_RATE,
            "clocks_per_backlog": FLOOD,
            "escalations_per_clock": "breach + step 1 (2 rows), 1 push",
            "one_worker_clocks_per_s": round(one_worker, 1),
            "two_workers_clocks_per_s": round(two_workers, 1),
            "raw_clocks_per_s": {k: round(v, 1) for k, v in raw_capacity.items()},
            "keeps_up": bool(two_workers >= FLOOD_RATE),
            "workers_needed_at_one_worker_rate": needed,
            "two_workers_scaling": round(two_workers / one_worker, 2) if one_worker else None,
            "last_push_claimed_after_due_s": round(max(flood_lag, default=math.nan), 2),
        },
    )
    ctx.note("duplicates", {**duplicates, "failed_sweeps": failed})
    ctx.note("raw_delivery_queue_left", leftover)
    ctx.note("loadavg_after", Path("/proc/loadavg").read_text().split()[:3])
    project, base = lateness["project"]["summary"], lateness["raw"]["summary"]
    for side, data in (("project", project), ("raw", base)):
        print(
            f"  {side:<8} lateness ms: row p99 {data['row_p99']:.0f}, commit p50 "
            f"{data['commit_p50']:.0f} p99 {data['commit_p99']:.0f}, claimed p99 "
            f"{data['claimed_p99']:.0f} (claim − commit min {data['claimed_minus_commit_min']:.0f})"
        )
    print(
        f"  capacity clocks/s: 1 worker {one_worker:.1f} (raw {raw_capacity['one']:.1f}), "
        f"2 workers {two_workers:.1f} (raw {raw_capacity['two']:.1f}); flood {FLOOD_RATE:.0f}/s "
        f"needs {needed} workers at the 1-worker rate; first commit {first_after_ready:.2f} s "
        f"after ready"
    )
    return [
        Figure(
            "lateness.p50",
            "ms",
            project["commit_p50"],
            Baseline("raw sweeper p50", base["commit_p50"], "ms"),
            "lower",
            description="due → escalation and its push committed (first visible), 2 workers",
        ),
        Figure(
            "lateness.p99",
            "ms",
            project["commit_p99"],
            Baseline("raw sweeper p99", base["commit_p99"], "ms"),
            "lower",
            goal=1000,
            description="goal p99 ≤ 1 s among 100,000 open clocks; commit seen by a poller",
        ),
        Figure(
            "lateness.max",
            "ms",
            project["commit_max"],
            Baseline("raw sweeper max", base["commit_max"], "ms"),
            "lower",
        ),
        Figure(
            "lateness_claimed.p99",
            "ms",
            project["claimed_p99"],
            Baseline("raw sweeper claimed p99", base["claimed_p99"], "ms"),
            "lower",
            description="due → the push's outbox row claimed by a worker (enqueued, taken)",
        ),
        Figure(
            "duplicates",
            "rows",
            float(duplicates["escalations"] + duplicates["pushes"] + failed),
            Baseline("raw sweeper duplicates", 0.0, "rows"),
            "lower",
            goal=0,
            description="(clock, kind, step) twice, duplicate pushes, failed sweeps; 2 workers",
        ),
        Figure(
            "recovery.first_after_ready",
            "s",
            first_after_ready,
            Baseline("worker boot (start → ready)", boot_s, "s"),
            "lower",
            goal=5,
            description=f"kill -9 of both workers; {FLOOD} overdue clocks; first commit",
        ),
        Figure(
            "capacity.one_worker",
            "clocks/s",
            one_worker,
            Baseline("raw sweeper, 2 threads", raw_capacity["one"], "clocks/s"),
            "higher",
            description=f"{FLOOD} breached triage clocks (2 escalations + 1 push each)",
        ),
        Figure(
            "capacity.two_workers",
            "clocks/s",
            two_workers,
            Baseline("raw sweeper, 4 threads", raw_capacity["two"], "clocks/s"),
            "higher",
            goal=FLOOD_RATE,
            description="a 1,000 reports/s flood all breaching: goal = its arrival rate",
        ),
    ]


def _redis_len(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.llen(QUEUE))
    finally:
        client.close()


def _lateness(
    url: str,
    escalations: str,
    outbox: str,
    clock_ids: list[int],
    due: dict[int, float],
    seen: Visibility,
) -> dict[str, Any]:
    """Per clock: row written (in the transaction), committed (first visible) and the push
    claimed, each minus the deadline, in ms; with their p50/p99/max."""
    rows = _rows(
        url,
        f"SELECT clock_id, EXTRACT(EPOCH FROM at) FROM {escalations} "  # noqa: S608
        "WHERE kind = 'step' AND step = 1 AND clock_id = ANY(%s)",
        (clock_ids,),
    )
    written = {int(c): float(at) for c, at in rows}
    claims = _claims(url, outbox, clock_ids)
    with seen.lock:
        visible = {c: seen.seen[c] for c in clock_ids}
    series = {
        "row": [(written[c] - due[c]) * 1000 for c in clock_ids],
        "commit": [(visible[c] - due[c]) * 1000 for c in clock_ids],
        "claimed": [((claims[c][0] or math.nan) - due[c]) * 1000 for c in clock_ids],
    }
    # A claim follows its commit: a claim seen "before" the commit by more than the
    # poller's resolution would mean the commit times are wrong.
    series["claimed_minus_commit"] = [
        c - v for c, v in zip(series["claimed"], series["commit"], strict=True)
    ]
    summary: dict[str, float] = {}
    for name, values in series.items():
        summary[f"{name}_p50"] = round(_percentile(values, 50), 1)
        summary[f"{name}_p99"] = round(_percentile(values, 99), 1)
        summary[f"{name}_max"] = round(max(values), 1)
    summary["claimed_minus_commit_min"] = round(min(series["claimed_minus_commit"]), 1)
    return {"series": series, "summary": summary}
