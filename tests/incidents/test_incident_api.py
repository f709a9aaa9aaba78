"""Staff incident API: lists and filters, detail, create, transitions, scope and roles."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.incidents.models import (
    Attachment,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Report,
    Severity,
)
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import (
    CategoryFactory,
    IncidentFactory,
    TwoTowns,
    WaterloggingCategoryFactory,
)

pytestmark = pytest.mark.django_db

S = IncidentStatus


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def fengxi_operator(tree: TwoTowns) -> User:
    return StaffUserFactory(region=tree.fengxi)


@pytest.fixture
def fengxi_responder(tree: TwoTowns) -> User:
    return StaffUserFactory(region=tree.fengxi, region__role=Role.RESPONDER)


@pytest.fixture
def citizen() -> User:
    return CitizenFactory()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(name: str, incident: Incident | int | None = None) -> str:
    if incident is None:
        return reverse(f"v1:{name}")
    pk = incident if isinstance(incident, int) else incident.pk
    return reverse(f"v1:{name}", kwargs={"incident_id": pk})


def ids(response: Any) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


# --- List and filters ----------------------------------------------------------------------


def test_an_operator_of_fengxi_lists_only_fengxi_incidents(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    # given
    mine = IncidentFactory(region=tree.diaotai)
    IncidentFactory(region=tree.sanqiao)

    # when
    response = client_for(fengxi_operator).get(url("incidents"))

    # then
    assert response.status_code == 200
    assert ids(response) == {mine.pk}
    row = response.json()["results"][0]
    assert row["region"]["code"] == "fx-diaotai"
    assert row["category"]["code"] == mine.category.code


def test_a_responder_may_read_the_list(tree: TwoTowns, fengxi_responder: User) -> None:
    mine = IncidentFactory(region=tree.diaotai)

    response = client_for(fengxi_responder).get(url("incidents"))

    assert response.status_code == 200
    assert ids(response) == {mine.pk}


def test_a_citizen_is_refused(citizen: User) -> None:
    response = client_for(citizen).get(url("incidents"))

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anonymous_is_refused() -> None:
    response = APIClient().get(url("incidents"))

    assert response.status_code == 401


def test_filters_by_status_category_severity_loop_and_drill(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    # given
    flood = WaterloggingCategoryFactory()
    a = IncidentFactory(region=tree.diaotai, status=S.ACCEPTED, category=flood)
    b = IncidentFactory(region=tree.diaotai, status=S.IN_PROGRESS, severity=Severity.III)
    c = IncidentFactory(region=tree.diaotai, status=S.REPORTED, loop="large", is_drill=True)
    client = client_for(fengxi_operator)

    # then
    assert ids(client.get(url("incidents"), {"status": ["accepted", "in_progress"]})) == {
        a.pk,
        b.pk,
    }
    assert ids(client.get(url("incidents"), {"category": "N02"})) == {a.pk}
    assert ids(client.get(url("incidents"), {"severity": "III"})) == {b.pk}
    assert ids(client.get(url("incidents"), {"loop": "large"})) == {c.pk}
    assert ids(client.get(url("incidents"), {"is_drill": "true"})) == {c.pk}
    assert ids(client.get(url("incidents"), {"is_drill": "false"})) == {a.pk, b.pk}


def test_filters_by_region_subtree(tree: TwoTowns) -> None:
    # given a commander of the whole new area
    commander = StaffUserFactory(region=tree.root, region__role=Role.COMMANDER)
    fx = IncidentFactory(region=tree.diaotai)
    fd = IncidentFactory(region=tree.sanqiao)
    client = client_for(commander)

    # then
    assert ids(client.get(url("incidents"))) == {fx.pk, fd.pk}
    assert ids(client.get(url("incidents"), {"region": "fengxi"})) == {fx.pk}
    assert ids(client.get(url("incidents"), {"region": "fd-sanqiao"})) == {fd.pk}
    assert ids(client.get(url("incidents"), {"region": "xixian"})) == {fx.pk, fd.pk}
    assert ids(client.get(url("incidents"), {"region": "nowhere"})) == set()


def test_a_region_filter_never_widens_the_scope(tree: TwoTowns, fengxi_operator: User) -> None:
    IncidentFactory(region=tree.sanqiao)

    response = client_for(fengxi_operator).get(url("incidents"), {"region": "fengdong"})

    assert ids(response) == set()


def test_filters_by_time_range(tree: TwoTowns, fengxi_operator: User) -> None:
    now = timezone.now()
    old = IncidentFactory(region=tree.diaotai, created_at=now - timedelta(days=3))
    new = IncidentFactory(region=tree.diaotai, created_at=now - timedelta(hours=1))
    client = client_for(fengxi_operator)

    after = (now - timedelta(days=1)).isoformat()
    assert ids(client.get(url("incidents"), {"created_after": after})) == {new.pk}
    assert ids(client.get(url("incidents"), {"created_before": after})) == {old.pk}


def test_a_bad_filter_value_is_an_invalid_envelope(fengxi_operator: User) -> None:
    response = client_for(fengxi_operator).get(url("incidents"), {"status": "burning"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "status" in body["extra"]["fields"]


def test_the_list_is_newest_first_and_cursor_paginated(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    now = timezone.now()
    rows = [
        IncidentFactory(region=tree.diaotai, created_at=now - timedelta(minutes=i))
        for i in range(5)
    ]
    client = client_for(fengxi_operator)

    first = client.get(url("incidents"), {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert [r["id"] for r in first["results"]] == [r.pk for r in rows[:3]]
    assert [r["id"] for r in second["results"]] == [r.pk for r in rows[3:]]


def test_the_list_query_count_does_not_grow_with_rows(
    tree: TwoTowns, fengxi_operator: User, django_assert_max_num_queries: Any
) -> None:
    # given
    for _ in range(3):
        IncidentFactory(region=tree.diaotai, category=CategoryFactory())

    # when 20 more rows exist
    for _ in range(20):
        IncidentFactory(region=tree.diaotai, category=CategoryFactory())

    # then one query for the roles, one for the scope, one for the page
    fresh = client_for(User.objects.get(pk=fengxi_operator.pk))  # no cached scopes
    with django_assert_max_num_queries(3):
        response = fresh.get(url("incidents"))
    assert len(response.json()["results"]) == 23


# --- Detail --------------------------------------------------------------------------------


def test_the_detail_shows_timeline_reports_and_photos(
    tree: TwoTowns, fengxi_operator: User, django_assert_max_num_queries: Any
) -> None:
    # given an accepted incident with a linked report and a photo
    incident = IncidentFactory(region=tree.diaotai)
    client = client_for(fengxi_operator)
    client.post(url("incident-accept", incident), {"severity": "IV"}, format="json")
    report = Report.objects.create(
        token=secrets.token_urlsafe(32),
        channel=Report.Channel.APP,
        category=incident.category,
        lat=incident.lat,
        lng=incident.lng,
        region=tree.diaotai,
        status=Report.Status.ACCEPTED,
        incident=incident,
    )
    Attachment.objects.create(
        report=report,
        file="attachments/2025/01/01/a.jpg",
        thumbnail="attachments/thumbs/2025/01/01/a.jpg",
        content_type="image/jpeg",
        width=800,
        height=600,
        size=12345,
        sha256="0" * 64,
        exif_lat=34.3,
        exif_lng=108.7,
    )

    # when
    fresh = client_for(User.objects.get(pk=fengxi_operator.pk))  # no cached scopes
    # roles, scope, incident, reports, photos, timeline
    with django_assert_max_num_queries(6):
        response = fresh.get(url("incident", incident))

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted"
    assert body["severity"] == "IV"
    assert [e["kind"] for e in body["timeline"]] == ["accepted"]
    assert body["timeline"][0]["actor"]["id"] == fengxi_operator.pk
    assert body["timeline"][0]["data"]["changes"]["severity"] == {
        "old": "unclassified",
        "new": "IV",
    }
    assert body["report_ids"] == [report.pk]
    assert body["attachments"][0]["width"] == 800
    photo = Attachment.objects.get(report=report)
    # the checked downloads, never a media URL
    assert body["attachments"][0]["file"].endswith(f"/api/v1/attachments/{photo.pk}/")
    assert body["attachments"][0]["thumbnail"].endswith(
        f"/api/v1/attachments/{photo.pk}/thumbnail/"
    )
    assert body["reporter_phone"] == incident.reporter_phone
    assert body["allowed_actions"] == ["start", "merge", "classify", "casualties", "note"]


def test_an_out_of_scope_incident_is_not_found(tree: TwoTowns, fengxi_operator: User) -> None:
    other = IncidentFactory(region=tree.sanqiao)

    response = client_for(fengxi_operator).get(url("incident", other))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_missing_incident_looks_the_same_as_an_out_of_scope_one(fengxi_operator: User) -> None:
    response = client_for(fengxi_operator).get(url("incident", 987654321))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_citizen_cannot_read_any_incident_detail(tree: TwoTowns, citizen: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)

    response = client_for(citizen).get(url("incident", incident))

    assert response.status_code == 403


# --- Transitions ---------------------------------------------------------------------------


def test_an_operator_accepts_an_incident_in_scope(tree: TwoTowns, fengxi_operator: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)

    response = client_for(fengxi_operator).post(
        url("incident-accept", incident), {"loop": "medium", "category": "N02"}, format="json"
    )

    # an unknown category code is a field error, and nothing happened
    assert response.status_code == 400
    assert "category" in response.json()["extra"]["fields"]
    WaterloggingCategoryFactory()
    response = client_for(fengxi_operator).post(
        url("incident-accept", incident), {"loop": "medium", "category": "N02"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted"
    assert body["loop"] == "medium"
    assert body["category"]["code"] == "N02"


def test_an_illegal_transition_is_a_409_with_its_code(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    incident = IncidentFactory(region=tree.diaotai, status=S.CLOSED)

    response = client_for(fengxi_operator).post(url("incident-accept", incident), {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert response.json()["extra"] == {"from": "closed", "action": "accept", "to": "accepted"}


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("incident-accept", {}),
        ("incident-reject", {"reason": "误报"}),
        ("incident-start", {}),
        ("incident-resolve", {"resolution": "已处置"}),
        ("incident-close", {}),
        ("incident-reopen", {"reason": "复查不合格"}),
        ("incident-merge", {"into": 1}),
        ("incident-classify", {"severity": "III"}),
        ("incident-casualties", {"injured": 1}),
        ("incident-notes", {"text": "测试"}),
    ],
)
def test_every_transition_on_an_out_of_scope_incident_is_not_found(
    tree: TwoTowns, fengxi_operator: User, name: str, body: dict[str, Any]
) -> None:
    other = IncidentFactory(region=tree.sanqiao)

    response = client_for(fengxi_operator).post(url(name, other), body, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not IncidentEvent.objects.filter(incident=other).exists()


def test_a_responder_may_read_but_not_act(tree: TwoTowns, fengxi_responder: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)
    client = client_for(fengxi_responder)

    assert client.get(url("incident", incident)).status_code == 200
    response = client.post(url("incident-accept", incident), {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Incident.objects.get(pk=incident.pk).status == S.REPORTED


def test_a_citizen_cannot_act(tree: TwoTowns, citizen: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)

    response = client_for(citizen).post(url("incident-accept", incident), {}, format="json")

    assert response.status_code == 403


def test_the_full_lifecycle_over_the_api(tree: TwoTowns, fengxi_operator: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)
    client = client_for(fengxi_operator)

    steps = [
        ("incident-accept", {"severity": "IV"}, "accepted"),
        ("incident-start", {}, "in_progress"),
        ("incident-casualties", {"injured": 2, "note": "两人轻伤"}, "in_progress"),
        ("incident-classify", {"loop": "medium"}, "in_progress"),
        ("incident-resolve", {"resolution": "已抽排"}, "resolved"),
        ("incident-close", {"note": "核查通过"}, "closed"),
        ("incident-reopen", {"reason": "回访仍有积水"}, "in_progress"),
    ]
    for name, body, status in steps:
        response = client.post(url(name, incident), body, format="json")
        assert response.status_code == 200, (name, response.json())
        assert response.json()["status"] == status

    note = client.post(url("incident-notes", incident), {"text": "已通知水务"}, format="json")
    assert note.status_code == 201
    assert note.json()["kind"] == "note"
    kinds = [e["kind"] for e in client.get(url("incident", incident)).json()["timeline"]]
    assert kinds == [
        "accepted",
        "in_progress",
        "casualties_revised",
        "classified",
        "resolved",
        "closed",
        "reopened",
        "note",
    ]


def test_reject_needs_a_reason(tree: TwoTowns, fengxi_operator: User) -> None:
    incident = IncidentFactory(region=tree.diaotai)

    response = client_for(fengxi_operator).post(url("incident-reject", incident), {}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()["extra"]["fields"]


def test_merge_into_an_out_of_scope_incident_is_not_found(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    mine = IncidentFactory(region=tree.diaotai)
    theirs = IncidentFactory(region=tree.sanqiao)

    response = client_for(fengxi_operator).post(
        url("incident-merge", mine), {"into": theirs.pk}, format="json"
    )

    assert response.status_code == 404
    assert Incident.objects.get(pk=mine.pk).status == S.REPORTED


def test_merge_within_scope(tree: TwoTowns, fengxi_operator: User) -> None:
    duplicate = IncidentFactory(region=tree.diaotai)
    target = IncidentFactory(region=tree.diaotai, status=S.ACCEPTED)
    client = client_for(fengxi_operator)

    response = client.post(url("incident-merge", duplicate), {"into": target.pk}, format="json")
    itself = client.post(url("incident-merge", target), {"into": target.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "merged"
    assert response.json()["merged_into"] == target.pk
    assert itself.status_code == 400
    assert itself.json()["code"] == "merge_target_invalid"


def test_a_retried_accept_with_the_same_key_replays_and_acts_once(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    incident = IncidentFactory(region=tree.diaotai)
    client = client_for(fengxi_operator)
    key = str(uuid.uuid4())

    first = client.post(
        url("incident-accept", incident), {}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    again = client.post(
        url("incident-accept", incident), {}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert IncidentEvent.objects.filter(incident=incident).count() == 1


# --- Create --------------------------------------------------------------------------------


def test_an_operator_creates_a_hotline_incident_routed_to_the_street(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    WaterloggingCategoryFactory()

    response = client_for(fengxi_operator).post(
        url("incidents"),
        {
            "category": "N02",
            "lat": 34.305,
            "lng": 108.719,
            "title": "钓台路积水",
            "source": "hotline",
            "extra": {"waterlogging_depth_cm": "30"},
            "reporter_phone": "+8613800000000",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["region"]["code"] == "fx-diaotai"
    assert body["status"] == "reported"
    assert body["source"] == "hotline"
    assert body["extra"] == {"waterlogging_depth_cm": 30}
    assert body["severity_suggestion"] == "IV"
    assert [e["kind"] for e in body["timeline"]] == ["created"]
    incident = Incident.objects.get(pk=body["id"])
    assert incident.created_by == fengxi_operator
    assert incident.number.endswith(f"-{incident.pk:06d}")


def test_an_operator_may_create_it_already_accepted(tree: TwoTowns, fengxi_operator: User) -> None:
    category = CategoryFactory()

    response = client_for(fengxi_operator).post(
        url("incidents"),
        {
            "category": category.code,
            "lat": 34.305,
            "lng": 108.718,
            "title": "巡查发现",
            "source": "patrol",
            "accept": True,
            "severity": "IV",
        },
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["status"] == "accepted"
    assert response.json()["accepted_at"] is not None


def test_creating_outside_my_regions_is_refused(tree: TwoTowns, fengxi_operator: User) -> None:
    category = CategoryFactory()

    response = client_for(fengxi_operator).post(
        url("incidents"),
        {"category": category.code, "lat": 34.276, "lng": 108.850, "title": "三桥"},
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["code"] == "out_of_scope"
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"source": "citizen_report"}, "invalid", "source"),
        (
            {"extra": {"waterlogging_depth_cm": -3}},
            "category_field_invalid",
            "waterlogging_depth_cm",
        ),
        ({"extra": {"colour": "red"}}, "category_field_invalid", "colour"),
        ({"lat": 95}, "invalid", "lat"),
    ],
)
def test_bad_create_input_is_refused(
    tree: TwoTowns, fengxi_operator: User, change: dict[str, Any], code: str, field: str
) -> None:
    WaterloggingCategoryFactory()
    body = {"category": "N02", "lat": 34.305, "lng": 108.718, "title": "积水", **change}

    response = client_for(fengxi_operator).post(url("incidents"), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert field in response.json()["extra"]["fields"]
    assert not Incident.objects.exists()


def test_a_responder_cannot_create(tree: TwoTowns, fengxi_responder: User) -> None:
    category = CategoryFactory()

    response = client_for(fengxi_responder).post(
        url("incidents"),
        {"category": category.code, "lat": 34.305, "lng": 108.718, "title": "x"},
        format="json",
    )

    assert response.status_code == 403
