"""Early warnings: a red warning's fan-out to 5,000 responsible persons, and their 叫应.

Deployment as in production (``xixian_ems.settings.production``): the approval runs the
real service, its pushes leave through the outbox and **Celery worker processes** of the
project (``celery --app xixian_ems worker --concurrency 2``, the command of
``docker/entrypoint.sh``; as many workers as the run's ``--workers``), which send through
firebase-admin (``NOTIFICATIONS_PUSH_BACKEND`` = the FCM backend) to a **fake FCM HTTP v1
server** (``bench/fake_fcm.py``: one uvicorn process; ``FCM_ENDPOINT_URL`` points
firebase-admin at it, the service account's ``token_uri`` too) that records when each
message arrives. No beat runs (its requeue sweep would only re-enqueue rows still queued).

Setup (one ``manage.py shell`` script): ``PERSONS`` users (minted with their access
tokens) on the 责任人 roster of the new area's regions, round robin over every active
region below the root, each with one active Android device; the SLA policies (so every
叫应 row gets its ``warning_ack`` clock); two commanders of the new area (author and
approver: the author may not approve); a red rainstorm warning for the whole new area,
created and submitted through the services, awaiting approval. ``WARM_PUSHES`` pushes to
other users warm every worker process (firebase-admin App, OAuth token, connections)
before anything is measured; the fake server's record is then cleared.

**Fan-out.** One ``manage.py shell`` process approves the warning (``warning_approve``:
publication, 叫应 rows and clocks, outbox rows, events) inside an outer transaction whose
first ``on_commit`` callback stamps ``time.time()``: the **commit time**, taken right
after COMMIT returned, before the project's own on-commit work (one Celery message per
outbox row). The figure runs from that commit until the fake server's **last arrival**
of the version's messages: one topic message per target (``region-xixian``) and one
message per device of every person asked. Every expected message must arrive exactly
once (a lost, duplicated or unexpected message fails the run), and every outbox row of
the version must have ended ``sent`` (or ``skipped``: demo role holders without a device).
Per-message latency (arrival − commit) gives p50/p99/max.
Raw baseline (``bench/raw_warnings.py``, same run, same fake server): read the same
tokens and topics with psycopg and send the same requests over as many keep-alive
connections as the project has delivery processes (workers × 2); from its start (before
the read) to its last arrival.

**Acknowledgements.** Each of the ``PERSONS`` posts ``POST /api/v1/warnings/{id}/ack/``
once, with its own token and ``Idempotency-Key``, through the real ASGI servers: a closed
loop at the run's concurrency that drains the list of 5,000 requests (each sent once;
warm-up before it: ``GET /api/v1/me/warning-acks/`` of the same callers). Figure: acks/s
over the drain (first send to last answer), p50/p99 per request; afterwards every row is
checked in the database (``acked_at`` set, its clock ``stopped``). Raw baseline: the same
drain against ``bench.raw_warnings:app`` doing the same ``UPDATE`` of the ack row and the
clock stop (plus the key row) with psycopg on copies of the rows.

Figures: ``fanout.last`` (goal ≤ 10 s), ``fanout.p50``, ``fanout.p99``, ``fanout.max``
(per-message), ``acks.rps`` (goal ≥ 1,000 acks/s), ``acks.p50``, ``acks.p99``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.fake_fcm import service_account
from bench.harness import (
    LOG_DIR,
    ROOT,
    Baseline,
    BenchContext,
    BenchError,
    Figure,
    Server,
    cpu_cores,
    cpu_snapshot,
    server_process_cores,
)
from bench.loadgen import LatencyRecorder, LoadResult, RawHttp1Connection, Request, run_async
from bench.raw_warnings import TOKENS_SQL, TOPICS_SQL, copy_rows, raw_fanout, raw_state

PERSONS = 5000
WARM_PUSHES = 40
CELERY_CONCURRENCY = 2  # docker/entrypoint.sh: --concurrency "${CELERY_CONCURRENCY:-2}"
PROJECT_ID = "xems-bench"
FANOUT_GOAL_S = 10.0
ACK_GOAL_RPS = 1000.0
FANOUT_TIMEOUT_S = 180.0
FCM_BACKEND = "apps.notifications.backends.fcm.FcmPushBackend"

SETUP_SCRIPT = """
import json
from datetime import timedelta
from django.core.management import call_command
from django.utils import timezone
from apps.accounts.models import Device, Membership, User
from apps.accounts.services import device_token_hash
from apps.early_warnings import services
from apps.early_warnings.models import ResponsiblePerson
from apps.regions.models import Region

