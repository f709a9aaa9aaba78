"""Task transitions by concurrent responders, beside a raw SQL baseline doing the same writes.

Setup (one ``manage.py shell`` script; a fresh prefix per call, so it never depends on
what ran before): 64 teams of 2 on-duty members in one street, one accepted incident
per task, and two sets of dispatched tasks spread round robin over the teams — one set
for the project, one for the raw baseline (transitions are one-way: a task cannot be
accepted twice). Each member gets a JWT access token. What dispatching leaves behind is
there too, written in bulk (dispatching 18,000 tasks one by one through ``task_dispatch``
would take minutes): each task's acceptance and arrival SLA clocks (the default
policies, ``load_sla_policies``) and its dispatch push to each member (a delivered outbox
row waiting for a receipt), so acceptance really stops a clock and releases receipts,
and arrival really stops the other clock.

Workload: every request is one transition of one task by one of its team's members,
with a fresh ``Idempotency-Key`` (the mobile client always sends one) and the JSON body
the app sends (``{}``; ``{"result": ...}`` for complete). Tasks advance in chunks like a
pipeline: round *r* accepts chunk *r*, sets chunk *r-1* en route, chunk *r-2* on scene
and completes chunk *r-3*, so the four transitions are evenly mixed in every window and
a task's previous transition finished long before its next one is sent (chunks are at
least 8 × the concurrency). The two members of a team take turns, so several
responders of one team act at once on the team's tasks (their team row is shared).

Project path per request: JWT auth, the task read for the access check, the
idempotency key row, then the service: lock incident and task, membership check, table
check, task UPDATE, TaskEvent INSERT, incident timeline INSERT, on first acceptance the
incident start (UPDATE + timeline), the team status refresh (team row lock + live-task
query), the stored idempotent answer, and the task re-read for the answer.

Raw baseline (``bench/raw_tasks.py``), same concurrency, the same members taking the
same turns, a fresh ``Idempotency-Key`` each: the same writes and checks in one
transaction as hand-written SQL — key row, incident and task locks, membership, the
compare-and-swap task UPDATE, task event and timeline rows, the clock stop, receipts
released, the incident start, realtime events on the same streams, the team status, the
stored answer — and a ``PUBLISH`` per event after COMMIT. Before timing, one task of
each side goes through all four transitions and the bench checks, in the database, every
row each side must have written (``config.checked``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench.harness import BenchContext, BenchError, Figure, compare
from bench.loadgen import Request

RAW_APP = "bench.raw_tasks:app"
TEAMS = 64
MEMBERS = 2
PROJECT_TASKS = 6_000  # 24,000 transitions; far more than a run sends (checked)
RAW_TASKS = 12_000  # 48,000 transitions for the faster baseline (checked)
ACTIONS = ("accept", "en-route", "on-scene", "complete")
RAW_STATUS = {
    "accept": "accepted",
    "en-route": "en_route",
    "on-scene": "on_scene",
    "complete": "completed",
}

SEED_SCRIPT = """
import json
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from apps.accounts.models import User
from apps.dispatch.models import DispatchTask, Team, TeamMember
from apps.incidents.models import Category, Incident
from apps.dispatch.push import task_push_prefix
from apps.notifications.models import Notification
from apps.notifications.services import task_ack_window
from apps.regions.models import Region
from apps.sla.models import SlaKind
from apps.sla.services.clocks import ClockStart, sla_clocks_start_many

spec = json.loads({spec})
prefix, n_teams, n_members = spec["prefix"], spec["teams"], spec["members"]
street = Region.objects.filter(level="street", is_active=True).order_by("code").first()
category, _ = Category.objects.get_or_create(
    code="BT1",
    defaults={{"incident_class": "accident", "name_zh": "基准测试", "name_en": "Bench"}},
)
now = timezone.now()
lat0, lng0 = street.centre_lat or 34.3, street.centre_lng or 108.75

