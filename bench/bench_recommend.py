"""Team recommendation top 5 of 5,000 teams, in-process and via the API, beside raw baselines.

Workload (built once per bench database, idempotent, fixed seed 20260105): 5,000 teams
spread around the active street centres of the new area (σ 3 km), random kinds and
capability tags, 85 % available, 8 % dispatched, 4 % busy, 3 % off duty or out of
service; 70 % have a GPS fix, the others sit at their home street's centre; each has one
member (on duty unless off duty); every dispatched/busy team and 10 % of the available
ones carry a live task (load). 64 incidents near street centres in six categories
(N02 pumping, A02 gas, A08 confined space, A03 hazmat, A01 fire, O99 none), every fourth
with casualties.

``recommend_inprocess``
    ``recommend_teams(incident=..., limit=5)`` called in a loop in one Django process
    (``manage.py shell``, production settings, the bench PostgreSQL), round robin over
    the incidents. Baseline **raw in-process**: the same loop around one psycopg query
    (a fixed 10 km box) and the same score in plain Python (``bench/raw_recommend.py``).
    Goal: p99 ≤ 20 ms.
``recommend_api``
    ``GET /api/v1/incidents/{id}/recommendations/`` as the commander ``cmd-xixian``
    (uvicorn, production settings) beside the raw ASGI app answering the same top 5 from
    the same single query.

The raw baselines use one fixed box, so they can miss a better team outside it; the
project's ring search is exact. ``config.agreement`` records for how many incidents the
raw top 5 (codes, in order) equals the project's.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from bench.harness import Baseline, BenchContext, BenchError, Figure, compare
from bench.loadgen import Request

RAW_APP = "bench.raw_recommend:app"
TEAMS = 5000
INCIDENTS = 64
GOAL_P99_MS = 20.0
MARK = "RESULT:"

SETUP_SCRIPT = r"""
import math, random
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from apps.accounts.models import User
from apps.dispatch.models import DispatchTask, Team, TeamMember
from apps.incidents.models import Category, Incident
from apps.regions.models import Region

TEAMS, INCIDENTS = {teams}, {incidents}
if Team.objects.filter(code__startswith="bench-").count() < TEAMS:
    rng = random.Random(20260105)
    now = timezone.now()
    streets = list(Region.objects.filter(level="street", is_active=True,
                                         centre_lat__isnull=False).order_by("path"))
    km = 1 / 111.195
    def near(street, sigma):
        lat = street.centre_lat + rng.gauss(0, sigma) * km
        lng = street.centre_lng + rng.gauss(0, sigma) * km / math.cos(math.radians(lat))
        return lat, lng
    tags = ["pumping", "water_rescue", "medical", "gas", "confined_space", "hazmat", "fire",
            "general", "rope_rescue", "collapse_rescue"]
    kinds = ["professional", "fire", "medical", "enterprise", "volunteer", "grid"]
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(username=f"bench-resp-{{i:05d}}", password=password) for i in range(TEAMS)])
    teams, statuses = [], []
    for i in range(TEAMS):
        street = rng.choice(streets)
        roll = rng.random()
        status = ("available" if roll < 0.85 else "dispatched" if roll < 0.93 else
                  "busy" if roll < 0.97 else rng.choice(["off_duty", "out_of_service"]))
        fix = rng.random() < 0.7
        lat, lng = near(street, 3.0) if fix else (street.centre_lat, street.centre_lng)
        teams.append(Team(
            code=f"bench-{{i:05d}}", name=f"压测救援队{{i}}", kind=rng.choice(kinds),
            home_region=street, capabilities=rng.sample(tags, rng.randint(1, 4)),
            equipment={{"移动泵车": rng.randint(0, 2)}}, status=status,
            last_lat=lat, last_lng=lng, last_position_at=now if fix else None))
        statuses.append(status)
    teams = Team.objects.bulk_create(teams)
    TeamMember.objects.bulk_create([
        TeamMember(team=t, user=u, is_leader=True, on_duty=s != "off_duty",
                   on_duty_since=None if s == "off_duty" else now)
        for t, u, s in zip(teams, users, statuses)])
    categories = {{c.code: c for c in Category.objects.filter(
        code__in=["N02", "A02", "A08", "A03", "A01", "O99"])}}
    filler = Incident.objects.create(
        number="bench-rec-filler", title="压测占位事件", category=categories["O99"],
        region=streets[0], source="operator", status="in_progress",
        lat=streets[0].centre_lat, lng=streets[0].centre_lng)
    tasks = []
    for t, s in zip(teams, statuses):
        task_status = {{"dispatched": "accepted", "busy": "on_scene"}}.get(s)
        if task_status is None and s == "available" and rng.random() < 0.1:
            task_status = "dispatched"
        if task_status:
            tasks.append(DispatchTask(incident=filler, team=t, status=task_status,
                                      dispatched_at=now))
    DispatchTask.objects.bulk_create(tasks)
    order = ["N02", "A02", "A08", "A03", "A01", "O99"]
    incidents = []
    for i in range(INCIDENTS):
        street = rng.choice(streets)
        lat, lng = near(street, 1.5)
        incidents.append(Incident(
            number=f"bench-rec-{{i:03d}}", title=f"压测事件{{i}}",
            category=categories[order[i % len(order)]], region=street, source="operator",
            status="accepted", lat=lat, lng=lng, injured=1 if i % 4 == 3 else 0))
    Incident.objects.bulk_create(incidents)
