"""Offline sync: ``changes since <cursor>``, with the settle window against late commits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.incidents.models import Incident, IncidentStatus
from apps.incidents.selectors.incidents import incident_changes_since
from apps.incidents.services import incidents as services
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import IncidentFactory, TwoTowns

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 7, 20, 16, 0, tzinfo=timezone.get_default_timezone())


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def operator(tree: TwoTowns) -> User:
    return StaffUserFactory(region=tree.fengxi)


def test_changes_come_oldest_first_and_the_cursor_moves_on(tree: TwoTowns, operator: User) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        # given three incidents written a minute apart
        rows = []
        for _ in range(3):
            rows.append(IncidentFactory(region=tree.diaotai))
            traveller.shift(timedelta(minutes=1))

        # when the client syncs from scratch, two at a time
        first = incident_changes_since(user=operator, cursor=None, limit=2)
        second = incident_changes_since(user=operator, cursor=first.next_cursor, limit=2)
        third = incident_changes_since(user=operator, cursor=second.next_cursor, limit=2)

    # then
    assert [i.pk for i in first.results] == [rows[0].pk, rows[1].pk]
    assert first.has_more
    assert [i.pk for i in second.results] == [rows[2].pk]
    assert not second.has_more
    assert third.results == []
    assert third.next_cursor == second.next_cursor


def test_a_transition_puts_the_incident_back_in_the_feed(tree: TwoTowns, operator: User) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        changed = IncidentFactory(region=tree.diaotai)
        IncidentFactory(region=tree.diaotai)
        traveller.shift(timedelta(minutes=1))
        cursor = incident_changes_since(user=operator, cursor=None).next_cursor

        # when one of them is accepted later
        traveller.shift(timedelta(minutes=5))
        services.incident_accept(incident_id=changed.pk, by=operator)
        traveller.shift(timedelta(seconds=10))
        page = incident_changes_since(user=operator, cursor=cursor)

    # then only that one comes, in its new status
    assert [(i.pk, i.status) for i in page.results] == [(changed.pk, IncidentStatus.ACCEPTED)]


def test_merged_and_closed_incidents_are_delivered_so_clients_can_drop_them(
    tree: TwoTowns, operator: User
) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        target = IncidentFactory(region=tree.diaotai, status=IncidentStatus.ACCEPTED)
        duplicate = IncidentFactory(region=tree.diaotai)
        done = IncidentFactory(region=tree.diaotai, status=IncidentStatus.RESOLVED)
        traveller.shift(timedelta(minutes=1))
        cursor = incident_changes_since(user=operator, cursor=None).next_cursor

        traveller.shift(timedelta(minutes=1))
        services.incident_merge(incident_id=duplicate.pk, into_id=target.pk, by=operator)
        services.incident_close(incident_id=done.pk, by=operator)
        traveller.shift(timedelta(minutes=1))
        page = incident_changes_since(user=operator, cursor=cursor)

    by_id = {i.pk: i for i in page.results}
    assert by_id[duplicate.pk].status == IncidentStatus.MERGED
    assert by_id[duplicate.pk].merged_into_id == target.pk
    assert by_id[done.pk].status == IncidentStatus.CLOSED
    assert target.pk in by_id  # its timeline gained a "duplicate merged" row


def test_changes_younger_than_the_settle_window_wait_for_the_next_call(
    tree: TwoTowns, operator: User
) -> None:
    # A row stamped at T may commit after a row stamped T+0.5 s was already handed out;
    # holding back rows younger than the window keeps the cursor from skipping it.
    with time_machine.travel(T0, tick=False) as traveller:
        incident = IncidentFactory(region=tree.diaotai)
        traveller.shift(timedelta(seconds=1))

        early = incident_changes_since(user=operator, cursor=None)
        traveller.shift(timedelta(seconds=2))
        later = incident_changes_since(user=operator, cursor=early.next_cursor or None)

    assert early.results == []
    assert early.next_cursor == ""
    assert [i.pk for i in later.results] == [incident.pk]


def test_the_settle_window_is_configurable(
    tree: TwoTowns, operator: User, settings: object
) -> None:
    settings.INCIDENT_SYNC_SETTLE_SECONDS = 30  # type: ignore[attr-defined]
    with time_machine.travel(T0, tick=False) as traveller:
        IncidentFactory(region=tree.diaotai)
        traveller.shift(timedelta(seconds=10))

        assert incident_changes_since(user=operator, cursor=None).results == []


def test_rows_with_the_same_timestamp_are_split_by_id(tree: TwoTowns, operator: User) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        rows = [IncidentFactory(region=tree.diaotai) for _ in range(3)]
        traveller.shift(timedelta(minutes=1))

        first = incident_changes_since(user=operator, cursor=None, limit=1)
        rest = incident_changes_since(user=operator, cursor=first.next_cursor, limit=10)

    assert len({r.updated_at for r in Incident.objects.filter(pk__in=[r.pk for r in rows])}) == 1
    assert [i.pk for i in first.results] + [i.pk for i in rest.results] == [r.pk for r in rows]


def test_out_of_scope_incidents_never_appear(tree: TwoTowns, operator: User) -> None:
    with time_machine.travel(T0, tick=False) as traveller:
        IncidentFactory(region=tree.sanqiao)
        traveller.shift(timedelta(minutes=1))

        assert incident_changes_since(user=operator, cursor=None).results == []


def test_a_forged_cursor_is_invalid(operator: User) -> None:
    with pytest.raises(ApplicationError) as caught:
        incident_changes_since(user=operator, cursor="not-a-cursor!!")

    assert caught.value.code == "invalid"
    assert "cursor" in caught.value.extra["fields"]


# --- Over HTTP -----------------------------------------------------------------------------


def test_the_changes_endpoint(tree: TwoTowns, operator: User) -> None:
    client = APIClient()
    client.force_authenticate(operator)
    with time_machine.travel(T0, tick=False) as traveller:
        incident = IncidentFactory(region=tree.diaotai)
        traveller.shift(timedelta(minutes=1))

        response = client.get(reverse("v1:incidents-changes"), {"limit": 10})
        again = client.get(
            reverse("v1:incidents-changes"), {"cursor": response.json()["next_cursor"]}
        )
        bad = client.get(reverse("v1:incidents-changes"), {"cursor": "%%%"})

    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["results"]] == [incident.pk]
    assert body["has_more"] is False
    assert body["next_cursor"]
    assert again.json()["results"] == []
    assert bad.status_code == 400


def test_citizens_cannot_sync_incidents() -> None:
    client = APIClient()
    client.force_authenticate(CitizenFactory())

    assert client.get(reverse("v1:incidents-changes")).status_code == 403
