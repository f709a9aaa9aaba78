"""Idempotency-Key: a retried mobile POST replays its first answer and changes nothing."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from apps.core.models import IdempotentRequest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]
URL = "/api/v1/groups/"


def post(client: APIClient, body: dict, key: str | None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, body, format="json", **headers)


def test_without_a_key_every_post_runs(api_client: APIClient) -> None:
    post(api_client, {"name": "a"}, None)
    post(api_client, {"name": "b"}, None)
    assert Group.objects.filter(name__in=["a", "b"]).count() == 2
    assert IdempotentRequest.objects.count() == 0


def test_a_replay_returns_the_stored_response_and_creates_nothing(api_client: APIClient) -> None:
    # given
    key = str(uuid.uuid4())
    first = post(api_client, {"name": "pump crew"}, key)
    # when
    second = post(api_client, {"name": "pump crew"}, key)
    # then
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Group.objects.filter(name="pump crew").count() == 1


def test_the_same_key_with_a_different_body_is_refused(api_client: APIClient) -> None:
    # given
    key = str(uuid.uuid4())
    post(api_client, {"name": "first"}, key)
    # when
    response = post(api_client, {"name": "second"}, key)
    # then
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Group.objects.filter(name="second").exists()


def test_a_malformed_key_is_refused_before_anything_runs(api_client: APIClient) -> None:
    response = post(api_client, {"name": "x"}, "not-a-uuid")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert not Group.objects.filter(name="x").exists()


def test_a_failed_request_does_not_burn_the_key(api_client: APIClient) -> None:
    # given: the first attempt is invalid
    key = str(uuid.uuid4())
    assert post(api_client, {"level": 3}, key).status_code == 400
    # when: the corrected retry uses the same key
    response = post(api_client, {"name": "fixed"}, key)
    # then: it is processed, not refused as a reused key
    assert response.status_code == 201
    assert IdempotentRequest.objects.get(key=key).response_status == 201


def test_keys_are_per_sender(api_client: APIClient, django_user_model) -> None:
    # given: an anonymous sender and a logged-in one use the same key
    key = str(uuid.uuid4())
    post(api_client, {"name": "anon"}, key)
    other = APIClient()
    other.force_authenticate(django_user_model.objects.create_user("u1", password="x"))
    # when
    response = post(other, {"name": "user"}, key)
    # then
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Group.objects.filter(name__in=["anon", "user"]).count() == 2


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_exactly_one_row() -> None:
    # given: PostgreSQL blocks the second insert on the unique index until the first
    # transaction ends, so a phone retrying while the first request still runs must
    # get the replay, not a duplicate.
    assert connection.vendor == "postgresql"
    key = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def worker() -> None:
        client = APIClient()
        barrier.wait()
        statuses.append(post(client, {"name": "race"}, key).status_code)
        connection.close()

    # when
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert sorted(statuses) == [201, 201, 201, 201]
    assert Group.objects.filter(name="race").count() == 1