prefix, warm = {prefix}, {warm}
call_command("load_sla_policies", verbosity=0)
root = Region.objects.get(level="new_area", parent__isnull=True, is_active=True)
below = list(
    Region.objects.filter(is_active=True, path__startswith=root.path)
    .exclude(pk=root.pk).order_by("path").values_list("pk", flat=True)
)
persons = list(User.objects.filter(username__startswith=prefix + "-").order_by("username"))
ResponsiblePerson.objects.bulk_create(
    [
        ResponsiblePerson(user=u, region_id=below[i % len(below)], role="duty_officer")
        for i, u in enumerate(persons)
    ]
)
warmers = User.objects.bulk_create(
    [User(username=f"{{prefix}}w-{{i:03d}}", password="!") for i in range(warm)]
)
devices = [(u, f"{{prefix}}-device-{{i:05d}}") for i, u in enumerate(persons)]
devices += [(u, f"{{prefix}}-warm-{{i:03d}}") for i, u in enumerate(warmers)]
Device.objects.bulk_create(
    [
        Device(user=u, token=t, token_hash=device_token_hash(t), platform="android",
               locale="zh-hans", is_active=True)
        for u, t in devices
    ]
)
author = User.objects.create(username=prefix + "a-author", password="!")
approver = User.objects.create(username=prefix + "a-approver", password="!")
for user in (author, approver):
    Membership.objects.create(user=user, region=root, role="commander")
now = timezone.now()
version = services.warning_create(
    by=author, warning_type="rainstorm", level="red", title="暴雨红色预警",
    description="预计未来3小时内全区降雨量将达100毫米以上。",
    instruction="责任人立即到岗，组织危险区域人员转移。",
    targets=[root.pk], onset=now, expires=now + timedelta(hours=6),
)
services.warning_submit(version_id=version.pk, by=author)
print(json.dumps({{
    "version": version.pk, "root": root.code, "regions_below": len(below),
    "persons": [u.pk for u in persons], "warmers": [u.pk for u in warmers],
    "approver": approver.pk,
}}))
"""

WARM_SCRIPT = """
from apps.notifications.models import Kind, Priority
from apps.notifications.services import notify_users
from django.db import transaction
with transaction.atomic():
    ids = notify_users(user_ids={warmers}, kind=Kind.WARNING, title="warm-up", body="warm-up",
                       data={{"level": "red"}}, dedupe_key_prefix={prefix},
                       priority=Priority.HIGH)
print(len(ids))
"""

PUBLISH_SCRIPT = """
import json, time
from django.db import transaction
from apps.accounts.models import User
from apps.early_warnings.services import warning_approve
approver = User.objects.get(pk={approver})
marks = {{}}
with transaction.atomic():
    # First on-commit callback: runs right after COMMIT, before the service's own.
    transaction.on_commit(lambda: marks.setdefault("commit", time.time()))
    version = warning_approve(version_id={version}, by=approver)
    transaction.on_commit(lambda: marks.setdefault("enqueued", time.time()))
