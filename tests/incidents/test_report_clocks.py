"""Every citizen report is on its triage clock from the moment it exists.

The clock is written in the transaction that inserts the report (the one write path,
``reports_submit_many``), so triage can never see a report without its clock, and the
repair tool can never start a clock on a report that was triaged meanwhile. These tests
race the writers against the triage on real PostgreSQL, in real threads and through the
fast intake path of a real server.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.incidents.models import Report
from apps.incidents.services import reports as report_services
from apps.incidents.services.sla import report_triage_clocks_repair
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from apps.sla.policies import policies_invalidate
from apps.sla.services.seed import policies_load_fixture
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import CategoryFactory
from tests.support.servers import asgi_process, server_log

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SANQIAO = (34.276, 108.85)


@pytest.fixture(autouse=True)
def _area() -> Any:
    policies_invalidate()
    regions_load_fixture()
    policies_load_fixture()
    CategoryFactory(code="A01")
    yield
    policies_invalidate()


def _triage(
    report_id: int, operator: Any, answered: float | None = None, lags: list[float] | None = None
) -> str:
    """Accept even ids, reject odd ones; ``""`` if someone else got there first.
    With ``answered`` (the 201's arrival), how long after it the triage began goes to
    ``lags``."""
    if answered is not None and lags is not None:
        lags.append(time.monotonic() - answered)
    try:
        if report_id % 2 == 0:
            report_services.report_accept(report_id=report_id, by=operator)
            return "accepted"
        report_services.report_reject(report_id=report_id, by=operator, reason="已另行处置")
        return "rejected"
    except Exception as exc:
        if getattr(exc, "code", "") == "report_already_triaged":
            return ""
        raise
    finally:
        connection.close()


def _triage_clock_states() -> dict[int, list[str]]:
    states: dict[int, list[str]] = {}
    for subject_id, status in SlaClock.objects.filter(
        kind=SlaKind.REPORT_TRIAGE, subject_type="report"
    ).values_list("subject_id", "status"):
        states.setdefault(subject_id, []).append(status)
    return states


def test_triage_racing_the_writers_and_the_repair_tool_never_leaves_a_running_clock() -> None:
    # given: an operator of the street and a catalogue, warm
    operator = StaffUserFactory(region=Region.objects.get(code="fengdong"))
    drafts_made = 0
    stop = threading.Event()
    seen: set[int] = set()
    errors: list[BaseException] = []

    def writer() -> None:
        nonlocal drafts_made
        try:
            for _batch in range(15):
                drafts = [
                    report_services.report_draft(
                        category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1], text=f"w{n}"
                    )
                    for n in range(random.randint(1, 12))
                ]
                report_services.reports_submit_many(drafts)
                drafts_made += len(drafts)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def triager() -> None:
        try:
            while not stop.is_set():
                fresh = list(
                    Report.objects.filter(status=Report.Status.SUBMITTED)
                    .exclude(pk__in=seen)
                    .values_list("pk", flat=True)[:20]
                )
                for report_id in fresh:
                    seen.add(report_id)
                    _triage(report_id, operator)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def repairer() -> None:
        try:
            while not stop.is_set():
                report_triage_clocks_repair()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when: two writers, two triagers and the repair tool run at once
    workers = [threading.Thread(target=f) for f in (triager, triager, repairer)]
    writers = [threading.Thread(target=writer) for _ in range(2)]
    for thread in workers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in workers:
        thread.join()
    assert not errors, errors
    # and whatever the triagers missed is triaged now
    for report_id in Report.objects.filter(status="submitted").values_list("pk", flat=True):
        _triage(report_id, operator)

    # then: every report has exactly one triage clock, stopped with its triage
    reports = dict(Report.objects.values_list("pk", "status"))
    assert len(reports) == drafts_made > 30
    assert set(reports.values()) == {"accepted", "rejected"}
    states = _triage_clock_states()
    assert set(states) == set(reports)
    assert all(statuses == [ClockStatus.STOPPED] for statuses in states.values()), states
    assert report_triage_clocks_repair() == 0


@pytest.mark.integration
def test_two_hundred_fast_path_reports_triaged_at_once_all_count_for_triage_compliance(
    record_property: Any,
) -> None:
    # given: a street operator, and the intake server with Redis (the fast path)
    operator = StaffUserFactory(region=Region.objects.get(code="fengdong"))
    triage = ThreadPoolExecutor(max_workers=8)
    lags: list[float] = []

    async def storm(base: str) -> list[tuple[int, str]]:
        limits = asyncio.Semaphore(8)  # eight citizens, each triaged as answered
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def one(i: int) -> tuple[int, str]:
                async with limits:
                    response = await http.post(
                        "/api/v1/reports/",
                        json={"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1]},
                        headers={
                            "Idempotency-Key": str(uuid.uuid4()),
                            "X-Forwarded-For": f"100.64.{i // 250}.{i % 250 + 1}",
                        },
                    )
                    assert response.status_code == 201, response.text
                    answered = time.monotonic()
                    report_id = response.json()["id"]
                    # triage right away, as an operator watching the board would
                    outcome = await loop.run_in_executor(
                        triage, _triage, report_id, operator, answered, lags
                    )
                return report_id, outcome

            return await asyncio.gather(*[one(i) for i in range(200)])

    # when
    # The test stands in for the router: its X-Forwarded-For names each citizen.
    env = {"REDIS_URL": settings.TEST_REDIS_URL, "TRUSTED_PROXIES": "127.0.0.1"}
    with asgi_process(env) as started:
        triaged = asyncio.run(storm(started[0]))
    triage.shutdown()
    log = server_log(started)

    # then: the fast path wrote them (the writer's own count at shutdown)
    assert "intake writer closed: Stats(" in log, log[-2000:]
    assert "reports=200" in log.split("intake writer closed: Stats(", 1)[1]
    ids = [report_id for report_id, _outcome in triaged]
    assert sorted(outcome for _id, outcome in triaged) == sorted(
        ["accepted" if i % 2 == 0 else "rejected" for i in ids]
    )
    # every one has a triage clock, started at its creation and stopped by its triage
    clocks = {
        c.subject_id: c
        for c in SlaClock.objects.filter(kind=SlaKind.REPORT_TRIAGE, subject_id__in=ids)
    }
    created = dict(Report.objects.filter(pk__in=ids).values_list("pk", "created_at"))
    assert set(clocks) == set(ids)
    assert all(c.status == ClockStatus.STOPPED for c in clocks.values())
    assert all(clocks[i].started_at == created[i] for i in ids)
    # and the triage-compliance KPI counts all 200 as met
    client = APIClient()
    client.force_authenticate(operator)
    today = timezone.localdate().isoformat()
    response = client.get(reverse("v1:analytics-kpis"), {"from": today, "to": today})
    assert response.status_code == 200, response.content
    (triage_row,) = [r for r in response.json()["total"]["sla"] if r["kind"] == "report_triage"]
    assert (triage_row["met"], triage_row["breached"], triage_row["pending"]) == (200, 0, 0)
    # (the point of the exercise: triage followed each answer at once)
    # (the race the old design lost: every triage began within 100 ms of its 201 here;
    # the figure is the test's own set-up, recorded to show it, not a speed goal)
    record_property("triage_began_after_201_max_ms", round(max(lags) * 1000))
