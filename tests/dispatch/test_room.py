"""The incident room (会商): who may read and post, text and photos."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.dispatch.models import RoomMessage
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services.room import room_post
from apps.incidents.models import Attachment
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.incidents import photo_bytes

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def scene() -> Scene:
    return Scene()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def room(scene: Scene) -> str:
    return f"{API}/incidents/{scene.incident.pk}/room/"


def test_a_member_of_a_live_team_and_the_operator_talk(scene: Scene) -> None:
    scene.task("on_scene")

    first = client_for(scene.member).post(room(scene), {"text": "现场积水约40厘米"}, format="json")
    second = client_for(scene.operator).post(room(scene), {"text": "收到，增派泵车"}, format="json")

    assert first.status_code == second.status_code == 201
    listed = client_for(scene.member).get(room(scene)).json()
    assert [m["text"] for m in listed["results"]] == ["收到，增派泵车", "现场积水约40厘米"]
    assert listed["results"][1]["author"] == scene.member.pk


def test_outsiders_neither_read_nor_post(scene: Scene) -> None:
    scene.task("on_scene")
    scene.task("declined", team=scene.other_team)  # their team said no: not on it
    for user in (scene.other_member, scene.outsider_operator, responder_with_scope(scene)):
        assert client_for(user).get(room(scene)).status_code == 404
        response = client_for(user).post(room(scene), {"text": "hi"}, format="json")
        assert response.status_code == 404
    assert not RoomMessage.objects.exists()


def test_the_service_refuses_a_non_participant(scene: Scene) -> None:
    with pytest.raises(ApplicationError) as refused:
        room_post(incident_id=scene.incident.pk, by=scene.other_member, text="hi")
    assert refused.value.code == "not_on_incident"
    assert refused.value.status == 403


def test_command_post_members_are_in_the_room(scene: Scene) -> None:
    expert = responder_with_scope(scene)  # no live task, no room role: the post lets in
    post_services.command_post_establish(
        incident_id=scene.incident.pk,
        by=scene.operator,
        commander_id=scene.operator.pk,
        lat=34.276,
        lng=108.85,
        member_ids=[expert.pk],
    )
    response = client_for(expert).post(room(scene), {"text": "建议设置警戒线"}, format="json")
    assert response.status_code == 201


def test_a_photo_message(scene: Scene) -> None:
    scene.task("on_scene")
    photo = SimpleUploadedFile("scene.jpg", photo_bytes(), content_type="image/jpeg")

    response = client_for(scene.member).post(room(scene), {"photo": photo}, format="multipart")

    assert response.status_code == 201, response.json()
    attachment = Attachment.objects.get(incident=scene.incident)
    assert response.json()["photo"] == attachment.pk
    assert response.json()["text"] == ""


def test_an_empty_message_is_refused(scene: Scene) -> None:
    scene.task("on_scene")
    response = client_for(scene.member).post(room(scene), {"text": "  "}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_room_list_pins_its_queries(scene: Scene, django_assert_max_num_queries: Any) -> None:
    scene.task("on_scene")
    for n in range(5):
        room_post(incident_id=scene.incident.pk, by=scene.member, text=f"消息{n}")
    client = client_for(scene.member)
    with django_assert_max_num_queries(4):
        response = client.get(room(scene))
    assert len(response.json()["results"]) == 5
