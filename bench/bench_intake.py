"""Citizen report intake (POST /api/v1/reports/) under ASGI and WSGI, beside raw PostgreSQL inserts.

Setup (idempotent, so it does not care what ran before it):

* ``manage.py load_categories`` (the taxonomy fixture; ``seed_demo`` does not load it);
* 1,000 open incidents (reported/accepted/in progress/resolved, created within the last
  20 h, so inside the duplicate window) at deterministic points within 1.5 km of the
  active streets' centres — the same neighbourhoods the reports are sent from — in the
  categories the reports use, each with its ``created`` timeline row. One ``manage.py
  shell`` script: ``bulk_create`` through the models (Django fills the defaults), the
  street from the project's own ``locate_street``. The script then runs the project's
  ``duplicate_candidates`` for a sample of the report points and records how many
  candidates they have and what that query costs in-process.

What one accepted report costs the project (the fast intake path,
``apps.incidents.intake``, which takes these anonymous JSON reports in front of Django):
checks as the view's, the three rate limits and the index generations in one Redis
round trip, then the process's group-commit writer: idempotency key, report, its
duplicate candidates (one batched query against the 1,000 open incidents), its
``report.submitted`` events on the board's region streams and the citizen's report
stream, the stored answer — one transaction per batch, the 201 after COMMIT — and the
events published after it.

Workload: anonymous ``POST /api/v1/reports/`` JSON reports at 512 fixed points inside
the new area (``bench_regions.lookup_points``, seed 20260103), categories a citizen may
report with their category fields (N02 with ``waterlogging_depth_cm``, A01 with
``floor``...), Chinese text, a phone. Every request is a different citizen: its own
``X-Device-Id``, phone, client address and a fresh ``Idempotency-Key`` (the mobile
client always sends one), so the intake throttles keep their **production rates**
(30/min per IP, 10/min per device and per phone) and each caller's throttle history is
as small as real traffic has it. The client address arrives as ``X-Forwarded-For``, as
production's router sends it; the project trusts it from 127.0.0.1 (the harness sets
``TRUSTED_PROXIES=127.0.0.1``) exactly as production trusts its router, and the raw
baseline's uvicorn applies it from 127.0.0.1 (its default ``FORWARDED_ALLOW_IPS``), so no
rate is raised. Each load run gets its own 60,000 distinct reports; after the run the bench
checks that every request created exactly one report (no idempotent replays).

Measured with the same concurrency: the project under ASGI (``xixian_ems.asgi``, the
deployed topology for intake), again with 64 clients (a flood is many citizens at once),
the project under WSGI (``uvicorn --interface wsgi xixian_ems.wsgi:application``: the
view without the fast path, the whole request in one thread), and
``bench/raw_intake.py``: one single-row autocommit INSERT into ``incidents_report``
(the baseline of every ratio), the project's intake SQL with psycopg (``raw_intake``)
and the same work with group commit (``raw_intake_grouped``: batches of reports in one
transaction each, the 201 after COMMIT), plus one unfigured group-commit run at 64
clients (``config.grouped_batches``: batch sizes and waits).
Before timing, every server must answer 201 with a 43-char token whose report row
exists, with the client address recorded; the grouped route must also replay a retry,
and fail alone a row the database refuses while the rest of its batch commits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.bench_regions import lookup_points
from bench.harness import BenchContext, BenchError, Figure, Server, compare
from bench.loadgen import LoadResult, Request

REPORTS = "/api/v1/reports/"
RAW_APP = "bench.raw_intake:app"
GOAL_RPS = 1000.0
GOAL_P99_MS = 200.0

INCIDENTS = 1000
INCIDENT_SEED = 20260102
REPORT_SEED = 20260103
REPORT_POINTS = 512
RADIUS_KM = 1.5  # incidents and reports share the streets' neighbourhoods
WORKLOAD = 60_000  # distinct reports per load run; more than any run can send (checked)
CANDIDATE_SAMPLE = 200  # report points whose duplicate candidates the setup counts
CLIENT_NET = int(ipaddress.IPv4Address("100.64.0.0"))  # carrier-grade NAT space
GROUPED = "/intake_grouped"
GROUPED_STATS = "/intake_grouped/stats"
GROUPED_WIDE_CONCURRENCY = 64  # a second, unfigured run: how batches grow with load

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


def _weighted_codes() -> list[str]:
    return [code for code, weight, _text, _fields in CATEGORIES for _ in range(weight)]


def _seed_incidents(ctx: BenchContext, report_points: list[tuple[float, float]]) -> dict[str, Any]:
    """Load the categories and the 1,000 open incidents (module docstring)."""
    ctx.manage("load_categories")
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
    return stats


def _workload(
    points: list[tuple[float, float]], run: int, path: str = REPORTS, size: int = WORKLOAD
) -> list[Request]:
    """``size`` distinct reports, one citizen each; ``run`` keeps runs' keys apart."""
    rng = random.Random(REPORT_SEED * 10 + run)
    codes = {code: (text, fields) for code, _weight, text, fields in CATEGORIES}
    weighted = _weighted_codes()
    requests: list[Request] = []
    for i in range(size):
        lat, lng = points[i % len(points)]
        code = rng.choice(weighted)
        text, fields = codes[code]
        body = {
            "category": code,
            "lat": lat,
            "lng": lng,
            "text": f"{text}（{i}）",
            "phone": f"1{3 + run % 7}{run % 10}{i:08d}",
            "extra": fields(rng),
        }
        headers = {
            "X-Device-Id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "Idempotency-Key": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "X-Forwarded-For": str(ipaddress.IPv4Address(CLIENT_NET + run * 65536 + i + 1)),
        }
        requests.append(Request.post_json(path, body, headers, expect=201))
    return requests


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


