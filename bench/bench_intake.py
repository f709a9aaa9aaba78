"""Citizen report intake: anonymous, logged-in, SOS at 8/64 clients, open loop; raw psycopg beside.

**What the project does per report** (``apps.incidents.intake``, the fast path in front of
Django, for ``POST /api/v1/reports/`` and ``/api/v1/reports/sos/``, anonymous or with a
citizen's bearer token): the checks of the views, the intake rate limits and index
generations in one Redis round trip, then the process's group-commit writer calls
``reports_submit_many`` — the one write path of citizen reports — with a batch in ONE
transaction: idempotency keys, reports, each report's **triage clock**, duplicate
candidates, stored answers, SOS alarms (outbox rows for the duty officers) and the
board events; the 201s follow the COMMIT. After COMMIT, in the same process: the events
are published to Redis (one pipeline) and each SOS outbox row's delivery is *enqueued*
(one Celery message each; no worker runs here and none is needed: delivery is not part
of intake). The raw baseline (``bench/raw_intake.py``, module docstring) does the same
database work hand-written with psycopg, with the same group commit.

**Set-up** (idempotent): ``load_categories``; ``load_sla_policies`` (without a policy no
triage clock is written and the figure would leave the clock out); one duty operator
per active street (``seed_demo`` brings the new towns' operators and the new area's
commander), so every SOS alarms its street and its new town; 1,000 open incidents near
the report points (duplicate candidates to find); 2,000 citizens with access tokens
(``ctx.mint_tokens``), minted again right before their timed runs (tokens live 15 minutes).

**Workloads** — every request a different caller: its own ``X-Device-Id``, client
address (``X-Forwarded-For`` from 10.0.0.0/8, trusted from 127.0.0.1 through
``TRUSTED_PROXIES`` as production trusts its router), phone and a fresh
``Idempotency-Key``, so the intake rate limits keep their production values:

* ``report``: anonymous JSON reports at 512 fixed points (``bench_regions.lookup_points``,
  seed 20260103), weighted categories with their category fields, Chinese text, a phone;
* ``citizen``: the same reports with ``Authorization: Bearer`` of one of the 2,000
  citizens (round robin) and no phone typed (the account's is the call-back number);
* ``sos``: anonymous ``POST /api/v1/reports/sos/``, a text on two of three.

**Closed-loop runs**: each workload at **8 and 64 clients** on the project and, right
after it, on the raw baseline at the same concurrency (same bodies, own keys). The goal
(≥ 1,000 reports/s, p99 ≤ 200 ms) is judged at 8 clients, the configuration it was set
for; the 64-client figures carry no goal. After each run every request must have made
exactly one report (none refused, none replayed); the project's log lines give the
batches (``config.batches``) and show whether any report fell back to the view.

**Open loop** (``bench/loadgen.py`` ``open_loop``): anonymous reports at a fixed Poisson
rate (``BENCH_INTAKE_RATE``, default 1,000/s) for ``BENCH_INTAKE_OPEN_SECONDS`` (default
60) after 2 s of the same rate unmeasured, on the project and then the raw baseline;
latency from the scheduled send time; errors (any non-201 or no answer within
``BENCH_INTAKE_OPEN_TIMEOUT`` s) are a figure with goal 0; the run fails if the generator
did not keep the rate (the window's arrivals sent over a span that makes under 99 % of
their scheduled rate: the server would not have seen the claimed load), and
``open.dispatch_lag_p99`` (goal ``BENCH_INTAKE_MAX_LAG_MS``, default 50) says whether it
kept the times (a late dispatch is part of the latency, so a miss makes the latency
figures pessimistic). Afterwards
every report of the run must have exactly one triage clock, committed in the report's own
transaction (same ``xmin``), started at the report's ``created_at`` (reports whose 201
came after the client gave up are counted apart); ``open.clock_lag_max`` bounds the time
from a clock's ``started_at`` to its report's COMMIT by the arrival of the 201 (the
COMMIT precedes it), goal ≤ 1 s.

**Checks before timing**: for each workload, the project and the raw app answer the same
body with the same JSON (ids, tokens and times aside), commit the row, replay a retry,
publish a board event to Redis, and write the same duplicate candidates; the SOS
enqueues deliveries. Then a short burst on each (1 s, 16 clients) and, per report,
counts of reports, triage clocks (with their computed columns), board and report-stream
events (with their payloads), stored answers and SOS outbox rows: the two must write the
same rows per report (``config.rows_per_report``).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import math
import os
import random
import time
import uuid
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgpack
import redis

from bench.bench_regions import lookup_points
from bench.harness import (
    Baseline,
    BenchContext,
    BenchError,
    Figure,
    Server,
    compare,
    cpu_cores,
    cpu_snapshot,
    server_process_cores,
)
from bench.loadgen import (
    LoadResult,
    OpenLoopResult,
    Request,
    closed_loop,
    open_loop,
    run_async,
    schedule_offsets,
)

REPORTS = "/api/v1/reports/"
SOS = "/api/v1/reports/sos/"
RAW_APP = "bench.raw_intake:app"
PROJECT_PATHS = {"report": REPORTS, "citizen": REPORTS, "sos": SOS}
RAW_PATHS = {"report": "/intake", "citizen": "/intake", "sos": "/intake/sos"}
KINDS = ("report", "citizen", "sos")
KIND_WHAT = {
    "report": f"anonymous POST {REPORTS}",
    "citizen": f"POST {REPORTS} by logged-in citizens (bearer tokens)",
    "sos": f"anonymous POST {SOS}",
}

GOAL_RPS = 1000.0
GOAL_P99_MS = 200.0
GOAL_CONCURRENCY = 8  # the configuration the goal was set for and is judged at
CONCURRENCIES = (8, 64)
CLOCK_LAG_GOAL_MS = 1000.0

OPEN_RATE = float(os.environ.get("BENCH_INTAKE_RATE", "1000"))
OPEN_SECONDS = float(os.environ.get("BENCH_INTAKE_OPEN_SECONDS", "60"))
OPEN_WARMUP = 2.0
OPEN_TIMEOUT = float(os.environ.get("BENCH_INTAKE_OPEN_TIMEOUT", "5"))
# Dispatch lag counts in the latency anyway (it is measured from the schedule); the bound
# rejects runs whose arrivals were not what the figure claims.
OPEN_MAX_LAG_MS = float(os.environ.get("BENCH_INTAKE_MAX_LAG_MS", "50"))
OPEN_MAX_CONNECTIONS = int(os.environ.get("BENCH_INTAKE_MAX_CONNECTIONS", "512"))
OPEN_SEED = 20260104

INCIDENTS = 1000
INCIDENT_SEED = 20260102
REPORT_SEED = 20260103
REPORT_POINTS = 512
RADIUS_KM = 1.5  # incidents and reports share the streets' neighbourhoods
CITIZENS = 2000
CANDIDATE_SAMPLE = 200  # report points whose duplicate candidates the setup counts
MAX_RPS = 4000  # closed-loop workloads hold this many reports per second of run
CLIENT_NET = int(ipaddress.IPv4Address("10.0.0.0"))
RUN_STRIDE = 1 << 18  # client addresses per run: 64 runs in 10.0.0.0/8
ROWS_CHECK_CONCURRENCY = 16

# (category, weight, text, category fields from a random source)
CATEGORIES: list[tuple[str, int, str, Any]] = [
    (
        "N02",
        4,
        "路口积水很深，车辆无法通行",
        lambda r: {"waterlogging_depth_cm": r.randint(5, 80), "vehicles_stalled": r.random() < 0.3},
    ),
    (
        "A01",
        2,
        "居民楼冒出浓烟，疑似起火",
        lambda r: {"people_trapped": r.randint(0, 3), "floor": r.randint(1, 30)},
    ),
    (
        "A04",
        2,
        "两车相撞，有人受伤",
        lambda r: {"people_trapped": r.randint(0, 2), "vehicles_involved": r.randint(2, 4)},
    ),
    (
        "A02",
        1,
        "楼道里有很浓的煤气味",
        lambda r: {"smell_of_gas": True, "fire_or_explosion": False},
    ),
    ("N05", 1, "路面塌陷出现一个坑", lambda r: {"hole_diameter_m": round(r.uniform(0.5, 4), 1)}),
    ("O99", 1, "井盖缺失，行人容易跌落", lambda r: {}),
]
SOS_TEXT = "被困在积水中，需要救援"

SEED_INCIDENTS_SCRIPT = """
import json, random, statistics, time
from datetime import timedelta
from django.db import transaction
from django.utils import timezone
from apps.incidents.duplicates import duplicate_candidates
from apps.incidents.models import Category, Incident, IncidentEvent
from apps.regions.selectors import locate_street

