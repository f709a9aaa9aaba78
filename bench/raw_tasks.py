"""Raw baseline of task transitions: the same rows in one transaction, no framework.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_tasks:app``).

``POST /transition?task=<id>&action=<accept|en-route|on-scene|complete>&user=<id>`` with
an ``Idempotency-Key`` header does, in one transaction, the writes and checks of the
project's transition (``apps/dispatch/services/tasks.py``) as hand-written SQL:

1. the idempotency key row (``core_idempotentrequest``, scope of the user; a key used
   before answers 409 here — the bench sends each key once);
2. lock the incident, then the task (``FOR UPDATE``), and check the user is an active
   member of the task's team (403);
3. the compare-and-swap ``UPDATE`` of the task (``WHERE status = <from>``; 409 if it
   moved), status and its timestamp;
4. the ``dispatch_taskevent`` row and the incident timeline row;
5. the task's SLA clock: acceptance stops ``task_accept`` and releases the receipts of
   the dispatch push (its outbox rows lose their acknowledgement deadline); on-scene
   stops ``task_arrival``;
6. the first acceptance starts the incident (accepted → in_progress, its timeline row);
7. the realtime events (``task.<kind>``, plus ``incident.started`` when it started) on
   the incident's streams and the team members' streams: one counter reservation, one
   ``INSERT``;
8. the team status follows its live tasks (team row locked after the counters, as the
   project's lock order);
9. the answer stored on the key; ``COMMIT``; then one ``PUBLISH`` per event.

It answers ``{id, status}``. Left out — what the ratio prices — JWT authentication,
Django's request cycle, the ORM, the transition table interpreter, the task serializer
and the richer event payloads.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import redis.asyncio as aioredis
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bench.rawasgi import Answer, RawApp, RawRequest

CHANNEL = "bench:raw-tasks:events"
# action → (from status, to status, timestamp column, event kind, clock to stop)
STEPS: dict[str, tuple[str, str, str, str, str | None]] = {
    "accept": ("dispatched", "accepted", "accepted_at", "accepted", "task_accept"),
    "en-route": ("accepted", "en_route", "en_route_at", "en_route", None),
    "on-scene": ("en_route", "on_scene", "on_scene_at", "on_scene", "task_arrival"),
    "complete": ("on_scene", "completed", "completed_at", "completed", None),
}
KEY_SQL = """
INSERT INTO core_idempotentrequest (created_at, updated_at, scope, key, method, path,
                                    request_hash, response_status)
VALUES (now(), now(), %s, %s, 'POST', %s, %s, 0)
ON CONFLICT (scope, key) DO NOTHING RETURNING id
"""
LOCK_SQL = """
SELECT i.id, i.status, r.path, t.team_id
FROM dispatch_dispatchtask t
JOIN incidents_incident i ON i.id = t.incident_id
JOIN regions_region r ON r.id = i.region_id
WHERE t.id = %s
FOR UPDATE OF i, t
"""
MEMBER_SQL = "SELECT 1 FROM dispatch_teammember WHERE team_id = %s AND user_id = %s AND is_active"
UPDATE_SQL = {
    action: (
        f"UPDATE dispatch_dispatchtask SET status = %s, {column} = "  # noqa: S608 - fixed names
        + ("now(), " if action == "complete" else f"coalesce({column}, now()), ")
        + ("result = %s, " if action == "complete" else "")
        + ("accepted_by_id = %s, " if action == "accept" else "")
        + "updated_at = now() WHERE id = %s AND status = %s RETURNING id, status"
    )
    for action, (_source, _target, column, _kind, _clock) in STEPS.items()
}
TASK_EVENT_SQL = """
INSERT INTO dispatch_taskevent (task_id, kind, at, actor_id, data)
VALUES (%s, %s, now(), %s, %s)
"""
TIMELINE_SQL = """
INSERT INTO incidents_incidentevent (incident_id, kind, at, actor_id, data, public)
VALUES (%s, %s, now(), %s, %s, false) RETURNING id
"""
CLOCK_STOP_SQL = """
UPDATE sla_slaclock SET status = 'stopped', stopped_at = now(), stop_reason = %s,
       next_check_at = NULL, updated_at = now(),
       breached_at = CASE WHEN breached_at IS NULL AND due_at < now() THEN due_at
                          ELSE breached_at END
