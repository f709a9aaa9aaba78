"""Raw baselines of the warnings bench: the fan-out's floor and the acknowledgements' floor.

**Fan-out** (:func:`raw_fanout`, run in the bench process): read the published version's
device tokens (one per responsible person's active device) and its topics with psycopg,
then send one FCM v1 ``messages:send`` request per token and per topic to the same fake
FCM server the project's workers send to, over as many keep-alive connections as the
project has delivery processes (``bench.loadgen.RawHttp1Connection``: the cheapest client
the bench has). The body is the shape firebase-admin sends for a warning (notification,
android, apns, data). One token grant first, as a worker's first send makes. Left out —
what the ratio prices — the outbox rows and their claims and outcomes, Celery and Redis,
one message per row, Django and firebase-admin.

**Acknowledgements** (``uvicorn bench.raw_warnings:app``, same worker count as the
project): ``POST /ack?warning=<version id>&user=<user id>`` with an ``Idempotency-Key``
header does, in one transaction, the writes of ``warning_acknowledge``
(``apps/early_warnings/services.py``) that the brief names as the floor, as hand-written
SQL on copies of the version's rows (:func:`copy_rows`):

1. the idempotency key row (``core_idempotentrequest``, scope of the user; a reused key
   answers 409 here — the bench sends each key once);
2. the conditional ``UPDATE`` of the person's acknowledgement row (``acked_at IS NULL``;
   404 when there is none for the user, as the project);
3. the stop of its open ``warning_ack`` clock (status, ``stopped_at``, reason,
   ``next_check_at``; the breach columns as ``clocks_close`` writes them);
4. the answer stored on the key; ``COMMIT``.

It answers ``{id, warning_id, acked_at, channel}``. Left out — what the ratio prices —
JWT authentication, Django's request cycle, the ORM, the chain timeline row, the push
receipts' ``UPDATE`` and the ``warning.acknowledged`` event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from bench.fake_fcm import ACCESS_TOKEN, JWT_GRANT
from bench.loadgen import RawHttp1Connection, Request, local_target
from bench.rawasgi import Answer, RawApp, RawRequest

ACK_TABLE = "bench_raw_ew_ack"
CLOCK_TABLE = "bench_raw_ew_clock"

# --- Acknowledgements --------------------------------------------------------------------------

KEY_SQL = """
INSERT INTO core_idempotentrequest (created_at, updated_at, scope, key, method, path,
                                    request_hash, response_status)
VALUES (now(), now(), %s, %s, 'POST', %s, %s, 0)
ON CONFLICT (scope, key) DO NOTHING RETURNING id
"""
ACK_SQL = f"""
UPDATE {ACK_TABLE} SET acked_at = now(), channel = 'app', updated_at = now()
WHERE version_id = %s AND user_id = %s AND acked_at IS NULL
RETURNING id, version_id, acked_at, channel
"""  # noqa: S608 - fixed table name
CLOCK_SQL = f"""
UPDATE {CLOCK_TABLE} SET status = 'stopped', stopped_at = now(), stop_reason = 'acknowledged',
    next_check_at = NULL, paused_at = NULL, updated_at = now(),
    breached_at = CASE WHEN breached_at IS NOT NULL THEN breached_at
                       WHEN due_at < now() THEN due_at END,
    target_missed_at = CASE WHEN target_missed_at IS NOT NULL THEN target_missed_at
                            WHEN target_at < now() THEN target_at END
WHERE kind = 'warning_ack' AND subject_type = 'warning_ack' AND subject_id = %s
  AND status IN ('running', 'paused')
"""  # noqa: S608 - fixed table name
ANSWER_SQL = """
UPDATE core_idempotentrequest SET response_status = 200, response_body = %s, updated_at = now()
WHERE id = %s
"""


class _Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


async def acknowledge(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    key = request.headers.get("idempotency-key", "")
    try:
        version_id = int(request.query.get("warning", ""))
        user_id = int(request.query.get("user", ""))
    except ValueError:
        return 400, {"code": "invalid"}
    if not key:
        return 400, {"code": "invalid"}
    try:
        async with pool.connection() as conn, conn.transaction():
            key_row = await (
                await conn.execute(
                    KEY_SQL,
                    (
                        f"user:{user_id}",
                        key,
                        request.path,
                        hashlib.sha256(request.body).hexdigest(),
                    ),
                )
            ).fetchone()
            if key_row is None:
                raise _Refused(409, "idempotency_key_reused")
            row = await (await conn.execute(ACK_SQL, (version_id, user_id))).fetchone()
            if row is None:
                raise _Refused(404, "warning_ack_not_found")
            ack_id, warning_id, acked_at, channel = row
            await conn.execute(CLOCK_SQL, (ack_id,))
            answer = {
                "id": ack_id,
                "warning_id": warning_id,
                "acked_at": acked_at.isoformat(),
                "channel": channel,
            }
            await conn.execute(ANSWER_SQL, (json.dumps(answer), key_row[0]))
    except _Refused as refused:
        return refused.status, {"code": refused.code}
    return 200, answer


app = RawApp({}, post_routes={"/ack": acknowledge})


def copy_rows(url: str, version_id: int) -> int:
    """Copies (same columns and indexes) of the version's acknowledgement rows and their
    clocks for the raw app; returns how many rows were copied."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table, source in (
            (ACK_TABLE, "early_warnings_acknowledgement"),
            (CLOCK_TABLE, "sla_slaclock"),
        ):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (LIKE {source} INCLUDING ALL)")
        copied = conn.execute(
            f"INSERT INTO {ACK_TABLE} SELECT * FROM early_warnings_acknowledgement "  # noqa: S608
            "WHERE version_id = %s",
            (version_id,),
        ).rowcount
        conn.execute(
            f"INSERT INTO {CLOCK_TABLE} SELECT c.* FROM sla_slaclock c "  # noqa: S608
            "JOIN early_warnings_acknowledgement a ON a.id = c.subject_id "
            "WHERE c.kind = 'warning_ack' AND c.subject_type = 'warning_ack' "
            "AND a.version_id = %s",
            (version_id,),
        )
        conn.execute(f"ANALYZE {ACK_TABLE}")
        conn.execute(f"ANALYZE {CLOCK_TABLE}")
    return int(copied)


