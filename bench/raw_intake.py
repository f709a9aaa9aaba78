"""Raw baselines of citizen report intake: psycopg and plain Python, no framework.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_intake:app``). Both routes take the project's request unchanged
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

import hashlib
import json
import math
import secrets
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from bench.raw_regions import geojson_covers, haversine_km
from bench.rawasgi import Answer, RawApp, RawRequest

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


async def intake(pool: AsyncConnectionPool, request: RawRequest) -> Answer:
    """The project's intake SQL for one report (module docstring)."""
    try:
        key = uuid.UUID(request.headers["idempotency-key"].strip())
        data = json.loads(request.body)
        lat, lng = float(data["lat"]), float(data["lng"])
        code = str(data["category"])
        extra = data.get("extra") or {}
    except (KeyError, ValueError, TypeError):
        return _error(400, "invalid")
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return _error(400, "invalid")
    fingerprint = hashlib.sha256(b"POST\0" + REPORTS_PATH.encode() + b"\0" + request.body)
    async with pool.connection() as conn:
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
        async with conn.transaction():
            cur = await conn.execute(INSERT_KEY_SQL, (key, REPORTS_PATH, fingerprint.hexdigest()))
            key_row = await cur.fetchone()
            cur = await conn.execute(
                INSERT_REPORT_SQL,
                (
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
                ),
            )
            report = await cur.fetchone()
            assert key_row is not None
            assert report is not None
            created: datetime = report[1]
            host = request.headers.get("host", "127.0.0.1")
            answer = {
                "id": report[0],
                "token": token,
                "status": "submitted",
                "public_status": "received",
                "is_sos": False,
                "region": {k: street[k] for k in ("code", "name_zh", "name_en")},
                "created_at": created.astimezone(TIME_ZONE).isoformat(),
                "tracking_url": f"http://{host}/api/v1/reports/track/{token}/",
            }
            await conn.execute(UPDATE_KEY_SQL, (Jsonb(answer), key_row[0]))
        await conn.execute(AFTER_COMMIT_SQL, (report[0],))  # the on-commit hook's read
        await conn.commit()
    return 201, answer


app = RawApp({}, post_routes={"/insert": insert, "/intake": intake}, on_startup=load_maps)