marks["sent"] = version.sent.timestamp()
marks["status"] = version.status
print(json.dumps(marks))
"""


class CeleryWorker:
    """One ``celery worker`` of the project, in its own process group."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = LOG_DIR / f"warnings-{name}.log"
        self.log = self.log_path.open("wb")
        # Distinct node names on one host (each container of the image has its own).
        argv = ["worker", "--loglevel", "INFO", "--concurrency", str(CELERY_CONCURRENCY)]
        argv += ["--hostname", f"{name}@bench"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "--app", "xixian_ems", *argv],
            cwd=ROOT,
            env={**env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not start:\n{self.output()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def _credentials(path: Path, base_url: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(json.dumps(service_account(base_url, pem, PROJECT_ID)), encoding="utf-8")


def _fcm(server: Server, method: str, path: str) -> Any:
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
        response = client.request(method, path)
    response.raise_for_status()
    return response.json()


def _wait(predicate: Any, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def _rows(url: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _percentile(values: Sequence[float], pct: float) -> float:
    """Nearest rank (as the rest of bench/)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _outbox(url: str, version_id: int) -> dict[str, int]:
    """Status → count of the outbox rows of the version's publication."""
    rows = _rows(
        url,
        "SELECT status, count(*) FROM notifications_notification "
        "WHERE dedupe_key LIKE %s GROUP BY status",
        (f"ew:{version_id}:published:%",),
    )
    return {str(status): int(count) for status, count in rows}


def _check_arrivals(records: list[list[Any]], expected: list[str], label: str) -> dict[str, float]:
    """Target → arrival time; fails unless every expected message arrived exactly once."""
    counts = Counter(str(target) for _at, target, _n in records)
    wanted = Counter(expected)
    lost = [t for t in wanted if counts[t] < wanted[t]]
    extra = [t for t in counts if counts[t] > wanted.get(t, 0)]
    if lost or extra:
        raise BenchError(
            f"{label}: {len(lost)} expected messages lost (e.g. {lost[:3]}), "
            f"{len(extra)} duplicated or unexpected (e.g. {extra[:3]})"
        )
    return {str(target): float(at) for at, target, _n in records}


def _series(arrivals: dict[str, float], start: float) -> dict[str, float]:
    lat = [at - start for at in arrivals.values()]
    return {
        "messages": len(lat),
        "last_s": round(max(lat), 3),
        "p50_ms": round(_percentile(lat, 50) * 1000, 1),
        "p99_ms": round(_percentile(lat, 99) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1),
        "first_ms": round(min(lat) * 1000, 1),
    }


async def drain(
    base_urls: Sequence[str],
    requests: Sequence[Request],
    *,
    concurrency: int,
    label: str,
    timeout: float = 10.0,
) -> tuple[LoadResult, list[str]]:
    """A closed loop that sends each request of ``requests`` exactly once: ``concurrency``
    clients (client ``i`` on ``base_urls[i % n]``) take the next request as soon as their
    previous answer is read. Throughput = requests / (first send → last answer)."""
    hosts = [(u.split("//", 1)[1].rsplit(":", 1)) for u in base_urls]
    recorder = LatencyRecorder()
    pending = iter(requests)
    errors: list[str] = []
    first = time.perf_counter()
    last = first

    async def client(index: int) -> None:
        nonlocal last
        host, port = hosts[index % len(hosts)]
        conn = RawHttp1Connection(host, int(port))
        try:
            for request in pending:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        status, body = await conn.send(request)
                except Exception as exc:
                    status, body = -1, f"{type(exc).__name__}: {exc}".encode()
                    await conn.reset()
                done = time.perf_counter()
                if status != request.expect:
                    errors.append(f"{request.method} {request.path} -> {status}: {body[:300]!r}")
                else:
                    recorder.record(done - started)
                    last = max(last, done)
        finally:
            await conn.reset()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    window = max(last - first, 1e-9)
    result = LoadResult(
        label=label,
        targets=tuple(base_urls),
        client="raw",
        concurrency=concurrency,
        warmup_s=0.0,
        window_s=window,
        requests=len(recorder),
        errors=len(errors),
        rps=len(recorder) / window,
        latency=recorder.summary(),
        error_samples=tuple(errors[:5]),
    )
    return result, errors


def _drain(
    ctx: BenchContext, server: Server, requests: Sequence[Request], label: str
) -> LoadResult:
    start = cpu_snapshot(server.pgid)
    result, errors = run_async(
        drain(server.base_urls, requests, concurrency=ctx.options.concurrency, label=label)
    )
    end = cpu_snapshot(server.pgid)
    result = result.with_cpu(cpu_cores(start, end), server_process_cores(start, end))
    ctx.record(result)
    lat = result.latency
    print(
        f"  {label:<24} {result.rps:>9,.1f} req/s  p50 {lat.p50_ms:7.2f} ms  "
        f"p99 {lat.p99_ms:7.2f} ms  n={result.requests}  cores["
        + " ".join(f"{k} {v:.2f}" for k, v in result.cpu_cores.items())
        + "]"
    )
    if errors:
        raise BenchError(
            f"{label}: {len(errors)} failed requests, e.g.\n  " + "\n  ".join(errors[:5])
        )
    return result


def run(ctx: BenchContext) -> list[Figure]:
    prefix = f"bench-ew-{uuid.uuid4().hex[:6]}"
    url = ctx.database_url

    # 1. Callers, roster, devices, the warning awaiting approval.
    print(f"  warnings: minting {PERSONS:,} callers; roster, devices, a red warning")
    tokens = ctx.mint_tokens(prefix, PERSONS)
    seeded = json.loads(
        ctx.manage(
            "shell",
            "-c",
            SETUP_SCRIPT.format(prefix=json.dumps(prefix), warm=WARM_PUSHES),
            timeout=600,
        )
        .strip()
        .splitlines()[-1]
    )
    version_id, persons = int(seeded["version"]), [int(pk) for pk in seeded["persons"]]
    if len(persons) != PERSONS:
        raise BenchError(f"seeded {len(persons)} persons, wanted {PERSONS}")

    # 2. The fake FCM server and the delivery workers.
    fcm = Server("fake-fcm", "bench.fake_fcm:app", workers=1, env=ctx.env)
    workers: list[CeleryWorker] = []
    try:
        print("  starting fake-fcm: 1 x uvicorn bench.fake_fcm:app")
        fcm.start()
        credentials = LOG_DIR / "warnings-fcm-service-account.json"
        _credentials(credentials, fcm.base_url)
        env = {
            **ctx.env,
            "NOTIFICATIONS_PUSH_BACKEND": FCM_BACKEND,
            "FCM_CREDENTIALS_FILE": str(credentials),
            "FCM_ENDPOINT_URL": fcm.base_url,
            "FCM_PROJECT_ID": PROJECT_ID,
        }
        count = ctx.options.workers
        print(f"  starting {count} celery workers (--concurrency {CELERY_CONCURRENCY} each)")
        workers = [CeleryWorker(f"ew-worker-{i + 1}", env) for i in range(count)]
        for worker in workers:
            worker.wait_ready()

        # 3. Warm every worker process, then forget what the fake server saw.
        warm = ctx.manage(
            "shell",
            "-c",
            WARM_SCRIPT.format(warmers=seeded["warmers"], prefix=json.dumps(prefix + "-warm")),
        )
        if int(warm.strip().splitlines()[-1]) != WARM_PUSHES:
            raise BenchError(f"warm-up queued {warm!r} pushes, wanted {WARM_PUSHES}")
        _wait(
            lambda: _fcm(fcm, "GET", "/_count")["count"] >= WARM_PUSHES, 120, "the warm-up pushes"
        )
        _fcm(fcm, "POST", "/_reset")

        # 4. Publish; wait for every message and every outbox row of the version.
        print(f"  publishing a red warning for {seeded['root']} ({PERSONS:,} persons asked)")
        marks = json.loads(
            ctx.manage(
                "shell",
                "-c",
                PUBLISH_SCRIPT.format(approver=seeded["approver"], version=version_id),
            )
            .strip()
            .splitlines()[-1]
        )
        if marks.get("status") != "published":
            raise BenchError(f"the warning was not published: {marks}")
        expected = [t for (t,) in _rows(url, TOPICS_SQL, (version_id,))]
        expected += [t for (t,) in _rows(url, TOKENS_SQL, (version_id,))]
        _wait(
            lambda: _fcm(fcm, "GET", "/_count")["count"] >= len(expected),
            FANOUT_TIMEOUT_S,
            f"{len(expected)} messages at the fake FCM server",
        )
        _wait(
            lambda: not set(_outbox(url, version_id)) & {"pending", "sending"},
            60,
            "the outbox rows' outcomes",
        )
        outbox = _outbox(url, version_id)
        records = _fcm(fcm, "GET", "/_records")["records"]
        arrivals = _check_arrivals(records, expected, "fan-out")
        if set(outbox) - {"sent", "skipped"}:
            raise BenchError(f"outbox rows of the warning ended badly: {outbox}")
        project = _series(arrivals, marks["commit"])
        project["enqueued_after_commit_s"] = round(marks["enqueued"] - marks["commit"], 3)
        project["commit_after_sent_s"] = round(marks["commit"] - marks["sent"], 3)
        print(
            f"  fan-out: {project['messages']:,} messages, last {project['last_s']:.2f} s after "
            f"commit (p50 {project['p50_ms']:.0f} ms, p99 {project['p99_ms']:.0f} ms); all "
            f"enqueued {project['enqueued_after_commit_s']:.2f} s after commit"
        )
    finally:
        for worker in workers:
            worker.stop()

    try:
        # 5. Raw fan-out floor: same tokens and topics, same fake server, same concurrency.
        _fcm(fcm, "POST", "/_reset")
        senders = ctx.options.workers * CELERY_CONCURRENCY
        raw = run_async(raw_fanout(url, fcm.base_url, PROJECT_ID, version_id, senders))
        raw_records = _fcm(fcm, "GET", "/_records")["records"]
        raw_series = _series(_check_arrivals(raw_records, expected, "raw fan-out"), raw["started"])
        print(
            f"  raw fan-out: {raw['sent']:,} messages over {senders} connections, last "
            f"{raw_series['last_s']:.2f} s after start"
        )
    finally:
        fcm.stop()

    ctx.note("persons", PERSONS)
    ctx.note("roster_regions", seeded["regions_below"])
    asked = _rows(
        url,
        "SELECT count(*) FROM early_warnings_acknowledgement WHERE version_id = %s",
        (version_id,),
    )[0][0]
    ctx.note("asked", int(asked))  # the roster plus the demo's role holders (no devices)
    topics = sum(1 for target in expected if target.startswith("region-"))
    ctx.note("expected_messages", {"topics": topics, "devices": len(expected) - topics})
    ctx.note("outbox", outbox)
    ctx.note(
        "delivery",
        {
            "celery_workers": ctx.options.workers,
            "concurrency_each": CELERY_CONCURRENCY,
            "pool": "prefork (docker/entrypoint.sh)",
            "backend": FCM_BACKEND,
            "warm_pushes": WARM_PUSHES,
            "beat": "not running",
        },
    )
    ctx.note("fanout", {"project": project, "raw": {**raw_series, "connections": senders}})

    # 6. 叫应: every person acknowledges once through the API; raw on copies of the rows.
    copied = copy_rows(url, version_id)
    django = ctx.django()
    headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
    ctx.load(
        django,
        [Request.get("/api/v1/me/warning-acks/", h) for h in headers[:500]],
        label="warm-up: my pending acks",
        duration=max(1.0, ctx.options.warmup),
        warmup=0.0,
    )
    path = f"/api/v1/warnings/{version_id}/ack/"
    acks = [
        Request("POST", path, (*h.items(), ("Idempotency-Key", str(uuid.uuid4())))) for h in headers
    ]
    acked = _drain(ctx, django, acks, "acks (django)")
    state = _rows(
        url,
        "SELECT count(a.acked_at), count(*) FILTER (WHERE c.status = 'stopped'), count(*) "
        "FROM early_warnings_acknowledgement a LEFT JOIN sla_slaclock c "
        "ON c.kind = 'warning_ack' AND c.subject_type = 'warning_ack' AND c.subject_id = a.id "
        "WHERE a.version_id = %s AND a.user_id = ANY(%s)",
        (version_id, persons),
    )[0]
    if not state[0] == state[1] == state[2] == PERSONS:
        raise BenchError(
            f"after the acks: {state[0]} rows acknowledged, {state[1]} clocks stopped of "
            f"{state[2]} rows (want {PERSONS} each)"
        )
    raw_server = ctx.server("bench.raw_warnings:app")
    raw_acks = [
        Request(
            "POST",
            f"/ack?warning={version_id}&user={user_id}",
            (("Idempotency-Key", str(uuid.uuid4())),),
        )
        for user_id in persons
    ]
    ctx.load(
        raw_server,
        [Request.get("/readyz")],
        label="warm-up: raw readyz",
        duration=max(1.0, ctx.options.warmup),
        warmup=0.0,
    )
    raw_acked = _drain(ctx, raw_server, raw_acks, "acks (raw)")
    raw_checked = raw_state(url, version_id, persons)
    if raw_checked != {"acked": PERSONS, "clocks_stopped": PERSONS}:
        raise BenchError(f"raw acks incomplete: {raw_checked} of {copied} copied rows")
    ctx.note(
        "acks",
        {
            "project": {"acked": state[0], "clocks_stopped": state[1]},
            "raw": {**raw_checked, "copied_rows": copied},
        },
    )
    ctx.note("loadavg_after", Path("/proc/loadavg").read_text().split()[:3])

    raw_base = "raw (psycopg + same connections)"
    return [
        Figure(
            "fanout.last",
            "s",
            project["last_s"],
            Baseline(f"{raw_base}: last arrival", raw_series["last_s"], "s"),
            "lower",
            goal=FANOUT_GOAL_S,
            description=(
                f"publish COMMIT → last of {project['messages']:,} FCM messages (1 topic + "
                f"{PERSONS:,} persons' devices) at the fake server; exactly once each"
            ),
        ),
        Figure(
            "fanout.p50",
            "ms",
            project["p50_ms"],
            Baseline(f"{raw_base}: p50", raw_series["p50_ms"], "ms"),
            "lower",
            description="per message: publish COMMIT → arrival at the fake FCM server",
        ),
        Figure(
            "fanout.p99",
            "ms",
            project["p99_ms"],
            Baseline(f"{raw_base}: p99", raw_series["p99_ms"], "ms"),
            "lower",
        ),
        Figure(
            "fanout.max",
            "ms",
            project["max_ms"],
            Baseline(f"{raw_base}: max", raw_series["max_ms"], "ms"),
            "lower",
        ),
        Figure(
            "acks.rps",
            "acks/s",
            acked.rps,
            Baseline("raw ack app (psycopg) acks/s", raw_acked.rps, "acks/s"),
            "higher",
            goal=ACK_GOAL_RPS,
            description=(
                f"{PERSONS:,} callers POST /warnings/{{id}}/ack/ once each (Idempotency-Key), "
                "closed loop; every row acked and its clock stopped afterwards"
            ),
        ),
        Figure(
            "acks.p50",
            "ms",
            acked.latency.p50_ms,
            Baseline("raw ack app p50", raw_acked.latency.p50_ms, "ms"),
            "lower",
        ),
        Figure(
            "acks.p99",
            "ms",
            acked.latency.p99_ms,
            Baseline("raw ack app p99", raw_acked.latency.p99_ms, "ms"),
            "lower",
        ),
    ]
