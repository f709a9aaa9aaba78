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
    the incidents. Baseline **raw in-process**: the same loop around
    ``bench/raw_recommend.py``'s ``recommend_sync`` — the project's ring search (same
    start radius, widening, filters, stopping rule, pruning and ranking inputs) in
    hand-written SQL on a plain psycopg connection. Goal: p99 ≤ 20 ms.
``recommend_api``
    ``GET /api/v1/incidents/{id}/recommendations/`` as the commander ``cmd-xixian``
    (uvicorn, production settings) beside the raw ASGI app's ``/recommend?incident=<id>``
    (reads the incident, then the same search).

Before timing: the raw module's radii, speeds and road factor must equal the project's
settings, and for **every** incident the raw top 5 must equal the project's — same teams
in the same order with the same score, distance, ETA, effective minutes, load and
position — in-process and through both servers (``config.agreement``). The raw side
also records its queries per recommendation (``config.queries_per_recommendation``).
"""

from __future__ import annotations

import json
from typing import Any

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
from django.conf import settings
from apps.dispatch.routing import road_factor, speed_profile
import bench.raw_recommend as raw_module
from bench.raw_recommend import recommend_sync, search

DURATION = {duration}
incidents = list(Incident.objects.filter(number__regex=r"^bench-rec-[0-9]+$")
                 .select_related("category", "region").order_by("number"))
same_settings = {{
    "radii": list(raw_module.RADII_KM) == [float(r) for r in settings.DISPATCH_RECOMMEND_RADII_KM],
    "speeds": raw_module.SPEEDS_KMH == speed_profile(),
    "road_factor": raw_module.ROAD_FACTOR == road_factor(),
}}

queries, raw_queries = [], []
project_top, raw_top = {{}}, {{}}
raw_conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)

def args(incident):
    return (incident.lat, incident.lng, incident.pk, incident.category.code,
            (incident.injured or 0) + (incident.trapped or 0) > 0)

for incident in incidents:
    with CaptureQueriesContext(connection) as captured:
        project_top[incident.pk] = [
            [r.team.code, r.score, r.distance_km, r.eta_minutes, r.effective_minutes, r.load,
             r.position] for r in recommend_teams(incident=incident)]
    queries.append(len(captured))
    answers = [c.answer(rank) for rank, c in
               enumerate(recommend_sync(raw_conn, *args(incident)), 1)]
    raw_top[incident.pk] = [
        [a["team"]["code"], a["score"], a["distance_km"], a["eta_minutes"],
         a["effective_minutes"], a["load"], a["position"]] for a in answers]
    steps, rows, n = search(*args(incident)), None, 0
    try:
        while True:
            sql, params = steps.send(rows)
            rows = raw_conn.execute(sql, params).fetchall()
            n += 1
    except StopIteration:
        pass
    raw_queries.append(n)

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

raw = loop(lambda incident: recommend_sync(raw_conn, *args(incident)))
agree = sum(project_top[i.pk] == raw_top[i.pk] for i in incidents)
differ = [{{"incident": i.pk, "project": project_top[i.pk], "raw": raw_top[i.pk]}}
          for i in incidents if project_top[i.pk] != raw_top[i.pk]][:3]

def spread(values):
    return {{"min": min(values), "max": max(values), "mean": sum(values) / len(values)}}

print("{mark}" + json.dumps({{
    "project": project, "raw": raw, "agreement": agree, "incidents": len(incidents),
    "differ": differ, "same_settings": same_settings,
    "queries": spread(queries), "raw_queries": spread(raw_queries),
    "top": {{str(k): v for k, v in project_top.items()}}}}))
"""


def _same_fields(item: dict[str, Any]) -> list[Any]:
    """What both answers must agree on, in the order the timing script lists it."""
    return [
        item["team"]["code"],
        item["score"],
        item["distance_km"],
        item["eta_minutes"],
        item["effective_minutes"],
        item["load"],
        item["position"],
    ]


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
    ctx.note(
        "queries_per_recommendation", {"project": timing["queries"], "raw": timing["raw_queries"]}
    )
    if not all(timing["same_settings"].values()):
        raise BenchError(f"raw_recommend's settings differ from the project's: {timing}")
    if timing["agreement"] != timing["incidents"]:
        raise BenchError(
            f"raw and project top 5 differ for {timing['incidents'] - timing['agreement']} "
            f"incidents, e.g. {json.dumps(timing['differ'], ensure_ascii=False)}"
        )

    # 2. Via the API, beside the raw ASGI app.
    app = ctx.django()
    raw_server = ctx.server(RAW_APP)
    ctx.calibrate(raw_server)
    auth = {"Authorization": f"Bearer {ctx.login('cmd-xixian')}"}
    rows = ctx.sql(
        "SELECT i.id FROM incidents_incident i WHERE i.number ~ '^bench-rec-[0-9]+$' "
        "ORDER BY i.number"
    )
    api_requests, raw_requests = [], []
    for (incident_id,) in rows:
        path = f"/api/v1/incidents/{incident_id}/recommendations/"
        raw_path = f"/recommend?incident={incident_id}"
        answer = ctx.request(app, "GET", path, headers=auth)
        raw_answer = ctx.request(raw_server, "GET", raw_path)
        project_top = [_same_fields(r) for r in answer["results"]]
        if project_top != timing["top"][str(incident_id)]:
            raise BenchError(f"{path}: the API and the function disagree")
        if [_same_fields(r) for r in raw_answer["results"]] != project_top:
            raise BenchError(f"{raw_path}: the raw app and the API disagree")
        api_requests.append(Request.get(path, auth))
        raw_requests.append(Request.get(raw_path))
    ctx.note(
        "agreement",
        f"{timing['agreement']}/{timing['incidents']} incidents in-process, "
        f"{len(rows)}/{len(rows)} through the servers: same teams, order and figures",
    )
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
