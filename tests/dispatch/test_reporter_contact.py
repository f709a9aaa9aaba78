"""The reporter's phone, name and photos: one rule (``apps.incidents.policies``) for the
incident detail, the task detail, downloads and the realtime streams."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.dispatch.models import CommandPost
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import Attachment, Report
from apps.incidents.services import incidents as incident_services
from apps.realtime.models import Event
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import MembershipFactory, StaffUserFactory
from tests.factories.incidents import AttachmentFactory, ReportFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
PHONE = "+8613900000001"  # Scene's reporter


@pytest.fixture
def scene() -> Scene:
    scene = Scene()
    report = ReportFactory(
        region=scene.street, incident=scene.incident, status="accepted", phone="+8613900000002"
    )
    AttachmentFactory(report=report)
    # team members hold the responder role of their street, as team seeding grants it
    for user in (scene.member, scene.member2, scene.other_member):
        MembershipFactory(user=user, region=scene.street, role=Role.RESPONDER)
    return scene


def detail(user: User, scene: Scene) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    response = client.get(f"{API}/incidents/{scene.incident.pk}/")
    assert response.status_code == 200, response.json()
    return response.json()


def shows_contact(body: dict[str, Any]) -> bool:
    contact = (body["reporter_phone"], body["reporter_name"])
    if contact == (None, None):
        assert body["attachments"] == []  # no contact, no photos
        return False
    assert contact == (PHONE, "王先生")
    assert len(body["attachments"]) == 1
    return True


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("dispatched", True),
        ("on_scene", True),
        ("completed", True),
        ("verified", True),  # a team that did the work may still call back
        ("declined", False),
        ("expired", False),
        ("cancelled", False),
    ],
)
def test_the_assigned_team_sees_the_contact_while_its_task_is_live_or_done(
    scene: Scene, status: str, shown: bool
) -> None:
    scene.task(status)
    assert shows_contact(detail(scene.member, scene)) is shown
    # the other team of the street reads the incident, never the person
    assert shows_contact(detail(scene.other_member, scene)) is False


def test_in_scope_staff_see_it_and_field_roles_without_an_assignment_do_not(scene: Scene) -> None:
    liaison = StaffUserFactory(region=scene.street, region__role=Role.DEPARTMENT_LIAISON)
    grid_worker = StaffUserFactory(region=scene.street, region__role=Role.GRID_WORKER)
    assert shows_contact(detail(scene.operator, scene))
    assert shows_contact(detail(liaison, scene))
    assert not shows_contact(detail(grid_worker, scene))
    assert not shows_contact(detail(responder_with_scope(scene), scene))


def test_the_command_post_sees_it_while_its_people_are_eligible(scene: Scene) -> None:
    member = responder_with_scope(scene)
    post_services.command_post_establish(
        incident_id=scene.incident.pk,
        by=scene.operator,
        commander_id=scene.operator.pk,
        lat=34.276,
        lng=108.85,
        member_ids=[member.pk],
    )
    assert shows_contact(detail(member, scene))
    post_services.command_post_close(incident_id=scene.incident.pk, by=scene.operator)
    assert not shows_contact(detail(member, scene))


def test_a_photo_download_follows_the_same_rule(scene: Scene) -> None:
    photo = Attachment.objects.get(report__incident=scene.incident)
    scene.task("accepted")

    def fetch(user: User) -> int:
        client = APIClient()
        client.force_authenticate(User.objects.get(pk=user.pk))
        return client.get(f"{API}/attachments/{photo.pk}/").status_code

    assert fetch(scene.member) == 200  # the assigned team
    assert fetch(scene.operator) == 200
    assert fetch(scene.other_member) == 404  # in scope, not assigned
    assert fetch(scene.outsider_operator) == 404


def test_no_realtime_event_carries_the_reporter_contact(scene: Scene) -> None:
    # given: a day's work on the incident — dispatch, the team's transitions, notes, a post
    task = task_services.task_dispatch(
        incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=scene.operator
    )[0]
    task_services.task_accept(task_id=task.pk, by=scene.member)
    task_services.task_en_route(task_id=task.pk, by=scene.member)
    task_services.task_on_scene(task_id=task.pk, by=scene.member)
    task_services.task_complete(task_id=task.pk, by=scene.member, result="已处置")
    incident_services.incident_add_note(incident_id=scene.incident.pk, by=scene.operator, text="x")
    post_services.command_post_establish(
        incident_id=scene.incident.pk,
        by=scene.operator,
        commander_id=scene.operator.pk,
        lat=34.276,
        lng=108.85,
    )
    assert CommandPost.objects.filter(incident=scene.incident).exists()
    # then: of every event written for the streams, none names the reporter
    payloads = [json.dumps(e.payload, ensure_ascii=False) for e in Event.objects.all()]
    assert len(payloads) >= 6
    report_phones = set(Report.objects.values_list("phone", flat=True)) - {""}
    for payload in payloads:
        assert PHONE.removeprefix("+86") not in payload
        assert "王先生" not in payload
        assert not any(p.removeprefix("+86") in payload for p in report_phones)


def test_only_a_contact_really_shown_is_audited_as_a_personal_read(scene: Scene) -> None:
    from apps.audit.models import AuditEntry

    scene.task("accepted")
    reads = AuditEntry.objects.filter(action=AuditEntry.Action.PERSONAL_READ)
    # when: a responder of another team reads the incident (the contact is hidden)
    assert not shows_contact(detail(scene.other_member, scene))
    # then: nothing of the reporter reached them, nothing is recorded
    assert not reads.filter(actor=scene.other_member).exists()
    # when: the assigned team reads it
    assert shows_contact(detail(scene.member, scene))
    # then: the read is recorded for them
    assert reads.filter(actor=scene.member, object_id=str(scene.incident.pk)).exists()
