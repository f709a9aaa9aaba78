"""The duty board (值班台) of a 新城 operator in a storm, beside one raw SQL query.

Setup (one ``manage.py shell`` script): ``BOARD_INCIDENTS`` open incidents spread over
the streets of 沣东新城 (the scope of the demo operator ``op-fengdong``), in every open
status, some SOS, some 督办; a resolution clock each (some breached, some paused); a
dispatched or moving task on half of them with its acceptance clock;
``BOARD_REPORTS`` pending citizen reports with their triage clocks; and an admin session
of ``op-fengdong`` (the board is an admin page: the load clients send its cookie, as the
duty officer's browser does). ``collectstatic`` first: admin pages name their assets
through the static manifest, as in the Docker image.

Workloads:

``page``
    ``GET /admin/console/dutydesk/board/``: the whole request path of the admin page —
    session, user, the timeout middleware, the admin's permission and sidebar, the
    stream heads, the board selector (4 queries whatever the rows), the first rows drawn
    as HTML and every row as data for board.js. Measured twice: one client at a time
    (``page.*``: the server time of one page load; goal p99 ≤ 300 ms) — a new town has a
    handful of duty officers, who load the page once and then live on the socket — and
    at the run's concurrency (``page_busy.*``: what the server sustains when everybody
    reloads at once).
``rows``
    ``GET /admin/console/dutydesk/board/rows/``: the whole board as JSON (what board.js
    reloads after a ``resync``), one client at a time.

Raw baseline (``bench/raw_board.py``): the same rows (same kinds, ids and order, checked
before timing) read with ONE SQL query through psycopg and returned as JSON, at the same
concurrency.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.harness import BenchContext, BenchError, Figure, Server, compare
from bench.loadgen import Request

RAW_APP = "bench.raw_board:app"
PAGE = "/admin/console/dutydesk/board/"
ROWS = "/admin/console/dutydesk/board/rows/"
OPERATOR = "op-fengdong"
BOARD_INCIDENTS = 2_000
BOARD_REPORTS = 300
PAGE_P99_GOAL_MS = 300.0

SEED_SCRIPT = """
import json, time
from datetime import timedelta
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connection, transaction
from django.utils import timezone
from apps.accounts.models import User
from apps.accounts.sessions import LOGIN_AT, SEEN_AT
from apps.dispatch.models import DispatchTask, Team
from apps.incidents.models import Category, Incident, Report
from apps.regions.models import Region
from apps.sla.models import SlaClock

spec = json.loads({spec})
prefix = spec["prefix"]
operator = User.objects.get(username=spec["operator"])
town = Region.objects.get(code="fengdong")
streets = list(Region.objects.filter(level="street", path__startswith=town.path).order_by("path"))
category, _ = Category.objects.get_or_create(
    code="BB1",
    defaults={{"incident_class": "natural", "name_zh": "基准测试内涝", "name_en": "Bench flood"}},
)
now = timezone.now()
statuses = ["reported", "accepted", "in_progress", "resolved"]
severities = ["unclassified", "IV", "III", "II", "I"]

def clock(kind, subject_type, subject_id, region, started, due, **extra):
    values = dict(kind=kind, subject_type=subject_type, subject_id=subject_id,
                  subject_label=f"{{prefix}} {{subject_type}} {{subject_id}}", region=region,
                  status="running", started_at=started, due_at=due, next_check_at=due)
    values.update(extra)
    return SlaClock(**values)

with transaction.atomic():
    team = Team.objects.create(code=f"{{prefix}}-team", name="基准测试救援队", kind="professional",
                               home_region=streets[0], status="available")
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                number=f"{{prefix}}-{{n:06d}}", title=f"基准测试暴雨积水 {{n}}",
                category=category, status=statuses[n % 4], severity=severities[n % 5],
                priority=2 if n % 50 == 0 else 0, source="citizen_report",
                region=streets[n % len(streets)], lat=34.27, lng=108.85,
                address=f"测试路{{n}}号", supervised_at=now if n % 40 == 0 else None,
                created_at=now - timedelta(minutes=n % 240),
            )
            for n in range(spec["incidents"])
        ],
        batch_size=1000,
    )
    tasks = DispatchTask.objects.bulk_create(
        [
            DispatchTask(incident=incident, team=team,
                         status=["dispatched", "accepted", "en_route", "on_scene"][n % 4],
                         dispatched_at=now)
            for n, incident in enumerate(incidents) if n % 2 == 0
        ],
        batch_size=1000,
    )
    reports = Report.objects.bulk_create(
        [
            Report(token=f"{{prefix}}-{{n:06d}}-" + "x" * 20, channel="app", category=category,
                   text=f"基准测试上报 {{n}}", lat=34.27, lng=108.85,
                   region=streets[n % len(streets)], is_sos=n % 25 == 0,
                   created_at=now - timedelta(minutes=n % 30))
            for n in range(spec["reports"])
        ],
        batch_size=1000,
    )
    clocks = []
    for n, incident in enumerate(incidents):
        if n % 20 == 0:  # breached
            clocks.append(clock("incident_resolution", "incident", incident.pk, incident.region,
                                now - timedelta(hours=4), now - timedelta(minutes=n % 60 + 1),
                                breached_at=now - timedelta(minutes=n % 60 + 1)))
        elif n % 33 == 0:  # paused
            clocks.append(clock("incident_resolution", "incident", incident.pk, incident.region,
                                now - timedelta(hours=1), now + timedelta(hours=3),
                                status="paused", paused_at=now, next_check_at=None))
        else:
            clocks.append(clock("incident_resolution", "incident", incident.pk, incident.region,
                                now - timedelta(hours=1), now + timedelta(minutes=5 + n % 600)))
    for n, task in enumerate(tasks):
        clocks.append(clock("task_accept", "task", task.pk, task.incident.region,
                            now - timedelta(minutes=2), now + timedelta(minutes=3 + n % 10)))
    for n, report in enumerate(reports):
        clocks.append(clock("report_triage", "report", report.pk, report.region,
                            report.created_at, report.created_at + timedelta(minutes=15)))
    SlaClock.objects.bulk_create(clocks, batch_size=2000)

