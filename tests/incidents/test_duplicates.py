"""Duplicate suggestions: nearby open incidents of the same or a related category, ranked."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.incidents.duplicates import bounding_box, duplicate_candidates
from apps.incidents.models import Incident
from apps.regions.geo import haversine_km
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import CategoryFactory, IncidentFactory

pytestmark = pytest.mark.django_db

ORIGIN = (34.2760, 108.8500)
# 1e-3 degrees of latitude is about 111 m.
M_PER_MILLIDEGREE_LAT = 111.2


def north_of(metres: float) -> tuple[float, float]:
    return ORIGIN[0] + metres / M_PER_MILLIDEGREE_LAT / 1000, ORIGIN[1]


def incident_at(metres: float, *, age: timedelta = timedelta(0), **kwargs: Any) -> Incident:
    lat, lng = north_of(metres)
    incident = IncidentFactory(lat=lat, lng=lng, status=Incident.Status.ACCEPTED, **kwargs)
    incident.created_at = timezone.now() - age
    incident.save(update_fields=["created_at"])
    return incident


@pytest.fixture
def pipe() -> Any:
    return CategoryFactory(code="A05", related_codes=["A06"])


def test_closer_and_newer_incidents_rank_first(pipe: Any) -> None:
    # given
    near_new = incident_at(50, category=pipe, age=timedelta(minutes=10))
    near_old = incident_at(50, category=pipe, age=timedelta(hours=20))
    far_new = incident_at(400, category=pipe, age=timedelta(minutes=10))
    # when
    candidates = duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe)
    # then
    assert [c.incident for c in candidates] == [near_new, near_old, far_new]
    assert candidates[0].distance_m == pytest.approx(50, abs=1)
    assert candidates[0].score < candidates[1].score < candidates[2].score


def test_related_categories_count_and_unrelated_ones_do_not(pipe: Any) -> None:
    related = incident_at(100, category=CategoryFactory(code="A06"))
    incident_at(100, category=CategoryFactory(code="B01"))  # unrelated
    same = incident_at(100, category=pipe)
    candidates = duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe)
    assert [c.incident for c in candidates] == [same, related]
    assert [c.same_category for c in candidates] == [True, False]


def test_closed_rejected_and_merged_incidents_are_not_candidates(pipe: Any) -> None:
    # given: one open incident and three finished ones right next to the report
    target = incident_at(10, category=pipe)
    finished = [incident_at(20, category=pipe) for _ in range(3)]
    Incident.objects.filter(pk=finished[0].pk).update(status=Incident.Status.CLOSED)
    Incident.objects.filter(pk=finished[1].pk).update(status=Incident.Status.REJECTED)
    Incident.objects.filter(pk=finished[2].pk).update(
        status=Incident.Status.MERGED, merged_into=target
    )
    # when
    candidates = duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe)
    # then
    assert [c.incident for c in candidates] == [target]


def test_incidents_outside_the_radius_or_the_window_are_excluded(pipe: Any, settings: Any) -> None:
    settings.INCIDENTS_DUPLICATE_RADIUS_M = 300
    settings.INCIDENTS_DUPLICATE_WINDOW_HOURS = 12
    inside = incident_at(290, category=pipe)
    incident_at(310, category=pipe)  # just outside the radius
    incident_at(10, category=pipe, age=timedelta(hours=13))  # too old
    candidates = duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe)
    assert [c.incident for c in candidates] == [inside]


def test_the_radius_is_exact_on_the_diagonal_not_just_the_box(pipe: Any) -> None:
    # given: a point in the bounding box's corner, outside the circle
    _south, north, _west, east = bounding_box(*ORIGIN, 500)
    corner = IncidentFactory(
        lat=north - 1e-5, lng=east - 1e-5, category=pipe, status=Incident.Status.ACCEPTED
    )
    assert haversine_km(*ORIGIN, corner.lat, corner.lng) * 1000 > 500
    # then
    assert duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe, radius_m=500) == []


def test_the_search_is_one_query(pipe: Any, django_assert_num_queries: Any) -> None:
    for metres in (10, 20, 30):
        incident_at(metres, category=pipe)
    with django_assert_num_queries(1):
        candidates = duplicate_candidates(lat=ORIGIN[0], lng=ORIGIN[1], category=pipe)
        assert all(c.incident.category.code == "A05" for c in candidates)


def test_an_operator_only_gets_candidates_in_scope(pipe: Any) -> None:
    mine = incident_at(10, category=pipe)
    elsewhere = incident_at(20, category=pipe)
    # a staff member of the first incident's street only
    operator = StaffUserFactory(region=mine.region)
    candidates = duplicate_candidates(
        lat=ORIGIN[0], lng=ORIGIN[1], category=pipe, visible_to=operator
    )
    assert [c.incident for c in candidates] == [mine]
    assert elsewhere.region != mine.region
