"""The API: the citizen's reads (anonymous), the 叫应 call, the staff list and board."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.early_warnings import services
from apps.early_warnings.models import Acknowledgement
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import published

pytestmark = pytest.mark.django_db

SANQIAO = {"lat": 34.276, "lng": 108.85}
DIAOTAI = {"lat": 34.305, "lng": 108.718}


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def town_warning(cast: Cast) -> Any:
    """A blue warning for the whole of 沣东新城."""
    return published(
        by=cast.town_operator,
        approver=cast.town_operator2,
        targets=[cast.tree.fengdong.pk],
        title="沣东暴雨蓝色预警",
    )


def test_a_citizen_at_a_point_inside_a_targets_subtree_sees_the_warning_with_instructions(
    cast: Cast, town_warning: Any
) -> None:
    answer = client_for(None).get("/api/v1/warnings/active/", SANQIAO)
    assert answer.status_code == 200, answer.content
    assert [w["id"] for w in answer.json()] == [town_warning.pk]
    warning = answer.json()[0]
    assert warning["instruction"] == "注意防范城市内涝，减少外出。"
    assert warning["level"] == "blue"
    assert warning["targets"] == [{"code": "fengdong", "name": "沣东新城", "level": "new_town"}]


def test_a_citizen_outside_every_target_sees_nothing(cast: Cast, town_warning: Any) -> None:
    answer = client_for(None).get("/api/v1/warnings/active/", DIAOTAI)
    assert answer.status_code == 200
    assert answer.json() == []
    by_code = client_for(None).get("/api/v1/warnings/active/", {"region": "fx-diaotai"})
    assert by_code.json() == []
    inside = client_for(None).get("/api/v1/warnings/active/", {"region": "fd-sanqiao-hcz"})
    assert [w["id"] for w in inside.json()] == [town_warning.pk]


def test_the_active_list_costs_the_same_queries_for_one_warning_or_five(
    cast: Cast, django_assert_max_num_queries: Any
) -> None:
    for n in range(5):
        published(
            by=cast.town_operator,
            approver=cast.town_operator2,
            targets=[cast.sanqiao.pk],
            title=f"预警{n}",
        )
    with django_assert_max_num_queries(3):  # region, versions, targets
        answer = client_for(None).get("/api/v1/warnings/active/", {"region": "fd-sanqiao"})
    assert len(answer.json()) == 5


def test_ended_warnings_are_in_the_history_not_in_force(cast: Cast, town_warning: Any) -> None:
    with time_machine.travel(town_warning.expires + timedelta(seconds=1), tick=False):
        services.warnings_expire_due()
        active = client_for(None).get("/api/v1/warnings/active/", {"region": "fengdong"})
        history = client_for(None).get("/api/v1/warnings/history/", {"region": "fd-sanqiao"})
    assert active.json() == []
    assert history.status_code == 200
    assert [w["id"] for w in history.json()["results"]] == [town_warning.pk]
    assert history.json()["results"][0]["status"] == "expired"


def test_a_device_subscribes_to_its_street_and_every_ancestor_for_home_and_location(
    cast: Cast,
) -> None:
    answer = client_for(None).get(
        "/api/v1/warnings/topics/", {"home_region": "fx-diaotai", **SANQIAO}
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "topics": [
            "region-xixian",
            "region-fengxi",
            "region-fx-diaotai",
            "region-fengdong",
            "region-fd-sanqiao",
        ],
        "regions": ["fx-diaotai", "fd-sanqiao"],
    }
    assert client_for(None).get("/api/v1/warnings/topics/").status_code == 400


def test_a_responsible_person_lists_what_they_must_answer_and_answers_once_with_a_retry(
    cast: Cast, town_warning: Any
) -> None:
    client = client_for(cast.grid)
    pending = client.get("/api/v1/me/warning-acks/")
    assert pending.status_code == 200
    assert [row["warning"]["id"] for row in pending.json()] == [town_warning.pk]
    key = str(uuid.uuid4())
    first = client.post(f"/api/v1/warnings/{town_warning.pk}/ack/", {}, HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == 200, first.content
    replay = client.post(f"/api/v1/warnings/{town_warning.pk}/ack/", {}, HTTP_IDEMPOTENCY_KEY=key)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert client.get("/api/v1/me/warning-acks/").json() == []
    ack = Acknowledgement.objects.get(version=town_warning, user=cast.grid)
    assert ack.acked_at is not None


def test_someone_not_asked_gets_404_on_the_ack(cast: Cast, town_warning: Any) -> None:
    answer = client_for(cast.outsider_grid).post(f"/api/v1/warnings/{town_warning.pk}/ack/", {})
    assert answer.status_code == 404
    assert answer.json()["code"] == "warning_ack_not_found"


def test_staff_list_the_warnings_of_their_scope_in_constant_queries(
    cast: Cast, django_assert_max_num_queries: Any
) -> None:
    for n in range(4):
        published(
            by=cast.town_operator,
            approver=cast.town_operator2,
            targets=[cast.sanqiao.pk],
            title=f"预警{n}",
        )
    client = client_for(User.objects.get(pk=cast.street_operator.pk))
    with django_assert_max_num_queries(4):  # memberships, page, targets (+ savepoint-free)
        answer = client.get("/api/v1/warnings/")
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 4
    # a new-area warning reaches the street's board too (a target above its region)
    outsider = client_for(cast.outsider).get("/api/v1/warnings/")
    assert outsider.json()["results"] == []


def test_staff_read_the_ack_board_and_another_town_gets_404(cast: Cast, town_warning: Any) -> None:
    services.warning_acknowledge(version_id=town_warning.pk, user=cast.grid)
    detail = client_for(cast.town_commander).get(f"/api/v1/warnings/{town_warning.pk}/")
    assert detail.status_code == 200
    board = detail.json()["board"]
    assert board["acked"] == 1
    assert board["silent"] == len(board["rows"]) - 1
    answered = [row for row in board["rows"] if row["acked_at"]]
    assert [row["user_id"] for row in answered] == [cast.grid.pk]
    assert client_for(cast.outsider).get(f"/api/v1/warnings/{town_warning.pk}/").status_code == 404
    assert client_for(cast.grid).get(f"/api/v1/warnings/{town_warning.pk}/").status_code == 403
