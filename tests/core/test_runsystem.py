"""`make run` end to end: one command brings up web, worker and beat on the embedded
default, and what it prints works (readiness, Chinese admin login, API, WebSocket)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.servers import ROOT, free_port

pytestmark = pytest.mark.integration

DEMO_PASSWORD = "demo-pass-for-the-test-42"


class Output:
    """Collects the supervisor's output in a thread so the pipe never fills up."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self.lines)


def wait_for(predicate, timeout: float, what: str, output: Output) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)  # waiting on real child processes, not on test time
    raise AssertionError(f"timed out waiting for {what}; output:\n{output.text[-4000:]}")


def ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_make_run_brings_up_the_whole_system(tmp_path: Path) -> None:
    # given: a fresh embedded set-up (SQLite + filesystem broker in an empty folder)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_", "PYTEST"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.local",
            "XEMS_VAR_DIR": str(tmp_path / "var"),
            "DEMO_PASSWORD": DEMO_PASSWORD,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runsystem", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = Output(proc)
    base = f"http://127.0.0.1:{port}"
    try:
        # when
        wait_for(lambda: ready(base), 180, "/readyz", output)
        wait_for(lambda: "ready." in output.text, 60, "the Celery worker", output)
        wait_for(lambda: "beat: Starting" in output.text, 60, "Celery beat", output)

        # then: it printed the URLs and the demo logins
        assert f"{base}/admin/" in output.text
        assert "op-fengdong" in output.text

        # the printed operator logs in to the admin, which speaks Chinese
        with httpx.Client(base_url=base, headers={"Accept-Language": "zh-hans"}) as web:
            login_page = web.get("/admin/login/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)
            assert csrf, login_page.text[:500]
            done = web.post(
                "/admin/login/?next=/admin/",
                data={
                    "csrfmiddlewaretoken": csrf.group(1),
                    "username": "op-fengdong",
                    "password": DEMO_PASSWORD,
                    "next": "/admin/",
                },
                headers={"Referer": f"{base}/admin/login/"},
                follow_redirects=True,
            )
            assert done.status_code == 200
            assert str(done.url).endswith("/admin/")
            assert "注销" in done.text or "退出" in done.text  # the Chinese "log out" link

        # the API routes a point in 沣东新城 to a 沣东 street
        api = httpx.Client(base_url=f"{base}/api/v1", timeout=10)
        tokens = api.post(
            "/auth/token/", json={"username": "op-fengdong", "password": DEMO_PASSWORD}
        ).json()
        auth = {"Authorization": f"Bearer {tokens['access']}"}
        found = api.get("/regions/lookup/", params={"lat": 34.268, "lng": 108.812}, headers=auth)
        assert found.status_code == 200, found.text
        assert json.dumps(found.json(), ensure_ascii=False).count("/xixian/fengdong/") >= 1

        # and a WebSocket opens on the same ASGI server
        ws_url = f"ws://127.0.0.1:{port}/ws/v1/ping/?access_token={tokens['access']}"
        with connect(ws_url, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "hello"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
