"""Batched GPS ingestion (POST /api/v1/me/positions/) beside raw psycopg inserts of the same points.

Workload: ``RESPONDERS`` responders (throwaway users with tokens, ``TeamMember`` rows in
teams of ten at the first active street) each send batches of ``BATCH`` fixes taken every
5 s, as a phone does after collecting offline; consecutive requests are different
responders, so batches of one responder never race (the race has its own test). Every
request is a new batch (new times, its own ``Idempotency-Key``): the request list is
longer than any run, and after the run the stored points are counted to prove nothing
was replayed or lost.

Raw baseline, same run and machine: the same points, ``BATCH`` per transaction, inserted
with psycopg ``executemany`` into a plain table ``(user_id, t, lat, lng, accuracy)`` with
a primary key on ``(user_id, t)`` (the naive design that also ignores duplicates), by as
many threads as the load has clients; ``COPY`` into the same table without the key is
noted as the upper bound of the disk path.

Storage: chunk rows stored per 1,000 points and row writes per 1,000 points (the naive
table: 1,000 each), and a day of 5,000 responders at 5 s (86.4 M points) extrapolated from
the measured bytes per point of both tables after ``VACUUM FULL``.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.harness import Baseline, BenchContext, BenchError, Figure
from bench.loadgen import Request

POSITIONS = "/api/v1/me/positions/"
PREFIX = "bench-gps"
RESPONDERS = 1000
TEAM_SIZE = 10
BATCH = 50
STEP_S = 5
REQUESTS = 8000  # > any run: 8 batches of 50 per responder
SEED = 20260104
BUCKET_S = 600  # DISPATCH_TRACK_BUCKET_MINUTES default
DAY_POINTS = 5000 * 86400 // STEP_S  # 5,000 responders pinging every 5 s for a day
GOAL_POINTS_PER_S = 5000

SETUP_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from apps.dispatch.models import Team, TeamMember
from apps.regions.models import Region
prefix, team_size = {prefix}, {team_size}
street = Region.objects.filter(level="street", is_active=True).order_by("path").first()
users = list(
    get_user_model().objects.filter(username__startswith=prefix + "-")
    .order_by("username").values_list("pk", flat=True)
)
members = []
for start in range(0, len(users), team_size):
    team, _ = Team.objects.get_or_create(
        code=f"{{prefix}}-team-{{start // team_size:04d}}",
        defaults={{"name": f"GPS bench team {{start // team_size}}", "kind": "professional",
                  "home_region": street, "status": "available"}},
    )
    chunk = users[start:start + team_size]
    members += [TeamMember(team=team, user_id=pk, on_duty=True) for pk in chunk]
TeamMember.objects.bulk_create(members, ignore_conflicts=True)
print(json.dumps({{"members": TeamMember.objects.filter(user_id__in=users).count(),
                  "centre": [street.centre_lat or 34.3, street.centre_lng or 108.8]}}))
"""

RAW_TABLE = "bench_gps_raw"
COPY_TABLE = "bench_gps_copy"


