"""Production topology: the same REST workloads under ASGI, uvicorn WSGI and gunicorn.

Which server should run the REST API? Today's deployment serves everything, REST and
WebSockets, from ``uvicorn xixian_ems.asgi:application``; every Django view is sync, so
under ASGI each request hops between the event loop and a worker thread
(``sync_to_async``). The alternatives serve ``xixian_ems.wsgi:application`` and leave
the sockets to an ASGI server. Four servers, the same worker count (``--workers``), one
process per worker on its own port with the clients split evenly (the harness layout),
the same concurrency:

``asgi``
    ``uvicorn xixian_ems.asgi:application`` (today's deployment).
``uvicorn_wsgi``
    ``uvicorn --interface wsgi xixian_ems.wsgi:application`` (uvicorn's WSGI adapter:
    each request runs whole in one thread of a 10-thread pool).
``gunicorn_sync``
    ``gunicorn --worker-class sync``: one request at a time per worker, and the
    connection is closed after each response, so every request pays a TCP connect (a
    proxy in front cannot keep connections to a sync worker alive either).
``gunicorn_gthread``
    ``gunicorn --worker-class gthread --threads 4`` (:data:`GTHREAD_THREADS`): keep-alive
    connections wait in the worker's poller and up to 4 requests run at once. Django's
    views are CPU-bound Python under one GIL with short database waits, so threads beyond
    the requests a process has in flight add only contention; 4 covers the bench's 4
    clients per process and stays under the per-process database pool (10).

Workloads, interleaved (each workload runs on all four servers back to back, so a
change in the load of the shared machine hits all four alike), with shorter runs than
the harness default so the benchmark stays near 90 s (:data:`FLOOR_SHARE`,
:data:`RUN_SHARE`):

``healthz``
    ``GET /healthz``: no authentication, no database, the stack's floor.
``incidents``
    ``GET /api/v1/incidents/`` as ``op-fengdong`` (operator of 沣东新城): JWT auth, scope
    resolution, the first page (50) of the incidents in the subtree with category and
    region, cursor pagination. Set-up adds 120 incidents in the subtree's streets (fresh
    numbers per call) so the page is full whatever ran before.
``duty``
    ``POST /api/v1/me/duty/`` (上岗/下岗) by 64 responders, one per team, each alternating
    on and off duty, a fresh ``Idempotency-Key`` per request: the key row, the team and
    member row locks, the member UPDATE and the team status UPDATE in one transaction.
    Repeatable forever; a responder's consecutive toggles are 64 requests apart, so no
    two of them are in flight at once.

Figures: per workload and server ``rps``, ``p50``, ``p99``, ``server_cpu`` (the server
group's CPU ms per request, gunicorn's masters included), each beside the bare app's
``/ping`` (``bench/rawasgi.py``, uvicorn) measured in the same run; the description
gives the ratio to ``asgi``. ``rss.<server>``: the mean resident memory (VmRSS) of a
serving process after all runs, beside the bare app's; every process with its peak
(VmHWM), masters included, is in ``config.memory``.

Before timing, every server must answer ``/healthz`` with the bare app's JSON, give
the same first page of incidents, and toggle a check responder on and off duty with
the rows committed.
"""

from __future__ import annotations

import json
import math
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness import (
    Baseline,
    BenchContext,
    BenchError,
    Figure,
    Server,
    compare,
)
from bench.loadgen import LoadResult, Metric, Request

RAW_APP = "bench.rawasgi:app"
HEALTHZ = "/healthz"
INCIDENTS = "/api/v1/incidents/"
DUTY = "/api/v1/me/duty/"
OPERATOR = "op-fengdong"

GTHREAD_THREADS = 4  # per gthread worker (module docstring)
INCIDENT_COUNT = 120  # in the operator's subtree; a page is 50
RESPONDERS = 64  # one per team, each toggling (module docstring)
# Load runs are shorter than the harness default so that 13 runs, four server starts and
# the set-up stay within about 90 s: shares of --duration/--warmup (8 + 2 s by default).
# /healthz gives thousands of samples in 2 s; the database workloads get 4 s.
FLOOR_SHARE = 0.25
RUN_SHARE = 0.5
MAX_WRITE_RPS = 1_000  # sizes the duty workload: fresh keys must never wrap

