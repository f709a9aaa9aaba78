"""Raw baselines of citizen report intake: psycopg and plain Python, no framework.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_intake:app``). The routes take the project's request unchanged
(``POST`` with the JSON body of ``POST /api/v1/reports/`` and its headers).

``POST /insert``
    the PostgreSQL floor: **one single-row INSERT** into ``incidents_report`` (the real
    table, its indexes and foreign keys), autocommit, one row per transaction,
    ``RETURNING id``. Category and street ids come from maps loaded at start-up (the
    street is a fixed one: no routing); the token is generated like the project's.
``POST /intake``
    the project's intake work with the least machinery: the same SQL statements the
    project sends for one report, minus Django's savepoints (``bench_intake`` profiles
    them): ``SELECT`` the category by code; route the point to a street in Python from
    streets loaded at start-up (boundary, then nearest centre, as the project's
    in-process street index); check the category fields; then one transaction of
    ``INSERT`` idempotency key, ``INSERT`` report, ``UPDATE`` the key with the stored
    answer; after commit the ``SELECT`` of the report's street code the project's
    on-commit hook runs. It answers with the project's JSON shape. Left out — what the
    ratio prices — Django's request cycle and middleware, DRF parsing and serializers,
    the three intake throttles (six Redis round trips), the street index's Redis
    version check, savepoints, and the idempotency fingerprint's JSON round trip.
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
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bench.raw_regions import geojson_covers, haversine_km
from bench.rawasgi import Answer, Query, RawApp, RawRequest

logger = logging.getLogger(__name__)

TIME_ZONE = ZoneInfo("Asia/Shanghai")  # settings.TIME_ZONE: DRF renders local time
MAX_DISTANCE_KM = 8.0  # REGION_LOOKUP_MAX_DISTANCE_KM's default
REPORTS_PATH = "/api/v1/reports/"

INSERT_REPORT_SQL = """
    INSERT INTO incidents_report (
        token, reporter_id, phone, channel, category_id, text, lat, lng, address,
        region_id, extra, is_sos, status, incident_id, rejection_reason, triaged_at,
        triaged_by_id, rating, rating_comment, rated_at, reopen_requested_at,
        reopen_reason, client_ip, device_id, created_at, updated_at
    ) VALUES (
        %s, NULL, %s, 'app', %s, %s, %s, %s, '', %s, %s, false, 'submitted', NULL, '',
        NULL, NULL, NULL, '', NULL, NULL, '', %s, %s, now(), now()
    ) RETURNING id, created_at
"""

CATEGORY_SQL = """
    SELECT id, code, citizen_reportable, extra_fields
    FROM incidents_category WHERE code = %s AND is_active
    ORDER BY sort_order, code LIMIT 1
"""

INSERT_KEY_SQL = """
    INSERT INTO core_idempotentrequest
        (scope, key, method, path, request_hash, response_status, response_body,
         created_at, updated_at)
    VALUES ('anon', %s, 'POST', %s, %s, 0, NULL, now(), now())
    RETURNING id
"""

UPDATE_KEY_SQL = """
    UPDATE core_idempotentrequest
    SET response_status = 201, response_body = %s, updated_at = now()
    WHERE id = %s
"""

AFTER_COMMIT_SQL = """
    SELECT r.code, rep.is_sos FROM incidents_report rep
    JOIN regions_region r ON r.id = rep.region_id WHERE rep.id = %s
"""

STREETS_SQL = """
    SELECT id, code, name_zh, name_en, level, path, centre_lat, centre_lng, boundary
    FROM regions_region WHERE is_active AND level IN ('new_area', 'new_town', 'street')
    ORDER BY path
"""

# Filled at start-up (one worker process each): the project keeps the same in memory.
_categories: dict[str, int] = {}
_streets: list[dict[str, Any]] = []
_areas: list[dict[str, Any]] = []


async def load_maps(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT code, id FROM incidents_category")).fetchall()
        _categories.update(dict(rows))
        cur = await conn.execute(STREETS_SQL)
        names = [d.name for d in cur.description or ()]
        regions = [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
    active = {r["path"] for r in regions}
    for region in regions:
        if region["level"] == "new_area" and region["boundary"]:
            _areas.append(region["boundary"])
        elif region["level"] == "street":
            parts = region["path"].strip("/").split("/")
            ancestors = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]
            if all(a in active for a in ancestors):  # an inactive ancestor hides it
                _streets.append(region)


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


def _error(status: int, code: str) -> Answer:
    return status, {"code": code, "message": code, "extra": {}}


def _fields_ok(declarations: list[dict[str, Any]], extra: dict[str, Any]) -> bool:
    """The category-field check, reduced to what the bench's reports exercise."""
    declared = {d["name"]: d for d in declarations}
    for name, value in extra.items():
        declaration = declared.get(name)
        if declaration is None:
            return False
        kind = declaration.get("type")
        if kind == "boolean" and not isinstance(value, bool):
            return False
        if kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            low, high = declaration.get("min"), declaration.get("max")
            if (low is not None and value < low) or (high is not None and value > high):
                return False
    return True