spec = json.loads({spec})
categories = {{c.code: c for c in Category.objects.filter(code__in=spec["codes"])}}
rng = random.Random(spec["seed"])
now = timezone.now()
STATUSES = ["reported"] * 4 + ["accepted"] * 3 + ["in_progress"] * 2 + ["resolved"]
STEPS = ["accepted", "in_progress", "resolved"]  # each sets its *_at, 5 min apart

def incident(i, lat, lng):
    code, status = rng.choice(spec["weighted_codes"]), rng.choice(STATUSES)
    at = now - timedelta(hours=rng.uniform(0, 20))
    reached = STEPS[: STEPS.index(status) + 1] if status in STEPS else []
    times = {{f"{{s}}_at": at + timedelta(minutes=5 * (n + 1)) for n, s in enumerate(reached)}}
    return Incident(
        number=f"BENCH-{{i:06d}}", title=f"{{categories[code].name_zh}}: 基准测试事件 {{i}}",
        category=categories[code], status=status, source="citizen_report",
        region=locate_street(lat, lng), lat=lat, lng=lng, created_at=at, **times,
    )

created = 0
if not Incident.objects.filter(number__startswith="BENCH-").exists():
    incidents = [incident(i, lat, lng) for i, (lat, lng) in enumerate(spec["points"])]
    with transaction.atomic():
        Incident.objects.bulk_create(incidents, batch_size=500)
        IncidentEvent.objects.bulk_create(
            [
                IncidentEvent(incident=x, kind="created", at=x.created_at, public=True,
                              data={{"source": x.source, "category": x.category.code}})
                for x in incidents
            ],
            batch_size=500,
        )
    created = len(incidents)
counts, times = [], []
for (lat, lng), code in spec["sample"]:
    started = time.perf_counter()
    counts.append(len(duplicate_candidates(lat=lat, lng=lng, category=categories[code])))
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({{
    "created": created,
    "open_incidents": Incident.objects.open().count(),
    "streets": Incident.objects.filter(number__startswith="BENCH-")
        .values("region").distinct().count(),
    "candidate_sample": len(counts),
    "candidates_mean": round(statistics.mean(counts), 2),
    "candidates_max": max(counts),
    "share_with_candidates": round(sum(1 for c in counts if c) / len(counts), 3),
    "duplicate_query_ms_median": round(statistics.median(times), 3),
}}))
"""

# One duty operator per active street (the SOS alarm's street audience), through the
# accounts services; then who an SOS in each new town alarms, as the report service sees it.
SEED_DUTY_SCRIPT = """
import json
from apps.accounts import services
from apps.accounts.models import Role
from apps.regions.models import Region
from apps.sla.models import Audience
from apps.sla.recipients import region_audience_users

streets = list(Region.objects.filter(level="street", is_active=True).order_by("path"))
for street in streets:
    user = services.staff_user_upsert(username=f"bench-duty-{street.code}", password="!")
    services.membership_grant(user=user, region=street, role=Role.OPERATOR)
