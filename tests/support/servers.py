"""Real processes for integration tests: an ASGI server bound to the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_url() -> str:
    """The URL of the database pytest-django created for this test session (PostgreSQL)."""
    cfg = connection.settings_dict
    assert cfg["ENGINE"].endswith("postgresql"), "integration servers need PostgreSQL"
    host = cfg.get("HOST") or "127.0.0.1"
    port = cfg.get("PORT") or 5432
    user = cfg.get("USER") or "postgres"
    return f"postgres://{user}@{host}:{port}/{cfg['NAME']}"


@contextmanager
def asgi_server(extra_env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[str]:
    """Run uvicorn on the project's ASGI application; yields ``http://127.0.0.1:<port>``."""
    with asgi_process(extra_env, timeout) as (base, _proc):
        yield base


@contextmanager
def asgi_process(
    extra_env: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`asgi_server`, also yielding the process (to signal it)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.local",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": test_database_url(),
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "xixian_ems.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"ASGI server exited early:\n{output}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("ASGI server did not become healthy")
            time.sleep(0.2)  # polling a child process start-up, not test time
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