def _phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+86{digits[-11:]}" if digits else ""


async def insert(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    """One single-row INSERT, autocommit."""
    data = json.loads(request.body)
    street = _streets[0]
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            cur = await conn.execute(
                INSERT_REPORT_SQL,
                (
                    secrets.token_urlsafe(32),
                    _phone(data.get("phone") or ""),
                    _categories[data["category"]],
                    data.get("text") or "",
                    float(data["lat"]),
                    float(data["lng"]),
                    street["id"],
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


@dataclass
class _Report:
    """A validated report, ready to insert: what ``/intake`` and ``/intake_grouped`` share."""

    key: uuid.UUID
    fingerprint: str
    token: str
    params: tuple[Any, ...]  # INSERT_REPORT_SQL's parameters
    street: dict[str, Any]
    host: str


async def _validate(conn: psycopg.AsyncConnection[Any], request: RawRequest) -> _Report | Answer:
    """Parse, read the category, route the point to a street, check the category fields."""
    try:
        key = uuid.UUID(request.headers["idempotency-key"].strip())
        data = json.loads(request.body)
        lat, lng = float(data["lat"]), float(data["lng"])
        code = str(data["category"])
    except (KeyError, ValueError, TypeError):
        return _error(400, "invalid")
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return _error(400, "invalid")
    extra = data.get("extra") or {}
    fingerprint = hashlib.sha256(b"POST\0" + REPORTS_PATH.encode() + b"\0" + request.body)
    cur = await conn.execute(CATEGORY_SQL, (code,))
    category = await cur.fetchone()
    await conn.commit()  # the project reads the category outside the transaction
    if category is None or not category[2]:
        return _error(400, "category_unknown")
    street = locate(lat, lng)
    if street is None:
        return _error(422, "point_outside_area")
    if not isinstance(extra, dict) or not _fields_ok(category[3], extra):
        return _error(400, "category_field_invalid")
    token = secrets.token_urlsafe(32)
    params = (
        token,
        _phone(data.get("phone") or ""),
        category[0],
        (data.get("text") or "").strip(),
        lat,
        lng,
        street["id"],
        Jsonb(extra),
        request.client,
        request.headers.get("x-device-id", "").strip()[:64],
    )
    host = request.headers.get("host", "127.0.0.1")
    return _Report(key, fingerprint.hexdigest(), token, params, street, host)


def _answer(report: _Report, report_id: int, created: datetime) -> dict[str, Any]:
    """The project's 201 body."""
    return {
        "id": report_id,
        "token": report.token,
        "status": "submitted",
        "public_status": "received",
        "is_sos": False,
        "region": {k: report.street[k] for k in ("code", "name_zh", "name_en")},
        "created_at": created.astimezone(TIME_ZONE).isoformat(),
        "tracking_url": f"http://{report.host}/api/v1/reports/track/{report.token}/",
    }


async def intake(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    """The project's intake SQL for one report (module docstring)."""
    async with pool.connection() as conn:
        report = await _validate(conn, request)
        if not isinstance(report, _Report):
            return report
        async with conn.transaction():
            cur = await conn.execute(INSERT_KEY_SQL, (report.key, REPORTS_PATH, report.fingerprint))
            key_row = await cur.fetchone()
            cur = await conn.execute(INSERT_REPORT_SQL, report.params)
            row = await cur.fetchone()
            assert key_row is not None
            assert row is not None
            answer = _answer(report, row[0], row[1])
            await conn.execute(UPDATE_KEY_SQL, (Jsonb(answer), key_row[0]))
        await conn.execute(AFTER_COMMIT_SQL, (row[0],))  # the on-commit hook's read
        await conn.commit()
    return 201, answer


# --- Group commit ----------------------------------------------------------------------------

GROUP_MAX_REPORTS = 64  # a batch is flushed when it holds this many reports...
GROUP_MAX_WAIT_S = float(os.environ.get("RAW_GROUP_MAX_WAIT_MS", "5")) / 1000  # ...or this old

_REPORT_ROW = "(" + ", ".join(
    [
        "%s", "NULL", "%s", "'app'", "%s", "%s", "%s", "%s", "''", "%s", "%s", "false",
        "'submitted'", "NULL", "''", "NULL", "NULL", "NULL", "''", "NULL", "NULL", "''",
        "%s::inet", "%s", "now()", "now()",
    ]
) + ")"  # fmt: skip
_REPORT_HEAD = INSERT_REPORT_SQL.split("VALUES", 1)[0]

GROUP_KEYS_SQL = """
    INSERT INTO core_idempotentrequest
        (scope, key, method, path, request_hash, response_status, response_body,
         created_at, updated_at)
    VALUES {rows}
    ON CONFLICT (scope, key) DO NOTHING
    RETURNING id, key
"""
GROUP_KEY_ROW = "('anon', %s, 'POST', %s, %s, 0, NULL, now(), now())"
GROUP_REPORTS_SQL = _REPORT_HEAD + "VALUES {rows} RETURNING id, created_at, token"
GROUP_UPDATE_KEYS_SQL = """
    UPDATE core_idempotentrequest AS k
    SET response_status = 201, response_body = v.body, updated_at = now()
    FROM (VALUES {rows}) AS v (id, body) WHERE k.id = v.id
"""
GROUP_UPDATE_ROW = "(%s::bigint, %s::jsonb)"
GROUP_AFTER_COMMIT_SQL = """
    SELECT rep.id, r.code, rep.is_sos FROM incidents_report rep
    JOIN regions_region r ON r.id = rep.region_id WHERE rep.id = ANY(%s)
"""
GROUP_STORED_SQL = """
    SELECT key, request_hash, response_status, response_body FROM core_idempotentrequest
    WHERE scope = 'anon' AND key = ANY(%s)
"""


def _rows(template: str, count: int) -> str:
    return ", ".join([template] * count)


@dataclass
class _Waiting:
    report: _Report
    future: asyncio.Future[Answer]
    queued_at: float


@dataclass
class GroupStats:
    """Per-process counters, served by ``GET /intake_grouped/stats``."""

    batches: int = 0
    reports: int = 0  # reports answered through a batch (201, replay or 4xx)
    largest: int = 0
    fallbacks: int = 0  # batches that failed and were retried report by report
    rejected: int = 0  # reports PostgreSQL refused on their own (answered 400)
    wait_s: float = 0.0  # summed queue time, enqueue to start of the batch's transaction
    commit_s: float = 0.0  # summed batch time, transaction start to answers ready

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "reports": self.reports,
            "largest": self.largest,
            "fallbacks": self.fallbacks,
            "rejected": self.rejected,
            "wait_s": round(self.wait_s, 6),
            "commit_s": round(self.commit_s, 6),
        }


@dataclass
class GroupCommitter:
    """One writer task per process: batches of validated reports, one transaction each.

    A request enqueues its validated report and awaits a future. The writer takes the
    queue's reports (at most ``GROUP_MAX_REPORTS``) as soon as the oldest has waited
    ``GROUP_MAX_WAIT_S``, the batch is full, or no other request of this process is still
    being validated (nothing more is about to join, so waiting would only add latency).
    It inserts the batch in one transaction, commits, runs the on-commit read for the
    batch, and only then resolves the futures: every 201 follows the COMMIT of its row.
    """

    queue: list[_Waiting] = field(default_factory=list)
    validating: int = 0  # requests of this process between arrival and enqueue
    stats: GroupStats = field(default_factory=GroupStats)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None

    def arrive(self) -> None:
        self.validating += 1

    def leave(self) -> None:
        self.validating -= 1
        if self.validating == 0 and self._wake is not None:
            self._wake.set()

    async def submit(self, pool: AsyncConnectionPool, report: _Report) -> Answer:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._writer(pool))
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.queue.append(_Waiting(report, future, time.perf_counter()))
        assert self._wake is not None
        self._wake.set()
        return await future

    def _ready(self) -> bool:
        return bool(self.queue) and (
            len(self.queue) >= GROUP_MAX_REPORTS
            or self.validating <= 0
            or time.perf_counter() - self.queue[0].queued_at >= GROUP_MAX_WAIT_S
        )

    async def _writer(self, pool: AsyncConnectionPool) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            while not self._ready():
                wake.clear()
                timeout = None
                if self.queue:
                    timeout = GROUP_MAX_WAIT_S - (time.perf_counter() - self.queue[0].queued_at)
                try:
                    async with asyncio.timeout(max(timeout, 0.0) if timeout is not None else None):
                        await wake.wait()
                except TimeoutError:
                    pass
            batch, self.queue[:GROUP_MAX_REPORTS] = self.queue[:GROUP_MAX_REPORTS], []
            try:
                await self._flush(pool, batch)
            except Exception as exc:  # never leave a request waiting: it answers 500
                logger.exception("group commit of %d reports failed", len(batch))
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)

    async def _flush(self, pool: AsyncConnectionPool, batch: list[_Waiting]) -> None:
        started = time.perf_counter()
        self.stats.batches += 1
        self.stats.reports += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        self.stats.wait_s += sum(started - w.queued_at for w in batch)
        async with pool.connection() as conn:
            try:
                answers = await _commit_batch(conn, [w.report for w in batch])
            except Exception as exc:
                # One bad row aborts the whole transaction: retry each report in its own
                # transaction, so only a row PostgreSQL (or psycopg) refuses fails: 400.
                logger.warning("batch of %d failed (%r); retrying one by one", len(batch), exc)
                self.stats.fallbacks += 1
                if conn.closed or conn.broken:
                    raise
                await conn.rollback()  # if it failed after COMMIT, in a read
                answers = []
                for waiting in batch:
                    try:
                        answers += await _commit_batch(conn, [waiting.report])
                    except (psycopg.DataError, psycopg.IntegrityError, UnicodeError) as row_exc:
                        logger.warning("report refused: %r", row_exc)
                        self.stats.rejected += 1
                        answers.append(_error(400, "invalid"))
                        await conn.rollback()
                    except Exception as row_exc:  # not the row's fault: this request 500s
                        if conn.closed or conn.broken:
                            raise
                        await conn.rollback()
                        answers.append((500, {"code": "server_error"}))
                        logger.error("report failed alone: %r", row_exc)
        self.stats.commit_s += time.perf_counter() - started
        for waiting, answer in zip(batch, answers, strict=True):
            if not waiting.future.done():  # the client may have gone away
                waiting.future.set_result(answer)


async def _commit_batch(conn: psycopg.AsyncConnection[Any], reports: list[_Report]) -> list[Answer]:
    """Insert ``reports`` in ONE transaction; their answers once it has committed.

    A key already stored (a retry, or the same key twice in the batch) inserts no report:
    after the commit it replays the stored answer, as the project does.
    """
    answers: dict[int, Answer] = {}
    async with conn.transaction():
        cur = await conn.execute(
            GROUP_KEYS_SQL.format(rows=_rows(GROUP_KEY_ROW, len(reports))),
            [v for r in reports for v in (r.key, REPORTS_PATH, r.fingerprint)],
        )
        key_ids = {key: key_id for key_id, key in await cur.fetchall()}
        new: list[tuple[int, _Report, int]] = []  # (index, report, key row id)
        for index, report in enumerate(reports):
            key_id = key_ids.pop(report.key, None)  # pop: a key twice inserts once
            if key_id is not None:
                new.append((index, report, key_id))
        if new:
            cur = await conn.execute(
                GROUP_REPORTS_SQL.format(rows=_rows(_REPORT_ROW, len(new))),
                [v for _i, r, _k in new for v in r.params],
            )
            inserted = {token: (rid, created) for rid, created, token in await cur.fetchall()}
            bodies: list[Any] = []
            for index, report, key_id in new:
                rid, created = inserted[report.token]
                answer = _answer(report, rid, created)
                answers[index] = (201, answer)
                bodies += [key_id, Jsonb(answer)]
            await conn.execute(
                GROUP_UPDATE_KEYS_SQL.format(rows=_rows(GROUP_UPDATE_ROW, len(new))), bodies
            )
    if new:  # the on-commit hook's read, once for the batch
        ids = [answer[1]["id"] for answer in answers.values()]
        await (await conn.execute(GROUP_AFTER_COMMIT_SQL, (ids,))).fetchall()
    replays = [r for i, r in enumerate(reports) if i not in answers]
    if replays:
        cur = await conn.execute(GROUP_STORED_SQL, ([r.key for r in replays],))
        stored = {row[0]: row[1:] for row in await cur.fetchall()}
        for index, report in enumerate(reports):
            if index in answers:
                continue
            request_hash, status, body = stored[report.key]
            if request_hash != report.fingerprint:
                answers[index] = _error(422, "idempotency_key_reused")
            elif status == 0:
                answers[index] = _error(409, "idempotency_in_progress")
            else:
                answers[index] = (status, body)
    await conn.commit()
    return [answers[i] for i in range(len(reports))]


_committer = GroupCommitter()


async def intake_grouped(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    """``/intake``'s validation and street lookup, then group commit (module docstring)."""
    _committer.arrive()
    try:
        async with pool.connection() as conn:
            report = await _validate(conn, request)
    finally:
        _committer.leave()  # before enqueueing: the writer may flush once nobody validates
    if not isinstance(report, _Report):
        return report
    return await _committer.submit(pool, report)


async def grouped_stats(pool: AsyncConnectionPool, query: Query) -> Answer:
    return 200, {"pid": os.getpid(), **_committer.stats.as_dict()}


app = RawApp(
    {"/intake_grouped/stats": grouped_stats},
    post_routes={"/insert": insert, "/intake": intake, "/intake_grouped": intake_grouped},
    on_startup=load_maps,
)