SEED_SCRIPT = """
import json
from datetime import timedelta
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from apps.accounts.models import Membership, User
from apps.dispatch.models import Team, TeamMember
from apps.incidents.models import Category, Incident, IncidentEvent
from apps.regions.models import Region

spec = json.loads({spec})
prefix = spec["prefix"]
call_command("load_categories", verbosity=0)  # idempotent
scope = Membership.objects.filter(
    user__username=spec["operator"], is_active=True
).select_related("region").first()
streets = list(
    Region.objects.filter(level="street", is_active=True, path__startswith=scope.region.path)
    .exclude(centre_lat=None).order_by("code")
)
categories = list(Category.objects.filter(is_active=True).order_by("code")[:6])
now = timezone.now()
STATUSES = ["reported", "accepted", "in_progress", "reported", "accepted", "resolved"]

with transaction.atomic():
    incidents = []
    for n in range(spec["incidents"]):
        street, category = streets[n % len(streets)], categories[n % len(categories)]
        status = STATUSES[n % len(STATUSES)]
        at = now - timedelta(minutes=7 * n)
        stamps = {{"accepted_at": at}} if status != "reported" else {{}}
        if status in ("in_progress", "resolved"):
            stamps["in_progress_at"] = at
        if status == "resolved":
            stamps["resolved_at"] = at
        incidents.append(Incident(
            number=f"{{prefix}}-{{n:04d}}", title=f"{{category.name_zh}}: 拓扑基准事件 {{n}}",
            category=category, status=status, source="operator", region=street,
            lat=street.centre_lat + (n % 7) * 0.001, lng=street.centre_lng + (n % 5) * 0.001,
            address=f"{{street.name_zh}} 测试路 {{n}} 号", created_at=at, **stamps,
        ))
    Incident.objects.bulk_create(incidents, batch_size=500)
    IncidentEvent.objects.bulk_create(
        [
            IncidentEvent(incident=x, kind="created", at=x.created_at, public=True,
                          data={{"source": x.source, "category": x.category.code}})
            for x in incidents
        ],
        batch_size=500,
    )
    home = streets[0]
    teams = Team.objects.bulk_create(
        [
            Team(code=f"{{prefix}}-team-{{i:03d}}", name=f"拓扑基准队{{i}}", kind="professional",
                 home_region=home, status="off_duty", last_lat=home.centre_lat,
                 last_lng=home.centre_lng)
            for i in range(spec["responders"] + 1)
        ]
    )
    users = User.objects.bulk_create(
        [User(username=f"{{prefix}}-resp-{{i:03d}}", password="!") for i in range(len(teams))]
    )
    TeamMember.objects.bulk_create(
        [TeamMember(team=team, user=user, on_duty=False) for team, user in zip(teams, users)]
    )
visible = Incident.objects.filter(region__path__startswith=scope.region.path).count()
print(json.dumps({{
    "scope": scope.region.path,
    "streets": len(streets),
    "visible_incidents": visible,
    "tokens": [str(AccessToken.for_user(user)) for user in users],
    "members": [[user.pk, team.code] for team, user in zip(teams, users)],
}}))
"""


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    requests: Callable[[], Sequence[Request]]  # built per run (duty needs fresh keys)
    share: float  # of --duration and --warmup


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _duty_request(token: str, on_duty: bool) -> Request:
    headers = {**_bearer(token), "Idempotency-Key": str(uuid.uuid4())}
    return Request.post_json(DUTY, {"on_duty": on_duty}, headers)


def _seed(ctx: BenchContext) -> dict[str, Any]:
    spec = {
        "prefix": f"topo{uuid.uuid4().hex[:6]}",
        "operator": OPERATOR,
        "incidents": INCIDENT_COUNT,
        "responders": RESPONDERS,
    }
    script = SEED_SCRIPT.format(spec=repr(json.dumps(spec)))
    seeded: dict[str, Any] = json.loads(ctx.manage("shell", "-c", script).strip().splitlines()[-1])
    return seeded


