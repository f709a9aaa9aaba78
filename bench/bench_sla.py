"""SLA escalation: lateness of a steady stream of deadlines among 100,000 open clocks, two
sweeping workers, and recovery after ``kill -9`` of the workers; beside a raw poller.

Deployment as in production (``xixian_ems.settings.production``): Celery beat sending
``sla_sweep`` every ``SLA_SWEEP_INTERVAL_SECONDS`` (0.5 s), and **two worker processes**
(``--pool threads --concurrency 2`` each, consuming the default queue, so they also deliver
the escalations' pushes through the console backend) sweeping the same clocks.

Setup (one ``manage.py shell`` script): the default policies; **100,000 open clocks** due
in one to four days (the index the sweeper scans is full of work that is not due); and the
**stream**: ``RATE`` accepted incidents per second over ``STREAM_S`` seconds, each with a
dispatch clock (policy ``dispatch-default``) whose deadline falls at its own moment of the
stream, so escalations come due at a steady rate. Each one is a real escalation: the
breach and ladder step 1 (tell the street duty officer: push outbox row, incident timeline
row, realtime events on the incident and region streams).

Raw baseline, same run and machine: a poller thread in this process, psycopg only, every
``SLA_SWEEP_INTERVAL_SECONDS``: ``UPDATE`` the due rows of its own table (the same stream
of deadlines) ``FOR UPDATE SKIP LOCKED``, stamping them done at ``clock_timestamp()`` —
the least a polling sweeper costs; the difference is the work of an escalation.

Figures:

* ``lateness.p50`` / ``.p99`` (goal ≤ 1 s) / ``.max``: ``Escalation.at - scheduled_at`` of
  every breach of the stream (the first event of each clock), in milliseconds;
* ``duplicates``: (clock, kind, step) rows more than once, goal 0 (a unique constraint
  forbids them; an attempt would show as a failed sweep, counted too);
* ``recovery.first_after_ready``: both workers are killed with SIGKILL (beat goes on),
  ``BACKLOG`` clocks fall due while none runs; one worker is started again: seconds from
  its "ready" log line to its first escalation (goal ≤ 5 s); baseline its boot time;
* ``recovery.backlog_rate``: escalations per second while that worker clears the backlog,
  beside the raw poller's rate for the same backlog.
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
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import LOG_DIR, ROOT, Baseline, BenchContext, BenchError, Figure

BACKGROUND = 100_000
RATE = 10  # deadlines per second in the stream
STREAM_S = 20
BACKLOG = 300
START_MARGIN_S = 25.0  # from writing the stream to its first deadline (workers boot)
INTERVAL_S = 0.5

SETUP_SCRIPT = """
import json
from datetime import datetime, timedelta, timezone as tz
from django.db import connection, transaction
from django.core.management import call_command
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
print(json.dumps({{"clocks": made, "street": street.code,
                  "open": SlaClock.objects.filter(status="running").count()}}))
"""

BACKLOG_SCRIPT = """
import json
from datetime import datetime, timedelta, timezone as tz
from apps.incidents.models import Category, Incident
from apps.incidents.services.sla import incident_label
from apps.regions.models import Region
from apps.sla.services.clocks import sla_clock_start

prefix, count, due = {prefix}, {count}, {due}
street = Region.objects.get(code={street})
category = Category.objects.get(code="A04")
due_at = datetime.fromtimestamp(due, tz=tz.utc)
incidents = Incident.objects.bulk_create(
    [
        Incident(
            number=f"{{prefix}}-b{{i:05d}}", title=f"SLA backlog {{i}}", category=category,
            region=street, lat=34.3, lng=108.8, source="operator", status="accepted",
        )
        for i in range(count)
    ]
)
made = [
    sla_clock_start(
        kind="dispatch", subject_type="incident", subject_id=incident.pk, region_id=street.pk,
        label=incident_label(incident), category=category.code,
        started_at=due_at - timedelta(minutes=10),
    ).pk
    for incident in incidents
]
print(json.dumps(made))
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
    argv = ["worker", "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO"]
    return Celery(name, [*argv, "--hostname", f"{name}@bench", "--without-mingle"], env)