def make(tag, count, teams):
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                number=f"{{prefix}}{{tag}}-{{n:06d}}", title=f"基准测试派单事件 {{n}}",
                category=category, status="accepted", source="operator", region=street,
                lat=lat0 + (n % 100) * 0.0001, lng=lng0 + (n // 100 % 100) * 0.0001,
                accepted_at=now,
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    tasks = DispatchTask.objects.bulk_create(
        [
            DispatchTask(incident=incident, team=teams[n % len(teams)], status="dispatched",
                         dispatched_at=now)
            for n, incident in enumerate(incidents)
        ],
        batch_size=2000,
    )
    # What dispatching (task_dispatch) leaves behind for the transitions to act on: the
    # task's acceptance and arrival clocks, and the dispatch push to the team's members
    # (delivered, waiting for a receipt). Written in bulk: dispatching 18,000 tasks one by
    # one through the service would take minutes.
    sla_clocks_start_many(
        [
            ClockStart(kind=kind, subject_type="task", subject_id=task.pk, region_id=street.pk,
                       label=f"{{task.team.name}} → {{task.incident.number}}",
                       category=category.code, started_at=now)
            for task in tasks for kind in (SlaKind.TASK_ACCEPT, SlaKind.TASK_ARRIVAL)
        ]
    )
    deadline = now + task_ack_window()
    Notification.objects.bulk_create(
        [
            Notification(
                dedupe_key=f"{{task_push_prefix(task.pk)}}:u{{member}}", channel="push",
                kind="task", priority="high", user_id=member, language="zh-hans",
                title=f"新任务：{{task.incident.title}}", body="基准测试", template={{}},
                data={{"type": "task", "event": "dispatched", "task_id": str(task.pk)}},
                status="sent", attempts=1, next_attempt_at=now, sent_at=now,
                ack_deadline=deadline, created_at=now,
            )
            for task in tasks for member in members[task.team_id]
        ],
        batch_size=2000,
    )
    return [[task.pk, n % len(teams)] for n, task in enumerate(tasks)]

with transaction.atomic():
    teams = Team.objects.bulk_create(
        [
            Team(code=f"{{prefix}}-team-{{i:03d}}", name=f"基准救援队{{i}}", kind="professional",
                 home_region=street, status="available", last_lat=lat0, last_lng=lng0)
            for i in range(n_teams)
        ]
    )
    users = User.objects.bulk_create(
        [
            User(username=f"{{prefix}}-resp-{{i:03d}}-{{m}}", password="!")
            for i in range(n_teams) for m in range(n_members)
        ]
    )
    TeamMember.objects.bulk_create(
        [
            TeamMember(team=teams[i], user=users[i * n_members + m], on_duty=True,
                       on_duty_since=now)
            for i in range(n_teams) for m in range(n_members)
        ]
    )
    members = {{team.pk: [] for team in teams}}
    for i in range(n_teams):
        members[teams[i].pk] += [users[i * n_members + m].pk for m in range(n_members)]
    project = make("P", spec["project_tasks"], teams)
    raw = make("R", spec["raw_tasks"], teams)
tokens = [
    [str(AccessToken.for_user(users[i * n_members + m])) for m in range(n_members)]
    for i in range(n_teams)
]
user_ids = [[users[i * n_members + m].pk for m in range(n_members)] for i in range(n_teams)]
print(json.dumps({{"project": project, "raw": raw, "tokens": tokens, "users": user_ids,
                  "street": street.code}}))
"""


def _seed(ctx: BenchContext) -> dict[str, Any]:
    ctx.manage("load_sla_policies")  # idempotent: the task clocks need their policies
    spec = {
        "prefix": f"bt{uuid.uuid4().hex[:6]}",
        "teams": TEAMS,
        "members": MEMBERS,
        "project_tasks": PROJECT_TASKS,
        "raw_tasks": RAW_TASKS,
    }
    script = SEED_SCRIPT.format(spec=repr(json.dumps(spec)))
    seeded: dict[str, Any] = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    return seeded


def _pipeline(tasks: list[list[int]], chunk: int) -> list[tuple[int, int, int, str]]:
    """(task id, team index, stage, action) in pipeline order (module docstring)."""
    chunks = [tasks[i : i + chunk] for i in range(0, len(tasks), chunk)]
    order: list[tuple[int, int, int, str]] = []
    for round_ in range(len(chunks) + len(ACTIONS) - 1):
        for stage, action in enumerate(ACTIONS):
            index = round_ - stage
            if 0 <= index < len(chunks):
                order.extend((task_id, team, stage, action) for task_id, team in chunks[index])
    return order


def _body(action: str) -> dict[str, str]:
    return {"result": "现场处置完毕，已恢复通行"} if action == "complete" else {}


def _project_request(task_id: int, team: int, stage: int, action: str, tokens: Any) -> Request:
    token = tokens[team][(task_id + stage) % MEMBERS]  # the team's members take turns
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    return Request.post_json(f"/api/v1/tasks/{task_id}/{action}/", _body(action), headers)


def _raw_request(task_id: int, team: int, stage: int, action: str, users: Any) -> Request:
    user = users[team][(task_id + stage) % MEMBERS]  # the same turns as the project's
    return Request.post_json(
        f"/transition?task={task_id}&action={action}&user={user}",
        _body(action),
        {"Idempotency-Key": str(uuid.uuid4())},
    )


def _check(ctx: BenchContext, task_id: int, side: str) -> dict[str, Any]:
    """What one task's four transitions must have written, from the database."""
    found = {
        "task_events": ctx.sql(
            "SELECT count(*) FROM dispatch_taskevent WHERE task_id = %s", (task_id,)
        )[0][0],
        "timeline": ctx.sql(
            "SELECT count(*) FROM incidents_incidentevent e JOIN dispatch_dispatchtask t "
            "ON t.incident_id = e.incident_id WHERE t.id = %s AND e.kind LIKE 'task_%%'",
            (task_id,),
        )[0][0],
        "incident": ctx.sql(
            "SELECT i.status FROM incidents_incident i JOIN dispatch_dispatchtask t "
            "ON t.incident_id = i.id WHERE t.id = %s",
            (task_id,),
        )[0][0],
        "clocks_stopped": ctx.sql(
            "SELECT count(*) FROM sla_slaclock WHERE subject_type = 'task' AND subject_id = %s "
            "AND status = 'stopped'",
            (task_id,),
        )[0][0],
        "receipts_open": ctx.sql(
            "SELECT count(*) FROM notifications_notification WHERE dedupe_key LIKE %s "
            "AND ack_deadline IS NOT NULL",
            (f"task:{task_id}:dispatched:%",),
        )[0][0],
        "events": ctx.sql(
            "SELECT count(*) FROM realtime_event WHERE kind LIKE 'task.%%' "
            "AND payload->'task'->>'id' = %s",
            (str(task_id),),
        )[0][0],
        "keys": ctx.sql(
            "SELECT count(*) FROM core_idempotentrequest WHERE path LIKE %s "
            "AND response_status = 200",
            (f"%/{task_id}/%" if side == "project" else "/transition",),
        )[0][0],
    }
    expected = {"task_events": 4, "timeline": 4, "incident": "in_progress", "clocks_stopped": 2}
    if any(found[k] != v for k, v in expected.items()) or found["receipts_open"]:
        raise BenchError(f"{side} check of task {task_id}: {found}")
    if found["events"] < 4 or found["keys"] < 4:
        raise BenchError(f"{side} check of task {task_id}: events or keys missing: {found}")
    return found


def run(ctx: BenchContext) -> list[Figure]:
    seeded = _seed(ctx)
    tokens = seeded["tokens"]
    project_tasks, raw_tasks = seeded["project"], seeded["raw"]
    app = ctx.django()
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)

    # Prove both sides do the work before timing it: one task each through all four, and
    # every row, clock, receipt, event and key it must have written.
    users = seeded["users"]
    (check_id, check_team), project_tasks = project_tasks[0], project_tasks[1:]
    (raw_check_id, raw_team), raw_tasks = raw_tasks[0], raw_tasks[1:]
    for stage, action in enumerate(ACTIONS):
        request = _project_request(check_id, check_team, stage, action, tokens)
        answer = ctx.request(
            app, "POST", request.path, headers=dict(request.headers), json_body=_body(action)
        )
        raw_request = _raw_request(raw_check_id, raw_team, stage, action, users)
        raw_answer = ctx.request(
            raw,
            "POST",
            raw_request.path,
            headers=dict(raw_request.headers),
            json_body=_body(action),
        )
        if answer["status"] != RAW_STATUS[action] or raw_answer["status"] != RAW_STATUS[action]:
            raise BenchError(f"{action}: project {answer['status']}, raw {raw_answer['status']}")
    ctx.note(
        "checked",
        {"project": _check(ctx, check_id, "project"), "raw": _check(ctx, raw_check_id, "raw")},
    )

    chunk = max(64, 8 * ctx.options.concurrency)
    workload = [
        _project_request(task_id, team, stage, action, tokens)
        for task_id, team, stage, action in _pipeline(project_tasks, chunk)
    ]
    raw_workload = [
        _raw_request(task_id, team, stage, action, users)
        for task_id, team, stage, action in _pipeline(raw_tasks, chunk)
    ]
    ctx.note(
        "workload",
        {
            "teams": TEAMS,
            "members_per_team": MEMBERS,
            "responders": TEAMS * MEMBERS,
            "transitions": list(ACTIONS),
            "project_transitions_available": len(workload),
            "raw_transitions_available": len(raw_workload),
            "pipeline_chunk": chunk,
            "street": seeded["street"],
            "idempotency_key": "fresh per request",
        },
    )
    measured = ctx.load(app, workload, label="task transitions")
    baseline = ctx.load(raw, raw_workload, label="raw conditional update + event")
    for result, available in ((measured, len(workload)), (baseline, len(raw_workload))):
        # The loop cycles through the list: had it wrapped, a second accept would have
        # failed the run already; this makes the margin visible.
        if result.requests >= available // 2:
            raise BenchError(f"{result.label}: workload too small ({result.requests} sent)")
    return [
        compare("transitions.rps", measured, baseline, "rps"),
        compare("transitions.p50", measured, baseline, "p50"),
        compare("transitions.p99", measured, baseline, "p99"),
        compare("transitions.server_cpu", measured, baseline, "server_cpu"),
    ]
