"""Raw baselines of citizen report intake: psycopg and plain Python, no framework.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_intake:app``). The routes take the project's requests unchanged
(the JSON body and headers of ``POST /api/v1/reports/`` and ``/api/v1/reports/sos/``).

``POST /insert``
    the PostgreSQL floor: **one single-row INSERT** into ``incidents_report`` (the real
    table, its indexes and foreign keys), autocommit, ``RETURNING id``. Not the same
    work as the project: the price of one row and one commit, nothing else.
``POST /intake`` and ``POST /intake/sos``
    **the database work of the project's intake, hand-written**: a report (or SOS) is
    checked in memory — JSON, ``Idempotency-Key``, bearer token (HS256 signature, expiry,
    type, as simplejwt checks it), category from a map loaded at start-up, the point routed
    to a street (boundary, then nearest centre, as the project's street index), the
    category fields, the phone — then handed to the process's group-commit writer, built
    like the project's (``apps.incidents.intake.writer``): batches of at most 64 reports,
    flushed when the oldest has waited 5 ms, the batch is full, or no other request of
    the process is still being checked; two transactions in flight. One transaction per
    batch writes, in the project's order:

    1. the idempotency keys (``INSERT … ON CONFLICT DO NOTHING RETURNING``; a key already
       there makes its request a replay, answered from the stored row after COMMIT);
    2. for logged-in citizens, the one ``SELECT`` of their accounts (active? call-back
       phone when they typed none);
    3. the reports;
    4. each report's **triage clock** (``sla_slaclock``, every column the project writes:
       the ``report_triage`` policy loaded at start-up picks duration, target and ladder;
       ``due_at``, ``target_at`` and ``next_check_at`` are computed as ``clock_new`` does;
       ``started_at`` is the report's ``created_at``);
    5. the duplicate candidates of the batch (the project's one ``LATERAL`` query, then the
       same distance/age score in Python, top 5);
    6. the stored answers (the 201 bodies) on the keys;
    7. SOS only: the duty officers of each SOS's street and new town (operators holding
       the street; operators and commanders holding the new town), their languages
       (latest active device), and one outbox row each in ``notifications_notification``
       (the project's columns, title and body in the recipient's language);
    8. last, the board events in the project's one statement (``EMIT_SQL`` of
       ``apps.realtime.events``): sequence numbers reserved on the streams (counters
       locked in sorted order until COMMIT) and one ``report.submitted`` row per stream —
       the street, each ancestor, and the report's own stream — with the project's
       payloads.

    After COMMIT the events are published to Redis (one pipeline: the channel-layer
    group channels and msgpack messages the project's publisher sends), the SOS pushes
    are enqueued (one ``LPUSH`` per batch to a list nobody reads: the project enqueues a
    Celery task per outbox row), and the requests are answered with the project's JSON.

    Left out, so the ratio prices them: Django's request objects, the intake rate limits
    and index generations (one Redis round trip per request in the project), the
    project's exact parsing rules, ORM model instances and the per-report queries the
    project makes where this makes one per batch (SOS recipients and languages).
``GET /intake/stats``
    the writer's counters (batches, reports, waits), per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import secrets
import time
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import msgpack
import psycopg
import redis.asyncio as aioredis
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bench.raw_regions import geojson_covers, haversine_km
from bench.rawasgi import Answer, Query, RawApp, RawRequest

logger = logging.getLogger(__name__)

TIME_ZONE = ZoneInfo("Asia/Shanghai")  # settings.TIME_ZONE: answers and events in local time
MAX_DISTANCE_KM = 8.0  # REGION_LOOKUP_MAX_DISTANCE_KM's default
REPORTS_PATH = "/api/v1/reports/"
SOS_PATH = "/api/v1/reports/sos/"
SOS_CATEGORY = "O99"  # INCIDENTS_SOS_CATEGORY_CODE's default
ANONYMOUS_SCOPE = "anon"
DUPLICATE_RADIUS_M = 500.0  # INCIDENTS_DUPLICATE_RADIUS_M's default
DUPLICATE_WINDOW_H = 24.0
DUPLICATE_LIMIT = 5
METRES_PER_DEGREE = 6371.0088 * 1000 * math.pi / 180
OPEN_STATUSES = ("reported", "accepted", "in_progress", "resolved")
TEXT_MAX, PHONE_MAX, ADDRESS_MAX, CATEGORY_MAX = 2000, 32, 300, 8
DELIVERY_LIST = "bench:raw_intake:deliver"  # the stand-in for the Celery queue

# --- Start-up maps (one worker process each: the project keeps the same in memory) ---------

_categories: dict[str, dict[str, Any]] = {}
_streets: list[dict[str, Any]] = []
_areas: list[dict[str, Any]] = []
_policies: list[dict[str, Any]] = []  # active report_triage policies with their ladders
_redis: list[aioredis.Redis] = []

STREETS_SQL = """
    SELECT id, code, name_zh, name_en, level, path, centre_lat, centre_lng, boundary
    FROM regions_region WHERE is_active AND level IN ('new_area', 'new_town', 'street')
    ORDER BY path