def _check(
    ctx: BenchContext,
    servers: dict[str, Server],
    raw: Server,
    operator: dict[str, str],
    check_token: str,
    check_member: int,
) -> int:
    """Every server does the same work (module docstring); returns the page size."""
    ping = ctx.request(raw, "GET", "/ping")
    page: list[Any] | None = None
    for label, server in servers.items():
        if ctx.request(server, "GET", HEALTHZ) != ping:
            raise BenchError(f"{label}: /healthz no longer answers the bare app's JSON")
        results = ctx.request(server, "GET", INCIDENTS, headers=operator)["results"]
        if not results:
            raise BenchError(f"{label}: {OPERATOR} sees no incidents")
        if page is not None and results != page:
            raise BenchError(f"{label}: a different first page of incidents than asgi")
        page = results
        for on_duty, team_status in ((True, "available"), (False, "off_duty")):
            request = _duty_request(check_token, on_duty)
            answer = ctx.request(
                server, "POST", DUTY, headers=dict(request.headers), json_body={"on_duty": on_duty}
            )
            stored = ctx.sql(
                "SELECT m.on_duty, t.status FROM dispatch_teammember m "
                "JOIN dispatch_team t ON t.id = m.team_id WHERE m.user_id = %s",
                (check_member,),
            )
            if answer["on_duty"] is not on_duty or stored != [(on_duty, team_status)]:
                raise BenchError(f"{label}: duty {on_duty} answered {answer}, stored {stored}")
    assert page is not None
    return len(page)


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x asgi" if base else "- asgi"


def _memory(server: Server) -> tuple[float, list[dict[str, Any]]]:
    """Mean VmRSS (MiB) of the serving processes (NaN without /proc), and every process."""
    processes = server.memory()
    workers = [p.rss_mib for p in processes if p.role == "worker"]
    if processes and not workers:
        raise BenchError(f"{server.name}: no serving process found in its group")
    return (statistics.mean(workers) if workers else math.nan), [p.to_dict() for p in processes]


def _print_matrix(
    results: dict[str, dict[str, LoadResult]], rss: dict[str, float], raw_rss: float
) -> None:
    print(
        f"\n  {'workload':<10} {'server':<17} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU ms/req':>10} {'req/s vs asgi':>13} {'CPU vs asgi':>11}"
    )
    for workload, by_server in results.items():
        asgi = by_server["asgi"]
        for label, run in by_server.items():
            print(
                f"  {workload:<10} {label:<17} {run.rps:>8,.0f} {run.latency.p50_ms:>8.2f} "
                f"{run.latency.p99_ms:>8.2f} {run.server_cpu_ms:>10.2f} "
                f"{run.rps / asgi.rps:>12.2f}x {run.server_cpu_ms / asgi.server_cpu_ms:>10.2f}x"
            )
    print(f"  {'RSS per serving process (MiB)':<36} bare app {raw_rss:.0f}")
    for label, mib in rss.items():
        print(f"  {'':<10} {label:<17} {mib:>8.0f}")
    print()


