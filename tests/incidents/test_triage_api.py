"""Triage API: the operator's queue (SOS first, scoped), actions, refusals, suggestions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import membership_grant
from apps.incidents.models import Incident, Report
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import (
    AttachmentFactory,
    CategoryFactory,
    IncidentFactory,
    ReportFactory,
)

pytestmark = pytest.mark.django_db

QUEUE = "/api/v1/reports/triage/"


@pytest.fixture
def xixian(monkeypatch: pytest.MonkeyPatch) -> dict[str, Region]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def operator(xixian: dict[str, Region]) -> Any:
    return StaffUserFactory(region=xixian["fengdong"])


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_queue_shows_sos_first_then_oldest_first_only_in_scope(
    operator: Any, xixian: dict[str, Region], django_assert_max_num_queries: Any
) -> None:
    # given
    sanqiao, mawang = xixian["fd-sanqiao"], xixian["fx-mawang"]
    oldest = ReportFactory(region=sanqiao)
    newer = ReportFactory(region=sanqiao)
    newer.created_at = oldest.created_at + timedelta(minutes=1)
    newer.save(update_fields=["created_at"])
    sos = ReportFactory(region=sanqiao, is_sos=True)
    sos.created_at = oldest.created_at + timedelta(minutes=2)
    sos.save(update_fields=["created_at"])
    AttachmentFactory(report=newer)
    ReportFactory(region=mawang)  # another new town: not mine
    ReportFactory(region=sanqiao, status=Report.Status.REJECTED, rejection_reason="x")
    client = as_user(operator)
    # when
    with django_assert_max_num_queries(4):
        response = client.get(QUEUE)
    # then
    assert response.status_code == 200
    ids = [item["id"] for item in response.json()["results"]]
    assert ids == [sos.pk, oldest.pk, newer.pk]
    assert response.json()["results"][2]["attachments"][0]["exif_lat"] is None


def test_citizens_cannot_see_the_queue(xixian: dict[str, Region]) -> None:
    response = as_user(CitizenFactory()).get(QUEUE)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_accept_through_the_api_creates_the_incident(
    operator: Any, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    response = as_user(operator).post(
        f"/api/v1/reports/{report.pk}/accept/",
        {"severity": "IV", "loop": "small"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "accepted"
    assert body["incident"]["status"] == "accepted"
    assert Incident.objects.get().pk == body["incident"]["id"]


def test_accepting_twice_is_409_report_already_triaged(
    operator: Any, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    client = as_user(operator)
    client.post(f"/api/v1/reports/{report.pk}/accept/", {}, format="json")
    again = client.post(f"/api/v1/reports/{report.pk}/accept/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "report_already_triaged"
    assert Incident.objects.count() == 1


def test_an_accept_replayed_with_its_key_returns_the_first_answer(
    operator: Any, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    client = as_user(operator)
    key = str(uuid.uuid4())
    url = f"/api/v1/reports/{report.pk}/accept/"
    first = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    second = client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1


def test_reject_without_a_reason_is_400_with_the_field(
    operator: Any, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    response = as_user(operator).post(f"/api/v1/reports/{report.pk}/reject/", {}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["extra"]["fields"]


def test_reject_with_a_reason_is_visible_to_the_reporter(
    operator: Any, xixian: dict[str, Region], api_client: APIClient
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    response = as_user(operator).post(
        f"/api/v1/reports/{report.pk}/reject/", {"reason": "非应急事项"}, format="json"
    )
    assert response.status_code == 200
    tracked = api_client.get(f"/api/v1/reports/track/{report.token}/").json()
    assert (tracked["public_status"], tracked["rejection_reason"]) == ("rejected", "非应急事项")


def test_mark_duplicate_through_the_api(operator: Any, xixian: dict[str, Region]) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"])
    incident = IncidentFactory(region=xixian["fd-sanqiao"], status=Incident.Status.ACCEPTED)
    response = as_user(operator).post(
        f"/api/v1/reports/{report.pk}/duplicate/", {"incident_id": incident.pk}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert response.json()["incident"]["id"] == incident.pk


@pytest.mark.parametrize("action", ["accept", "reject", "duplicate", "duplicates"])
def test_an_operator_out_of_scope_gets_404_on_every_triage_endpoint(
    xixian: dict[str, Region], action: str
) -> None:
    # given: a 沣西 operator and a 三桥 (沣东) report
    outsider = StaffUserFactory(region=xixian["fengxi"])
    report = ReportFactory(region=xixian["fd-sanqiao"])
    incident = IncidentFactory(region=xixian["fx-mawang"])
    client = as_user(outsider)
    url = f"/api/v1/reports/{report.pk}/{action}/"
    # when
    if action == "duplicates":
        response = client.get(url)
    else:
        body = {"reason": "x", "incident_id": incident.pk}
        response = client.post(url, body, format="json")
    # then
    assert response.status_code == 404
    assert response.json()["code"] == "report_not_found"
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED


def test_staff_in_scope_read_the_report_with_contact_details(
    operator: Any, xixian: dict[str, Region]
) -> None:
    report = ReportFactory(region=xixian["fd-sanqiao"], phone="+8613900000009")
    body = as_user(operator).get(f"/api/v1/reports/{report.pk}/").json()
    assert body["phone"] == "+8613900000009"
    outsider = StaffUserFactory(region=xixian["fengxi"])
    assert as_user(outsider).get(f"/api/v1/reports/{report.pk}/").status_code == 404


def test_duplicate_suggestions_list_nearby_open_incidents(
    operator: Any, xixian: dict[str, Region]
) -> None:
    # given
    category = CategoryFactory(code="A01")
    report = ReportFactory(region=xixian["fd-sanqiao"], category=category, lat=34.276, lng=108.85)
    near = IncidentFactory(region=xixian["fd-sanqiao"], category=category, lat=34.2765, lng=108.85)
    IncidentFactory(region=xixian["fd-sanqiao"], category=category, lat=34.30, lng=108.85)
    # when
    response = as_user(operator).get(f"/api/v1/reports/{report.pk}/duplicates/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert [item["incident"]["id"] for item in body] == [near.pk]
    assert 50 < body[0]["distance_m"] < 60


# --- The liaison (docs/roles.md) ------------------------------------------------------------


def test_a_liaison_reads_reports_but_has_no_triage(xixian: dict[str, Region]) -> None:
    # given: a liaison of 沣东 and an SOS press at 三桥
    liaison = StaffUserFactory(region=xixian["fengdong"], region__role=Role.DEPARTMENT_LIAISON)
    sos = ReportFactory(region=xixian["fd-sanqiao"], is_sos=True, phone="+8613900000077")
    client = as_user(liaison)
    # then: the staff view, with the contact
    read = client.get(f"/api/v1/reports/{sos.pk}/")
    assert read.status_code == 200
    assert read.json()["phone"] == "+8613900000077"
    # but no queue, no rejecting the SOS, no suggestions
    assert client.get(QUEUE).status_code == 403
    rejected = client.post(
        f"/api/v1/reports/{sos.pk}/reject/",
        {"reason": "误触"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert rejected.status_code == 403
    assert client.get(f"/api/v1/reports/{sos.pk}/duplicates/").status_code == 403
    sos.refresh_from_db()
    assert sos.status == Report.Status.SUBMITTED


def test_an_operator_who_is_a_liaison_elsewhere_gets_no_suggestions_there(
    operator: Any, xixian: dict[str, Region]
) -> None:
    membership_grant(user=operator, region=xixian["fengxi"], role=Role.DEPARTMENT_LIAISON)
    there = ReportFactory(region=xixian["fx-mawang"])
    here = ReportFactory(region=xixian["fd-sanqiao"])
    client = as_user(User.objects.get(pk=operator.pk))
    assert client.get(f"/api/v1/reports/{here.pk}/duplicates/").status_code == 200
    assert client.get(f"/api/v1/reports/{there.pk}/duplicates/").status_code == 403
    assert [r["id"] for r in client.get(QUEUE).json()["results"]] == [here.pk]