class RawPoller:
    """The baseline sweeper: psycopg, one UPDATE per poll, every ``INTERVAL_S``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.stop_event.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_event.is_set():
                conn.execute(
                    "UPDATE bench_sla_raw SET done_at = clock_timestamp(), status = 'done' "
                    "WHERE id IN (SELECT id FROM bench_sla_raw WHERE status = 'running' "
                    "AND due_at <= clock_timestamp() ORDER BY due_at "
                    "FOR UPDATE SKIP LOCKED LIMIT 200)"
                )
                self.stop_event.wait(INTERVAL_S)


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
        time.sleep(0.05)
    return time.monotonic()


def run(ctx: BenchContext) -> list[Figure]:
    prefix = f"bench-sla-{uuid.uuid4().hex[:6]}"
    env = {
        **ctx.env,
        "SLA_SWEEP_INTERVAL_SECONDS": str(INTERVAL_S),
        "XEMS_VAR_DIR": str(LOG_DIR / "sla-var"),
        "NOTIFICATIONS_PUSH_BACKEND": "apps.notifications.backends.ConsolePushBackend",
    }
    (LOG_DIR / "sla-var").mkdir(parents=True, exist_ok=True)
    url = ctx.database_url

    # 1. The stream of deadlines, for the project and (same moments) the raw table.
    first_due = time.time() + START_MARGIN_S
    deadlines = [first_due + i / RATE for i in range(RATE * STREAM_S)]
    print(f"  sla: {BACKGROUND:,} open clocks + a stream of {len(deadlines)} deadlines")
    script = SETUP_SCRIPT.format(
        prefix=json.dumps(prefix), background=BACKGROUND, deadlines=json.dumps(deadlines)
    )
    seeded = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    stream_clocks: list[int] = seeded["clocks"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_sla_raw")
        conn.execute(
            "CREATE TABLE bench_sla_raw (id bigserial PRIMARY KEY, due_at timestamptz NOT NULL,"
            " status text NOT NULL DEFAULT 'running', done_at timestamptz)"
        )
        conn.execute(
            "CREATE INDEX bench_sla_raw_due ON bench_sla_raw (due_at) WHERE status = 'running'"
        )
        conn.execute(
            "INSERT INTO bench_sla_raw (due_at) SELECT to_timestamp(unnest(%s::float8[]))",
            [deadlines],
        )
    ctx.note("open_clocks", seeded["open"])
    ctx.note("stream", {"rate_per_s": RATE, "seconds": STREAM_S, "clocks": len(stream_clocks)})
    ctx.note("sweep_interval_s", INTERVAL_S)

    # 2. Beat and two workers; the raw poller beside them.
    beat = Celery(
        "beat",
        [
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(LOG_DIR / "sla-var" / "celerybeat-schedule"),
        ],
        env,
    )
    workers = [_worker(env, "worker-1"), _worker(env, "worker-2")]
    raw = RawPoller(url)
    started = [beat, *workers]
    try:
        for worker in workers:
            worker.wait_ready()
        if time.time() > first_due - 1:
            raise BenchError("setup and worker start-up took longer than the start margin")
        raw.start()
        stream_end = deadlines[-1]
        _wait(
            lambda: _count(url, stream_clocks) >= 2 * len(stream_clocks),
            timeout=stream_end - time.time() + 60,
            what="the stream's escalations",
        )
        lateness = _lateness(url, stream_clocks)
        raw_lateness = _raw_lateness(url)
        duplicates = _duplicates(url)
        failed = sum(w.output().count("sla: escalating clock") for w in workers)
        sweeps = {w.name: w.output().count("sla sweep:") for w in workers}
        ctx.note("sweeps_with_work_per_worker", sweeps)
        ctx.note("failed_sweeps", failed)

        # 3. kill -9 of both workers; a backlog falls due; one worker comes back.
        raw.stop()
        for worker in workers:
            worker.kill()
        killed_at = time.time()
        backlog_due = killed_at + 2.0
        backlog = json.loads(
            ctx.manage(
                "shell",
                "-c",
                BACKLOG_SCRIPT.format(
                    prefix=json.dumps(prefix),
                    count=BACKLOG,
                    due=backlog_due,
                    street=json.dumps(seeded["street"]),
                ),
            )
            .strip()
            .splitlines()[-1]
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO bench_sla_raw (due_at) SELECT to_timestamp(%s) "
                "FROM generate_series(1, %s)",
                [backlog_due, BACKLOG],
            )
        while time.time() < backlog_due + 1.0:
            time.sleep(0.05)  # let the backlog fall due while no worker runs
        assert _count(url, backlog) == 0, "escalations ran with no worker alive"
        successor = _worker(env, "worker-3")
        started.append(successor)
        ready = successor.wait_ready()
        first = _wait(lambda: _count(url, backlog) > 0, timeout=60, what="the first escalation")
        done = _wait(lambda: _count(url, backlog) >= 2 * BACKLOG, timeout=300, what="the backlog")
        raw_started = time.monotonic()
        raw.start()
        _wait(lambda: _raw_pending(url) == 0, timeout=60, what="the raw backlog")
        raw_done = time.monotonic()
        raw.stop()
    finally:
        raw.stop()
        for process in started:
            process.stop()

    boot_s = ready - successor.started
    backlog_rate = 2 * BACKLOG / max(done - first, 1e-6)
    raw_rate = BACKLOG / max(raw_done - raw_started, 1e-6)
    ctx.note(
        "recovery",
        {
            "backlog": BACKLOG,
            "worker_boot_s": round(boot_s, 2),
            "first_escalation_after_ready_s": round(first - ready, 2),
            "backlog_cleared_after_ready_s": round(done - ready, 2),
            "duplicates_after": _duplicates(url),
        },
    )
    ctx.note("escalations", len(lateness))
    # This machine's 2 cores are shared: the load average says how busy it was.
    ctx.note("loadavg_after", Path("/proc/loadavg").read_text().split()[:3])
    raw_base = {
        "p50": _percentile(raw_lateness, 50),
        "p99": _percentile(raw_lateness, 99),
        "max": max(raw_lateness, default=math.nan),
    }
    return [
        Figure(
            "lateness.p50",
            "ms",
            _percentile(lateness, 50),
            Baseline("raw poller p50", raw_base["p50"], "ms"),
            "lower",
            description="breach escalations of the stream: ran at − due at",
        ),
        Figure(
            "lateness.p99",
            "ms",
            _percentile(lateness, 99),
            Baseline("raw poller p99", raw_base["p99"], "ms"),
            "lower",
            goal=1000,
            description="goal p99 ≤ 1 s",
        ),
        Figure(
            "lateness.max",
            "ms",
            max(lateness, default=math.nan),
            Baseline("raw poller max", raw_base["max"], "ms"),
            "lower",
        ),
        Figure(
            "duplicates",
            "rows",
            float(duplicates + failed),
            Baseline("raw poller duplicates", 0.0, "rows"),
            "lower",
            goal=0,
            description="(clock, kind, step) escalated twice, plus failed sweeps; 2 workers",
        ),
        Figure(
            "recovery.first_after_ready",
            "s",
            first - ready,
            Baseline("worker boot (start → ready)", boot_s, "s"),
            "lower",
            goal=5,
            description="kill -9 of the workers; overdue backlog; first escalation after ready",
        ),
        Figure(
            "recovery.backlog_rate",
            "escalations/s",
            backlog_rate,
            Baseline("raw poller rows/s", raw_rate, "rows/s"),
            "higher",
            description=f"{BACKLOG} overdue clocks (breach + step each) cleared by one worker",
        ),
    ]


def _count(url: str, clock_ids: list[int]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM sla_escalation WHERE clock_id = ANY(%s)", [clock_ids]
        ).fetchone()
    return int(row[0]) if row else 0


def _lateness(url: str, clock_ids: list[int]) -> list[float]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT EXTRACT(EPOCH FROM at - scheduled_at) * 1000 FROM sla_escalation "
            "WHERE clock_id = ANY(%s) AND kind = 'breached'",
            [clock_ids],
        ).fetchall()
    return [float(r[0]) for r in rows]


def _raw_lateness(url: str) -> list[float]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT EXTRACT(EPOCH FROM done_at - due_at) * 1000 FROM bench_sla_raw "
            "WHERE done_at IS NOT NULL"
        ).fetchall()
    return [float(r[0]) for r in rows]


def _raw_pending(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM bench_sla_raw WHERE status = 'running'").fetchone()
    return int(row[0]) if row else 0


def _duplicates(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM sla_escalation GROUP BY clock_id, kind, step "
            "HAVING count(*) > 1) AS twice"
        ).fetchone()
    return int(row[0]) if row else 0