def _batches(
    count: int, t0_ms: int, centre: tuple[float, float]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """``count`` batches ``(responder index, points)``: round robin over responders, each
    responder's batches consecutive in time, positions a seeded random walk."""
    rng = random.Random(SEED)
    starts = [
        (centre[0] + rng.uniform(-0.05, 0.05), centre[1] + rng.uniform(-0.05, 0.05))
        for _ in range(RESPONDERS)
    ]
    offsets = [rng.randrange(0, BUCKET_S) * 1000 for _ in range(RESPONDERS)]
    walk = [list(start) for start in starts]
    batches = []
    for k in range(count):
        who, nth = k % RESPONDERS, k // RESPONDERS
        first = t0_ms + offsets[who] + nth * BATCH * STEP_S * 1000
        points = []
        for i in range(BATCH):
            walk[who][0] += rng.uniform(-2e-5, 2e-5)
            walk[who][1] += rng.uniform(-2e-5, 2e-5)
            points.append(
                {
                    "t": first + i * STEP_S * 1000,
                    "lat": round(walk[who][0], 6),
                    "lng": round(walk[who][1], 6),
                    "accuracy": round(rng.uniform(3, 15), 1),
                }
            )
        batches.append((who, points))
    return batches


def _buckets_touched(points: list[dict[str, Any]]) -> int:
    return len({p["t"] // (BUCKET_S * 1000) for p in points})


def _stored(ctx: BenchContext) -> tuple[int, int]:
    rows = ctx.sql(
        "SELECT count(*), coalesce(sum(c.count), 0) FROM dispatch_trackchunk c "
        "JOIN accounts_user u ON u.id = c.user_id WHERE u.username LIKE %s",
        (f"{PREFIX}-%",),
    )
    return int(rows[0][0]), int(rows[0][1])


def _raw_rows(batches: list[tuple[int, list[dict[str, Any]]]]) -> list[list[tuple[Any, ...]]]:
    return [
        [
            (
                who + 1,
                datetime.fromtimestamp(p["t"] / 1000, tz=UTC),
                p["lat"],
                p["lng"],
                p["accuracy"],
            )
            for p in points
        ]
        for who, points in batches
    ]


def _raw_executemany(
    ctx: BenchContext, rows: list[list[tuple[Any, ...]]], threads: int, duration: float
) -> dict[str, Any]:
    """Threads inserting one batch per transaction for ``duration`` s: points/s, p99."""
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        conn.execute(
            f"CREATE TABLE {RAW_TABLE} (user_id integer NOT NULL, t timestamptz NOT NULL, "
            "lat double precision NOT NULL, lng double precision NOT NULL, accuracy real, "
            "PRIMARY KEY (user_id, t))"
        )
    sql = (
        f"INSERT INTO {RAW_TABLE} (user_id, t, lat, lng, accuracy) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
    )
    lock = threading.Lock()
    cursor_index = iter(range(len(rows)))
    latencies: list[float] = []
    inserted = 0
    deadline = time.perf_counter() + duration
    wrapped = False

    def worker() -> None:
        nonlocal inserted, wrapped
        with psycopg.connect(ctx.database_url) as conn:
            while time.perf_counter() < deadline:
                with lock:
                    k = next(cursor_index, None)
                if k is None:
                    wrapped = True
                    return
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(sql, rows[k])
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    inserted += len(rows[k])

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if wrapped:
        raise BenchError("raw baseline ran out of batches: raise REQUESTS")
    latencies.sort()
    p99 = latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)] * 1000
    return {
        "points_per_s": inserted / elapsed,
        "batches": len(latencies),
        "p99_ms": p99,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
    }


def _raw_copy(ctx: BenchContext, rows: list[list[tuple[Any, ...]]]) -> float:
    """COPY every point into an unindexed table on one connection: points/s."""
    flat = [row for batch in rows for row in batch]
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(
            f"CREATE TABLE {COPY_TABLE} (user_id integer, t timestamptz, lat double precision, "
            "lng double precision, accuracy real)"
        )
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY {COPY_TABLE} (user_id, t, lat, lng, accuracy) FROM STDIN") as copy,
        ):
            for row in flat:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {COPY_TABLE}")
    return len(flat) / elapsed


def _bytes_per_point(ctx: BenchContext, table: str, points: int) -> float:
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        conn.execute(f"VACUUM FULL {table}")
        size = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()
    return float(size[0] if size else 0) / max(points, 1)


