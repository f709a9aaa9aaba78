"""A reporter or the triaging operator files a report at a community of its street."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.errors import ApplicationError
from apps.incidents.models import Report
from apps.incidents.services import reports as services
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import CategoryFactory

pytestmark = pytest.mark.django_db

SANQIAO = (34.276, 108.85)  # routed to 三桥街道


@pytest.fixture(autouse=True)
def _area() -> None:
    regions_load_fixture()
    CategoryFactory(code="A01")


def community(street: str, name: str) -> Region:
    return Region.objects.get(parent__code=street, name_zh=name)


def test_a_reporter_files_the_report_at_a_community_of_its_street(api_client: APIClient) -> None:
    # given: a community of 三桥街道
    station = community("fd-sanqiao", "三桥火车站社区")
    # when
    response = api_client.post(
        reverse("v1:report-submit"),
        {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "community": station.code},
        format="json",
    )
    # then: filed at the community, inside the street the location decided
    assert response.status_code == 201, response.content
    assert response.json()["region"]["code"] == station.code
    report = Report.objects.get(pk=response.json()["id"])
    assert report.region == station
    assert report.region.parent.code == "fd-sanqiao"


def test_a_community_of_another_street_is_refused_and_nothing_is_written(
    api_client: APIClient,
) -> None:
    elsewhere = Region.objects.filter(parent__code="fx-diaotai").first()
    response = api_client.post(
        reverse("v1:report-submit"),
        {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "community": elsewhere.code},
        format="json",
    )
    assert response.status_code == 400
    field = response.json()["extra"]["fields"]["community"][0]
    assert field["code"] == "community_not_in_street"
    assert Report.objects.count() == 0


def test_the_operator_files_the_new_incident_at_a_community_when_accepting() -> None:
    # given: a report filed at the street
    report = services.report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1])
    operator = StaffUserFactory(region=Region.objects.get(code="fd-sanqiao"))
    station = community("fd-sanqiao", "三桥火车站社区")
    # when
    accepted = services.report_accept(report_id=report.pk, by=operator, community=station.code)
    # then
    assert accepted.incident is not None
    assert accepted.incident.region == station


def test_the_operator_cannot_file_an_incident_outside_the_reports_street() -> None:
    report = services.report_submit(category_code="A01", lat=SANQIAO[0], lng=SANQIAO[1])
    operator = StaffUserFactory(region=Region.objects.get(code="xixian"))
    elsewhere: Any = Region.objects.filter(parent__code="fx-diaotai").first()
    with pytest.raises(ApplicationError) as refused:
        services.report_accept(report_id=report.pk, by=operator, community=elsewhere.code)
    assert refused.value.status == 400
    report.refresh_from_db()
    assert report.status == Report.Status.SUBMITTED