audiences = (Audience.STREET_DUTY, Audience.NEW_TOWN_COMMAND)
alarmed = [
    len({pk for ids in region_audience_users(s.path, audiences).values() for pk in ids})
    for s in streets
]
print(json.dumps({"streets": len(streets), "alarmed_min": min(alarmed),
                  "alarmed_max": max(alarmed)}))
"""


def _weighted_codes() -> list[str]:
    return [code for code, weight, _text, _fields in CATEGORIES for _ in range(weight)]


def _seed(ctx: BenchContext, report_points: list[tuple[float, float]]) -> dict[str, Any]:
    """Categories, SLA policies, duty officers and the 1,000 open incidents."""
    ctx.manage("load_categories")
    ctx.manage("load_sla_policies")
    policies = ctx.sql(
        "SELECT code, duration, target FROM sla_slapolicy "
        "WHERE kind = 'report_triage' AND is_active ORDER BY code"
    )
    if not policies:
        raise BenchError("load_sla_policies wrote no report_triage policy: no clock to time")
    duty = json.loads(ctx.manage("shell", "-c", SEED_DUTY_SCRIPT).strip().splitlines()[-1])
    if duty["alarmed_min"] < 1:
        raise BenchError(f"some street has no duty officer for an SOS to alarm: {duty}")
    points = lookup_points(ctx, count=INCIDENTS, seed=INCIDENT_SEED, radius_km=RADIUS_KM)
    rng = random.Random(REPORT_SEED)
    codes = _weighted_codes()
    sample = [(point, rng.choice(codes)) for point in report_points[:CANDIDATE_SAMPLE]]
    spec = {
        "codes": [code for code, *_rest in CATEGORIES],
        "weighted_codes": codes,
        "seed": INCIDENT_SEED,
        "points": points,
        "sample": sample,
    }
    script = SEED_INCIDENTS_SCRIPT.format(spec=repr(json.dumps(spec)))
    started = time.perf_counter()
    stats = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    stats["seconds"] = round(time.perf_counter() - started, 1)
    if stats["open_incidents"] < INCIDENTS:
        raise BenchError(f"only {stats['open_incidents']} open incidents after seeding")
    return {
        "incidents": stats,
        "sos_duty_officers": duty,
        "triage_policies": [
            {"code": code, "duration": str(duration), "target": str(target)}
            for code, duration, target in policies
        ],
    }


# --- Workloads ---------------------------------------------------------------------------------


class Workload(Sequence[Request]):
    """``size`` distinct requests of one kind, built before the run (not by the client
    while it measures).

    Bodies come from the seed ``bodies`` (the project and the raw app get the same
    reports), callers from ``run`` (keys, devices and addresses never repeat across runs).
    """

    def __init__(
        self,
        kind: str,
        points: list[tuple[float, float]],
        *,
        run: int,
        size: int,
        path: str,
        bodies: int | None = None,
        tokens: Sequence[str] = (),
    ) -> None:
        if not 0 <= run < (1 << 24) // RUN_STRIDE or size >= RUN_STRIDE:
            raise BenchError(f"workload run {run} of {size} requests is out of address range")
        if kind == "citizen" and not tokens:
            raise BenchError("citizen reports need tokens")
        bodies = run if bodies is None else bodies
        texts = {code: (text, fields) for code, _weight, text, fields in CATEGORIES}
        weighted = _weighted_codes()
        body_rng, caller_rng = random.Random(REPORT_SEED * 100 + bodies), random.Random(run)
        self.keys: list[uuid.UUID] = []
        self._requests: list[Request] = []
        for index in range(size):
            lat, lng = points[index % len(points)]
            phone = f"1{3 + bodies % 7}{bodies % 10}{index:08d}"
            if kind == "sos":
                body: dict[str, Any] = {"lat": lat, "lng": lng, "phone": phone}
                if index % 3:
                    body["text"] = f"{SOS_TEXT}（{index}）"
            else:
                code = body_rng.choice(weighted)
                text, fields = texts[code]
                body = {"category": code, "lat": lat, "lng": lng, "text": f"{text}（{index}）"}
                if kind == "report":
                    body["phone"] = phone
                body["extra"] = fields(body_rng)
            key = uuid.UUID(int=caller_rng.getrandbits(128), version=4)
            headers = {
                "X-Device-Id": str(uuid.UUID(int=caller_rng.getrandbits(128), version=4)),
                "Idempotency-Key": str(key),
                "X-Forwarded-For": str(
                    ipaddress.IPv4Address(CLIENT_NET + run * RUN_STRIDE + index)
                ),
            }
            if kind == "citizen":
                headers["Authorization"] = f"Bearer {tokens[index % len(tokens)]}"
            self.keys.append(key)
            self._requests.append(Request.post_json(path, body, headers, expect=201))

    def __len__(self) -> int:
        return len(self._requests)

    def __getitem__(self, index: int) -> Request:  # type: ignore[override]
        return self._requests[index]


class Runs:
    """Hands out run numbers: every workload gets its own callers."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> int:
        return next(self._next)


# --- Checks ------------------------------------------------------------------------------------


def _post(ctx: BenchContext, server: Server, request: Request) -> dict[str, Any]:
    answer: dict[str, Any] = ctx.request(
        server,
        request.method,
        request.path,
        headers=dict(request.headers),
        json_body=json.loads(request.body),
        expect=request.expect,
    )
    return answer


def _max_report_id(ctx: BenchContext) -> int:
    return int(ctx.sql("SELECT coalesce(max(id), 0) FROM incidents_report")[0][0])


