from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Device, User
from tests.factories.accounts import CitizenFactory, DeviceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/devices/"
TOKEN = "fcm:" + "a" * 150
BODY = {"token": TOKEN, "platform": "android", "app_version": "2.3.0", "locale": "zh-Hans"}


def test_registering_a_device_creates_it(authed: Callable[[User], APIClient]) -> None:
    # given
    citizen = CitizenFactory()
    # when
    response = authed(citizen).post(URL, BODY)
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["platform"] == "android"
    assert body["app_version"] == "2.3.0"
    assert "token" not in body
    device = Device.objects.get()
    assert device.user == citizen
    assert device.last_seen_at is not None


def test_registering_the_same_token_again_refreshes_the_one_row(
    authed: Callable[[User], APIClient],
) -> None:
    client = authed(CitizenFactory())
    first = client.post(URL, BODY)
    second = client.post(URL, {**BODY, "app_version": "2.4.0"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Device.objects.get().app_version == "2.4.0"


def test_a_token_registered_by_another_user_moves_to_the_new_user(
    authed: Callable[[User], APIClient],
) -> None:
    # given: a shared family phone
    before, after = CitizenFactory(), CitizenFactory()
    authed(before).post(URL, BODY)
    # when
    response = authed(after).post(URL, BODY)
    # then
    assert response.status_code == 200
    assert Device.objects.get().user == after
    assert authed(before).get(URL).json()["results"] == []


def test_an_idempotent_replay_returns_the_first_response_without_a_second_write(
    authed: Callable[[User], APIClient],
) -> None:
    # given
    client = authed(CitizenFactory())
    key = str(uuid.uuid4())
    first = client.post(URL, BODY, HTTP_IDEMPOTENCY_KEY=key)
    # when
    replay = client.post(URL, BODY, HTTP_IDEMPOTENCY_KEY=key)
    # then
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Device.objects.count() == 1


def test_an_idempotency_key_reused_with_another_body_is_refused(
    authed: Callable[[User], APIClient],
) -> None:
    client = authed(CitizenFactory())
    key = str(uuid.uuid4())
    client.post(URL, BODY, HTTP_IDEMPOTENCY_KEY=key)
    response = client.post(URL, {**BODY, "platform": "ios"}, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Device.objects.get().platform == "android"


def test_a_malformed_idempotency_key_is_refused(authed: Callable[[User], APIClient]) -> None:
    response = authed(CitizenFactory()).post(URL, BODY, HTTP_IDEMPOTENCY_KEY="not-a-uuid")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert not Device.objects.exists()


def test_a_malformed_json_body_is_a_parse_error(authed: Callable[[User], APIClient]) -> None:
    response = authed(CitizenFactory()).post(
        URL,
        data='{"token": "abc", ',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_an_unknown_platform_is_a_field_error(authed: Callable[[User], APIClient]) -> None:
    response = authed(CitizenFactory()).post(URL, {**BODY, "platform": "symbian"})
    assert response.status_code == 400
    assert "platform" in response.json()["extra"]["fields"]


def test_the_list_shows_only_my_active_devices_in_fixed_queries(
    authed: Callable[[User], APIClient], django_assert_num_queries: Any
) -> None:
    # given
    me = CitizenFactory()
    mine = DeviceFactory.create_batch(5, user=me)
    DeviceFactory(user=me, is_active=False)
    DeviceFactory.create_batch(3)  # other people's
    client = authed(me)
    # when / then: user (JWT) + one page
    with django_assert_num_queries(2):
        response = client.get(URL)
    assert response.status_code == 200
    assert {d["id"] for d in response.json()["results"]} == {d.pk for d in mine}


def test_the_list_pages_with_a_cursor(authed: Callable[[User], APIClient]) -> None:
    me = CitizenFactory()
    DeviceFactory.create_batch(3, user=me)
    client = authed(me)
    first = client.get(URL, {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    assert len(first["results"]) == 2
    assert len(second["results"]) == 1
    assert second["next"] is None


def test_deleting_my_device_deactivates_it(authed: Callable[[User], APIClient]) -> None:
    device = DeviceFactory()
    response = authed(device.user).delete(f"{URL}{device.pk}/")
    assert response.status_code == 204
    device.refresh_from_db()
    assert device.is_active is False


def test_deleting_someone_elses_device_is_not_found(authed: Callable[[User], APIClient]) -> None:
    device = DeviceFactory()
    response = authed(CitizenFactory()).delete(f"{URL}{device.pk}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    device.refresh_from_db()
    assert device.is_active is True


def test_devices_require_authentication(api_client: APIClient) -> None:
    assert api_client.get(URL).status_code == 401
    assert api_client.post(URL, BODY).status_code == 401
