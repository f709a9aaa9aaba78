"""The warnings bench's fake FCM server (bench/fake_fcm.py) and its exactly-once check.

The fake must answer like FCM HTTP v1 for the project's real backend (firebase-admin, the
OAuth grant, ``messages:send``), or the bench would measure errors and retries.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from apps.notifications.backends import DeviceTarget, Outcome, PushMessage
from apps.notifications.backends.fcm import FcmPushBackend
from apps.notifications.backends.firebase_adapter import forget_apps
from bench import fake_fcm
from bench.bench_warnings import _check_arrivals
from bench.harness import BenchError
from tests.support.fake_fcm import _key_pair


@contextmanager
def running_fake() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = fake_fcm.FakeFcm()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "fake FCM server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def fake_url(tmp_path: Path, settings: Any) -> Iterator[str]:
    with running_fake() as url:
        private_pem, _public = _key_pair()
        path = tmp_path / "sa.json"
        path.write_text(json.dumps(fake_fcm.service_account(url, private_pem, "xems-bench")))
        settings.NOTIFICATIONS_PUSH_BACKEND = "apps.notifications.backends.fcm.FcmPushBackend"
        settings.FCM_CREDENTIALS_FILE = str(path)
        settings.FCM_PROJECT_ID = ""
        settings.FCM_ENDPOINT_URL = url
        forget_apps()
        yield url
        forget_apps()


def test_the_project_fcm_backend_sends_through_the_bench_fake_server(fake_url: str) -> None:
    message = PushMessage(
        notification_id=1,
        kind="warning",
        priority="high",
        style="notification",
        title="红色预警",
        body="bench",
        data={"level": "red"},
        ttl_seconds=3600,
        sound="default",
        channel_id="warning",
    )
    backend = FcmPushBackend()

    devices = backend.send_to_devices(
        message, [DeviceTarget(1, "tok-1", "android"), DeviceTarget(2, "tok-2", "android")]
    )
    topic = backend.send_to_topic(message, "region-xixian")

    assert [r.outcome for r in devices] == [Outcome.SENT, Outcome.SENT]
    assert topic.outcome == Outcome.SENT
    assert topic.message_id.startswith("projects/xems-bench/messages/bench-")
    records = httpx.get(f"{fake_url}/_records").json()["records"]
    assert sorted(target for _at, target, _n in records) == ["region-xixian", "tok-1", "tok-2"]


def test_the_fake_server_refuses_a_send_without_its_token_and_records_nothing() -> None:
    with running_fake() as url:
        response = httpx.post(
            f"{url}/v1/projects/p/messages:send", json={"message": {"token": "t"}}
        )
        count = httpx.get(f"{url}/_count").json()["count"]

    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert count == 0


def test_arrivals_pass_when_every_expected_message_arrived_once() -> None:
    arrivals = _check_arrivals([[1.0, "a", 1], [2.0, "b", 2]], ["a", "b"], "fan-out")

    assert arrivals == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize(
    "records",
    [
        [[1.0, "a", 1]],  # b lost
        [[1.0, "a", 1], [2.0, "b", 2], [3.0, "b", 3]],  # b twice
        [[1.0, "a", 1], [2.0, "b", 2], [3.0, "c", 3]],  # c unexpected
    ],
)
def test_arrivals_fail_the_run_when_a_message_is_lost_duplicated_or_unexpected(
    records: list[list[Any]],
) -> None:
    with pytest.raises(BenchError):
        _check_arrivals(records, ["a", "b"], "fan-out")
