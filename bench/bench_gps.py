"""Batched GPS ingestion (POST /api/v1/me/positions/) beside raw psycopg inserts of the same points.

Workload: ``RESPONDERS`` responders (throwaway users with tokens, ``TeamMember`` rows in
teams of ten at the first active street) each send batches of ``BATCH`` fixes taken every
5 s, as a phone does after collecting offline. Responders come in groups of ``GROUP``:
the group's responders take turns (round robin) until each has sent ``PER_RESPONDER``
consecutive batches, then the next group starts. So consecutive requests are different
responders and one responder's batches are ``GROUP`` requests apart, far more than are
in flight (they never race; the race has its own test), and within a run each
responder's 10-minute buckets fill over several batches, as in steady operation: the
first batch of a bucket inserts its chunk, the next ones merge into it (UPDATE). Every
request is a new batch (new times, its own ``Idempotency-Key``): the request list is
longer than any run, and after the run the stored points are counted to prove nothing
was replayed or lost.

Raw baseline, same run and machine: the same points, ``BATCH`` per transaction, inserted
with psycopg ``executemany`` into a plain table ``(user_id, t, lat, lng, accuracy)`` with
a primary key on ``(user_id, t)`` (the naive design that also ignores duplicates), by as
many threads as the load has clients; ``COPY`` into the same table without the key is
noted as the upper bound of the disk path.

Writes, measured in the database: rows and points stored (``count(*)`` and ``sum(count)``
of the responders' chunks before and after the load run) and **tuples written**, from
PostgreSQL's own counters (``pg_stat_user_tables``: ``n_tup_ins``, ``n_tup_upd``,
``n_tup_del`` of every table of the bench database, before and after). A backend
reports its counters when it goes idle, at most every second and within
``STATS_SETTLE_S`` of its last statement, so each snapshot waits until two readings
``STATS_SETTLE_S`` apart agree. The raw baseline's tuples are counted the same way.

Storage, as the tables really grow (no ``VACUUM FULL``): ``pg_total_relation_size`` of
the chunk table (heap, TOAST and indexes) right after the run — every UPDATE of a chunk
leaves its old version behind until a vacuum — then after a plain ``VACUUM``, with the
space it made reusable (``pgstattuple`` of the heap and its TOAST table; the file does
not shrink, later writes fill it). ``config.storage.autovacuum`` records whether the
server runs autovacuum (a server without it keeps every dead version). A day of 5,000
responders at 5 s (86.4 M points) is extrapolated from the measured bytes per point as
grown (``storage.day_5000_responders``) and, in ``config``, from the live bytes after
the plain ``VACUUM``; the naive table is measured the same way.
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
PER_RESPONDER = 8  # consecutive batches of a responder: 8 × 50 points × 5 s = 2,000 s
GROUP = 50  # responders taking turns (one's batches are GROUP requests apart)
REQUESTS = RESPONDERS * PER_RESPONDER  # 8,000 > any run
SEED = 20260104
BUCKET_S = 600  # DISPATCH_TRACK_BUCKET_MINUTES default
DAY_POINTS = 5000 * 86400 // STEP_S  # 5,000 responders pinging every 5 s for a day
GOAL_POINTS_PER_S = 5000
STATS_SETTLE_S = 11.0  # > PostgreSQL's idle stats flush interval (10 s)

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
    """``count`` batches ``(responder index, points)``: groups of ``GROUP`` responders in
    turn (module docstring), each responder's batches consecutive in time, positions a
    seeded random walk."""
    rng = random.Random(SEED)
    starts = [
        (centre[0] + rng.uniform(-0.05, 0.05), centre[1] + rng.uniform(-0.05, 0.05))
        for _ in range(RESPONDERS)
    ]
    offsets = [rng.randrange(0, BUCKET_S) * 1000 for _ in range(RESPONDERS)]
    walk = [list(start) for start in starts]
    batches = []
    for k in range(count):
        group, within = divmod(k, GROUP * PER_RESPONDER)
        nth, member = divmod(within, GROUP)
        who = (group * GROUP + member) % RESPONDERS
        nth += (group * GROUP) // RESPONDERS * PER_RESPONDER  # past the list: later batches
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


def _tuple_counters(ctx: BenchContext) -> dict[str, tuple[int, int, int, int]]:
    """``{table: (inserted, updated, hot updated, deleted)}`` once the counters are settled:
    two readings ``STATS_SETTLE_S`` apart agree (every backend has reported)."""

    def read() -> dict[str, tuple[int, int, int, int]]:
        rows = ctx.sql(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del "
            "FROM pg_stat_user_tables"
        )
        return {str(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    before = read()
    for _ in range(6):
        time.sleep(STATS_SETTLE_S)
        after = read()
        if after == before:
            return after
        before = after
    raise BenchError("tuple counters did not settle: something else writes to the bench database")


def _tuples_written(
    before: dict[str, tuple[int, int, int, int]], after: dict[str, tuple[int, int, int, int]]
) -> dict[str, dict[str, int]]:
    """Per table with any change: inserted, updated (of which HOT), deleted."""
    changed: dict[str, dict[str, int]] = {}
    for table, counts in after.items():
        old = before.get(table, (0, 0, 0, 0))
        delta = [a - b for a, b in zip(counts, old, strict=True)]
        if any(delta):
            changed[table] = dict(
                zip(("inserted", "updated", "hot", "deleted"), delta, strict=True)
            )
    return changed


def _writes(changed: dict[str, dict[str, int]]) -> int:
    return sum(c["inserted"] + c["updated"] + c["deleted"] for c in changed.values())


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
    # Out of batches before the deadline (a quiet machine inserts faster than REQUESTS
    # allows for): the threads were busy until the last batch, so the rate over the time
    # they took is still the rate; reusing batches would insert nothing (ON CONFLICT).
    latencies.sort()
    p99 = latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)] * 1000
    return {
        "points_per_s": inserted / elapsed,
        "batches": len(latencies),
        "p99_ms": p99,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "ran_out_of_batches": wrapped,
        "window_s": elapsed,
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


def _storage(ctx: BenchContext, table: str) -> dict[str, Any]:
    """Bytes of ``table`` as it grew, then after a plain ``VACUUM`` with what it freed."""
    size_sql = (
        "SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid), "
        "coalesce(pg_total_relation_size(c.reltoastrelid), 0), pg_indexes_size(c.oid), "
        "c.reltoastrelid FROM pg_class c WHERE c.oid = %s::regclass"
    )
    with psycopg.connect(ctx.database_url, autocommit=True) as conn:
        total, heap, toast, indexes, toast_oid = conn.execute(size_sql, (table,)).fetchone()  # type: ignore[misc]
        grown = {"total": total, "heap": heap, "toast": toast, "indexes": indexes}
        conn.execute(f"VACUUM {table}")
        total, heap, toast, indexes, _oid = conn.execute(size_sql, (table,)).fetchone()  # type: ignore[misc]
        vacuumed: dict[str, Any] = {
            "total": total,
            "heap": heap,
            "toast": toast,
            "indexes": indexes,
        }
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        except psycopg.Error as exc:
            vacuumed["live"] = f"pgstattuple unavailable: {exc}".strip()
        else:
            live, free, dead = 0, 0, 0
            for relation in (table, int(toast_oid or 0)):
                if not relation:
                    continue
                row = conn.execute(
                    "SELECT tuple_len, free_space, dead_tuple_len FROM pgstattuple(%s::regclass)",
                    (relation,),
                ).fetchone()
                if row:
                    live, free, dead = live + row[0], free + row[1], dead + row[2]
            vacuumed.update(live_tuple_bytes=live, reusable_bytes=free, dead_tuple_bytes=dead)
    return {"grown": grown, "after_vacuum": vacuumed}


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
    rows_before, points_before = _stored(ctx)
    counters_before = _tuple_counters(ctx)

    # 4. The project under load; what it wrote, from the database.
    measured = ctx.load(app, requests, label="gps batches")
    rows_after, points_after = _stored(ctx)
    new_points = points_after - points_before
    sent = new_points // BATCH
    if new_points % BATCH or sent >= len(requests):
        raise BenchError(
            f"{new_points} new points for {len(requests)} distinct batches: the list wrapped "
            "(replays) or points were lost"
        )
    counters_after = _tuple_counters(ctx)
    written = _tuples_written(counters_before, counters_after)
    chunk = written.get("dispatch_trackchunk", {"inserted": 0, "updated": 0, "hot": 0})
    if chunk["inserted"] != rows_after - rows_before:
        raise BenchError(f"chunk inserts {chunk} do not match {rows_after - rows_before} new rows")
    chunk_storage = _storage(ctx, "dispatch_trackchunk")

    # 5. Raw baseline: the same points, one batch per transaction, same concurrency.
    raw_rows = _raw_rows(batches)
    raw = _raw_executemany(
        ctx, raw_rows, ctx.options.concurrency, ctx.options.warmup + ctx.options.duration
    )
    print(
        f"  {'raw executemany':<24} {raw['points_per_s']:>9,.1f} pts/s  "
        f"p50 {raw['p50_ms']:7.2f} ms  p99 {raw['p99_ms']:7.2f} ms  batches={raw['batches']}"
        f"{' (ran out of batches: rate over its own window)' if raw['ran_out_of_batches'] else ''}"
    )
    raw_written = _tuples_written(counters_after, _tuple_counters(ctx))
    raw_points = int(ctx.sql(f"SELECT count(*) FROM {RAW_TABLE}")[0][0])  # noqa: S608
    raw_storage = _storage(ctx, RAW_TABLE)
    copy_rate = _raw_copy(ctx, raw_rows)
    print(f"  {'raw COPY':<24} {copy_rate:>9,.1f} pts/s")

    # 6. Per 1,000 points, and a day of 5,000 responders.
    def per_k(value: float, points: int) -> float:
        return value * 1000 / max(points, 1)

    chunk_bpp = chunk_storage["grown"]["total"] / max(points_after, 1)
    raw_bpp = raw_storage["grown"]["total"] / max(raw_points, 1)
    live = chunk_storage["after_vacuum"].get("live_tuple_bytes")
    live_bpp = (
        (live + chunk_storage["after_vacuum"]["indexes"]) / max(points_after, 1)
        if isinstance(live, int)
        else None
    )
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
        "writes",
        {
            "project_tuples_by_table": written,
            "project_points": new_points,
            "raw_tuples_by_table": raw_written,
            "raw_points": raw_points,
            "source": "pg_stat_user_tables before/after, settled",
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
    autovacuum = ctx.sql("SHOW autovacuum")[0][0]
    ctx.note(
        "storage",
        {
            "chunks": chunk_storage,
            "chunk_points": points_after,
            "chunk_bytes_per_point_as_grown": round(chunk_bpp, 1),
            "chunk_bytes_per_point_live_after_vacuum": None
            if live_bpp is None
            else round(live_bpp, 1),
            "day_gib_live_after_vacuum": None
            if live_bpp is None
            else round(live_bpp * DAY_POINTS / gib, 2),
            "raw": raw_storage,
            "raw_points": raw_points,
            "raw_bytes_per_point_as_grown": round(raw_bpp, 1),
            "autovacuum": autovacuum,
            "day_points": DAY_POINTS,
            "day_chunk_rows": 5000 * 86400 // BUCKET_S,
            "note": "as grown = pg_total_relation_size (heap, TOAST, indexes) right after the "
            "run, dead versions of updated chunks included; a plain VACUUM makes them "
            "reusable (reusable_bytes) but does not shrink the files. Chunks of this run "
            "are partly filled at each responder's first and last bucket.",
        },
    )
    print(
        "  writes per 1,000 points: chunk tuples "
        f"{per_k(chunk['inserted'] + chunk['updated'], new_points):.1f} "
        f"(raw rows {per_k(_writes(raw_written), raw_points):.1f}), all tables "
        f"{per_k(_writes(written), new_points):.1f}; bytes/point as grown {chunk_bpp:.1f} "
        f"(raw {raw_bpp:.1f}), live after VACUUM {live_bpp or float('nan'):.1f}"
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
            value=per_k(rows_after, points_after),
            baseline=Baseline("naive rows per 1000 points", per_k(raw_points, raw_points), "rows"),
            better="lower",
            description="chunk rows stored per 1,000 points stored (counted)",
        ),
        Figure(
            name="writes.chunk_tuples_per_1000_points",
            unit="tuples",
            value=per_k(chunk["inserted"] + chunk["updated"], new_points),
            baseline=Baseline(
                "naive rows inserted per 1000 points",
                per_k(_writes(raw_written), raw_points),
                "tuples",
            ),
            better="lower",
            description="chunk inserts + updates per 1,000 points ingested (pg_stat)",
        ),
        Figure(
            name="writes.tuples_per_1000_points",
            unit="tuples",
            value=per_k(_writes(written), new_points),
            baseline=Baseline(
                "naive tuples per 1000 points", per_k(_writes(raw_written), raw_points), "tuples"
            ),
            better="lower",
            description="every table: chunks, last positions, team, idempotency keys (pg_stat)",
        ),
        Figure(
            name="storage.day_5000_responders",
            unit="GiB",
            value=chunk_bpp * DAY_POINTS / gib,
            baseline=Baseline("naive point rows GiB", raw_bpp * DAY_POINTS / gib, "GiB"),
            better="lower",
            description="86.4 M points at the bytes per point the tables grew by (no VACUUM FULL)",
        ),
    ]
