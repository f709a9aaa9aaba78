"""Raw baseline of SLA escalation: the same rows and the same hand-off, psycopg only.

``bench_sla`` runs this beside the project's Celery sweeper. It works on copies of the
project's tables (``CREATE TABLE bench_raw_x (LIKE x INCLUDING ALL)``: same columns,
indexes and constraints, the partial sweep index among them) filled with the same
clocks, so both sweep the same deadlines among the same 100,000 open clocks without
taking each other's rows.

A sweep (every ``interval`` seconds per sweeper thread, like beat's sweeps) reads the ids
of the due clocks from the sweep index, then escalates each clock in its own
transaction, as ``apps/sla/services/sweep.py`` does:

1. lock the clock ``FOR UPDATE SKIP LOCKED`` (still running and due), with its region;
2. lock the subject without waiting (a row of ``bench_raw_subject``; busy: next sweep);
3. the recipients of ladder step 1 (the street duty officers: operators holding the
   street) and their language, one query;
4. one compare-and-swap ``UPDATE`` claiming the breach and step 1 at once
   (``breached_at IS NULL AND step = 0``) and moving ``next_check_at`` to step 2;
5. the two ``Escalation`` rows (breach, step 1), one ``INSERT``;
6. for an incident, its two timeline rows, one ``INSERT``;
7. the realtime events (board events on the region and its ancestors, the incident's
   events), one counter reservation and one ``INSERT``;
8. one outbox row per recipient, ``ON CONFLICT (dedupe_key) DO NOTHING``;
9. ``COMMIT``, then the hand-off: ``LPUSH`` of each outbox id on a Redis list (the
   delivery queue) and one ``PUBLISH`` per event, in one pipeline.

A delivery thread per sweeper ``BRPOP``\\ s the ids and claims each row (pending →
sending, ``claimed_at``), reads the recipient's devices and records it sent: the floor
of ``apps.notifications.delivery`` with a console backend.

It handles what the bench generates (breach and step 1 due together, step 1 to the
street duty officer) — not policies, pauses, targets or ladder actions. What the ratio
prices: Django's ORM and transactions, Celery, the policy ladder interpreter, the
rendering of texts in each recipient's language, two CAS updates instead of one, and
the separate event reservations of the project.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import psycopg
import redis
from psycopg.types.json import Jsonb

TABLES = {
    "bench_raw_slaclock": "sla_slaclock",
    "bench_raw_escalation": "sla_escalation",
    "bench_raw_notification": "notifications_notification",
    "bench_raw_incidentevent": "incidents_incidentevent",
    "bench_raw_event": "realtime_event",
    "bench_raw_streamcounter": "realtime_streamcounter",
}
QUEUE = "bench:raw-sla:deliver"
CHANNEL = "bench:raw-sla:events"
BATCH = 200
TIME_BUDGET_S = 10.0

SCAN_SQL = """
SELECT id FROM bench_raw_slaclock WHERE status = 'running' AND next_check_at <= now()
ORDER BY next_check_at, id LIMIT %s
"""
LOCK_SQL = """
SELECT c.kind, c.subject_type, c.subject_id, c.subject_label, c.region_id, c.due_at,
       c.ladder, r.path
FROM bench_raw_slaclock c JOIN regions_region r ON r.id = c.region_id
WHERE c.id = %s AND c.status = 'running' AND c.next_check_at <= now()
FOR UPDATE OF c SKIP LOCKED
"""
SUBJECT_SQL = (
    "SELECT 1 FROM bench_raw_subject WHERE subject_type = %s AND id = %s FOR UPDATE SKIP LOCKED"
)
RECIPIENTS_SQL = """
SELECT m.user_id,
       (SELECT d.locale FROM accounts_device d
         WHERE d.user_id = m.user_id AND d.is_active AND d.locale <> ''
         ORDER BY d.last_seen_at DESC NULLS LAST, d.id DESC LIMIT 1)
FROM accounts_membership m
JOIN accounts_user u ON u.id = m.user_id
JOIN regions_region r ON r.id = m.region_id
WHERE m.is_active AND u.is_active AND r.path = %s AND m.role = 'operator'
"""
CLAIM_SQL = """
UPDATE bench_raw_slaclock SET breached_at = due_at, step = 1, next_check_at = %s,
       updated_at = now()