def _report_count(ctx: BenchContext) -> int:
    return int(ctx.sql("SELECT count(*) FROM incidents_report")[0][0])


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs per report (id, token, time)."""
    same = {k: v for k, v in answer.items() if k not in {"id", "token", "created_at"}}
    same["tracking_url"] = urlsplit(answer["tracking_url"]).path.replace(answer["token"], "")
    return same


def _board_event(ctx: BenchContext, report_id: int) -> dict[str, Any]:
    rows = ctx.sql(
        "SELECT payload FROM realtime_event WHERE kind = 'report.submitted' "
        "AND stream LIKE 'region.%%' AND (payload -> 'report' ->> 'id')::bigint = %s LIMIT 1",
        (report_id,),
    )
    if not rows:
        raise BenchError(f"report {report_id}: no board event")
    return dict(rows[0][0])


class Subscriber:
    """A Redis subscriber on the channel-layer group of ``region.xixian`` (every board
    event of the new area goes there): proves events are published after COMMIT."""

    def __init__(self, ctx: BenchContext) -> None:
        prefix = ctx.env.get("CHANNEL_LAYER_PREFIX", "asgi")
        self.client = redis.Redis.from_url(ctx.options.redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(f"{prefix}__group__region.xixian")

    def frames_of(self, report_id: int, wait: float = 3.0) -> int:
        found = 0
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message is None:
                if found:
                    return found
                continue
            frame = json.loads(msgpack.unpackb(message["data"])["frame"])
            found += frame["data"]["report"]["id"] == report_id
        return found

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


NEAR_INCIDENT_SQL = """
    SELECT 1 FROM incidents_incident i JOIN incidents_category c ON c.id = i.category_id
    WHERE i.status IN ('reported', 'accepted', 'in_progress', 'resolved') AND c.code = %s
      AND abs(i.lat - %s) < 0.002 AND abs(i.lng - %s) < 0.002 LIMIT 1
"""


def _with_candidates(ctx: BenchContext, load: Workload) -> int:
    """The first request of ``load`` near an open incident of its category (so the
    duplicate candidates are compared on something), else the first."""
    for index in range(len(load)):
        body = json.loads(load[index].body)
        code = body.get("category", "O99")  # the SOS category
        if ctx.sql(NEAR_INCIDENT_SQL, (code, body["lat"], body["lng"])):
            return index
    return 0


def _check_answers(
    ctx: BenchContext,
    app: Server,
    raw: Server,
    kind: str,
    points: list[tuple[float, float]],
    runs: Runs,
    tokens: Sequence[str],
    subscriber: Subscriber,
) -> dict[str, Any]:
    """Same body to both: same answer, row committed as sent, retry replays, event
    published, same duplicate candidates; an SOS enqueues its deliveries."""
    body_seed = runs()
    project_load = Workload(
        kind, points, run=runs(), size=64, path=PROJECT_PATHS[kind], bodies=body_seed, tokens=tokens
    )
    raw_load = Workload(
        kind, points, run=runs(), size=64, path=RAW_PATHS[kind], bodies=body_seed, tokens=tokens
    )
    index = _with_candidates(ctx, project_load)
    broker = redis.Redis.from_url(ctx.options.redis_url)
    try:
        queued_before = int(broker.llen("celery"))
        answers = {}
        for name, server, load in (("project", app, project_load), ("raw", raw, raw_load)):
            request = load[index]
            answer = _post(ctx, server, request)
            if subscriber.frames_of(answer["id"]) < 1:
                raise BenchError(f"{name} {kind}: no board event published for {answer['id']}")
            headers = dict(request.headers)
            rows = ctx.sql(
                "SELECT r.id, r.status, r.is_sos, host(r.client_ip), r.device_id, r.reporter_id "
                "FROM incidents_report r WHERE r.token = %s",
                (answer.get("token"),),
            )
            citizen = kind == "citizen"
            if (
                len(rows) != 1
                or rows[0][:5]
                != (
                    answer["id"],
                    "submitted",
                    kind == "sos",
                    headers["X-Forwarded-For"],
                    headers["X-Device-Id"],
                )
                or (rows[0][5] is not None) != citizen
            ):
                raise BenchError(f"{name} {kind}: report not committed as sent: {rows} {answer}")
            if _post(ctx, server, request) != answer:
                raise BenchError(f"{name} {kind}: a retry with the same key did not replay")
            answers[name] = answer
        if _comparable(answers["project"]) != _comparable(answers["raw"]):
            raise BenchError(f"{kind}: raw answers differently: {answers}")
        candidates = {
            name: [
                (c["incident_id"], c["distance_m"])
                for c in _board_event(ctx, answer["id"])["duplicate_candidates"]
            ]
            for name, answer in answers.items()
        }
        if candidates["project"] != candidates["raw"]:
            raise BenchError(f"{kind}: duplicate candidates differ: {candidates}")
        enqueued = int(broker.llen("celery")) - queued_before
    finally:
        broker.close()
    if kind == "sos" and enqueued < 1:
        raise BenchError("the project's SOS enqueued no push delivery")
    return {"candidates": len(candidates["project"]), "deliveries_enqueued": enqueued}


ROWS_COLUMNS = (
    "is_sos",
    "logged_in",
    "clocks",
    "board_events",
    "board_streams",
    "report_events",
    "stored_answers",
    "sos_alarms",
    "outbox_rows",
    "has_phone",
)
ROWS_SQL = """
SELECT
    r.is_sos,
    r.reporter_id IS NOT NULL AS logged_in,
    (SELECT count(*) FROM sla_slaclock c WHERE c.kind = 'report_triage'
        AND c.subject_type = 'report' AND c.subject_id = r.id) AS clocks,
    (SELECT count(*) FROM realtime_event e WHERE e.kind = 'report.submitted'
        AND e.stream LIKE 'region.%%' AND (e.payload -> 'report' ->> 'id')::bigint = r.id
        AND (e.payload -> 'report') - 'created_at'::text = jsonb_build_object(
            'id', r.id, 'category', cat.code, 'text', r.text, 'address', r.address,
            'lat', r.lat, 'lng', r.lng, 'region', reg.code, 'is_sos', r.is_sos)
        AND (e.payload -> 'report' ->> 'created_at')::timestamptz = r.created_at
        AND jsonb_typeof(e.payload -> 'duplicate_candidates') = 'array'
    ) AS board_events,
    array_length(string_to_array(trim(both '/' from reg.path), '/'), 1) AS board_streams,
    (SELECT count(*) FROM realtime_event e WHERE e.stream = 'report.' || r.id
        AND e.kind = 'report.submitted'
        AND e.payload = jsonb_build_object('report_id', r.id, 'public_status', 'received')
    ) AS report_events,
    (SELECT count(*) FROM core_idempotentrequest k WHERE k.response_status = 201
        AND (k.response_body ->> 'id')::bigint = r.id
        AND k.scope = CASE WHEN r.reporter_id IS NULL THEN 'anon'
                           ELSE 'user:' || r.reporter_id END) AS stored_answers,
    (SELECT count(*) FROM notifications_notification n
        WHERE n.dedupe_key LIKE 'sos:' || r.id || ':u%%' AND n.kind = 'sos'
        AND n.priority = 'high' AND n.channel = 'push' AND n.status = 'pending'
        AND n.title = reg.name_zh || ' 紧急求助（SOS）'
        AND n.body LIKE '报告 ' || r.id || '，位置 %%'
        AND n.data = jsonb_build_object('report_id', r.id::text, 'region', reg.code, 'sos', '1')
    ) AS sos_alarms,
    (SELECT count(*) FROM notifications_notification n
        WHERE n.dedupe_key LIKE 'sos:' || r.id || ':u%%') AS outbox_rows,
    r.phone <> '' AS has_phone
