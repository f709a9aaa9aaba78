"""Citizen report API: anonymous intake with a token, idempotent retries, bad input, the
reporter's reads and follow-up, and citizens never reading each other's reports."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import IdempotentRequest
from apps.incidents.models import Attachment, Incident, IncidentEvent, Report
from apps.realtime.models import Event
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory
from tests.factories.incidents import (
    AttachmentFactory,
    CategoryFactory,
    IncidentFactory,
    ReportFactory,
    photo_bytes,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
SANQIAO = (34.276, 108.85)
BELL_TOWER = (34.2612, 108.9423)


@pytest.fixture
def xixian(monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def category() -> Any:
    return CategoryFactory(code="A01", name_zh="道路塌陷")


def upload(name: str = "p.jpg", content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content or photo_bytes(), content_type="image/jpeg")


def form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": "A01",
        "lat": SANQIAO[0],
        "lng": SANQIAO[1],
        "text": "路面塌陷",
    }
    data.update(overrides)
    return data


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def field_codes(response: Any, field: str) -> list[str]:
    return [item["code"] for item in response.json()["extra"]["fields"][field]]


# --- Intake ------------------------------------------------------------------------------


def test_an_anonymous_report_with_photos_is_answered_with_a_token_after_it_is_committed(
    api_client: APIClient,
    xixian: dict[str, Region],
    category: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client.post(
            URL, form(photos=[upload(), upload("b.jpg")]), format="multipart"
        )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    report = Report.objects.get(pk=body["id"])
    assert body["token"] == report.token
    assert body["status"] == "submitted"
    assert body["public_status"] == "received"
    assert body["region"]["code"] == "fd-sanqiao"
    assert body["tracking_url"].endswith(f"/api/v1/reports/track/{report.token}/")
    assert report.reporter is None
    assert report.attachments.count() == 2
    assert callbacks  # the after-submit hook and the events' publishing ran after commit
    assert Event.objects.filter(stream=f"report.{report.pk}", kind="report.submitted").exists()


def test_a_json_report_without_photos_is_accepted(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    response = api_client.post(URL, form(extra={}), format="json")
    assert response.status_code == 201
    assert Report.objects.count() == 1


def test_a_logged_in_citizen_owns_the_report(xixian: dict[str, Region], category: Any) -> None:
    citizen = CitizenFactory()
    response = as_user(citizen).post(URL, form(), format="json")
    assert response.status_code == 201
    assert Report.objects.get(pk=response.json()["id"]).reporter == citizen


def test_a_replayed_submission_returns_the_first_answer_and_creates_nothing(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    # given
    key = str(uuid.uuid4())
    photo = photo_bytes()
    first = api_client.post(
        URL, form(photos=[upload(content=photo)]), format="multipart", HTTP_IDEMPOTENCY_KEY=key
    )
    # when: the phone retries with the same key and the same body
    second = api_client.post(
        URL, form(photos=[upload(content=photo)]), format="multipart", HTTP_IDEMPOTENCY_KEY=key
    )
    # then
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Report.objects.count() == 1
    assert Attachment.objects.count() == 1


def test_the_same_key_with_a_different_report_is_422_and_writes_nothing(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    key = str(uuid.uuid4())
    api_client.post(URL, form(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    response = api_client.post(URL, form(text="另一件事"), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Report.objects.count() == 1


def test_a_refused_submission_does_not_burn_its_idempotency_key(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    key = str(uuid.uuid4())
    refused = api_client.post(URL, form(category="NOPE"), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert refused.status_code == 400
    assert IdempotentRequest.objects.count() == 0


# --- Bad input ---------------------------------------------------------------------------


def test_an_unknown_category_is_a_field_error_on_category(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    response = api_client.post(URL, form(category="NOPE"), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "category_unknown"
    assert field_codes(response, "category") == ["category_unknown"]


@pytest.mark.parametrize(
    ("lat", "lng", "fields"),
    [(91.0, 108.85, {"lat"}), (34.27, 181.0, {"lng"}), (-100.0, 500.0, {"lat", "lng"})],
)
def test_coordinates_out_of_range_are_field_errors(
    api_client: APIClient,
    xixian: dict[str, Region],
    category: Any,
    lat: float,
    lng: float,
    fields: set[str],
) -> None:
    response = api_client.post(URL, form(lat=lat, lng=lng), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["extra"]["fields"]) == fields


def test_missing_and_non_numeric_coordinates_are_field_errors(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    response = api_client.post(URL, {"category": "A01", "lat": "north"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"lat", "lng"}


def test_a_point_outside_the_new_area_is_422(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    response = api_client.post(URL, form(lat=BELL_TOWER[0], lng=BELL_TOWER[1]), format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "point_outside_area"
    assert Report.objects.count() == 0


def test_malformed_json_is_a_parse_error_envelope(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    response = api_client.post(
        URL, data='{"category": "A01", "lat": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_malformed_category_fields_in_a_form_are_a_field_error(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    response = api_client.post(URL, form(extra="{not json"), format="multipart")
    assert response.status_code == 400
    assert "extra" in response.json()["extra"]["fields"]


def test_a_text_file_named_jpg_is_refused_as_not_an_image(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    fake = SimpleUploadedFile("evil.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg")
    response = api_client.post(URL, form(photos=[fake]), format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "attachment_invalid"
    assert field_codes(response, "photos") == ["attachment_invalid"]
    assert Report.objects.count() == 0


def test_an_oversized_photo_is_refused(
    api_client: APIClient, xixian: dict[str, Region], category: Any, settings: Any
) -> None:
    settings.INCIDENTS_MAX_PHOTO_BYTES = 1000
    response = api_client.post(URL, form(photos=[upload()]), format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "attachment_too_large"
    assert field_codes(response, "photos") == ["attachment_too_large"]


def test_ten_photos_are_refused_before_any_is_read(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    photos = [upload(f"{i}.jpg") for i in range(10)]
    response = api_client.post(URL, form(photos=photos), format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_attachments"
    assert response.json()["extra"]["max"] == 9
    assert Attachment.objects.count() == 0


# --- SOS ---------------------------------------------------------------------------------


def test_sos_creates_a_top_priority_report_in_the_sos_category(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    CategoryFactory(code="O99")
    response = api_client.post(
        "/api/v1/reports/sos/", {"lat": SANQIAO[0], "lng": SANQIAO[1]}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["is_sos"] is True
    report = Report.objects.get()
    assert report.is_sos
    assert report.category.code == "O99"


def test_sos_with_an_expired_token_still_goes_through_as_anonymous(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    # given: the app still holds an access token that expired hours ago
    from rest_framework_simplejwt.tokens import AccessToken

    CategoryFactory(code="O99")
    citizen = CitizenFactory()
    with time_machine.travel(timezone.now() - timedelta(hours=3)):
        stale = str(AccessToken.for_user(citizen))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {stale}")
    # when
    response = api_client.post(
        "/api/v1/reports/sos/", {"lat": SANQIAO[0], "lng": SANQIAO[1]}, format="json"
    )
    # then: accepted, not "log in first"
    assert response.status_code == 201
    report = Report.objects.get()
    assert report.is_sos
    assert report.reporter is None


def test_a_normal_report_with_an_expired_token_is_refused(
    api_client: APIClient, xixian: dict[str, Region], category: Any
) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    with time_machine.travel(timezone.now() - timedelta(hours=3)):
        stale = str(AccessToken.for_user(CitizenFactory()))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {stale}")
    response = api_client.post(URL, form(), format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"
    assert not Report.objects.exists()


# --- The reporter's reads ----------------------------------------------------------------


def test_my_reports_lists_only_mine_newest_first_in_constant_queries(
    xixian: dict[str, Region], django_assert_max_num_queries: Any
) -> None:
    # given
    me, other = CitizenFactory(), CitizenFactory()
    street = xixian["fd-sanqiao"]
    older = ReportFactory(reporter=me, region=street)
    newer = ReportFactory(reporter=me, region=street)
    newer.created_at = older.created_at + timedelta(minutes=5)
    newer.save(update_fields=["created_at"])
    AttachmentFactory.create_batch(2, report=older)
    linked = ReportFactory(
        reporter=me, region=street, status=Report.Status.ACCEPTED, incident=IncidentFactory()
    )
    ReportFactory(reporter=other, region=street)
    client = as_user(me)
    # when
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/reports/mine/")
    # then
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["results"]]
    assert set(ids) == {older.pk, newer.pk, linked.pk}
    assert ids.index(newer.pk) < ids.index(older.pk)
    assert "token" not in response.json()["results"][0]


def test_my_reports_needs_a_login(api_client: APIClient, db: Any) -> None:
    response = api_client.get("/api/v1/reports/mine/")
    assert response.status_code == 401


def test_citizen_a_cannot_read_citizen_b_report_by_id_or_by_a_wrong_token(
    xixian: dict[str, Region],
) -> None:
    # given
    alice, bob = CitizenFactory(), CitizenFactory()
    bobs = ReportFactory(reporter=bob, region=xixian["fd-sanqiao"])
    alice_client = as_user(alice)
    # when
    by_id = alice_client.get(f"/api/v1/reports/{bobs.pk}/")
    by_token = alice_client.get(f"/api/v1/reports/track/{bobs.token[:-1]}x/")
    own = as_user(bob).get(f"/api/v1/reports/{bobs.pk}/")
    # then
    assert by_id.status_code == 404
    assert by_id.json()["code"] == "report_not_found"
    assert by_token.status_code == 404
    assert own.status_code == 200


def test_tracking_shows_public_status_and_only_public_status_changes(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    # given: a report linked to an incident in progress, with internal rows on the timeline
    incident = IncidentFactory(status=Incident.Status.IN_PROGRESS, region=xixian["fd-sanqiao"])
    report = ReportFactory(region=incident.region, status=Report.Status.ACCEPTED, incident=incident)
    now = timezone.now()
    IncidentEvent.objects.create(incident=incident, kind="accepted", at=now, public=True)
    IncidentEvent.objects.create(
        incident=incident, kind="note", at=now, public=False, data={"text": "张三 13800000000"}
    )
    IncidentEvent.objects.create(incident=incident, kind="in_progress", at=now, public=True)
    # when
    response = api_client.get(f"/api/v1/reports/track/{report.token}/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["public_status"] == "in_progress"
    assert [event["kind"] for event in body["timeline"]] == ["accepted", "in_progress"]
    assert "13800000000" not in json.dumps(body)
    assert all(set(event) == {"kind", "label", "at"} for event in body["timeline"])


def test_public_status_follows_the_incident_as_it_moves_on(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    incident = IncidentFactory(status=Incident.Status.ACCEPTED, region=xixian["fd-sanqiao"])
    report = ReportFactory(region=incident.region, status=Report.Status.ACCEPTED, incident=incident)
    url = f"/api/v1/reports/track/{report.token}/"
    assert api_client.get(url).json()["public_status"] == "received"
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.RESOLVED)
    assert api_client.get(url).json()["public_status"] == "resolved"
    Incident.objects.filter(pk=incident.pk).update(status=Incident.Status.CLOSED)
    assert api_client.get(url).json()["public_status"] == "closed"


def test_a_rejected_report_shows_the_reason_to_its_reporter(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(
        region=xixian["fd-sanqiao"], status=Report.Status.REJECTED, rejection_reason="非应急事项"
    )
    body = api_client.get(f"/api/v1/reports/track/{report.token}/").json()
    assert body["public_status"] == "rejected"
    assert body["rejection_reason"] == "非应急事项"


# --- Rating and reopen -------------------------------------------------------------------


def closed_report(region: Region, *, closed_ago: timedelta = timedelta(days=1)) -> Report:
    incident = IncidentFactory(
        status=Incident.Status.CLOSED, region=region, closed_at=timezone.now() - closed_ago
    )
    return ReportFactory(region=region, status=Report.Status.ACCEPTED, incident=incident)


def test_a_closed_report_can_be_rated_once_by_token(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    # given
    report = closed_report(xixian["fd-sanqiao"])
    url = f"/api/v1/reports/track/{report.token}/rating/"
    # when
    first = api_client.post(url, {"rating": 5, "comment": "很快"}, format="json")
    again = api_client.post(url, {"rating": 1}, format="json")
    # then
    assert first.status_code == 200
    assert first.json()["rating"] == 5
    assert again.status_code == 409
    assert again.json()["code"] == "report_already_rated"
    report.refresh_from_db()
    assert report.rating == 5
    assert IncidentEvent.objects.filter(incident=report.incident, kind="rated").count() == 1


def test_a_report_still_being_handled_cannot_be_rated(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    incident = IncidentFactory(status=Incident.Status.RESOLVED, region=xixian["fd-sanqiao"])
    report = ReportFactory(region=incident.region, status=Report.Status.ACCEPTED, incident=incident)
    response = api_client.post(
        f"/api/v1/reports/track/{report.token}/rating/", {"rating": 4}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "report_not_rateable"


def test_a_rating_out_of_range_is_a_field_error(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    report = closed_report(xixian["fd-sanqiao"])
    response = api_client.post(
        f"/api/v1/reports/track/{report.token}/rating/", {"rating": 6}, format="json"
    )
    assert response.status_code == 400
    assert "rating" in response.json()["extra"]["fields"]


def test_a_reopen_request_within_the_window_is_recorded_but_does_not_reopen(
    xixian: dict[str, Region],
) -> None:
    # given
    owner = CitizenFactory()
    report = closed_report(xixian["fd-sanqiao"])
    report.reporter = owner
    report.save(update_fields=["reporter"])
    # when
    response = as_user(owner).post(
        f"/api/v1/reports/{report.pk}/reopen/", {"reason": "水又漫上来了"}, format="json"
    )
    # then
    assert response.status_code == 200
    assert response.json()["reopen_requested_at"] is not None
    report.incident.refresh_from_db()
    assert report.incident.status == Incident.Status.CLOSED
    event = IncidentEvent.objects.get(incident=report.incident, kind="reopen_requested")
    assert event.data["reason"] == "水又漫上来了"


def test_a_reopen_request_after_the_window_is_refused(
    api_client: APIClient, xixian: dict[str, Region], settings: Any
) -> None:
    settings.INCIDENTS_REOPEN_WINDOW_DAYS = 7
    report = closed_report(xixian["fd-sanqiao"], closed_ago=timedelta(days=8))
    response = api_client.post(
        f"/api/v1/reports/track/{report.token}/reopen/", {"reason": "没修好"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "reopen_window_closed"


def test_a_second_reopen_request_for_the_same_closure_is_refused(
    api_client: APIClient, xixian: dict[str, Region]
) -> None:
    report = closed_report(xixian["fd-sanqiao"])
    url = f"/api/v1/reports/track/{report.token}/reopen/"
    assert api_client.post(url, {"reason": "没修好"}, format="json").status_code == 200
    again = api_client.post(url, {"reason": "还是没修好"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "reopen_not_allowed"


def test_someone_else_cannot_rate_my_report_by_id(xixian: dict[str, Region]) -> None:
    report = closed_report(xixian["fd-sanqiao"])
    report.reporter = CitizenFactory()
    report.save(update_fields=["reporter"])
    response = as_user(CitizenFactory()).post(
        f"/api/v1/reports/{report.pk}/rating/", {"rating": 1}, format="json"
    )
    assert response.status_code == 404
    report.refresh_from_db()
    assert report.rating is None


@pytest.mark.parametrize(
    "body",
    [
        {"category": "A01", "lat": "nan", "lng": "inf"},
        {"category": "A01", "lat": True, "lng": 108.85},
        {"category": "A01" * 10, "lat": 34.276, "lng": 108.85},
        {"category": ["A01"], "lat": 34.276, "lng": 108.85},
        {"category": "A01", "lat": 34.276, "lng": 108.85, "extra": [1, 2]},
        {"category": "A01", "lat": 34.276, "lng": 108.85, "extra": {"nope": 1}},
        {"category": "A01", "lat": 34.276, "lng": 108.85, "text": "x" * 2001},
        {"category": "A01", "lat": 34.276, "lng": 108.85, "phone": "+1 555 0100"},
        {"category": "A01", "lat": 34.276, "lng": 108.85, "photos": "not-a-file"},
        [],
        "just a string",
    ],
)
def test_odd_input_is_a_4xx_envelope_never_a_500(
    api_client: APIClient, xixian: dict[str, Region], category: Any, body: Any
) -> None:
    response = api_client.post(URL, body, format="json")
    assert 400 <= response.status_code < 500, response.content
    assert set(response.json()) == {"code", "message", "extra"}
    assert Report.objects.count() == 0