WHERE kind = %s AND subject_type = 'task' AND subject_id = %s
  AND status IN ('running', 'paused')
"""
RELEASE_SQL = """
UPDATE notifications_notification SET ack_deadline = NULL, updated_at = now()
WHERE dedupe_key LIKE %s AND ack_deadline IS NOT NULL AND acknowledged_at IS NULL
  AND fallback_at IS NULL
"""
START_SQL = """
UPDATE incidents_incident SET status = 'in_progress',
       in_progress_at = coalesce(in_progress_at, now()), updated_at = now()
WHERE id = %s AND status = 'accepted'
"""
MEMBERS_SQL = "SELECT user_id FROM dispatch_teammember WHERE team_id = %s AND is_active"
RESERVE_SQL = """
INSERT INTO realtime_streamcounter AS counter (stream, last_seq)
SELECT wanted.stream, wanted.n
FROM unnest(%s::text[], %s::bigint[]) AS wanted(stream, n)
ORDER BY wanted.stream COLLATE "C"
ON CONFLICT (stream) DO UPDATE SET last_seq = counter.last_seq + EXCLUDED.last_seq
RETURNING stream, last_seq
"""
EVENTS_SQL = """
INSERT INTO realtime_event (stream, seq, kind, payload, created_at)
SELECT row.stream, row.seq, row.kind, row.payload::jsonb, now()
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[]) AS row(stream, seq, kind, payload)
"""
TEAM_SQL = "SELECT status FROM dispatch_team WHERE id = %s FOR UPDATE"
LIVE_SQL = """
SELECT array_agg(DISTINCT status) FROM dispatch_dispatchtask
WHERE team_id = %s AND status IN ('dispatched', 'accepted', 'en_route', 'on_scene',
                                  'completed', 'returned')