def run(ctx: BenchContext) -> list[Figure]:
    app = ctx.django()

    # 1. Responders: users with tokens, TeamMember rows (on duty) in teams of ten.
    tokens = ctx.mint_tokens(PREFIX, RESPONDERS)
    script = SETUP_SCRIPT.format(prefix=json.dumps(PREFIX), team_size=TEAM_SIZE)
    setup = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    if setup["members"] != RESPONDERS:
        raise BenchError(f"expected {RESPONDERS} team members, got {setup['members']}")
    centre = (float(setup["centre"][0]), float(setup["centre"][1]))

    # 2. Batches: tracks from 20 hours ago (offline-collected, inside retention).
    t0_ms = int((datetime.now(UTC) - timedelta(hours=20)).timestamp()) * 1000
    batches = _batches(REQUESTS + 1, t0_ms, centre)
    check_who, check_points = batches.pop()  # one batch outside the load, for the checks
    key_rng = random.Random(SEED + 1)

    def headers(who: int) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {tokens[who]}",
            "Idempotency-Key": str(uuid.UUID(int=key_rng.getrandbits(128), version=4)),
        }

    requests = [
        Request.post_json(POSITIONS, {"points": points}, headers(who), expect=200)
        for who, points in batches
    ]

    # 3. Before timing: a batch is stored, a resend is all duplicates, a retry replays.
    check_headers = headers(check_who)
    first = ctx.request(
        app, "POST", POSITIONS, headers=check_headers, json_body={"points": check_points}
    )
    if first != {"accepted": BATCH, "duplicates": 0, "rejected": 0, "rejections": []}:
        raise BenchError(f"first batch not stored as expected: {first}")
    again = ctx.request(
        app,
        "POST",
        POSITIONS,
        headers={**check_headers, "Idempotency-Key": str(uuid.uuid4())},
        json_body={"points": check_points},
    )
    if (again["accepted"], again["duplicates"]) != (0, BATCH):
        raise BenchError(f"resent batch not counted as duplicates: {again}")
    replay = ctx.request(
        app, "POST", POSITIONS, headers=check_headers, json_body={"points": check_points}
    )
    if replay != first:
        raise BenchError(f"idempotent retry did not replay: {replay}")
    _rows_before, points_before = _stored(ctx)

    # 4. The project under load.
    measured = ctx.load(app, requests, label="gps batches")
    rows_after, points_after = _stored(ctx)
    new_points = points_after - points_before
    sent = new_points // BATCH
    if new_points % BATCH or sent >= len(requests):
        raise BenchError(
            f"{new_points} new points for {len(requests)} distinct batches: the list wrapped "
            "(replays) or points were lost"
        )
    row_writes = sum(_buckets_touched(points) for _who, points in batches[:sent])

    # 5. Raw baseline: the same points, one batch per transaction, same concurrency.
    raw_rows = _raw_rows(batches)
    raw = _raw_executemany(
        ctx, raw_rows, ctx.options.concurrency, ctx.options.warmup + ctx.options.duration
    )
    print(
        f"  {'raw executemany':<24} {raw['points_per_s']:>9,.1f} pts/s  "
        f"p50 {raw['p50_ms']:7.2f} ms  p99 {raw['p99_ms']:7.2f} ms  batches={raw['batches']}"
    )
    copy_rate = _raw_copy(ctx, raw_rows)
    print(f"  {'raw COPY':<24} {copy_rate:>9,.1f} pts/s")

    # 6. Storage: bytes per point in chunks (project) and rows (raw), compacted.
    chunk_bpp = _bytes_per_point(ctx, "dispatch_trackchunk", points_after)
    raw_count = ctx.sql(f"SELECT count(*) FROM {RAW_TABLE}")[0][0]  # noqa: S608
    raw_bpp = _bytes_per_point(ctx, RAW_TABLE, int(raw_count))
    gib = 1024**3

    points_per_s = measured.rps * BATCH
    ctx.note(
        "workload",
        {
            "responders": RESPONDERS,
            "team_size": TEAM_SIZE,
            "batch_points": BATCH,
            "step_s": STEP_S,
            "distinct_batches": len(requests),
            "batches_sent": sent,
            "new_points_stored": new_points,
            "chunk_rows_stored": rows_after,
            "seed": SEED,
            "server_cpu_ms_per_batch": round(measured.server_cpu_ms, 2),
        },
    )
    ctx.note(
        "raw",
        {
            "executemany_points_per_s": round(raw["points_per_s"], 1),
            "executemany_batch_p50_ms": round(raw["p50_ms"], 2),
            "copy_points_per_s": round(copy_rate, 1),
            "table": "(user_id, t, lat, lng, accuracy) PRIMARY KEY (user_id, t)",
        },
    )
    ctx.note(
        "storage",
        {
            "chunk_bytes_per_point": round(chunk_bpp, 1),
            "raw_row_bytes_per_point": round(raw_bpp, 1),
            "day_points": DAY_POINTS,
            "day_chunk_rows": 5000 * 86400 // BUCKET_S,
            "note": "after VACUUM FULL, indexes included; chunks of this run are partly "
            "filled at each responder's first and last bucket, so the chunk figure is an "
            "upper bound for full 120-point chunks",
        },
    )
    return [
        Figure(
            name="ingest.points_per_s",
            unit="points/s",
            value=points_per_s,
            baseline=Baseline("raw executemany points/s", raw["points_per_s"], "points/s"),
            better="higher",
            goal=GOAL_POINTS_PER_S,
            description=f"POST {POSITIONS}, {BATCH}-point batches, many responders",
        ),
        Figure(
            name="ingest.batch_p99",
            unit="ms",
            value=measured.latency.p99_ms,
            baseline=Baseline("raw executemany batch p99", raw["p99_ms"], "ms"),
            better="lower",
            description="one batch: HTTP, JWT, idempotency key, chunks, last position, team",
        ),
        Figure(
            name="storage.rows_per_1000_points",
            unit="rows",
            value=rows_after * 1000 / max(points_after, 1),
            baseline=Baseline("naive rows per 1000 points", 1000.0, "rows"),
            better="lower",
            description="chunk rows stored per 1,000 points",
        ),
        Figure(
            name="storage.row_writes_per_1000_points",
            unit="rows",
            value=row_writes * 1000 / max(sent * BATCH, 1),
            baseline=Baseline("naive row writes per 1000 points", 1000.0, "rows"),
            better="lower",
            description="chunk inserts + updates per 1,000 points ingested",
        ),
        Figure(
            name="storage.day_5000_responders",
            unit="GiB",
            value=chunk_bpp * DAY_POINTS / gib,
            baseline=Baseline("naive point rows GiB", raw_bpp * DAY_POINTS / gib, "GiB"),
            better="lower",
            description="a day of 5,000 responders every 5 s (86.4 M points), tables + indexes",
        ),
    ]