from django.db import connection
with connection.cursor() as cursor:  # fresh bulk loads: give the planner real statistics
    for table in ("dispatch_team", "dispatch_teammember", "dispatch_dispatchtask"):
        cursor.execute(f"ANALYZE {{table}}")
print("teams", Team.objects.filter(code__startswith="bench-").count())
"""

TIMING_SCRIPT = r"""
import json, os, time
import psycopg
from django.db import connection
from django.test.utils import CaptureQueriesContext
from apps.dispatch.recommendation import recommend_teams
from apps.incidents.models import Incident
from bench.raw_recommend import RAW_SQL, box_params, rank

DURATION = {duration}
incidents = list(Incident.objects.filter(number__regex=r"^bench-rec-[0-9]+$")
                 .select_related("category", "region").order_by("number"))
queries = []
project_top = {{}}
for incident in incidents:
    with CaptureQueriesContext(connection) as captured:
        project_top[incident.pk] = [r.team.code for r in recommend_teams(incident=incident)]
    queries.append(len(captured))

def stats(samples):
    ordered = sorted(samples)
    def rank_at(q):
        return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]
    return {{"n": len(ordered), "mean": sum(ordered) / len(ordered), "p50": rank_at(50),
            "p90": rank_at(90), "p99": rank_at(99), "max": ordered[-1]}}

def loop(call):
    for incident in incidents:  # warm-up
        call(incident)
    samples, i = [], 0
    end = time.perf_counter() + DURATION
    while time.perf_counter() < end:
        incident = incidents[i % len(incidents)]
        i += 1
        start = time.perf_counter()
        call(incident)
        samples.append((time.perf_counter() - start) * 1000)
    return stats(samples)

project = loop(lambda incident: recommend_teams(incident=incident))

raw_conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
def raw_call(incident):
    rows = raw_conn.execute(RAW_SQL, box_params(incident.lat, incident.lng, incident.pk))
    return rank(rows.fetchall(), incident.lat, incident.lng, incident.category.code,
                incident.injured + incident.trapped > 0)
raw = loop(raw_call)
agree = sum(project_top[i.pk] == [r["code"] for r in raw_call(i)] for i in incidents)
print("{mark}" + json.dumps({{
    "project": project, "raw": raw, "agreement": agree, "incidents": len(incidents),
    "queries": {{"min": min(queries), "max": max(queries),
                "mean": sum(queries) / len(queries)}},
    "top": {{str(k): v for k, v in project_top.items()}}}}))