"""
CATEGORIES_SQL = """
    SELECT id, code, name_zh, citizen_reportable, extra_fields, related_codes
    FROM incidents_category WHERE is_active
"""
POLICIES_SQL = """
    SELECT id, category_code, severity, loop, target, duration FROM sla_slapolicy
    WHERE is_active AND kind = 'report_triage' ORDER BY id
"""
STEPS_SQL = """
    SELECT id, policy_id, anchor, after, notify_assignee, notify_team_leader,
           notify_street_duty, notify_new_town_command, notify_new_area_command,
           mark_supervised, raise_loop, expire_task, next_team, note
    FROM sla_slaladderstep WHERE policy_id = ANY(%s) ORDER BY id
"""
AUDIENCES = (
    ("assignee", "notify_assignee"),
    ("team_leader", "notify_team_leader"),
    ("street_duty", "notify_street_duty"),
    ("new_town_command", "notify_new_town_command"),
    ("new_area_command", "notify_new_area_command"),
)


def _ladder(policy: dict[str, Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The clock's ladder as ``apps.sla.policies.ladder_of`` orders and encodes it."""
    target, duration = policy["target"], policy["duration"] or timedelta(0)

    def offset(step: dict[str, Any]) -> tuple[timedelta, int, int]:
        base = target if step["anchor"] == "target" and target is not None else duration
        return (base + step["after"], 0 if step["anchor"] == "target" else 1, step["id"])

    return [
        {
            "n": number,
            "anchor": step["anchor"] if target is not None else "limit",
            "after_s": int(step["after"].total_seconds()),
            "audiences": [name for name, flag in AUDIENCES if step[flag]],
            "supervise": step["mark_supervised"],
            "raise_loop": step["raise_loop"],
            "expire_task": step["expire_task"],
            "next_team": step["next_team"],
            "note": step["note"],
        }
        for number, step in enumerate(sorted(steps, key=offset), start=1)
    ]


async def load_maps(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute(CATEGORIES_SQL)
        names = [d.name for d in cur.description or ()]
        for row in await cur.fetchall():
            category = dict(zip(names, row, strict=True))
            _categories[category["code"]] = category
        cur = await conn.execute(STREETS_SQL)
        names = [d.name for d in cur.description or ()]
        regions = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        cur = await conn.execute(POLICIES_SQL)
        names = [d.name for d in cur.description or ()]
        policies = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
        cur = await conn.execute(STEPS_SQL, ([p["id"] for p in policies],))
        names = [d.name for d in cur.description or ()]
        steps = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
    for policy in policies:
        policy["ladder"] = _ladder(policy, [s for s in steps if s["policy_id"] == policy["id"]])
        _policies.append(policy)
    active = {r["path"] for r in regions}
    for region in regions:
        if region["level"] == "new_area" and region["boundary"]:
            _areas.append(region["boundary"])
        elif region["level"] == "street":
            parts = region["path"].strip("/").split("/")
            ancestors = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]
            if all(a in active for a in ancestors):  # an inactive ancestor hides it
                _streets.append(region)
    _redis.append(aioredis.Redis.from_url(os.environ["REDIS_URL"]))


def locate(lat: float, lng: float) -> dict[str, Any] | None:
    """The street of a point: boundary first, then the nearest centre (as the project)."""
    if _areas and not any(geojson_covers(area, lat, lng) for area in _areas):
        return None

    def distance(street: dict[str, Any]) -> float:
        if street["centre_lat"] is None or street["centre_lng"] is None:
            return math.inf
        return haversine_km(lat, lng, street["centre_lat"], street["centre_lng"])

    containing = [s for s in _streets if s["boundary"] and geojson_covers(s["boundary"], lat, lng)]
    if containing:
        return min(containing, key=lambda s: (distance(s), s["path"]))
    best = min(_streets, key=lambda s: (distance(s), s["path"]), default=None)
    if best is None or distance(best) > MAX_DISTANCE_KM:
        return None
    return best


# --- Checks ----------------------------------------------------------------------------------


def _error(status: int, code: str) -> Answer:
    return status, {"code": code, "message": code, "extra": {}}


def _fields(declarations: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any] | None:
    """The category fields checked (types, ranges, required), in declaration order."""
    declared = {d["name"]: d for d in declarations}
    if any(name not in declared for name in extra):
        return None
    cleaned: dict[str, Any] = {}
    for name, declaration in declared.items():
        value = extra.get(name)
        if value is None or value == "":
            if declaration.get("required"):
                return None
            continue
        kind = declaration.get("type")
        if kind == "boolean" and not isinstance(value, bool):
            return None
        if kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            low, high = declaration.get("min"), declaration.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                return None
        cleaned[name] = value
    return cleaned


def _phone(raw: Any) -> str | None:
    """``+86`` and 11 digits, ``""`` for none, ``None`` if it is no mainland mobile."""
    if not raw:
        return ""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", raw) if ch not in " -()")
    digits = text.removeprefix("+86").removeprefix("0086")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return f"+86{digits}" if len(digits) == 11 and digits.isdigit() else None