"""
DUTY_SQL = (
    "SELECT EXISTS (SELECT 1 FROM dispatch_teammember WHERE team_id = %s AND is_active AND on_duty)"
)
TEAM_UPDATE_SQL = "UPDATE dispatch_team SET status = %s, updated_at = now() WHERE id = %s"
ANSWER_SQL = """
UPDATE core_idempotentrequest SET response_status = 200, response_body = %s, updated_at = now()
WHERE id = %s
"""

_redis: aioredis.Redis | None = None


class _Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        self.answer: Answer = (status, {"code": code})


def _publisher() -> aioredis.Redis:
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return _redis


async def _events(conn: AsyncConnection[Any], events: list[tuple[str, str, str]]) -> list[str]:
    counts: dict[str, int] = {}
    for stream, _kind, _payload in events:
        counts[stream] = counts.get(stream, 0) + 1
    ordered = sorted(counts)
    cursor = await conn.execute(RESERVE_SQL, (ordered, [counts[s] for s in ordered]))
    last = {stream: int(seq) for stream, seq in await cursor.fetchall()}
    next_seq = {stream: last[stream] - n + 1 for stream, n in counts.items()}
    seqs = []
    for stream, _kind, _payload in events:
        seqs.append(next_seq[stream])
        next_seq[stream] += 1
    columns = list(zip(*events, strict=True))
    await conn.execute(EVENTS_SQL, (list(columns[0]), seqs, list(columns[1]), list(columns[2])))
    return [
        json.dumps({"stream": e[0], "seq": s, "kind": e[1]}) + e[2]
        for e, s in zip(events, seqs, strict=True)
    ]


async def _team_follow(conn: AsyncConnection[Any], team_id: int) -> None:
    status = (await (await conn.execute(TEAM_SQL, (team_id,))).fetchone())[0]  # type: ignore[index]
    if status == "out_of_service":
        return
    live = set((await (await conn.execute(LIVE_SQL, (team_id,))).fetchone())[0] or ())  # type: ignore[index]
    if live & {"accepted", "en_route", "on_scene"}:
        derived = "busy"
    elif live & {"dispatched", "completed", "returned"}:
        derived = "dispatched"
    else:
        on_duty = (await (await conn.execute(DUTY_SQL, (team_id,))).fetchone())[0]  # type: ignore[index]
        derived = "available" if on_duty else "off_duty"
    if derived != status:
        await conn.execute(TEAM_UPDATE_SQL, (derived, team_id))


async def transition(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    action = request.query.get("action", "")
    step = STEPS.get(action)
    key = request.headers.get("idempotency-key", "")
    try:
        task_id = int(request.query.get("task", ""))
        user_id = int(request.query.get("user", ""))
    except ValueError:
        return 400, {"code": "invalid"}
    if step is None or not key:
        return 400, {"code": "invalid"}
    body = json.loads(request.body or b"{}")
    source, target, _column, kind, clock = step
    try:
        async with pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                KEY_SQL,
                (
                    f"user:{user_id}",
                    key,
                    request.path,
                    hashlib.sha256(request.body).hexdigest(),
                ),
            )
            key_row = await cursor.fetchone()
            if key_row is None:
                raise _Refused(409, "idempotency_key_reused")
            locked = await (await conn.execute(LOCK_SQL, (task_id,))).fetchone()
            if locked is None:
                raise _Refused(404, "task_not_found")
            incident_id, incident_status, region_path, team_id = locked
            if await (await conn.execute(MEMBER_SQL, (team_id, user_id))).fetchone() is None:
                raise _Refused(403, "not_team_member")
            params: list[Any] = [target]
            if action == "complete":
                params.append(str(body.get("result", "")))
            if action == "accept":
                params.append(user_id)
            row = await (
                await conn.execute(UPDATE_SQL[action], (*params, task_id, source))
            ).fetchone()
            if row is None:
                raise _Refused(409, "illegal_task_transition")
            data = {"result": body["result"]} if action == "complete" else {}
            await conn.execute(TASK_EVENT_SQL, (task_id, kind, user_id, Jsonb(data)))
            entry = {"task_id": task_id, "team_id": team_id, "status": target, **data}
            await conn.execute(TIMELINE_SQL, (incident_id, f"task_{kind}", user_id, Jsonb(entry)))
            if clock is not None:
                await conn.execute(CLOCK_STOP_SQL, (kind, clock, task_id))
            if action == "accept":
                await conn.execute(RELEASE_SQL, (f"task:{task_id}:dispatched:%",))
            started = False
            if action == "accept" and incident_status == "accepted":
                started = (await conn.execute(START_SQL, (incident_id,))).rowcount == 1
                if started:
                    change = {"from": "accepted", "to": "in_progress"}
                    await conn.execute(
                        TIMELINE_SQL.replace("false", "true"),
                        (incident_id, "in_progress", user_id, Jsonb(change)),
                    )
            members = [r[0] for r in await (await conn.execute(MEMBERS_SQL, (team_id,))).fetchall()]
            incident_streams = [f"incident.{incident_id}"] + [
                f"region.{code}" for code in region_path.strip("/").split("/") if code
            ]
            payload = json.dumps({"task": {"id": task_id, "status": target}, "entry": entry})
            events = [
                (stream, f"task.{kind}", payload)
                for stream in [*incident_streams, *(f"user.{m}" for m in members)]
            ]
            if started:
                events += [(stream, "incident.in_progress", payload) for stream in incident_streams]
            frames = await _events(conn, events)
            await _team_follow(conn, team_id)
            answer = {"id": row[0], "status": row[1]}
            await conn.execute(ANSWER_SQL, (Jsonb(answer), key_row[0]))
    except _Refused as refused:
        return refused.answer
    async with _publisher().pipeline(transaction=False) as pipe:
        for frame in frames:
            pipe.publish(CHANNEL, frame)
        await pipe.execute()
    return 200, answer


app = RawApp({}, post_routes={"/transition": transition})