"""


def _figure(
    name: str, metric: str, project: dict[str, Any], raw: dict[str, Any], **kw: Any
) -> Figure:
    return Figure(
        name=name,
        unit="ms",
        value=float(project[metric]),
        baseline=Baseline(name=f"raw in-process {metric}", value=float(raw[metric]), unit="ms"),
        better="lower",
        **kw,
    )


def run(ctx: BenchContext) -> list[Figure]:
    ctx.manage("load_categories")
    ctx.manage("shell", "-c", SETUP_SCRIPT.format(teams=TEAMS, incidents=INCIDENTS), timeout=600)
    ctx.note("teams", TEAMS)
    ctx.note("incidents", INCIDENTS)

    # 1. In-process: the function itself, beside the raw query + Python ranking.
    out = ctx.manage("shell", "-c", TIMING_SCRIPT.format(duration=ctx.options.duration, mark=MARK))
    line = next((ln for ln in out.splitlines() if ln.startswith(MARK)), None)
    if line is None:
        raise BenchError(f"in-process timing printed no result:\n{out[-2000:]}")
    timing = json.loads(line[len(MARK) :])
    project, raw = timing["project"], timing["raw"]
    print(
        f"  {'recommend in-process':<24} p50 {project['p50']:7.2f} ms  p99 "
        f"{project['p99']:7.2f} ms  n={project['n']}  (raw p50 {raw['p50']:.2f} ms, "
        f"p99 {raw['p99']:.2f} ms, n={raw['n']})"
    )
    ctx.note("inprocess", {"project": project, "raw": raw})
    ctx.note("queries_per_recommendation", timing["queries"])
    ctx.note("agreement", f"{timing['agreement']}/{timing['incidents']} incidents")

    # 2. Via the API, beside the raw ASGI app.
    app = ctx.django()
    raw_server = ctx.server(RAW_APP)
    ctx.calibrate(raw_server)
    auth = {"Authorization": f"Bearer {ctx.login('cmd-xixian')}"}
    rows = ctx.sql(
        "SELECT i.id, i.lat, i.lng, c.code, i.injured + i.trapped > 0 "
        "FROM incidents_incident i JOIN incidents_category c ON c.id = i.category_id "
        "WHERE i.number ~ '^bench-rec-[0-9]+$' ORDER BY i.number"
    )
    api_requests, raw_requests = [], []
    for incident_id, lat, lng, category, casualties in rows:
        path = f"/api/v1/incidents/{incident_id}/recommendations/"
        answer = ctx.request(app, "GET", path, headers=auth)
        codes = [r["team"]["code"] for r in answer["results"]]
        if codes != timing["top"][str(incident_id)]:
            raise BenchError(f"{path}: the API and the function disagree")
        query = urlencode(
            {
                "lat": lat,
                "lng": lng,
                "category": category,
                "casualties": int(casualties),
                "incident": incident_id,
            }
        )
        api_requests.append(Request.get(path, auth))
        raw_requests.append(Request.get(f"/recommend?{query}"))
    measured = ctx.load(app, api_requests, label="recommend api")
    baseline = ctx.load(raw_server, raw_requests, label="raw recommend")
    return [
        _figure(
            "recommend_inprocess.p50",
            "p50",
            project,
            raw,
            description="recommend_teams top 5 of 5,000 teams, one process, real PostgreSQL",
        ),
        _figure(
            "recommend_inprocess.p99",
            "p99",
            project,
            raw,
            goal=GOAL_P99_MS,
            description="recommend_teams top 5 of 5,000 teams, one process, real PostgreSQL",
        ),
        compare("recommend_api.rps", measured, baseline, "rps"),
        compare("recommend_api.p50", measured, baseline, "p50"),
        compare("recommend_api.p99", measured, baseline, "p99"),
        compare("recommend_api.server_cpu", measured, baseline, "server_cpu"),
    ]