WHERE id = %s AND status = 'running' AND breached_at IS NULL AND step = 0
"""
ESCALATIONS_SQL = """
INSERT INTO bench_raw_escalation (clock_id, kind, step, scheduled_at, at, region_id,
                                  subject_type, subject_id, audiences, recipients, actions)
VALUES (%(clock)s, 'breached', 0, %(due)s, clock_timestamp(), %(region)s, %(type)s, %(id)s,
        '[]', '[]', '{}'),
       (%(clock)s, 'step', 1, %(due)s, clock_timestamp(), %(region)s, %(type)s, %(id)s,
        %(audiences)s, %(recipients)s, '{}')
RETURNING id
"""
TIMELINE_SQL = """
INSERT INTO bench_raw_incidentevent (incident_id, kind, at, data, public)
VALUES (%(id)s, 'sla_breached', clock_timestamp(), %(breach)s, false),
       (%(id)s, 'sla_escalated', clock_timestamp(), %(step)s, false)
"""
RESERVE_SQL = """
INSERT INTO bench_raw_streamcounter AS counter (stream, last_seq)
SELECT wanted.stream, wanted.n
FROM unnest(%s::text[], %s::bigint[]) AS wanted(stream, n)
ORDER BY wanted.stream COLLATE "C"
ON CONFLICT (stream) DO UPDATE SET last_seq = counter.last_seq + EXCLUDED.last_seq
RETURNING stream, last_seq
"""
EVENTS_SQL = """
INSERT INTO bench_raw_event (stream, seq, kind, payload, created_at)
SELECT row.stream, row.seq, row.kind, row.payload::jsonb, now()
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[]) AS row(stream, seq, kind, payload)
"""
OUTBOX_SQL = """
INSERT INTO bench_raw_notification (created_at, updated_at, dedupe_key, channel, kind,
    priority, topic, language, title, body, template, data, status, attempts,
    next_attempt_at, last_error, skip_reason, result, user_id)
SELECT now(), now(), %(key)s || ':u' || r.user_id, 'push', 'escalation', 'high', '',
       r.language, %(title)s, %(body)s, %(template)s, %(data)s, 'pending', 0, now(), '', '',
       '{}', r.user_id
FROM unnest(%(users)s::bigint[], %(languages)s::text[]) AS r(user_id, language)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""
CLAIM_DELIVERY_SQL = """
UPDATE bench_raw_notification SET status = 'sending', attempts = attempts + 1,
       claimed_at = now(), updated_at = now()
WHERE id = %s AND status = 'pending' AND next_attempt_at <= now()
RETURNING user_id, attempts
"""
DEVICES_SQL = """
SELECT id, token, platform FROM accounts_device WHERE user_id = %s AND is_active
ORDER BY last_seen_at DESC NULLS LAST, id DESC LIMIT 100
"""
SENT_SQL = """
UPDATE bench_raw_notification SET status = 'sent', sent_at = now(), updated_at = now(),
       result = %s
WHERE id = %s AND status = 'sending' AND attempts = %s
"""


def create_tables(conn: psycopg.Connection[Any]) -> None:
    """The raw copies of the project's tables, and the subjects' lock rows."""
    for raw, source in TABLES.items():
        conn.execute(f"DROP TABLE IF EXISTS {raw}")
        conn.execute(f"CREATE TABLE {raw} (LIKE {source} INCLUDING ALL)")
    conn.execute("DROP TABLE IF EXISTS bench_raw_subject")
    conn.execute(
        "CREATE TABLE bench_raw_subject (subject_type text, id bigint, "
        "PRIMARY KEY (subject_type, id))"
    )