def _report_count(ctx: BenchContext) -> int:
    return int(ctx.sql("SELECT count(*) FROM incidents_report")[0][0])


def _check_durable(ctx: BenchContext, server: Server, request: Request) -> dict[str, Any]:
    """One report through ``server``: 201, a token, the row committed, the client address
    recorded; the same request again replays the same answer (idempotency)."""
    answer = _post(ctx, server, request)
    token = answer.get("token")
    if not isinstance(token, str) or len(token) != 43:
        raise BenchError(f"{server.name}: no tracking token in the answer: {answer}")
    rows = ctx.sql(
        "SELECT r.id, r.status, c.code, host(r.client_ip), r.device_id FROM incidents_report r "
        "JOIN incidents_category c ON c.id = r.category_id WHERE r.token = %s",
        (token,),
    )
    headers = dict(request.headers)
    expected = (answer["id"], "submitted", json.loads(request.body)["category"])
    if len(rows) != 1 or rows[0][:3] != expected:
        raise BenchError(f"{server.name}: report {answer.get('id')} not durable: {rows}")
    if rows[0][3:] != (headers["X-Forwarded-For"], headers["X-Device-Id"]):
        raise BenchError(
            f"{server.name}: client address/device not recorded as sent: {rows[0][3:]}"
        )
    if _post(ctx, server, request) != answer:
        raise BenchError(f"{server.name}: a retry with the same Idempotency-Key did not replay")
    return answer


def _load_reports(
    ctx: BenchContext,
    server: Server,
    workload: list[Request],
    label: str,
    concurrency: int | None = None,
) -> LoadResult:
    """A load run that must create one report per request: none refused, none replayed."""
    before = _report_count(ctx)
    result = ctx.load(server, workload, label=label, concurrency=concurrency)
    created = _report_count(ctx) - before
    # Requests go out in workload order; created < len(workload) proves no key was reused.
    if not result.requests <= created < len(workload):
        raise BenchError(
            f"{label}: {created} reports created for {result.requests} measured requests "
            f"(workload {len(workload)}): replays or lost reports"
        )
    return result


def _grouped_stats(server: Server) -> list[dict[str, Any]]:
    """Each raw process's group-commit counters (``raw_intake.GroupStats``)."""
    stats = []
    for url in server.base_urls:
        with httpx.Client(base_url=url, trust_env=False, timeout=10) as client:
            response = client.get(GROUPED_STATS)
            response.raise_for_status()
            stats.append(response.json())
    return stats