def raw_state(url: str, version_id: int, user_ids: list[int]) -> dict[str, int]:
    """How many of the users' copied rows are acknowledged, and their clocks stopped."""
    with psycopg.connect(url) as conn:
        acked, stopped = conn.execute(
            f"SELECT count(a.acked_at), count(*) FILTER (WHERE c.status = 'stopped') "  # noqa: S608
            f"FROM {ACK_TABLE} a LEFT JOIN {CLOCK_TABLE} c ON c.kind = 'warning_ack' "
            "AND c.subject_type = 'warning_ack' AND c.subject_id = a.id "
            "WHERE a.version_id = %s AND a.user_id = ANY(%s)",
            (version_id, user_ids),
        ).fetchone() or (0, 0)
    return {"acked": int(acked), "clocks_stopped": int(stopped)}


# --- Fan-out -----------------------------------------------------------------------------------

TOKENS_SQL = """
SELECT d.token FROM early_warnings_acknowledgement a
JOIN accounts_device d ON d.user_id = a.user_id AND d.is_active
WHERE a.version_id = %s ORDER BY a.id, d.id
"""
TOPICS_SQL = """
SELECT 'region-' || r.code FROM early_warnings_warningtarget t
JOIN regions_region r ON r.id = t.region_id WHERE t.version_id = %s ORDER BY r.path
"""


def _message(target: dict[str, str], version_id: int, number: int) -> bytes:
    expires = str(int(time.time()) + 86400)
    message = {
        **target,
        "data": {
            "warning_id": str(version_id),
            "level": "red",
            "event": "published",
            "notification_id": str(number),
            "kind": "warning",
        },
        "notification": {"title": "红色预警", "body": "暴雨红色预警 (bench)"},
        "android": {
            "priority": "high",
            "ttl": "86400s",
            "notification": {"channel_id": "warning", "sound": "default"},
        },
        "apns": {
            "headers": {
                "apns-priority": "10",
                "apns-push-type": "alert",
                "apns-expiration": expires,
            },
            "payload": {"aps": {"sound": "default"}},
        },
    }
    return json.dumps({"message": message}, separators=(",", ":")).encode()


async def raw_fanout(
    database_url: str, fcm_url: str, project_id: str, version_id: int, concurrency: int
) -> dict[str, Any]:
    """Send the version's pushes the cheapest way; returns ``{started, sent}`` (epoch s)."""
    started = time.time()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        tokens = [t for (t,) in await (await conn.execute(TOKENS_SQL, (version_id,))).fetchall()]
        topics = [t for (t,) in await (await conn.execute(TOPICS_SQL, (version_id,))).fetchall()]
    host, port = local_target(fcm_url)
    token_conn = RawHttp1Connection(host, port)
    try:
        grant = await _post(
            token_conn,
            Request(
                "POST",
                "/token",
                (("Content-Type", "application/x-www-form-urlencoded"),),
                f"grant_type={JWT_GRANT}&assertion=bench".encode(),
            ),
        )
    finally:
        await token_conn.reset()
    bearer = json.loads(grant)["access_token"]
    if bearer != ACCESS_TOKEN:
        raise RuntimeError("the fake FCM server issued another token")
    path = f"/v1/projects/{project_id}/messages:send"
    headers = (("Content-Type", "application/json"), ("Authorization", f"Bearer {bearer}"))
    targets = [{"topic": t} for t in topics] + [{"token": t} for t in tokens]
    queue = iter(enumerate(targets))

    async def sender() -> int:
        conn = RawHttp1Connection(host, port)
        sent = 0
        try:
            for number, target in queue:
                body = _message(target, version_id, number)
                await _post(conn, Request("POST", path, headers, body))
                sent += 1
        finally:
            await conn.reset()
        return sent

    counts = await asyncio.gather(*(sender() for _ in range(concurrency)))
    return {"started": started, "sent": sum(counts), "tokens": len(tokens), "topics": len(topics)}


async def _post(conn: RawHttp1Connection, request: Request) -> bytes:
    status, body = await conn.send(request)
    if status != 200:
        raise RuntimeError(f"fake FCM answered {status}: {body[:200]!r}")
    return body