def run(ctx: BenchContext) -> list[Figure]:
    began = time.perf_counter()
    seeded = _seed(ctx)
    tokens, members = seeded["tokens"], seeded["members"]
    check_token, (check_member, _team) = tokens[-1], members[-1]
    responders = tokens[:RESPONDERS]

    servers: dict[str, Server] = {
        "asgi": ctx.django(),
        "uvicorn_wsgi": ctx.django(interface="wsgi"),
        "gunicorn_sync": ctx.gunicorn(worker_class="sync"),
        "gunicorn_gthread": ctx.gunicorn(worker_class="gthread", threads=GTHREAD_THREADS),
    }
    raw = ctx.server(RAW_APP)
    ctx.calibrate(raw)
    operator = _bearer(ctx.login(OPERATOR))
    page = _check(ctx, servers, raw, operator, check_token, check_member)

    run_s = (ctx.options.warmup + ctx.options.duration) * RUN_SHARE
    toggles = max(4 * RESPONDERS, int(MAX_WRITE_RPS * run_s))

    def duty_requests() -> list[Request]:
        # Request n: responder n % 64, on duty in even rounds, off in odd ones.
        return [
            _duty_request(responders[n % RESPONDERS], (n // RESPONDERS) % 2 == 0)
            for n in range(toggles)
        ]

    workloads = [
        Workload(
            "healthz",
            "GET /healthz: no auth, no database",
            lambda: [Request.get(HEALTHZ)],
            FLOOR_SHARE,
        ),
        Workload(
            "incidents",
            f"GET {INCIDENTS} as {OPERATOR}: first page of {page}",
            lambda: [Request.get(INCIDENTS, operator)],
            RUN_SHARE,
        ),
        Workload(
            "duty",
            f"POST {DUTY} on/off by {RESPONDERS} responders",
            duty_requests,
            RUN_SHARE,
        ),
    ]
    ctx.note(
        "servers",
        {
            label: {
                "command": server.description,
                "served_earlier_benchmarks": (server.started_at or began) < began,
            }
            for label, server in servers.items()
        },
    )
    ctx.note(
        "workload",
        {
            "gthread_threads": GTHREAD_THREADS,
            "runs_warmup_duration_s": {
                w.name: [ctx.options.warmup * w.share, ctx.options.duration * w.share]
                for w in workloads
            },
            "operator_scope": seeded["scope"],
            "operator_streets": seeded["streets"],
            "incidents_visible_to_operator": seeded["visible_incidents"],
            "incidents_page": page,
            "duty_responders": RESPONDERS,
            "duty_requests_per_run": toggles,
            "order": "interleaved: each workload on every server back to back",
        },
    )

    results: dict[str, dict[str, LoadResult]] = {}
    baseline: LoadResult | None = None
    for workload in workloads:
        warmup = ctx.options.warmup * workload.share
        duration = ctx.options.duration * workload.share
        results[workload.name] = {}
        for label, server in servers.items():
            requests = workload.requests()
            result = ctx.load(
                server,
                requests,
                label=f"{workload.name} {label}",
                warmup=warmup,
                duration=duration,
            )
            if workload.name == "duty" and result.rps * (warmup + duration) >= len(requests):
                raise BenchError(f"duty {label}: the workload wrapped (keys would be replayed)")
            results[workload.name][label] = result
        if baseline is None:  # right after the floor runs, as long as they are
            baseline = ctx.load(
                raw, [Request.get("/ping")], label="raw ping", warmup=warmup, duration=duration
            )
    assert baseline is not None

    raw_rss, raw_processes = _memory(raw)
    rss: dict[str, float] = {}
    memory: dict[str, Any] = {"bare_app": raw_processes}
    for label, server in servers.items():
        rss[label], memory[label] = _memory(server)
    ctx.note("memory", memory)
    _print_matrix(results, rss, raw_rss)

    figures: list[Figure] = []
    metrics: tuple[Metric, ...] = ("rps", "p50", "p99", "server_cpu")
    for workload in workloads:
        by_server = results[workload.name]
        for label, result in by_server.items():
            for metric in metrics:
                value = result.metric(metric)[0]
                reference = by_server["asgi"].metric(metric)[0]
                figures.append(
                    compare(
                        f"{workload.name}.{label}.{metric}",
                        result,
                        baseline,
                        metric,
                        description=f"{workload.description}; {_ratio(value, reference)}",
                    )
                )
    for label, mib in rss.items():
        figures.append(
            Figure(
                name=f"rss.{label}",
                unit="MiB",
                value=mib,
                baseline=Baseline(name="bare app VmRSS", value=raw_rss, unit="MiB"),
                better="lower",
                description=(
                    f"mean VmRSS of a serving process after the runs; {_ratio(mib, rss['asgi'])}"
                ),
            )
        )
    return figures