def _grouped_delta(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Batches of a load run (its warm-up included), summed over the processes."""
    keys = ("batches", "reports", "fallbacks", "rejected", "wait_s", "commit_s")
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
        "rejected": total["rejected"],
    }


async def _send_together(base_url: str, requests: list[Request]) -> list[tuple[int, Any]]:
    """``requests`` at once, one connection each, to one process: they share batches."""
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.request(r.method, r.path, headers=dict(r.headers), content=r.body)
                for r in requests
            )
        )
    return [(response.status_code, response.json()) for response in responses]


def _check_grouped_failures(
    ctx: BenchContext, raw: Server, fresh: list[Request], committed: Request, answer: Any
) -> dict[str, Any]:
    """One process gets, at once: fresh reports, one of them twice (same key), a retry of
    a committed report, and two reports the validation lets through but the database
    driver refuses (a NUL byte in the text) or PostgreSQL does (a forwarded address that
    is no IP). Bad rows must fail alone (400; their batch is retried row by row), the
    others answer as ever, the duplicate and the retry replay, the rows are committed."""
    body = json.loads(fresh[0].body)
    body["text"] = "坏\u0000行"  # psycopg refuses it before sending
    bad = Request.post_json(GROUPED, body, dict(fresh[0].headers), expect=400)
    headers = {**dict(fresh[1].headers), "X-Forwarded-For": "not-an-address"}
    bad_ip = Request.post_json(GROUPED, json.loads(fresh[1].body), headers, expect=400)
    good = fresh[2:]  # PostgreSQL refuses ``bad_ip`` (no inet) and aborts its transaction
    batch = [bad, bad_ip, *good, good[0], committed]
    before = _grouped_stats(raw)[0]
    answers = asyncio.run(_send_together(raw.base_url, batch))
    after = _grouped_stats(raw)[0]
    if answers[0][0] != 400 or answers[1][0] != 400:
        raise BenchError(f"grouped intake: refused rows answered {answers[:2]}")
    for request, (status, got) in zip(good, answers[2 : len(good) + 2], strict=True):
        token = got.get("token") if status == 201 else None
        rows = ctx.sql("SELECT device_id FROM incidents_report WHERE token = %s", (token,))
        if token is None or rows != [(dict(request.headers)["X-Device-Id"],)]:
            raise BenchError(f"grouped intake: a good report beside a bad one failed: {got}")
    if answers[-2] != answers[2] or answers[-1] != (201, answer):
        raise BenchError(f"grouped intake: duplicate/retry did not replay: {answers[-2:]}")
    refused = [dict(r.headers)["X-Device-Id"] for r in (bad, bad_ip)]
    if ctx.sql("SELECT 1 FROM incidents_report WHERE device_id = ANY(%s)", (refused,)):
        raise BenchError("grouped intake: a refused row was stored")
    if after["fallbacks"] <= before["fallbacks"] or after["rejected"] < before["rejected"] + 2:
        raise BenchError(f"grouped intake: the failed batch was not retried: {after}")
    return {
        "sent_together": len(batch),
        "batches": after["batches"] - before["batches"],
        "fallbacks": after["fallbacks"] - before["fallbacks"],
        "rejected": after["rejected"] - before["rejected"],
    }


def run(ctx: BenchContext) -> list[Figure]:
    report_points = lookup_points(ctx, count=REPORT_POINTS, seed=REPORT_SEED, radius_km=RADIUS_KM)
    ctx.note("incidents", _seed_incidents(ctx, report_points))

    asgi = ctx.django()
    wsgi = ctx.django(interface="wsgi")
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)

    # Prove every path does the work before timing it.
    checks = _workload(report_points, run=9, size=16)
    first = _check_durable(ctx, asgi, checks[0])
    streams = sorted(
        row[0]
        for row in ctx.sql(
            "SELECT stream FROM realtime_event WHERE kind = 'report.submitted' "
            "AND (stream = %s OR (payload -> 'report' ->> 'id')::bigint = %s)",
            (f"report.{first['id']}", first["id"]),
        )
    )
    if len(streams) < 3 or f"report.{first['id']}" not in streams:
        raise BenchError(f"the intake wrote no board/citizen events for its report: {streams}")
    _check_durable(ctx, wsgi, checks[1])
    if set(first) != {
        "id",
        "token",
        "status",
        "public_status",
        "is_sos",
        "region",
        "created_at",
        "tracking_url",
    }:
        raise BenchError(f"the intake answer changed shape: {sorted(first)}")
    raw_checks = _workload(report_points, run=8, size=len(checks), path="/intake")
    grouped_checks = _workload(report_points, run=7, size=len(checks), path=GROUPED)
    for index, (check, raw_check, grouped_check) in enumerate(
        zip(checks[2:], raw_checks[2:], grouped_checks[2:], strict=True)
    ):
        project = _post(ctx, asgi if index % 2 else wsgi, check)
        for route, substrate_check in (("/intake", raw_check), (GROUPED, grouped_check)):
            substrate = _post(ctx, raw, substrate_check)
            body, raw_body = json.loads(check.body), json.loads(substrate_check.body)
            if (body["lat"], body["lng"]) != (raw_body["lat"], raw_body["lng"]):
                raise BenchError("check workloads out of step")
            same = {k: v for k, v in project.items() if k not in {"id", "token", "created_at"}}
            mine = {k: v for k, v in substrate.items() if k not in {"id", "token", "created_at"}}
            same["tracking_url"] = urlsplit(project["tracking_url"]).path.replace(
                project["token"], ""
            )
            mine["tracking_url"] = urlsplit(substrate["tracking_url"]).path.replace(
                substrate["token"], ""
            )
            if same != mine or set(project) != set(substrate):
                raise BenchError(
                    f"raw {route} does not answer like the project:\n  project: {project}\n"
                    f"  raw:     {substrate}"
                )
    # Group commit: the 201 follows the COMMIT (row there, retry replays), and a row
    # PostgreSQL refuses fails alone.
    grouped_durable = _check_durable(ctx, raw, grouped_checks[0])
    ctx.note(
        "grouped_failure_check",
        _check_grouped_failures(
            ctx,
            raw,
            _workload(report_points, run=6, size=10, path=GROUPED),
            grouped_checks[0],
            grouped_durable,
        ),
    )
    insert_check = Request.post_json("/insert", json.loads(checks[0].body), expect=201)
    inserted = _post(ctx, raw, insert_check)
    if not ctx.sql("SELECT 1 FROM incidents_report WHERE id = %s", (inserted["id"],)):
        raise BenchError("raw insert: row not found")

    ctx.note(
        "workload",
        {
            "endpoint": f"POST {REPORTS} (anonymous, JSON)",
            "points": len(report_points),
            "point_seed": REPORT_SEED,
            "radius_km": RADIUS_KM,
            "categories": {code: weight for code, weight, _t, _f in CATEGORIES},
            "reports_per_run": WORKLOAD,
            "callers": (
                "one citizen per request: own X-Device-Id, phone, Idempotency-Key and "
                "client address (X-Forwarded-For from 100.64.0.0/10, trusted from 127.0.0.1 "
                "through TRUSTED_PROXIES as production trusts its router)"
            ),
            "throttles": (
                "production rates (report_ip 30/min, report_device 10/min, report_phone "
                "10/min), no override: the load is spread over many callers instead"
            ),
            "checked": (
                "201 with a 43-char token, row committed with client address and device, "
                "retry replays; after each run one new report per request"
            ),
        },
    )
    ctx.note(
        "topologies",
        {
            "intake_asgi": "uvicorn xixian_ems.asgi:application (deployed)",
            "intake_wsgi": "uvicorn --interface wsgi xixian_ems.wsgi:application",
            "raw_insert": "bench/raw_intake.py /insert: one autocommit INSERT per request",
            "raw_intake": "bench/raw_intake.py /intake: the project's intake SQL, psycopg",
            "raw_intake_grouped": (
                "bench/raw_intake.py /intake_grouped: /intake's validation, then group "
                "commit (one writer task per process; batches of at most 64 reports or "
                "5 ms, one transaction each; the 201 after COMMIT)"
            ),
        },
    )

    measured_asgi = _load_reports(ctx, asgi, _workload(report_points, 0), "intake asgi")
    measured_wsgi = _load_reports(ctx, wsgi, _workload(report_points, 1), "intake wsgi")
    measured_wide = _load_reports(
        ctx,
        asgi,
        _workload(report_points, 10),
        f"intake asgi c{GROUPED_WIDE_CONCURRENCY}",
        concurrency=GROUPED_WIDE_CONCURRENCY,
    )
    raw_insert = _load_reports(ctx, raw, _workload(report_points, 2, path="/insert"), "raw insert")
    raw_intake = _load_reports(ctx, raw, _workload(report_points, 3, path="/intake"), "raw intake")
    before = _grouped_stats(raw)
    raw_grouped = _load_reports(
        ctx, raw, _workload(report_points, 4, path=GROUPED), "raw intake grouped"
    )
    batches = {f"c{ctx.options.concurrency}": _grouped_delta(before, before := _grouped_stats(raw))}
    wide = _load_reports(
        ctx,
        raw,
        _workload(report_points, 5, path=GROUPED),
        f"raw intake grouped c{GROUPED_WIDE_CONCURRENCY}",
        concurrency=GROUPED_WIDE_CONCURRENCY,
    )
    batches[f"c{GROUPED_WIDE_CONCURRENCY}"] = {
        **_grouped_delta(before, _grouped_stats(raw)),
        "rps": round(wide.rps, 1),
        "p50_ms": round(wide.latency.p50_ms, 2),
        "p99_ms": round(wide.latency.p99_ms, 2),
        "server_cpu_ms": round(wide.server_cpu_ms, 3),
        "cpu_cores": {k: round(v, 2) for k, v in wide.cpu_cores.items()},
    }
    ctx.note("grouped_batches", batches)

    figures: list[Figure] = []
    # The throughput goal is a capacity: it is judged where the load is high enough for
    # the group commit to form batches (64 clients in flight; a closed loop of 8 clients
    # cannot exceed 8 / latency and leaves batches of 2-3 reports). p99 is judged at both.
    for name, result, what, rps_goal in (
        (
            "intake_asgi",
            measured_asgi,
            "POST /api/v1/reports/ under ASGI (deployed topology)",
            None,
        ),
        (
            "intake_wsgi",
            measured_wsgi,
            "POST /api/v1/reports/ under uvicorn --interface wsgi (the view, no fast path)",
            None,
        ),
        (
            f"intake_asgi_c{GROUPED_WIDE_CONCURRENCY}",
            measured_wide,
            f"the deployed topology with {GROUPED_WIDE_CONCURRENCY} concurrent clients "
            "(baseline: raw insert at the default concurrency)",
            GOAL_RPS,
        ),
    ):
        figures += [
            compare(f"{name}.rps", result, raw_insert, "rps", goal=rps_goal, description=what),
            compare(f"{name}.p50", result, raw_insert, "p50"),
            compare(f"{name}.p99", result, raw_insert, "p99", goal=GOAL_P99_MS),
            compare(f"{name}.server_cpu", result, raw_insert, "server_cpu"),
        ]
    figures += [
        compare(
            "raw_intake.rps",
            raw_intake,
            raw_insert,
            "rps",
            description="the project's intake SQL with psycopg, no framework",
        ),
        compare("raw_intake.p99", raw_intake, raw_insert, "p99"),
        compare("raw_intake.server_cpu", raw_intake, raw_insert, "server_cpu"),
        compare(
            "raw_intake_grouped.rps",
            raw_grouped,
            raw_insert,
            "rps",
            goal=GOAL_RPS,
            description="/intake's work with group commit (batches in one transaction)",
        ),
        compare("raw_intake_grouped.p50", raw_grouped, raw_insert, "p50"),
        compare("raw_intake_grouped.p99", raw_grouped, raw_insert, "p99", goal=GOAL_P99_MS),
        compare("raw_intake_grouped.server_cpu", raw_grouped, raw_insert, "server_cpu"),
    ]
    return figures