def copy_clocks(conn: psycopg.Connection[Any], clock_ids: Iterable[int] | None = None) -> int:
    """Copy the project's clocks (all, or ``clock_ids``) as they were before any sweep:
    running, nothing escalated, next check at the deadline (the bench makes their first
    event the deadline); their subjects get lock rows."""
    where = "" if clock_ids is None else "WHERE id = ANY(%s)"
    params = [] if clock_ids is None else [list(clock_ids)]
    copied = conn.execute(
        "INSERT INTO bench_raw_slaclock SELECT * FROM sla_slaclock " + where,  # noqa: S608
        params,
    ).rowcount
    reset = (
        "UPDATE bench_raw_slaclock SET status = 'running', breached_at = NULL, step = 0, "
        "target_missed_at = NULL, next_check_at = due_at, stopped_at = NULL, stop_reason = '', "
        "paused_at = NULL "
    )
    conn.execute(reset + ("" if clock_ids is None else "WHERE id = ANY(%s)"), params)
    conn.execute(
        "INSERT INTO bench_raw_subject SELECT DISTINCT subject_type, subject_id "
        "FROM bench_raw_slaclock ON CONFLICT DO NOTHING"
    )
    conn.execute("ANALYZE bench_raw_slaclock")
    return int(copied)


def _region_streams(path: str) -> list[str]:
    return [f"region.{code}" for code in path.strip("/").split("/") if code]