def _text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name, "")
    if not isinstance(value, str) or len(value.strip()) > limit or "\x00" in value:
        return None
    return value.strip()


_jwt_key = os.environ.get("JWT_SIGNING_KEY") or os.environ.get("DJANGO_SECRET_KEY", "")


def _bearer(headers: dict[str, str], *, lenient: bool) -> int | bool | None:
    """The user id of a valid access token; ``None`` without one (or a bad one on SOS,
    which is then anonymous); ``False`` for a bad one on a report (refused)."""
    raw = headers.get("authorization")
    if raw is None:
        return None
    kind, _, token = raw.partition(" ")
    try:
        if kind != "Bearer" or not token:
            raise jwt.InvalidTokenError("not a bearer token")
        claims = jwt.decode(token, _jwt_key, algorithms=["HS256"])
        if claims.get("token_type") != "access":
            raise jwt.InvalidTokenError("not an access token")
        return int(claims["user_id"])
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError):
        return None if lenient else False


@dataclass
class _Report:
    """A checked report, ready for the writer."""

    scope: str
    key: uuid.UUID | None
    fingerprint: str
    path: str
    token: str
    reporter_id: int | None
    phone: str
    category: dict[str, Any]
    text: str
    lat: float
    lng: float
    street: dict[str, Any]
    extra: dict[str, Any]
    is_sos: bool
    client_ip: str | None
    device_id: str
    host: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: int | None = None


def _check(request: RawRequest, *, sos: bool) -> _Report | Answer:
    """Parse and check one report (or SOS) in memory; what the writer needs, or the 4xx."""
    headers = dict(request.headers)
    reporter = _bearer(headers, lenient=sos)
    if reporter is False:
        return _error(401, "not_authenticated")
    try:
        raw_key = headers.get("idempotency-key")
        key = uuid.UUID(raw_key.strip()) if raw_key is not None else None
        data = json.loads(request.body)
        lat, lng = float(data["lat"]), float(data["lng"])
        code = SOS_CATEGORY if sos else str(data["category"])
    except (KeyError, ValueError, TypeError, AttributeError):
        return _error(400, "invalid")
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return _error(400, "invalid")
    category = _categories.get(code)
    if category is None or len(code) > CATEGORY_MAX or not (sos or category["citizen_reportable"]):
        return _error(400, "category_unknown")
    street = locate(lat, lng)
    if street is None:
        return _error(422, "point_outside_area")
    extra = data.get("extra") or {}
    fields = {} if sos and not extra else _fields(category["extra_fields"], extra)
    text, typed = _text(data, "text", TEXT_MAX), _text(data, "phone", PHONE_MAX)
    phone = None if typed is None else _phone(typed)
    if fields is None or text is None or phone is None:
        return _error(400, "invalid")
    path = SOS_PATH if sos else REPORTS_PATH
    digest = hashlib.sha256(b"POST\0" + path.encode() + b"\0" + request.body).hexdigest()
    return _Report(
        scope=ANONYMOUS_SCOPE if reporter is None else f"user:{reporter}",
        key=key,
        fingerprint=digest,
        path=path,
        token=secrets.token_urlsafe(32),
        reporter_id=reporter if isinstance(reporter, int) else None,
        phone=phone,
        category=category,
        text=text,
        lat=lat,
        lng=lng,
        street=street,
        extra=fields,
        is_sos=sos,
        client_ip=request.client,
        device_id=headers.get("x-device-id", "").strip()[:64],
        host=headers.get("host", "127.0.0.1"),
    )


# --- The floor -------------------------------------------------------------------------------

INSERT_ONE_SQL = """
    INSERT INTO incidents_report (
        token, reporter_id, phone, channel, category_id, text, lat, lng, address,
        region_id, extra, is_sos, status, incident_id, rejection_reason, triaged_at,
        triaged_by_id, rating, rating_comment, rated_at, reopen_requested_at,
        reopen_reason, client_ip, device_id, created_at, updated_at
    ) VALUES (
        %s, NULL, %s, 'app', %s, %s, %s, %s, '', %s, %s, false, 'submitted', NULL, '',
        NULL, NULL, NULL, '', NULL, NULL, '', %s, %s, now(), now()
    ) RETURNING id
"""


