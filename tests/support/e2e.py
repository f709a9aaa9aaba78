"""Fixtures for end-to-end tests across real processes: the fake FCM server, the
environment of a deployed-like process set (Redis as layer and broker, FCM through
firebase-admin against the fake), and a Celery worker on a queue of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import servers
from tests.support.fake_fcm import FakeFcm


@pytest.fixture
def fcm() -> Iterator[FakeFcm]:
    with FakeFcm() as fake:
        yield fake


@pytest.fixture
def e2e_env(fcm: FakeFcm, tmp_path: Path) -> dict[str, str]:
    return {
        "REDIS_URL": settings.TEST_REDIS_URL,
        "CELERY_BROKER_URL": settings.TEST_REDIS_URL,
        # a queue of this test's own: no other test's worker takes these tasks
        "CELERY_TASK_DEFAULT_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "CHANNEL_LAYER_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
        "NOTIFICATIONS_PUSH_BACKEND": "apps.notifications.backends.fcm.FcmPushBackend",
        "FCM_CREDENTIALS_FILE": str(fcm.write_credentials(tmp_path / "fcm.json")),
        "FCM_ENDPOINT_URL": fcm.url,
        "XEMS_VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
def e2e_worker(e2e_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path / "worker.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": servers.test_database_url(),
        **e2e_env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "xixian_ems", "worker", "--pool", "solo",
             "-Q", e2e_env["CELERY_TASK_DEFAULT_QUEUE"], "--loglevel", "INFO"],
            cwd=servers.ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "ready." not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)  # polling a child process start-up, not test time
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