class RawSweeper:
    """``threads`` sweeper threads (each a sweep every ``interval`` s) and as many
    delivery threads, in this process."""

    def __init__(self, url: str, redis_url: str, *, threads: int, interval: float) -> None:
        self.url = url
        self.redis_url = redis_url
        self.threads = threads
        self.interval = interval
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.clocks = 0
        self.busy = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stop_event.clear()
        for n in range(self.threads):
            # Staggered like beat's sweeps landing on different worker threads.
            self._threads.append(threading.Thread(target=self._sweeper, args=(n,), daemon=True))
            self._threads.append(threading.Thread(target=self._deliverer, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads = []

    # Sweeping ---------------------------------------------------------------------------

    def _sweeper(self, n: int) -> None:
        try:
            client = redis.Redis.from_url(self.redis_url)
            with psycopg.connect(self.url, autocommit=True) as conn:
                self.stop_event.wait(self.interval * n / max(1, self.threads))
                while not self.stop_event.is_set():
                    self._sweep(conn, client)
                    self.stop_event.wait(self.interval)
        except Exception as exc:  # surfaced by the bench
            self.errors.append(f"sweeper: {type(exc).__name__}: {exc}")

    def _sweep(self, conn: psycopg.Connection[Any], client: redis.Redis) -> None:
        deadline = time.monotonic() + TIME_BUDGET_S
        while time.monotonic() < deadline and not self.stop_event.is_set():
            ids = [row[0] for row in conn.execute(SCAN_SQL, (BATCH,)).fetchall()]
            if not ids:
                return
            progressed = 0
            for clock_id in ids:
                if time.monotonic() >= deadline:
                    break
                with contextlib.suppress(_Busy):
                    progressed += self._escalate(conn, client, clock_id)
            if progressed == 0 or len(ids) < BATCH:
                return

    def _escalate(self, conn: psycopg.Connection[Any], client: redis.Redis, clock_id: int) -> int:
        with conn.transaction():
            row = conn.execute(LOCK_SQL, (clock_id,)).fetchone()
            if row is None:
                return 0
            kind, subject_type, subject_id, label, region_id, due_at, ladder, path = row
            if conn.execute(SUBJECT_SQL, (subject_type, subject_id)).fetchone() is None:
                with self._lock:
                    self.busy += 1
                raise _Busy
            recipients = conn.execute(RECIPIENTS_SQL, (path,)).fetchall()
            users = sorted({int(r[0]) for r in recipients})
            languages = {int(r[0]): _language(r[1]) for r in recipients}
            following = (
                due_at + timedelta(seconds=int(ladder[1]["after_s"])) if ladder[1:] else None
            )
            if conn.execute(CLAIM_SQL, (following, clock_id)).rowcount != 1:
                return 0
            escalation_ids = [
                r[0]
                for r in conn.execute(
                    ESCALATIONS_SQL,
                    {
                        "clock": clock_id,
                        "due": due_at,
                        "region": region_id,
                        "type": subject_type,
                        "id": subject_id,
                        "audiences": Jsonb(["street_duty"]),
                        "recipients": Jsonb(users),
                    },
                ).fetchall()
            ]
            summary = {"clock_id": clock_id, "sla_kind": kind, "due_at": due_at.isoformat()}
            streams = _region_streams(path)
            events: list[tuple[str, str, str]] = []
            for escalation_id, event in zip(escalation_ids, ("breached", "step"), strict=True):
                payload = json.dumps({**summary, "escalation_id": escalation_id, "event": event})
                events += [(stream, "sla.escalated", payload) for stream in streams]
            if subject_type == "incident":
                conn.execute(
                    TIMELINE_SQL,
                    {
                        "id": subject_id,
                        "breach": Jsonb({**summary, "escalation_id": escalation_ids[0]}),
                        "step": Jsonb({**summary, "escalation_id": escalation_ids[1]}),
                    },
                )
                for event in ("incident.sla_breached", "incident.sla_escalated"):
                    payload = json.dumps({"incident": subject_id, **summary})
                    events += [
                        (stream, event, payload) for stream in [f"incident.{subject_id}", *streams]
                    ]
            frames = _reserve_and_insert(conn, events)
            pushed: list[int] = []
            if users:
                data = {k: str(v) for k, v in summary.items()}
                pushed = [
                    r[0]
                    for r in conn.execute(
                        OUTBOX_SQL,
                        {
                            "key": f"sla:{clock_id}:step:1",
                            "title": f"逾期：{kind}",
                            "body": f"{label} — 到期 {due_at:%m-%d %H:%M}",
                            "template": Jsonb({"title": "Escalation: %(kind)s", "args": data}),
                            "data": Jsonb(data),
                            "users": users,
                            "languages": [languages[u] for u in users],
                        },
                    ).fetchall()
                ]
        # Committed: hand the pushes to the delivery queue and publish the events.
        pipe = client.pipeline(transaction=False)
        for pk in pushed:
            pipe.lpush(QUEUE, pk)
        for frame in frames:
            pipe.publish(CHANNEL, frame)
        pipe.execute()
        with self._lock:
            self.clocks += 1
        return 1

    # Delivering -------------------------------------------------------------------------

    def _deliverer(self) -> None:
        try:
            client = redis.Redis.from_url(self.redis_url)
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    item = client.brpop([QUEUE], timeout=0.2)
                    if item is None:
                        continue
                    pk = int(item[1])
                    claimed = conn.execute(CLAIM_DELIVERY_SQL, (pk,)).fetchone()
                    if claimed is None:
                        continue
                    user_id, attempts = claimed
                    devices = conn.execute(DEVICES_SQL, (user_id,)).fetchall()
                    result = Jsonb({"devices": [{"id": d[0], "outcome": "sent"} for d in devices]})
                    conn.execute(SENT_SQL, (result, pk, attempts))
        except Exception as exc:
            self.errors.append(f"deliverer: {type(exc).__name__}: {exc}")


class _Busy(Exception):
    """The subject is locked elsewhere: roll this clock back for the next sweep."""


def _language(locale: str | None) -> str:
    return (locale or "zh-hans").strip().replace("_", "-").lower() or "zh-hans"


def _reserve_and_insert(
    conn: psycopg.Connection[Any], events: list[tuple[str, str, str]]
) -> list[str]:
    counts: dict[str, int] = {}
    for stream, _kind, _payload in events:
        counts[stream] = counts.get(stream, 0) + 1
    ordered = sorted(counts)
    last = dict(
        conn.execute(RESERVE_SQL, (ordered, [counts[s] for s in ordered])).fetchall()  # type: ignore[arg-type]
    )
    next_seq = {stream: int(last[stream]) - n + 1 for stream, n in counts.items()}
    seqs = []
    for stream, _kind, _payload in events:
        seqs.append(next_seq[stream])
        next_seq[stream] += 1
    conn.execute(
        EVENTS_SQL,
        (
            [e[0] for e in events],
            seqs,
            [e[1] for e in events],
            [e[2] for e in events],
        ),
    )
    return [
        json.dumps({"stream": e[0], "seq": seq, "kind": e[1]}) + e[2]
        for e, seq in zip(events, seqs, strict=True)
    ]
