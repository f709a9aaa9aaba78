"""The domain services write their events: which kinds, on which streams, with what.

Incidents go to ``incident.<id>`` and the region streams of the street and every
ancestor; tasks also to their team members' ``user.<id>``; the citizen's ``report.<id>``
gets the public status only.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.dispatch.services import command_post as posts
from apps.dispatch.services import room
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import Report
from apps.incidents.services import incidents as incident_services
from apps.incidents.services import reports as report_services
from apps.realtime.models import Event
from tests.dispatch.task_support import Scene
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import IncidentFactory, ReportFactory

pytestmark = pytest.mark.django_db

SANQIAO_REGIONS = ["region.fd-sanqiao", "region.fengdong", "region.xixian"]
# Everything a report event may carry: the citizen's view, nothing of the staff's.
PUBLIC_REPORT_KEYS = {"report_id", "outcome", "public_status", "reason", "rating"}


@pytest.fixture
def scene() -> Scene:
    return Scene()


def kinds(stream: str) -> list[str]:
    return list(Event.objects.filter(stream=stream).order_by("seq").values_list("kind", flat=True))


def streams_of(kind: str) -> list[str]:
    return sorted(Event.objects.filter(kind=kind).values_list("stream", flat=True))


def payload(stream: str, kind: str) -> dict[str, Any]:
    return Event.objects.filter(stream=stream, kind=kind).latest("seq").payload


# --- Incidents -------------------------------------------------------------------------------


def test_a_transition_goes_to_the_incident_and_every_region_above_it() -> None:
    scene = Scene(incident_status="reported")
    # when
    incident_services.incident_accept(incident_id=scene.incident.pk, by=scene.operator)
    # then
    assert streams_of("incident.accepted") == sorted(
        [f"incident.{scene.incident.pk}", *SANQIAO_REGIONS]
    )
    data = payload(f"incident.{scene.incident.pk}", "incident.accepted")
    assert data["incident"]["id"] == scene.incident.pk
    assert data["incident"]["status"] == "accepted"
    assert data["incident"]["region"] == "fd-sanqiao"
    assert data["entry"]["kind"] == "accepted"
    assert data["entry"]["actor_id"] == scene.operator.pk
    assert data["entry"]["data"]["from"] == "reported"
    assert data["entry"]["at"].endswith("+08:00")
    # one event per stream and change; every region stream holds the same event
    assert {e.payload["entry"]["id"] for e in Event.objects.filter(kind="incident.accepted")} == {
        data["entry"]["id"]
    }


def test_every_timeline_row_of_an_incident_is_an_event(scene: Scene) -> None:
    incident_id, by = scene.incident.pk, scene.operator
    incident_services.incident_classify(incident_id=incident_id, by=by, severity="III")
    incident_services.incident_revise_casualties(incident_id=incident_id, by=by, injured=2)
    incident_services.incident_add_note(incident_id=incident_id, by=by, text="排水车已出发")
    incident_services.incident_start(incident_id=incident_id, by=by)
    assert kinds(f"incident.{incident_id}") == [
        "incident.classified",
        "incident.casualties_revised",
        "incident.note",
        "incident.in_progress",
    ]
    assert kinds("region.xixian") == kinds(f"incident.{incident_id}")
    assert payload(f"incident.{incident_id}", "incident.classified")["incident"]["severity"] == (
        "III"
    )


def test_a_classification_that_changes_nothing_writes_no_event(scene: Scene) -> None:
    incident_services.incident_classify(
        incident_id=scene.incident.pk, by=scene.operator, loop=scene.incident.loop
    )
    assert not Event.objects.exists()


def test_a_refused_transition_writes_no_event(scene: Scene) -> None:
    from apps.core.errors import ApplicationError

    with pytest.raises(ApplicationError):
        incident_services.incident_close(incident_id=scene.incident.pk, by=scene.operator)
    assert not Event.objects.exists()


# --- Citizen reports -------------------------------------------------------------------------


def test_accepting_a_report_tells_the_board_and_the_citizen(scene: Scene) -> None:
    report = ReportFactory(region=scene.street)
    report_services.report_accept(report_id=report.pk, by=scene.operator)
    incident_id = Report.objects.get(pk=report.pk).incident_id
    assert kinds(f"incident.{incident_id}") == ["incident.created", "incident.report_linked"]
    assert kinds(f"report.{report.pk}") == ["report.triaged"]
    assert streams_of("report.triaged") == sorted([f"report.{report.pk}", *SANQIAO_REGIONS])
    assert payload(f"report.{report.pk}", "report.triaged") == {
        "report_id": report.pk,
        "outcome": "accepted",
        "public_status": "received",
        "reason": "",
    }


def test_a_rejected_report_gets_the_reason_written_for_the_citizen(scene: Scene) -> None:
    report = ReportFactory(region=scene.street)
    report_services.report_reject(report_id=report.pk, by=scene.operator, reason="不在辖区内")
    assert payload(f"report.{report.pk}", "report.triaged") == {
        "report_id": report.pk,
        "outcome": "rejected",
        "public_status": "rejected",
        "reason": "不在辖区内",
    }
    assert not Event.objects.filter(stream__startswith="incident.").exists()


def test_the_citizen_follows_the_public_status_of_the_incident(scene: Scene) -> None:
    # given: a report marked duplicate of the scene's (accepted) incident
    report = ReportFactory(region=scene.street)
    report_services.report_mark_duplicate(
        report_id=report.pk, by=scene.operator, incident_id=scene.incident.pk
    )
    incident_id, by = scene.incident.pk, scene.operator
    # when: the incident moves on (an internal note and a classification in between)
    incident_services.incident_add_note(incident_id=incident_id, by=by, text="内部: 联系燃气公司")
    incident_services.incident_start(incident_id=incident_id, by=by)
    incident_services.incident_classify(incident_id=incident_id, by=by, severity="IV")
    incident_services.incident_resolve(incident_id=incident_id, by=by, resolution="已处置")
    incident_services.incident_close(incident_id=incident_id, by=by)
    incident_services.incident_reopen(incident_id=incident_id, by=by, reason="复查未通过")
    # then: the citizen's stream got each change of the public status, nothing else
    stream = f"report.{report.pk}"
    reported = Event.objects.filter(stream=stream).order_by("seq")
    assert [(e.kind, e.payload["public_status"]) for e in reported] == [
        ("report.triaged", "received"),
        ("report.status_changed", "in_progress"),
        ("report.status_changed", "resolved"),
        ("report.status_changed", "closed"),
        ("report.status_changed", "in_progress"),
    ]
    assert payload(stream, "report.triaged")["outcome"] == "duplicate"
    for event in reported:
        assert set(event.payload) <= PUBLIC_REPORT_KEYS
        assert "联系燃气公司" not in str(event.payload)


def test_a_merge_is_one_event_on_each_incident_and_moves_the_reports_along(
    scene: Scene,
) -> None:
    # given: a duplicate incident in 沣西 with a citizen's report; the scene's incident in
    # 沣东 is in progress
    scene.incident.status = "in_progress"
    scene.incident.save(update_fields=["status"])
    duplicate = IncidentFactory(region=scene.tree.diaotai, status="accepted")
    report = ReportFactory(region=scene.tree.diaotai, status="accepted", incident=duplicate)
    commander = StaffUserFactory(region=scene.tree.root)
    # when
    incident_services.incident_merge(
        incident_id=duplicate.pk, into_id=scene.incident.pk, by=commander
    )
    # then
    assert streams_of("incident.merged") == sorted(
        [f"incident.{duplicate.pk}", "region.fx-diaotai", "region.fengxi", "region.xixian"]
    )
    assert streams_of("incident.duplicate_merged") == sorted(
        [f"incident.{scene.incident.pk}", *SANQIAO_REGIONS]
    )
    assert payload(f"report.{report.pk}", "report.status_changed") == {
        "report_id": report.pk,
        "public_status": "in_progress",
    }
    # later changes of the target reach the merged duplicate's reports too
    incident_services.incident_add_note(incident_id=scene.incident.pk, by=commander, text="x")
    incident_services.incident_resolve(incident_id=scene.incident.pk, by=commander, resolution="ok")
    assert payload(f"report.{report.pk}", "report.status_changed")["public_status"] == "resolved"


def test_rating_and_asking_to_reopen_reach_the_report_stream(scene: Scene) -> None:
    citizen = CitizenFactory()
    scene.incident.status = "closed"
    scene.incident.save(update_fields=["status"])
    report = ReportFactory(
        region=scene.street, status="accepted", incident=scene.incident, reporter=citizen
    )
    report_services.report_request_reopen(report=report, reason="积水又出现了", by=citizen)
    report_services.report_rate(report=report, rating=2, comment="慢", by=citizen)
    stream = f"report.{report.pk}"
    assert kinds(stream) == ["report.reopen_requested", "report.rated"]
    assert payload(stream, "report.rated") == {"report_id": report.pk, "rating": 2}
    assert payload(stream, "report.reopen_requested") == {
        "report_id": report.pk,
        "public_status": "closed",
    }
    assert kinds(f"incident.{scene.incident.pk}") == [
        "incident.reopen_requested",
        "incident.rated",
    ]


# --- Dispatch --------------------------------------------------------------------------------


def test_a_dispatch_rings_every_member_of_the_team_and_the_board(scene: Scene) -> None:
    # when
    (task,) = task_services.task_dispatch(
        incident_id=scene.incident.pk,
        team_ids=[scene.team.pk],
        by=scene.operator,
        instructions="带抽水泵",
    )
    # then
    assert streams_of("task.dispatched") == sorted(
        [
            f"incident.{scene.incident.pk}",
            *SANQIAO_REGIONS,
            f"user.{scene.member.pk}",
            f"user.{scene.member2.pk}",
        ]
    )
    data = payload(f"user.{scene.member.pk}", "task.dispatched")
    assert data["task"] == {
        "id": task.pk,
        "incident_id": scene.incident.pk,
        "team_id": scene.team.pk,
        "team": scene.team.name,
        "status": "dispatched",
        "instructions": "带抽水泵",
        "cross_department": False,
        "dispatched_at": data["task"]["dispatched_at"],
        "delivered_at": None,
    }
    assert data["incident"]["lat"] == scene.incident.lat
    assert data["entry"]["kind"] == "task_dispatched"
    assert not Event.objects.filter(stream=f"user.{scene.other_member.pk}").exists()


def test_each_task_step_reaches_the_members_and_starts_the_incident(scene: Scene) -> None:
    task = scene.task("dispatched")
    task_services.task_ack_delivery(task_id=task.pk, by=scene.member)
    task_services.task_accept(task_id=task.pk, by=scene.member)
    task_services.task_en_route(task_id=task.pk, by=scene.member2)
    assert kinds(f"user.{scene.member2.pk}") == ["task.delivered", "task.accepted", "task.en_route"]
    assert kinds(f"incident.{scene.incident.pk}") == [
        "task.delivered",
        "task.accepted",
        "incident.in_progress",
        "task.en_route",
    ]
    delivered = payload(f"user.{scene.member.pk}", "task.delivered")
    assert delivered["task"]["delivered_at"] is not None
    assert delivered["entry"] is None


def test_reassigning_tells_the_old_team_and_rings_the_new_one(scene: Scene) -> None:
    task = scene.task("dispatched")
    task_services.task_reassign(task_id=task.pk, to_team_id=scene.other_team.pk, by=scene.operator)
    assert kinds(f"user.{scene.member.pk}") == ["task.reassigned"]
    assert kinds(f"user.{scene.other_member.pk}") == ["task.dispatched"]


def test_a_room_message_goes_to_the_incident_stream_only(scene: Scene) -> None:
    message = room.room_post(incident_id=scene.incident.pk, by=scene.operator, text="请注意安全")
    assert streams_of("room.message") == [f"incident.{scene.incident.pk}"]
    assert payload(f"incident.{scene.incident.pk}", "room.message") == {
        "id": message.pk,
        "incident_id": scene.incident.pk,
        "author_id": scene.operator.pk,
        "author": str(scene.operator),
        "text": "请注意安全",
        "attachment_id": None,
    }


def test_command_post_changes_are_incident_events(scene: Scene) -> None:
    commander = StaffUserFactory(region=scene.tree.root)
    posts.command_post_establish(
        incident_id=scene.incident.pk,
        by=commander,
        commander_id=commander.pk,
        lat=34.27,
        lng=108.85,
        member_ids=[scene.operator.pk],
    )
    scene.task("accepted")  # the member's team works the incident: eligible for its post
    posts.command_post_member_add(
        incident_id=scene.incident.pk, by=commander, user_id=scene.member.pk
    )
    posts.command_post_close(incident_id=scene.incident.pk, by=commander)
    assert kinds(f"incident.{scene.incident.pk}") == [
        "incident.command_post_established",
        "incident.command_post_members",
        "incident.command_post_closed",
    ]
    assert kinds("region.fengdong") == kinds(f"incident.{scene.incident.pk}")


@pytest.mark.django_db(transaction=True)
def test_the_events_of_an_api_dispatch_are_published_after_commit(
    scene: Scene, published: list
) -> None:
    from rest_framework.test import APIClient

    from apps.accounts.services import tokens_issue

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_issue(user=scene.operator).access}")
    response = client.post(
        f"/api/v1/incidents/{scene.incident.pk}/dispatch/",
        {"team_ids": [scene.team.pk]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert len(published) == 1  # one publish for the whole transaction
    assert f"user.{scene.member.pk}" in {event.stream for event in published[0]}