async def insert(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    """One single-row INSERT, autocommit."""
    data = json.loads(request.body)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            cur = await conn.execute(
                INSERT_ONE_SQL,
                (
                    secrets.token_urlsafe(32),
                    _phone(data.get("phone")) or "",
                    _categories[data["category"]]["id"],
                    data.get("text") or "",
                    float(data["lat"]),
                    float(data["lng"]),
                    _streets[0]["id"],
                    Jsonb(data.get("extra") or {}),
                    request.client,
                    request.headers.get("x-device-id", "")[:64],
                ),
            )
            row = await cur.fetchone()
        finally:
            await conn.set_autocommit(False)
    assert row is not None
    return 201, {"id": row[0]}


# --- The batch's statements ------------------------------------------------------------------

KEYS_SQL = """
    INSERT INTO core_idempotentrequest
        (scope, key, method, path, request_hash, response_status, response_body,
         created_at, updated_at)
    SELECT scope, key, 'POST', path, hash, 0, NULL, now(), now()
    FROM unnest(%s::text[], %s::uuid[], %s::text[], %s::text[]) AS k(scope, key, path, hash)
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING id, scope, key
"""
REPORTERS_SQL = "SELECT id, phone FROM accounts_user WHERE id = ANY(%s) AND is_active"
REPORTS_SQL = """
    INSERT INTO incidents_report (
        token, reporter_id, phone, channel, category_id, text, lat, lng, address,
        region_id, extra, is_sos, status, incident_id, rejection_reason, triaged_at,
        triaged_by_id, rating, rating_comment, rated_at, reopen_requested_at,
        reopen_reason, client_ip, device_id, created_at, updated_at
    )
    SELECT token, reporter_id, phone, 'app', category_id, text, lat, lng, '', region_id,
           extra, is_sos, 'submitted', NULL, '', NULL, NULL, NULL, '', NULL, NULL, '',
           client_ip, device_id, created_at, created_at
    FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::text[],
                %s::float8[], %s::float8[], %s::bigint[], %s::jsonb[], %s::bool[],
                %s::inet[], %s::text[], %s::timestamptz[])
        AS r(token, reporter_id, phone, category_id, text, lat, lng, region_id, extra,
             is_sos, client_ip, device_id, created_at)
    RETURNING id, token
"""
CLOCKS_SQL = """
    INSERT INTO sla_slaclock (
        kind, subject_type, subject_id, subject_label, region_id, policy_id, category_code,
        severity, loop, is_drill, status, started_at, target_at, due_at, ladder, step,
        next_check_at, paused_at, paused_total, target_missed_at, breached_at, stopped_at,
        stop_reason, failures, last_error, created_at, updated_at
    )
    SELECT 'report_triage', 'report', subject_id, label, region_id, policy_id, code, '',
           '', false, 'running', started_at, target_at, due_at, ladder, 0, next_check_at,
           NULL, interval '0', NULL, NULL, NULL, '', 0, '', now(), now()
    FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],
                %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::jsonb[],
                %s::timestamptz[])
        AS c(subject_id, label, region_id, policy_id, code, started_at, target_at, due_at,
             ladder, next_check_at)
    ON CONFLICT DO NOTHING
    RETURNING id
"""
_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
DUPLICATES_SQL = f"""
    SELECT v.idx, i.id, i.lat, i.lng, i.created_at, i.category_id
    FROM jsonb_to_recordset(%s::jsonb) AS v (
        idx int, south float8, north float8, west float8, east float8,
        since timestamptz, until timestamptz, codes text[]
    )
    CROSS JOIN LATERAL (
        SELECT i.id, i.lat, i.lng, i.created_at, i.category_id
        FROM incidents_incident i JOIN incidents_category c ON c.id = i.category_id
        WHERE i.status IN ({_OPEN})
          AND i.created_at >= v.since AND i.created_at <= v.until
          AND i.lat >= v.south AND i.lat <= v.north
          AND i.lng >= v.west AND i.lng <= v.east
          AND c.code = ANY(v.codes)
    ) AS i
"""  # noqa: S608 (constants only)
ANSWERS_SQL = """
    UPDATE core_idempotentrequest AS k
    SET response_status = 201, response_body = v.body, updated_at = now()
    FROM unnest(%s::bigint[], %s::jsonb[]) AS v(id, body) WHERE k.id = v.id
"""
STORED_SQL = """
    SELECT scope, key, request_hash, response_status, response_body
    FROM core_idempotentrequest
    WHERE (scope, key) IN (SELECT * FROM unnest(%s::text[], %s::uuid[]))
"""
DUTY_SQL = """
    SELECT m.user_id, r.path, m.role FROM accounts_membership m
    JOIN accounts_user u ON u.id = m.user_id JOIN regions_region r ON r.id = m.region_id
    WHERE m.is_active AND u.is_active AND r.path = ANY(%s)
      AND m.role IN ('operator', 'commander')
"""
LANGUAGES_SQL = """
    SELECT DISTINCT ON (user_id) user_id, locale FROM accounts_device
    WHERE user_id = ANY(%s) AND is_active AND locale <> ''
    ORDER BY user_id, last_seen_at DESC NULLS LAST, id DESC
"""
NOTIFICATIONS_SQL = """
    INSERT INTO notifications_notification (
        dedupe_key, channel, kind, priority, topic, language, title, body, template, data,
        status, attempts, next_attempt_at, claimed_at, sent_at, last_error, skip_reason,
        result, ack_deadline, acknowledged_at, fallback_at, fallback_for_id, region_id,
        user_id, created_at, updated_at
    )
    SELECT dedupe_key, 'push', 'sos', 'high', '', language, title, body, template, data,
           'pending', 0, now(), NULL, NULL, '', '', '{}', NULL, NULL, NULL, NULL, NULL,
           user_id, now(), now()
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[], %s::jsonb[],
                %s::bigint[])
        AS n(dedupe_key, language, title, body, template, data, user_id)
    ON CONFLICT DO NOTHING
    RETURNING id
"""
# apps.realtime.events EMIT_SQL: sequence numbers reserved on the streams (counter rows
# locked in byte order of the name until COMMIT) and the event rows inserted, one
# statement; the payloads as one JSON array, each once however many streams it goes to.
EMIT_SQL = """
WITH reserved AS (
    INSERT INTO realtime_streamcounter AS counter (stream, last_seq)
    SELECT wanted.stream, wanted.n
    FROM unnest(%s::text[], %s::bigint[]) AS wanted(stream, n)
    ORDER BY wanted.stream COLLATE "C"
    ON CONFLICT (stream) DO UPDATE SET last_seq = counter.last_seq + EXCLUDED.last_seq
    RETURNING stream, last_seq
), payload AS (
    SELECT %s::jsonb AS items, %s::timestamptz AS created_at
)
INSERT INTO realtime_event (stream, seq, kind, payload, created_at)
SELECT row.stream, reserved.last_seq - row.below_last, row.kind, payload.items -> row.item,
       payload.created_at
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::int[])
    AS row(stream, below_last, kind, item)
JOIN reserved ON reserved.stream = row.stream
CROSS JOIN payload
RETURNING id, stream, seq
"""

# The SOS alarm's texts (apps.incidents.services.reports.sos_alert) and their zh-hans
# translations (locale/zh_Hans): the recipients here have no device, so LANGUAGE_CODE.
SOS_TITLE = "SOS in %(street)s"
SOS_BODY = "Report %(report)s at %(place)s: %(text)s"
SOS_BODY_BARE = "Report %(report)s at %(place)s: one-touch SOS, no text."
TRANSLATIONS = {
    "zh-hans": {
        SOS_TITLE: "%(street)s 紧急求助（SOS）",
        SOS_BODY: "报告 %(report)s，位置 %(place)s：%(text)s",
        SOS_BODY_BARE: "报告 %(report)s，位置 %(place)s：一键求助，无文字说明。",
    }
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _local(at: datetime) -> str:
    return at.astimezone(TIME_ZONE).isoformat()


def _policy(code: str) -> dict[str, Any] | None:
    """The most specific active report_triage policy for the category (policy_match)."""
    matches = [p for p in _policies if p["category_code"] in ("", code) and not p["severity"]]
    matches = [p for p in matches if not p["loop"]]
    return max(matches, key=lambda p: bool(p["category_code"]), default=None)


def _clock(report: _Report) -> tuple[Any, ...] | None:
    """The triage clock's computed columns (``apps.sla.services.clocks.clock_new``)."""
    policy = _policy(report.category["code"])
    if policy is None:
        return None
    begin = report.created_at
    due_at = begin + policy["duration"]
    target_at = begin + policy["target"] if policy["target"] is not None else None
    if target_at is not None and target_at > due_at:
        target_at = None
    moments = [due_at] if target_at is None else [target_at, due_at]
    if policy["ladder"]:
        first = policy["ladder"][0]
        base = target_at if first["anchor"] == "target" and target_at is not None else due_at
        moments.append(base + timedelta(seconds=first["after_s"]))
    category = report.category
    label = f"{category['code']} {category['name_zh']}"  # no address on citizen reports
    return (
        report.id,
        label[:200],
        report.street["id"],
        policy["id"],
        category["code"],
        begin,
        target_at,
        due_at,
        _dumps(policy["ladder"]),
        min(moments),
    )


def _candidates(reports: list[_Report], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """The project's score and order (``apps.incidents.duplicates``), top 5 per report."""
    window_s = DUPLICATE_WINDOW_H * 3600
    scored: dict[int, list[tuple[float, float, int, float]]] = {}
    for index, incident_id, lat, lng, created_at, category_id in rows:
        report = reports[index]
        distance_m = haversine_km(report.lat, report.lng, lat, lng) * 1000
        if distance_m > DUPLICATE_RADIUS_M:
            continue
        age_h = abs((report.created_at - created_at).total_seconds()) / 3600
        score = 0.6 * distance_m / DUPLICATE_RADIUS_M + 0.4 * min(age_h * 3600 / window_s, 1.0)
        if category_id != report.category["id"]:
            score += 0.1
        scored.setdefault(index, []).append(
            (round(score, 4), -created_at.timestamp(), incident_id, round(distance_m, 1))
        )
    return [
        [
            {"incident_id": incident_id, "distance_m": distance_m, "score": score}
            for score, _created, incident_id, distance_m in sorted(scored.get(index, []))[
                :DUPLICATE_LIMIT
            ]
        ]
        for index in range(len(reports))
    ]


def _answer(report: _Report) -> dict[str, Any]:
    """The project's 201 body (``report_created_body``)."""
    street = report.street
    return {
        "id": report.id,
        "token": report.token,
        "status": "submitted",
        "public_status": "received",
        "is_sos": report.is_sos,
        "region": {k: street[k] for k in ("code", "name_zh", "name_en")},
        "created_at": _local(report.created_at),
        "tracking_url": f"http://{report.host}/api/v1/reports/track/{report.token}/",
    }


def _streams(report: _Report) -> list[str]:
    codes = [code for code in report.street["path"].strip("/").split("/") if code]
    return sorted(f"region.{code}" for code in codes)


def _board_payload(report: _Report, candidates: list[Any]) -> str:
    return _dumps(
        {
            "report": {
                "id": report.id,
                "category": report.category["code"],
                "text": report.text,
                "address": "",
                "lat": report.lat,
                "lng": report.lng,
                "region": report.street["code"],
                "is_sos": report.is_sos,
                "created_at": _local(report.created_at),
            },
            "duplicate_candidates": candidates,
        }
    )


def _command_paths(path: str) -> tuple[str, str]:
    """(street, new town) paths above a street's path (``apps.sla.recipients``)."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[: min(3, len(parts))]) + "/", "/" + "/".join(parts[:2]) + "/"


async def _sos_alarms(cur: psycopg.AsyncCursor[Any], sos: list[_Report]) -> list[int]:
    """One outbox row per duty officer of each SOS's street and new town."""
    paths = {report.id: _command_paths(report.street["path"]) for report in sos}
    wanted = sorted({p for pair in paths.values() for p in pair})
    await cur.execute(DUTY_SQL, (wanted,))
    holders = await cur.fetchall()
    rows: list[tuple[Any, ...]] = []
    users = sorted({user_id for user_id, _p, _r in holders})
    languages: dict[int, str] = {}
    if users:
        await cur.execute(LANGUAGES_SQL, (users,))
        languages = dict(await cur.fetchall())
    for report in sos:
        street_path, town_path = paths[report.id]
        ids = sorted(
            {
                user_id
                for user_id, path, role in holders
                if (path == street_path and role == "operator") or path == town_path
            }
        )
        body = SOS_BODY if report.text else SOS_BODY_BARE
        args = {
            "street": report.street["name_zh"],
            "text": report.text[:200],
            "report": report.id,
            "place": f"{report.lat:.5f}, {report.lng:.5f}",
        }
        template = _dumps(
            {"title": SOS_TITLE, "body": body, "args": {k: str(v) for k, v in args.items()}}
        )
        data = _dumps({"report_id": str(report.id), "region": report.street["code"], "sos": "1"})
        for user_id in ids:
            language = languages.get(user_id, "zh-hans")
            texts = TRANSLATIONS.get(language, {})
            rows.append(
                (
                    f"sos:{report.id}:u{user_id}",
                    language,
                    (texts.get(SOS_TITLE, SOS_TITLE) % args)[:200],
                    (texts.get(body, body) % args)[:1000],
                    template,
                    data,
                    user_id,
                )
            )
    if not rows:
        return []
    await cur.execute(NOTIFICATIONS_SQL, [list(column) for column in zip(*rows, strict=True)])
    return [row[0] for row in await cur.fetchall()]


@dataclass
class _Done:
    """What a committed batch leaves for after COMMIT."""

    answers: list[Answer | None]
    frames: list[tuple[str, int, str]] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)


async def _commit_batch(conn: psycopg.AsyncConnection[Any], reports: list[_Report]) -> _Done:
    """Write ``reports`` in ONE transaction (module docstring, steps 1-8)."""
    done = _Done(answers=[None] * len(reports))
    async with conn.transaction(), conn.cursor() as cur:
        # 1. Keys: a key seen before (or twice in the batch) makes a replay.
        claimed = [r for r in reports if r.key is not None]
        taken: dict[tuple[str, uuid.UUID], int] = {}
        if claimed:
            await cur.execute(
                KEYS_SQL,
                (
                    [r.scope for r in claimed],
                    [r.key for r in claimed],
                    [r.path for r in claimed],
                    [r.fingerprint for r in claimed],
                ),
            )
            taken = {(scope, key): key_id for key_id, scope, key in await cur.fetchall()}
        live: list[tuple[int, _Report, int | None]] = []
        for index, report in enumerate(reports):
            if report.key is None:
                live.append((index, report, None))
            elif (key_id := taken.pop((report.scope, report.key), None)) is not None:
                live.append((index, report, key_id))
        # 2. Logged-in citizens: active accounts, their phone as the call-back number.
        wanted = sorted({r.reporter_id for _i, r, _k in live if r.reporter_id is not None})
        if wanted:
            await cur.execute(REPORTERS_SQL, (wanted,))
            phones = dict(await cur.fetchall())
            for index, report, _key in live:
                if report.reporter_id is not None and report.reporter_id not in phones:
                    done.answers[index] = _error(401, "not_authenticated")
                elif report.reporter_id is not None and not report.phone:
                    report.phone = phones[report.reporter_id] or ""
            live = [item for item in live if done.answers[item[0]] is None]
        if live:
            batch = [r for _i, r, _k in live]
            # 3. Reports.
            await cur.execute(
                REPORTS_SQL,
                (
                    [r.token for r in batch],
                    [r.reporter_id for r in batch],
                    [r.phone for r in batch],
                    [r.category["id"] for r in batch],
                    [r.text for r in batch],
                    [r.lat for r in batch],
                    [r.lng for r in batch],
                    [r.street["id"] for r in batch],
                    [_dumps(r.extra) for r in batch],
                    [r.is_sos for r in batch],
                    [r.client_ip for r in batch],
                    [r.device_id for r in batch],
                    [r.created_at for r in batch],
                ),
            )
            ids = {token: report_id for report_id, token in await cur.fetchall()}
            for report in batch:
                report.id = ids[report.token]
            # 4. Triage clocks.
            clocks = [c for c in (_clock(r) for r in batch) if c is not None]
            if clocks:
                await cur.execute(CLOCKS_SQL, [list(col) for col in zip(*clocks, strict=True)])
                await cur.fetchall()
            # 5. Duplicate candidates, one query for the batch.
            span = timedelta(hours=DUPLICATE_WINDOW_H)
            boxes = []
            for index, r in enumerate(batch):
                dlat = DUPLICATE_RADIUS_M / METRES_PER_DEGREE
                cos_lat = max(math.cos(math.radians(r.lat)), 1e-6)
                dlng = min(DUPLICATE_RADIUS_M / (METRES_PER_DEGREE * cos_lat), 180.0)
                boxes.append(
                    {
                        "idx": index,
                        "south": r.lat - dlat,
                        "north": r.lat + dlat,
                        "west": r.lng - dlng,
                        "east": r.lng + dlng,
                        "since": (r.created_at - span).isoformat(),
                        "until": (r.created_at + span).isoformat(),
                        "codes": [r.category["code"], *(r.category["related_codes"] or [])],
                    }
                )
            await cur.execute(DUPLICATES_SQL, (json.dumps(boxes),))
            candidates = _candidates(batch, await cur.fetchall())
            # 6. Stored answers.
            key_ids: list[int] = []
            bodies: list[str] = []
            for index, report, key_id in live:
                body = _answer(report)
                done.answers[index] = (201, body)
                if key_id is not None:
                    key_ids.append(key_id)
                    bodies.append(_dumps(body))
            if key_ids:
                await cur.execute(ANSWERS_SQL, (key_ids, bodies))
            # 7. SOS alarms.
            sos = [r for r in batch if r.is_sos]
            if sos:
                done.deliveries = await _sos_alarms(cur, sos)
            # 8. Events, last: board streams and the report's own stream.
            items: list[tuple[list[str], str]] = []
            for report, found in zip(batch, candidates, strict=True):
                items.append((_streams(report), _board_payload(report, found)))
                received = _dumps({"report_id": report.id, "public_status": "received"})
                items.append(([f"report.{report.id}"], received))
            counts = Counter(stream for streams, _text in items for stream in streams)
            ordered = sorted(counts)
            remaining = dict(counts)
            rows: list[tuple[str, int, int]] = []  # (stream, below the last number, item)
            for index, (streams, _text) in enumerate(items):
                for stream in streams:
                    remaining[stream] -= 1
                    rows.append((stream, remaining[stream], index))
            now = datetime.now(UTC)
            await cur.execute(
                EMIT_SQL,
                (
                    ordered,
                    [counts[stream] for stream in ordered],
                    "[" + ",".join(text for _streams, text in items) + "]",
                    now,
                    [stream for stream, _below, _item in rows],
                    [below for _stream, below, _item in rows],
                    ["report.submitted"] * len(rows),
                    [item for _stream, _below, item in rows],
                ),
            )
            last: dict[str, int] = {}
            for _id, stream, seq in await cur.fetchall():
                last[stream] = max(last.get(stream, 0), int(seq))
            at = _local(now)
            for stream, below, item in rows:
                seq = last[stream] - below
                kind = "report.submitted"
                head = _dumps(
                    {"type": "event", "stream": stream, "seq": seq, "kind": kind, "at": at}
                )
                done.frames.append((stream, seq, f'{head[:-1]},"data":{items[item][1]}}}'))
    # Replays: retries and repeated keys, answered from the rows now committed.
    replays = [(i, r) for i, r in enumerate(reports) if done.answers[i] is None]
    if replays:
        cur = await conn.execute(
            STORED_SQL, ([r.scope for _i, r in replays], [r.key for _i, r in replays])
        )
        stored = {(scope, key): rest for scope, key, *rest in await cur.fetchall()}
        for index, report in replays:
            request_hash, status, body = stored[(report.scope, report.key)]
            if request_hash != report.fingerprint:
                done.answers[index] = _error(422, "idempotency_key_reused")
            elif status == 0:
                done.answers[index] = _error(409, "idempotency_in_progress")
            else:
                done.answers[index] = (status, body)
        await conn.commit()
    return done


CHANNEL_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "asgi")


async def _after_commit(done: _Done) -> None:
    """Publish the events (channels-redis pub/sub wire) and enqueue the SOS pushes."""
    if not done.frames and not done.deliveries:
        return
    pipe = _redis[0].pipeline(transaction=False)
    for stream, seq, frame in done.frames:
        message = {"type": "realtime.event", "stream": stream, "seq": seq, "frame": frame}
        pipe.publish(f"{CHANNEL_PREFIX}__group__{stream}", msgpack.packb(message))
    if done.deliveries:
        pipe.lpush(DELIVERY_LIST, *done.deliveries)
    try:
        await pipe.execute()
    except Exception:  # best effort, as the project's publisher
        logger.exception("publishing %d events failed", len(done.frames))


# --- Group commit ----------------------------------------------------------------------------


@dataclass
class _Waiting:
    report: _Report
    future: asyncio.Future[Answer]
    queued_at: float


@dataclass
class GroupStats:
    batches: int = 0
    reports: int = 0
    largest: int = 0
    fallbacks: int = 0
    wait_s: float = 0.0  # summed queue time, enqueue to start of the batch
    commit_s: float = 0.0  # summed batch time, start to answers ready

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass
class GroupCommitter:
    """The project's writer (``apps.incidents.intake.writer.GroupCommitter``) in asyncio."""

    max_batch: int = 64
    max_wait_s: float = 0.005
    in_flight: int = 2
    queue: list[_Waiting] = field(default_factory=list)
    checking: int = 0
    stats: GroupStats = field(default_factory=GroupStats)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    def arrive(self) -> None:
        self.checking += 1

    def leave(self) -> None:
        self.checking -= 1
        if self.checking <= 0 and self._wake is not None:
            self._wake.set()

    async def submit(self, pool: AsyncConnectionPool, report: _Report) -> Answer:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(pool))
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.queue.append(_Waiting(report, future, time.perf_counter()))
        assert self._wake is not None
        self._wake.set()
        return await future

    def _ready(self) -> bool:
        return bool(self.queue) and (
            len(self.queue) >= self.max_batch
            or self.checking <= 0
            or time.perf_counter() - self.queue[0].queued_at >= self.max_wait_s
        )

    async def _run(self, pool: AsyncConnectionPool) -> None:
        wake = self._wake
        assert wake is not None
        slots = asyncio.Semaphore(self.in_flight)
        flushing: set[asyncio.Task[None]] = set()
        while True:
            while not self._ready():
                wake.clear()
                timeout = None
                if self.queue:
                    age = time.perf_counter() - self.queue[0].queued_at
                    timeout = max(self.max_wait_s - age, 0.0)
                try:
                    async with asyncio.timeout(timeout):
                        await wake.wait()
                except TimeoutError:
                    pass
            await slots.acquire()
            batch, self.queue[: self.max_batch] = self.queue[: self.max_batch], []
            if not batch:
                slots.release()
                continue
            task = asyncio.create_task(self._flush(pool, batch, slots))
            flushing.add(task)
            task.add_done_callback(flushing.discard)

    async def _flush(
        self, pool: AsyncConnectionPool, batch: list[_Waiting], slots: asyncio.Semaphore
    ) -> None:
        started = time.perf_counter()
        self.stats.batches += 1
        self.stats.reports += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        self.stats.wait_s += sum(started - w.queued_at for w in batch)
        answers: list[Answer | None] = []
        try:
            async with pool.connection() as conn:
                try:
                    done = await _commit_batch(conn, [w.report for w in batch])
                    answers = done.answers
                except Exception:
                    # Each report alone: only a row the database refuses fails (500 here).
                    logger.exception("batch of %d failed; one by one", len(batch))
                    self.stats.fallbacks += 1
                    if conn.broken:
                        raise
                    await conn.rollback()
                    done = _Done(answers=[])
                    for waiting in batch:
                        try:
                            alone = await _commit_batch(conn, [waiting.report])
                        except Exception:
                            await conn.rollback()
                            alone = _Done(answers=[(500, {"code": "server_error"})])
                        done.answers += alone.answers
                        done.frames += alone.frames
                        done.deliveries += alone.deliveries
                    answers = done.answers
            await _after_commit(done)
        except Exception:
            logger.exception("batch of %d failed", len(batch))
        finally:
            slots.release()
            self.stats.commit_s += time.perf_counter() - started
        for index, waiting in enumerate(batch):
            answer = answers[index] if index < len(answers) else None
            if not waiting.future.done():
                waiting.future.set_result(answer or (500, {"code": "server_error"}))


_committer = GroupCommitter()


async def _take(pool: AsyncConnectionPool, request: RawRequest, *, sos: bool) -> Answer:
    _committer.arrive()
    try:
        report = _check(request, sos=sos)
    finally:
        _committer.leave()
    if not isinstance(report, _Report):
        return report
    return await _committer.submit(pool, report)


async def intake(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    return await _take(pool, request, sos=False)


async def intake_sos(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    return await _take(pool, request, sos=True)


async def stats(pool: AsyncConnectionPool, query: Query) -> Answer:
    return 200, {"pid": os.getpid(), **_committer.stats.as_dict()}


app = RawApp(
    {"/intake/stats": stats},
    post_routes={"/insert": insert, "/intake": intake, "/intake/sos": intake_sos},
    on_startup=load_maps,
)
