"""The fast intake path answers valid anonymous JSON reports exactly as the view would,
after COMMIT, and hands everything else to the view."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.urls import reverse

from apps.core.models import IdempotentRequest
from apps.incidents.intake.parse import REPORTS_PATH, SOS_PATH
from apps.incidents.models import Category, Report
from apps.regions import geo
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import CategoryFactory, WaterloggingCategoryFactory
from xixian_ems.asgi import application

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SANQIAO = (34.276, 108.85)
HEADERS_COMPARED = (
    "content-type",
    "vary",
    "allow",
    "x-frame-options",
    "content-language",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "idempotent-replayed",
)


@pytest.fixture(autouse=True)
def _area(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    CategoryFactory(code="A01")
    CategoryFactory(code="O99", citizen_reportable=False)  # the SOS category
    WaterloggingCategoryFactory(code="N02")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=application, client=("100.64.0.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http
    await application.close()
    # The thread sync_to_async ran ORM calls in keeps its own connection: close it, or
    # the test database cannot be dropped at the end of the session.
    await sync_to_async(connections.close_all)()


def body(**overrides: Any) -> dict[str, Any]:
    return {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": "燃气味", **overrides}


def taken_by_fast_path() -> int:
    committer = application.committer
    return committer.stats.reports if committer is not None else 0


async def post(client: httpx.AsyncClient, payload: Any, **headers: str) -> httpx.Response:
    return await client.post(REPORTS_PATH, json=payload, headers=headers)


count_reports = sync_to_async(Report.objects.count)


async def test_the_fast_paths_are_the_view_routes() -> None:
    assert reverse("v1:report-submit") == REPORTS_PATH
    assert reverse("v1:report-sos") == SOS_PATH


async def test_a_valid_anonymous_report_is_committed_by_the_fast_path(
    client: httpx.AsyncClient,
) -> None:
    # when
    response = await post(client, body(phone="139 0000 0001"), **{"X-Device-Id": "dev-1"})
    # then
    assert response.status_code == 201, response.text
    assert taken_by_fast_path() == 1
    answer = response.json()
    report = await sync_to_async(Report.objects.select_related("region").get)(pk=answer["id"])
    assert answer["token"] == report.token
    assert answer["region"]["code"] == report.region.code == "fd-sanqiao"
    assert answer["tracking_url"] == f"http://127.0.0.1/api/v1/reports/track/{report.token}/"
    assert report.status == Report.Status.SUBMITTED
    assert report.phone == "+8613900000001"
    assert report.device_id == "dev-1"
    assert report.client_ip == "100.64.0.7"
    assert report.text == "燃气味"


async def test_the_fast_answer_matches_the_views_answer(
    client: httpx.AsyncClient, settings: Any
) -> None:
    # given: the same report through the view
    settings.INCIDENTS_FAST_INTAKE = False
    key = str(uuid.uuid4())
    from_view = await post(client, body(), **{"Idempotency-Key": key})
    settings.INCIDENTS_FAST_INTAKE = True
    # when
    fast = await post(client, body(), **{"Idempotency-Key": str(uuid.uuid4())})
    # then
    assert from_view.status_code == fast.status_code == 201
    assert taken_by_fast_path() == 1
    view_json, fast_json = from_view.json(), fast.json()
    assert list(view_json) == list(fast_json)
    for name in ("status", "public_status", "is_sos", "region"):
        assert view_json[name] == fast_json[name]
    assert view_json["created_at"][-6:] == fast_json["created_at"][-6:] == "+08:00"
    for name in HEADERS_COMPARED:
        assert from_view.headers.get(name) == fast.headers.get(name), name
    # and the stored idempotent answers have the same shape
    stored = await sync_to_async(list)(IdempotentRequest.objects.order_by("id"))
    assert [s.response_status for s in stored] == [201, 201]
    assert list(stored[0].response_body) == list(stored[1].response_body)


async def test_a_retry_with_the_same_key_replays_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    key = str(uuid.uuid4())
    first = await post(client, body(), **{"Idempotency-Key": key})
    # when
    retry = await post(client, body(), **{"Idempotency-Key": key})
    # then
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await count_reports() == 1


async def test_one_key_twice_in_one_batch_makes_one_report(client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    answers = await asyncio.gather(
        *[post(client, body(), **{"Idempotency-Key": key}) for _ in range(5)]
    )
    assert {a.status_code for a in answers} <= {201, 409}
    assert sum(1 for a in answers if a.status_code == 201) >= 1
    assert len({a.json()["id"] for a in answers if a.status_code == 201}) == 1
    assert await count_reports() == 1


async def test_a_reused_key_with_another_body_gets_the_views_422(
    client: httpx.AsyncClient,
) -> None:
    key = str(uuid.uuid4())
    assert (await post(client, body(), **{"Idempotency-Key": key})).status_code == 201
    # when
    reused = await post(client, body(text="别的"), **{"Idempotency-Key": key})
    # then
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await count_reports() == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (body(category="ZZZ"), 400, "category_unknown"),
        (body(lat=31.2, lng=121.5), 422, "point_outside_area"),
        (body(lat="north"), 400, "invalid"),
        (
            body(category="N02", extra={"waterlogging_depth_cm": "deep"}),
            400,
            "category_field_invalid",
        ),
        (body(phone="12"), 400, "invalid"),
        (body(text="x" * 2001), 400, "invalid"),
        (body(photos=["aGVsbG8="]), 400, "invalid"),
        ([1, 2], 400, "parse_error"),  # not an object: refused by the parser
    ],
)
async def test_bad_input_gets_the_views_error_and_nothing_is_written(
    client: httpx.AsyncClient, payload: Any, status: int, code: str
) -> None:
    response = await post(client, payload)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert taken_by_fast_path() == 0
    assert await count_reports() == 0


async def test_a_request_counted_by_the_fast_path_is_not_counted_again_by_the_view(
    client: httpx.AsyncClient, settings: Any
) -> None:
    # given: two reports a minute from this address
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "report_ip": "2/min",
        },
    }
    # when: one bad report (counted by the fast path, answered by the view) and one good
    assert (await post(client, body(category="ZZZ"))).status_code == 400
    assert (await post(client, body())).status_code == 201
    refused = await post(client, body())
    # then: the third is the one refused, with the view's 429
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0


def access_token(user: Any) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


async def test_a_logged_in_citizen_is_taken_by_the_fast_path_as_the_reporter(
    client: httpx.AsyncClient,
) -> None:
    # given a registered citizen with a phone, who types none
    citizen = await sync_to_async(CitizenFactory)(phone="+8613900001234")
    key = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {access_token(citizen)}", "Idempotency-Key": key}
    # when
    response = await post(client, body(), **headers)
    again = await post(client, body(), **headers)
    # then: the fast path took it, as the citizen, and the retry replays it
    assert response.status_code == 201, response.text
    assert taken_by_fast_path() == 2
    report = await sync_to_async(Report.objects.get)(pk=response.json()["id"])
    assert (report.reporter_id, report.phone) == (citizen.pk, "+8613900001234")
    assert again.status_code == 201
    assert again.json() == response.json()
    assert again.headers["idempotent-replayed"] == "true"
    stored = await sync_to_async(IdempotentRequest.objects.get)()
    assert stored.scope == f"user:{citizen.pk}"
    assert await count_reports() == 1


async def test_a_bad_token_on_a_report_gets_the_views_401(client: httpx.AsyncClient) -> None:
    response = await post(client, body(), Authorization="Bearer not-a-token")
    assert response.status_code == 401
    assert taken_by_fast_path() == 0
    assert await count_reports() == 0


async def test_the_token_of_a_deactivated_account_gets_the_views_401(
    client: httpx.AsyncClient,
) -> None:
    citizen = await sync_to_async(CitizenFactory)(is_active=False)
    response = await post(client, body(), Authorization=f"Bearer {access_token(citizen)}")
    assert response.status_code == 401
    assert await count_reports() == 0


async def test_an_sos_with_a_stale_token_is_taken_anonymously_and_alarms_the_duty_officers(
    client: httpx.AsyncClient,
) -> None:
    # given the duty officers of the street and the new town, and one of another town
    from apps.accounts.models import Role
    from apps.notifications.models import Notification
    from apps.regions.models import Region

    regions = await sync_to_async(lambda: {r.code: r for r in Region.objects.all()})()
    street_op = await sync_to_async(StaffUserFactory)(region=regions["fd-sanqiao"])
    town_cmd = await sync_to_async(StaffUserFactory)(
        region=regions["fengdong"], region__role=Role.COMMANDER
    )
    elsewhere = await sync_to_async(StaffUserFactory)(region=regions["fengxi"])
    # when an SOS comes with an expired token
    response = await client.post(
        SOS_PATH,
        json={"lat": SANQIAO[0], "lng": SANQIAO[1], "text": "被困电梯"},
        headers={"Authorization": "Bearer expired.or.forged"},
    )
    # then
    assert response.status_code == 201, response.text
    assert taken_by_fast_path() == 1
    answer = response.json()
    assert answer["is_sos"] is True
    report = await sync_to_async(Report.objects.get)(pk=answer["id"])
    assert (report.is_sos, report.reporter_id, report.category_id is not None) == (
        True,
        None,
        True,
    )
    alarms = await sync_to_async(list)(
        Notification.objects.filter(kind="sos").values_list("user_id", "priority", "data")
    )
    assert sorted(user for user, _p, _d in alarms) == sorted([street_op.pk, town_cmd.pk])
    assert elsewhere.pk not in {user for user, _p, _d in alarms}
    assert {priority for _u, priority, _d in alarms} == {"high"}
    assert all(data["report_id"] == str(report.pk) for _u, _p, data in alarms)


async def test_a_fast_path_report_is_on_its_triage_clock_when_answered(
    client: httpx.AsyncClient,
) -> None:
    from apps.sla.models import SlaClock
    from apps.sla.services.seed import policies_load_fixture

    await sync_to_async(policies_load_fixture)()
    response = await post(client, body())
    assert taken_by_fast_path() == 1
    clock = await sync_to_async(SlaClock.objects.get)(
        kind="report_triage", subject_type="report", subject_id=response.json()["id"]
    )
    report = await sync_to_async(Report.objects.get)(pk=response.json()["id"])
    assert clock.status == "running"
    assert clock.started_at == report.created_at


async def test_concurrent_reports_are_committed_in_shared_batches(
    client: httpx.AsyncClient, settings: Any
) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "report_ip": "1000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    answers = await asyncio.gather(
        *[
            post(client, body(text=f"r{i}"), **{"Idempotency-Key": str(uuid.uuid4())})
            for i in range(40)
        ]
    )
    assert [a.status_code for a in answers] == [201] * 40
    assert await count_reports() == 40
    assert len({a.json()["id"] for a in answers}) == 40
    stats = application.committer.stats
    assert stats.reports == 40
    assert stats.batches < 40  # at least one transaction held several reports
    stored = await sync_to_async(IdempotentRequest.objects.filter(response_status=201).count)()
    assert stored == 40


async def test_a_failing_writer_hands_the_report_to_the_view(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await post(client, body())).status_code == 201  # the writer is up

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(application.committer, "_commit", broken)
    # when
    response = await post(client, body(text="second"), **{"Idempotency-Key": str(uuid.uuid4())})
    # then: the view committed it, once
    assert response.status_code == 201
    assert await count_reports() == 2
    assert application.committer.stats.to_django == 1


async def test_shutdown_answers_every_waiting_report(client: httpx.AsyncClient) -> None:
    pending = [asyncio.ensure_future(post(client, body(text=f"s{i}"))) for i in range(10)]
    await asyncio.sleep(0)  # let them reach the queue
    await application.close()
    answers = await asyncio.gather(*pending)
    assert [a.status_code for a in answers] == [201] * 10
    assert await count_reports() == 10


async def test_the_board_and_the_citizen_streams_get_the_new_report_with_its_candidates(
    client: httpx.AsyncClient, settings: Any
) -> None:
    from apps.realtime.models import Event
    from tests.factories.incidents import IncidentFactory

    # given: an open incident 100 m away, in the same category
    category = await sync_to_async(Category.objects.get)(code="A01")
    near = await sync_to_async(IncidentFactory)(
        category=category, lat=SANQIAO[0] + 0.0009, lng=SANQIAO[1]
    )
    # when: one report through the fast path, one through the view
    fast = (await post(client, body())).json()
    settings.INCIDENTS_FAST_INTAKE = False
    view = (await post(client, body())).json()
    # then
    assert taken_by_fast_path() == 1
    for answer in (fast, view):
        rows = await sync_to_async(list)(
            Event.objects.filter(kind="report.submitted", payload__report__id=answer["id"])
        )
        assert sorted(e.stream for e in rows) == [
            "region.fd-sanqiao",
            "region.fengdong",
            "region.xixian",
        ]
        candidates = rows[0].payload["duplicate_candidates"]
        assert [c["incident_id"] for c in candidates] == [near.pk]
        assert 90 < candidates[0]["distance_m"] < 110
        own = await sync_to_async(Event.objects.get)(stream=f"report.{answer['id']}")
        assert own.payload == {"report_id": answer["id"], "public_status": "received"}
    fast_board = await sync_to_async(Event.objects.get)(
        stream="region.xixian", payload__report__id=fast["id"]
    )
    view_board = await sync_to_async(Event.objects.get)(
        stream="region.xixian", payload__report__id=view["id"]
    )
    assert fast_board.payload["duplicate_candidates"] == view_board.payload["duplicate_candidates"]
    assert set(fast_board.payload["report"]) == set(view_board.payload["report"])