with connection.cursor() as cursor:  # fresh statistics, as autovacuum would soon have them
    cursor.execute("ANALYZE")

session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(operator.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = operator.get_session_auth_hash()
session[LOGIN_AT] = session[SEEN_AT] = int(time.time())
session.create()
print(json.dumps({{"cookie": f"{{settings.SESSION_COOKIE_NAME}}={{session.session_key}}",
                  "prefix": town.path, "streets": len(streets), "tasks": len(tasks),
                  "clocks": len(clocks)}}))
"""


def _seed(ctx: BenchContext) -> dict[str, Any]:
    # An admin page: its theme and the board's assets come from the manifest, as in the
    # Docker image (which runs collectstatic at build time).
    ctx.manage("collectstatic", "--noinput", "-v", "0")
    spec = {
        "prefix": f"bb{uuid.uuid4().hex[:6]}",
        "operator": OPERATOR,
        "incidents": BOARD_INCIDENTS,
        "reports": BOARD_REPORTS,
    }
    script = SEED_SCRIPT.format(spec=repr(json.dumps(spec)))
    seeded: dict[str, Any] = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    return seeded


def _get(server: Server, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as client:
        response = client.get(path, headers=headers)
    if response.status_code != 200:
        raise BenchError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return response


def _keys(body: dict[str, Any]) -> list[str]:
    """``kind:id`` of each row of a packed answer (``apps.console.board.pack``)."""
    kind, pk = body["columns"].index("kind"), body["columns"].index("id")
    return [f"{row[kind]}:{row[pk]}" for row in body["rows"]]


def run(ctx: BenchContext) -> list[Figure]:
    seeded = _seed(ctx)
    app = ctx.django()
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)
    cookie = {"Cookie": seeded["cookie"], "Accept-Language": "zh-hans"}
    raw_path = f"/board?{urlencode({'prefix': seeded['prefix']})}"

    # The same rows in the same order on both sides, and the page draws them.
    project_rows = _keys(_get(app, ROWS, cookie).json())
    raw_rows = _keys(_get(raw, raw_path, {}).json())
    if project_rows != raw_rows:
        pairs = zip(project_rows, raw_rows, strict=False)
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
        raise BenchError(
            f"rows differ: project {len(project_rows)}, raw {len(raw_rows)}, first at {first}"
        )
    incidents = sum(1 for key in project_rows if key.startswith("incident:"))
    if incidents < BOARD_INCIDENTS:
        raise BenchError(f"op-fengdong sees {incidents} open incidents, want ≥ {BOARD_INCIDENTS}")
    page = _get(app, PAGE, cookie).text
    if 'id="xc-board"' not in page or page.count("<tr data-kind=") < 50:
        raise BenchError("the board page does not draw its rows")
    ctx.note(
        "workload",
        {
            "operator": OPERATOR,
            "rows": len(project_rows),
            "open_incidents": incidents,
            "pending_reports": len(project_rows) - incidents,
            "tasks": seeded["tasks"],
            "clocks": seeded["clocks"],
            "streets": seeded["streets"],
            "page_bytes": len(page.encode()),
            "checked": "same kinds, ids and order on both sides",
        },
    )

    page_request, raw_request = [Request.get(PAGE, cookie)], [Request.get(raw_path)]
    measured_page = ctx.load(app, page_request, label="board page", concurrency=1)
    measured_rows = ctx.load(app, [Request.get(ROWS, cookie)], label="board rows", concurrency=1)
    baseline = ctx.load(raw, raw_request, label="raw board query", concurrency=1)
    busy = ctx.load(app, page_request, label="board page (busy)")
    busy_raw = ctx.load(raw, raw_request, label="raw board query (busy)")
    return [
        compare(
            "page.p99",
            measured_page,
            baseline,
            "p99",
            goal=PAGE_P99_GOAL_MS,
            description=f"GET board page, {len(project_rows)} rows in scope, one client",
        ),
        compare("page.p50", measured_page, baseline, "p50"),
        compare("page.rps", measured_page, baseline, "rps"),
        compare("page.server_cpu", measured_page, baseline, "server_cpu"),
        compare("rows.p99", measured_rows, baseline, "p99", description="GET board/rows/"),
        compare("rows.rps", measured_rows, baseline, "rps"),
        compare("rows.server_cpu", measured_rows, baseline, "server_cpu"),
        compare(
            "page_busy.p99",
            busy,
            busy_raw,
            "p99",
            description=f"{ctx.options.concurrency} clients reloading the page at once",
        ),
        compare("page_busy.rps", busy, busy_raw, "rps"),
    ]