FROM incidents_report r
JOIN incidents_category cat ON cat.id = r.category_id
JOIN regions_region reg ON reg.id = r.region_id
WHERE r.id > %(after)s AND r.id <= %(until)s
"""

CLOCK_SQL = """
SELECT
    c.subject_label = cat.code || ' ' || cat.name_zh AS label,
    c.region_id = r.region_id AS region,
    c.category_code = cat.code AS category,
    c.started_at = r.created_at AS started_at_report,
    c.xmin::text = r.xmin::text AS same_transaction,
    (c.due_at - c.started_at)::text AS due_after,
    (c.target_at - c.started_at)::text AS target_after,
    (c.next_check_at - c.started_at)::text AS next_check_after,
    c.ladder::text AS ladder,
    c.policy_id, c.status, c.step, c.paused_total::text, c.severity, c.loop, c.is_drill,
    c.stop_reason, c.failures
FROM incidents_report r
JOIN incidents_category cat ON cat.id = r.category_id
JOIN sla_slaclock c ON c.kind = 'report_triage' AND c.subject_type = 'report'
    AND c.subject_id = r.id
WHERE r.id > %(after)s AND r.id <= %(until)s
"""


def _rows_per_report(ctx: BenchContext, after: int, until: int) -> dict[str, Any]:
    """What each report of an id range has around it, grouped: one entry per distinct
    shape (a correct run has one shape per workload)."""
    params = {"after": after, "until": until}
    shapes: dict[str, int] = {}
    names = ROWS_COLUMNS
    for row in ctx.sql(ROWS_SQL, params):  # type: ignore[arg-type]
        shape = dict(zip(names, row, strict=True))
        key = json.dumps(shape, sort_keys=True)
        shapes[key] = shapes.get(key, 0) + 1
    clocks: dict[str, int] = {}
    for row in ctx.sql(CLOCK_SQL, params):  # type: ignore[arg-type]
        key = json.dumps([str(v) for v in row])
        clocks[key] = clocks.get(key, 0) + 1
    return {"reports": until - after, "shapes": shapes, "clock_shapes": clocks}


def _check_rows(
    ctx: BenchContext,
    app: Server,
    raw: Server,
    kind: str,
    points: list[tuple[float, float]],
    runs: Runs,
    tokens: Sequence[str],
) -> dict[str, Any]:
    """A 1 s burst on each (batches form), then the rows per report must agree."""
    body_seed = runs()
    found = {}
    for name, server, path in (
        ("project", app, PROJECT_PATHS[kind]),
        ("raw", raw, RAW_PATHS[kind]),
    ):
        load = Workload(
            kind, points, run=runs(), size=8000, path=path, bodies=body_seed, tokens=tokens
        )
        before = _max_report_id(ctx)
        result = run_async(
            closed_loop(
                server.base_urls, load, concurrency=ROWS_CHECK_CONCURRENCY, duration=1.0, warmup=0
            )
        )
        if result.errors:
            raise BenchError(f"{name} {kind} rows check: {result.error_samples}")
        found[name] = _rows_per_report(ctx, before, _max_report_id(ctx))
    project, raw_rows = found["project"], found["raw"]
    problems = []
    for name, rows in found.items():
        for shape in map(json.loads, rows["shapes"]):
            alarms_ok = shape["sos_alarms"] >= 1 if kind == "sos" else shape["outbox_rows"] == 0
            if not (
                shape["clocks"] == 1
                and shape["board_events"] == shape["board_streams"]
                and shape["report_events"] == 1
                and shape["stored_answers"] == 1
                and shape["sos_alarms"] == shape["outbox_rows"]
                and alarms_ok
                and shape["logged_in"] == (kind == "citizen")
            ):
                problems.append(f"{name}: {shape}")
        for shape in map(json.loads, rows["clock_shapes"]):
            if shape[:5] != ["True"] * 5:
                problems.append(f"{name} clock: {shape}")
    if set(project["shapes"]) != set(raw_rows["shapes"]):
        problems.append(
            f"shapes differ:\n  project {project['shapes']}\n  raw {raw_rows['shapes']}"
        )
    if set(project["clock_shapes"]) != set(raw_rows["clock_shapes"]):
        problems.append(
            f"clocks differ:\n  project {project['clock_shapes']}\n  raw {raw_rows['clock_shapes']}"
        )
    if problems:
        raise BenchError(
            f"{kind}: the raw app does not write what the project writes:\n  "
            + "\n  ".join(problems)
        )
    return {
        name: {
            "reports": rows["reports"],
            "per_report": [dict(json.loads(k), reports=n) for k, n in rows["shapes"].items()],
            "clock": [
                dict(zip(CLOCK_COLUMNS, json.loads(k), strict=True), reports=n)
                for k, n in rows["clock_shapes"].items()
            ],
        }
        for name, rows in found.items()
    }


CLOCK_COLUMNS = (
    "label_is_category",
    "region_is_report_street",
    "category_code",
    "started_at_is_report_created_at",
    "committed_with_report",
    "due_after",
    "target_after",
    "next_check_after",
    "ladder",
    "policy_id",
    "status",
    "step",
    "paused_total",
    "severity",
    "loop",
    "is_drill",
    "stop_reason",
    "failures",
)


# --- Batches -----------------------------------------------------------------------------------


class ProjectBatches:
    """The project's batches, from its log lines (``reports submitted via fast path: N``
    per batch; ``via service`` is a report the view took)."""

    def __init__(self, server: Server) -> None:
        self.path: Path = server.log_path
        self.offset = self._size()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def take(self) -> dict[str, Any]:
        time.sleep(0.2)  # the last batches' lines
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
        self.offset += len(text.encode())
        sizes: list[int] = []
        view = 0
        for line in text.splitlines():
            _head, sep, rest = line.partition("reports submitted via ")
            if not sep:
                continue
            via, _, tail = rest.partition(": ")
            count = int(tail.split(" ", 1)[0])
            if via == "fast path":
                sizes.append(count)
            else:
                view += count
        return {
            "batches": len(sizes),
            "reports": sum(sizes),
            "reports_per_batch": round(sum(sizes) / len(sizes), 2) if sizes else None,
            "largest_batch": max(sizes, default=0),
            "reports_via_view": view,
        }


def _raw_stats(server: Server) -> list[dict[str, Any]]:
    stats = []
    for url in server.base_urls:
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
            response = client.get("/intake/stats")
            response.raise_for_status()
            stats.append(response.json())
    return stats


def _raw_delta(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("batches", "reports", "fallbacks", "wait_s", "commit_s")
    total = {k: sum(a[k] - b[k] for a, b in zip(after, before, strict=True)) for k in keys}
    batches, reports = max(total["batches"], 1), max(total["reports"], 1)
    return {
        "batches": total["batches"],
        "reports": total["reports"],
        "reports_per_batch": round(total["reports"] / batches, 2),
        "largest_batch": max(a["largest"] for a in after),
        "queue_wait_ms_mean": round(total["wait_s"] * 1000 / reports, 3),
        "batch_ms_mean": round(total["commit_s"] * 1000 / batches, 3),
        "fallbacks": total["fallbacks"],
    }


def _closed(
    ctx: BenchContext,
    server: Server,
    load: Workload,
    label: str,
    concurrency: int,
    batches: Callable[[], dict[str, Any]],
) -> tuple[LoadResult, dict[str, Any]]:
    """A closed-loop run that must make one report per request; its batches."""
    before = _report_count(ctx)
    result = ctx.load(server, load, label=label, concurrency=concurrency)
    created = _report_count(ctx) - before
    if not result.requests <= created < len(load):
        raise BenchError(
            f"{label}: {created} reports for {result.requests} measured requests "
            f"(workload {len(load)}): replays or lost reports"
        )
    stats = batches()
    if stats.get("reports_via_view"):
        print(f"  warning: {label}: {stats['reports_via_view']} reports went to the view")
    return result, {**stats, "requests_sent": created}


# --- Open loop ---------------------------------------------------------------------------------

OPEN_CLOCKS_SQL = """
SELECT k.key, r.created_at, c.n, c.first, c.last, c.same_transaction
FROM incidents_report r
JOIN core_idempotentrequest k ON k.scope = 'anon' AND k.response_status = 201
    AND (k.response_body ->> 'id')::bigint = r.id
