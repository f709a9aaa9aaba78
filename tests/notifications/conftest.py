"""Fixtures of the notifications tests: a clean locmem push outbox, the fake FCM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.notifications.backends import LocmemPush, LocmemPushBackend
from apps.notifications.backends.firebase_adapter import forget_apps
from tests.support.fake_fcm import FakeFcm

FCM_BACKEND = "apps.notifications.backends.fcm.FcmPushBackend"


@pytest.fixture(autouse=True)
def push_outbox() -> Iterator[list[LocmemPush]]:
    LocmemPushBackend.reset()
    yield LocmemPushBackend.outbox
    LocmemPushBackend.reset()


@pytest.fixture
def fake_fcm(tmp_path: Path, settings: Any) -> Iterator[FakeFcm]:
    """FCM through firebase-admin, against a fake HTTP v1 server on 127.0.0.1."""
    with FakeFcm() as server:
        settings.NOTIFICATIONS_PUSH_BACKEND = FCM_BACKEND
        settings.FCM_CREDENTIALS_FILE = str(server.write_credentials(tmp_path / "fcm.json"))
        settings.FCM_PROJECT_ID = ""
        settings.FCM_ENDPOINT_URL = server.url
        yield server
        forget_apps()
