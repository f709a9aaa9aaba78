"""The API-key admin: a new key is shown once, only its hash is kept; keys can be revoked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.open311.models import ApiKey
from apps.open311.services import api_key_check, api_key_create, api_key_digest

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db: Any) -> Client:
    user = User.objects.create_superuser(username="root", password="pw-for-tests-only")
    client = Client()
    client.force_login(user)
    return client


def test_adding_a_key_shows_the_plain_key_once_and_stores_its_hash(admin_client: Client) -> None:
    # when
    response = admin_client.post(
        reverse("admin:open311_apikey_add"),
        {"name": "FixMyStreet", "is_active": "on"},
        follow=True,
    )

    # then: the page after saving shows the key
    assert response.status_code == 200
    raw = re.search(r"x311_[\w-]+", response.content.decode())
    assert raw is not None
    key = ApiKey.objects.get()
    assert key.name == "FixMyStreet"
    assert key.key_hash == api_key_digest(raw.group(0))
    assert api_key_check(raw.group(0)) == key
    # ... and no page shows it again
    for page in ("admin:open311_apikey_changelist", "admin:open311_apikey_change"):
        args = [key.pk] if page.endswith("change") else []
        assert raw.group(0) not in admin_client.get(reverse(page, args=args)).content.decode()


def test_revoked_keys_stop_working(admin_client: Client) -> None:
    # given
    key, raw = api_key_create(name="test")

    # when
    admin_client.post(
        reverse("admin:open311_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )

    # then
    key.refresh_from_db()
    assert key.is_active is False
    assert api_key_check(raw) is None