LEFT JOIN LATERAL (
    SELECT count(*) AS n, min(c.started_at) AS first, max(c.started_at) AS last,
           bool_and(c.xmin::text = r.xmin::text) AS same_transaction
    FROM sla_slaclock c
    WHERE c.kind = 'report_triage' AND c.subject_type = 'report' AND c.subject_id = r.id
) c ON true
WHERE r.id > %s AND r.id <= %s
"""


def _settle(ctx: BenchContext, quiet: float = 1.0, limit: float = 30.0) -> None:
    """Wait until no report has been added for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    last = _report_count(ctx)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = _report_count(ctx)
        if now == last:
            return
        last = now


def _open(
    ctx: BenchContext, server: Server, load: Workload, label: str
) -> tuple[OpenLoopResult, dict[str, Any]]:
    """The open-loop run (module docstring) and the clock check of its reports."""
    marks: dict[str, Any] = {}
    done_at = array("d", [math.nan]) * len(load)

    def on_window(mark: str) -> None:
        marks[mark] = cpu_snapshot(server.pgid)

    def on_response(index: int, status: int, wall: float) -> None:
        if status == 201:
            done_at[index] = wall

    before = _max_report_id(ctx)
    result: OpenLoopResult = run_async(
        open_loop(
            server.base_urls,
            load,
            rate=OPEN_RATE,
            duration=OPEN_SECONDS,
            warmup=OPEN_WARMUP,
            seed=OPEN_SEED,
            max_connections=OPEN_MAX_CONNECTIONS,
            timeout=OPEN_TIMEOUT,
            max_lag_ms=OPEN_MAX_LAG_MS,
            label=label,
            on_window=on_window,
            on_response=on_response,
        )
    )
    if "start" in marks and "end" in marks:
        result = result.with_cpu(
            cpu_cores(marks["start"], marks["end"]),
            server_process_cores(marks["start"], marks["end"]),
        )
    stats = result.open_loop
    assert stats is not None
    lat = result.latency
    cpu = " ".join(f"{k} {v:.2f}" for k, v in result.cpu_cores.items())
    print(
        f"  {label:<24} sent {stats.send_rate:,.1f}/s (lag p99 {stats.lag_p99_ms:.1f} ms)  "
        f"p50 {lat.p50_ms:7.2f} ms  p99 {lat.p99_ms:7.2f} ms  errors {result.errors}  "
        f"conns {stats.connections_opened}  cores[{cpu}]"
    )
    if not stats.kept_rate:
        raise BenchError(
            f"{label}: the load generator did not keep the rate: the window's arrivals went "
            f"out at {stats.send_rate:,.1f}/s against {stats.scheduled_rate:,.1f}/s scheduled "
            f"(dispatch lag p99 {stats.lag_p99_ms:.1f} ms), so the server did not see the "
            f"rate claimed"
        )
    if not stats.kept_time:
        print(
            f"  warning: {label}: dispatch lag p99 {stats.lag_p99_ms:.1f} ms > "
            f"{stats.max_lag_ms:g} ms (open.dispatch_lag_p99 MISSED): the client was starved or "
            f"overwhelmed; the lag is inside every latency sample, so the latency figures of "
            f"this run are pessimistic"
        )
    if result.errors:
        print(f"  warning: {label}: {result.errors} errors, e.g. {result.error_samples[:2]}")
    # Every report of the run: one triage clock, in its transaction, at its created_at.
    index_of = {key: i for i, key in enumerate(load.keys)}
    _settle(ctx)  # requests the client gave up on may still be committing
    rows = ctx.sql(OPEN_CLOCKS_SQL, (before, _max_report_id(ctx)))
    lags: list[float] = []
    problems: list[str] = []
    unanswered = 0
    for key, created_at, count, first, _last, same in rows:
        if count != 1 or not same or first != created_at:
            problems.append(
                f"report of key {key}: {count} triage clocks, in its transaction: {same}, "
                f"started {first} for a report created {created_at}"
            )
            continue
        index = index_of.get(key)
        answered = done_at[index] if index is not None else math.nan
        if math.isnan(answered):
            unanswered += 1  # committed, but its 201 came after the client's timeout
            continue
        lags.append(max(0.0, answered - first.timestamp()) * 1000)
    answered_count = sum(1 for value in done_at if not math.isnan(value))
    if len(lags) != answered_count and not problems:
        problems.append(f"{answered_count} answered 201, {len(lags)} of them have a report")
    if problems:
        raise BenchError(f"{label}: triage clocks:\n  " + "\n  ".join(problems[:10]))
    lags.sort()
    p99 = lags[max(0, math.ceil(0.99 * len(lags)) - 1)] if lags else None
    if lags:
        print(
            f"  {'':<24} {len(rows):,} reports, one triage clock each in its transaction; "
            f"clock start to 201: p99 {p99:.1f} ms, max {lags[-1]:.1f} ms"
        )
    clocks = {
        "reports": len(rows),
        "one_triage_clock_in_their_transaction": len(rows),
        "committed_after_the_client_gave_up": unanswered,
        "clock_to_201_ms_p50": round(lags[len(lags) // 2], 1) if lags else None,
        "clock_to_201_ms_p99": round(p99, 1) if p99 is not None else None,
        "clock_to_201_ms_max": round(lags[-1], 1) if lags else None,
    }
    return result, clocks


# --- The benchmark -----------------------------------------------------------------------------


def run(ctx: BenchContext) -> list[Figure]:
    report_points = lookup_points(ctx, count=REPORT_POINTS, seed=REPORT_SEED, radius_km=RADIUS_KM)
    ctx.note("setup", _seed(ctx, report_points))
    app = ctx.django()
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)
    runs = Runs()

    # Before timing: same answers, same rows, events published, pushes enqueued.
    tokens = ctx.mint_tokens("bench-citizen", CITIZENS)
    subscriber = Subscriber(ctx)
    try:
        checked = {
            kind: _check_answers(ctx, app, raw, kind, report_points, runs, tokens, subscriber)
            for kind in KINDS
        }
    finally:
        subscriber.close()
    ctx.note("answer_checks", checked)
    ctx.note(
        "rows_per_report",
        {kind: _check_rows(ctx, app, raw, kind, report_points, runs, tokens) for kind in KINDS},
    )
    ctx.note(
        "workload",
        {
            "kinds": KIND_WHAT,
            "points": len(report_points),
            "point_seed": REPORT_SEED,
            "radius_km": RADIUS_KM,
            "categories": {code: weight for code, weight, _t, _f in CATEGORIES},
            "citizens": CITIZENS,
            "callers": (
                "one caller per request: own X-Device-Id, phone, Idempotency-Key and client "
                "address (X-Forwarded-For from 10.0.0.0/8, trusted from 127.0.0.1 through "
                "TRUSTED_PROXIES as production trusts its router); production rate limits"
            ),
            "concurrencies": CONCURRENCIES,
            "goal": (
                f">= {GOAL_RPS:g} reports/s with p99 <= {GOAL_P99_MS:g} ms at "
                f"{GOAL_CONCURRENCY} clients; the {CONCURRENCIES[-1]}-client figures carry no goal"
            ),
            "after_commit": (
                "project, in the serving process: events published to Redis (one pipeline "
                "per batch), one Celery message enqueued per SOS outbox row (no worker runs: "
                "delivery is not intake), the batch's log line"
            ),
        },
    )

    # Closed loop: each workload at 8 and 64 clients, project then raw, back to back.
    size = int(MAX_RPS * (ctx.options.warmup + ctx.options.duration)) + 1000
    figures: list[Figure] = []
    batches: dict[str, Any] = {}
    project_log = ProjectBatches(app)
    for kind in KINDS:
        if kind == "citizen":  # fresh tokens (they live 15 minutes), the same citizens
            tokens = ctx.mint_tokens("bench-citizen", CITIZENS)
        for concurrency in CONCURRENCIES:
            bodies = runs()
            name = f"{kind}.c{concurrency}"
            measured, batches[name] = _closed(
                ctx,
                app,
                Workload(
                    kind,
                    report_points,
                    run=runs(),
                    size=size,
                    path=PROJECT_PATHS[kind],
                    bodies=bodies,
                    tokens=tokens,
                ),
                f"{kind} c{concurrency}",
                concurrency,
                project_log.take,
            )
            raw_before = _raw_stats(raw)
            baseline, batches[f"raw_{name}"] = _closed(
                ctx,
                raw,
                Workload(
                    kind,
                    report_points,
                    run=runs(),
                    size=size,
                    path=RAW_PATHS[kind],
                    bodies=bodies,
                    tokens=tokens,
                ),
                f"raw {kind} c{concurrency}",
                concurrency,
                lambda before=raw_before: _raw_delta(before, _raw_stats(raw)),
            )
            goal = concurrency == GOAL_CONCURRENCY
            what = f"{KIND_WHAT[kind]}, {concurrency} clients" + (
                " (the goal's configuration)" if goal else " (no goal: not its configuration)"
            )
            figures += [
                compare(
                    f"{name}.rps",
                    measured,
                    baseline,
                    "rps",
                    goal=GOAL_RPS if goal else None,
                    description=what,
                ),
                compare(f"{name}.p50", measured, baseline, "p50"),
                compare(
                    f"{name}.p99", measured, baseline, "p99", goal=GOAL_P99_MS if goal else None
                ),
                compare(f"{name}.server_cpu", measured, baseline, "server_cpu"),
            ]
    ctx.note("batches", batches)
    insert_floor = ctx.load(
        raw,
        Workload("report", report_points, run=runs(), size=size, path="/insert"),
        label="raw insert (floor)",
    )
    ctx.note(
        "insert_floor",
        {
            "what": "one autocommit single-row INSERT per request (bench/raw_intake.py /insert)",
            "rps": round(insert_floor.rps, 1),
            "server_cpu_ms": round(insert_floor.server_cpu_ms, 3),
        },
    )

    # Open loop: the flood, at a fixed rate, on the project and then the raw app.
    count = len(schedule_offsets(OPEN_RATE, OPEN_WARMUP + OPEN_SECONDS, "poisson", OPEN_SEED))
    bodies = runs()
    open_runs = {}
    for name, server, path in (("project", app, REPORTS), ("raw", raw, "/intake")):
        load = Workload("report", report_points, run=runs(), size=count, path=path, bodies=bodies)
        label = f"open {OPEN_RATE:g}/s" if name == "project" else f"raw open {OPEN_RATE:g}/s"
        open_runs[name] = _open(ctx, server, load, label)
    (measured_open, clocks), (raw_open, raw_clocks) = open_runs["project"], open_runs["raw"]
    ctx.note(
        "open_loop",
        {
            "rate": OPEN_RATE,
            "seconds": OPEN_SECONDS,
            "warmup_s": OPEN_WARMUP,
            "schedule": "poisson",
            "seed": OPEN_SEED,
            "runs": [measured_open.to_dict(), raw_open.to_dict()],
            "clocks": {"project": clocks, "raw": raw_clocks},
        },
    )
    what = f"anonymous reports at {OPEN_RATE:g}/s (Poisson) for {OPEN_SECONDS:g} s"
    figures += [
        compare("open.p50", measured_open, raw_open, "p50", description=what),
        compare("open.p99", measured_open, raw_open, "p99", goal=GOAL_P99_MS),
        _figure("open.errors", "requests", measured_open.errors, raw_open.errors, "open", goal=0),
        _figure(
            "open.send_rate",
            "req/s",
            _send_rate(measured_open),
            _send_rate(raw_open),
            "open",
            better="higher",
            description="arrivals the generator sent in the window per second (the schedule kept)",
        ),
        _figure(
            "open.dispatch_lag_p99",
            "ms",
            _lag(measured_open),
            _lag(raw_open),
            "open",
            goal=OPEN_MAX_LAG_MS,
            description="how late the generator sent, p99 (MISSED: the client was starved)",
        ),
        compare(
            "open.server_cpu",
            measured_open,
            raw_open,
            "server_cpu",
            description="per successful answer: meaningless when most requests failed",
        ),
        _figure(
            "open.clock_lag_max",
            "ms",
            _or_nan(clocks["clock_to_201_ms_max"]),
            _or_nan(raw_clocks["clock_to_201_ms_max"]),
            "open",
            goal=CLOCK_LAG_GOAL_MS,
            description=(
                "largest time from a triage clock's start to its report's 201 (an upper bound "
                "of clock start to COMMIT); every report has exactly one clock, same transaction"
            ),
        ),
    ]
    return figures


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _lag(result: OpenLoopResult) -> float:
    return result.open_loop.lag_p99_ms if result.open_loop else math.nan


def _send_rate(result: OpenLoopResult) -> float:
    return result.open_loop.send_rate if result.open_loop else math.nan


def _figure(
    name: str,
    unit: str,
    value: float,
    base: float,
    baseline_label: str,
    *,
    goal: float | None = None,
    better: str = "lower",
    description: str = "",
) -> Figure:
    return Figure(
        name=name,
        unit=unit,
        value=float(value),
        baseline=Baseline(
            name=f"raw {baseline_label} {name.split('.', 1)[1]}", value=float(base), unit=unit
        ),
        better="higher" if better == "higher" else "lower",
        goal=goal,
        description=description,
    )
