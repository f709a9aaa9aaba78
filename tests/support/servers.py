"""Real processes for integration tests, bound to the test database: the ASGI server
(uvicorn), the WSGI server (gunicorn) and the router (nginx on ``docker/nginx.conf``),
each started the way ``docker/entrypoint.sh`` and ``docker/compose.yml`` start them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ROUTER_CONF = ROOT / "docker" / "nginx.conf"

Started = tuple[str, subprocess.Popen[bytes]]


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


def server_env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a project server process on the test database."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.local",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": test_database_url(),
        **(extra_env or {}),
    }


@contextmanager
def asgi_server(extra_env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[str]:
    """Run uvicorn on the project's ASGI application; yields ``http://127.0.0.1:<port>``."""
    with asgi_process(extra_env, timeout) as (base, _proc):
        yield base


@contextmanager
def asgi_process(
    extra_env: dict[str, str] | None = None, timeout: float = 30, *, wait: bool = True
) -> Iterator[Started]:
    """:func:`asgi_server`, also yielding the process (to signal it). As in production,
    uvicorn does not rewrite the peer from ``X-Forwarded-For`` (``--no-proxy-headers``):
    the application decides who the client is (``TRUSTED_PROXIES``)."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "uvicorn", "xixian_ems.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--no-proxy-headers", "--lifespan", "on", "--log-level", "warning"),
    ]
    with _process("ASGI server", command, server_env(extra_env), port, timeout, wait) as started:
        yield started


@contextmanager
def wsgi_process(
    extra_env: dict[str, str] | None = None, timeout: float = 30, *, wait: bool = True
) -> Iterator[Started]:
    """gunicorn with gthread workers on the project's WSGI application, as the ``web``
    role runs it; yields ``(http://127.0.0.1:<port>, process)``."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "xixian_ems.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
        *("--worker-class", "gthread", "--threads", "4"),
        *("--no-control-socket", "--log-level", "warning"),
    ]
    with _process("WSGI server", command, server_env(extra_env), port, timeout, wait) as started:
        yield started


def wait_healthy(started: Started, timeout: float = 30, path: str = "/healthz") -> None:
    """Until ``path`` answers 200; a process that exits first fails with its output."""
    base, proc = started
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited early:\n{server_log(started)}")
        try:
            if httpx.get(f"{base}{path}", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base}{path} did not answer 200 within {timeout} s")
        time.sleep(0.2)  # polling a child process start-up, not test time


_logs: dict[int, Path] = {}


def server_log(started: Started) -> str:
    """Everything a server process started here has printed so far."""
    path = _logs.get(started[1].pid)
    return path.read_text(errors="replace") if path is not None else ""


@contextmanager
def _process(
    name: str, command: list[str], env: dict[str, str], port: int, timeout: float, wait: bool
) -> Iterator[Started]:
    # Output to a file, not a pipe: a pipe nobody reads fills up and blocks a chatty
    # server mid-test.
    with tempfile.NamedTemporaryFile(prefix="xems-server-", suffix=".log", delete=False) as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    _logs[proc.pid] = Path(out.name)
    started = (f"http://127.0.0.1:{port}", proc)
    try:
        if wait:
            wait_healthy(started, timeout)
        yield started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- The router ---------------------------------------------------------------------------


def nginx_binary() -> str:
    """The nginx executable. Missing, it skips the test on a bare machine and fails it
    under ``XEMS_REQUIRE_SERVICES=1`` (CI: ``.ci/run`` installs it), like PostgreSQL and
    Redis."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    message = "nginx is not installed (apt-get install nginx)"
    if getattr(settings, "XEMS_REQUIRE_SERVICES", False):
        pytest.fail(f"XEMS_REQUIRE_SERVICES=1 but {message}", pytrace=False)
    pytest.skip(message)


def router_config(*, web: str, realtime: str, listen: str, media_root: str | None = None) -> str:
    """``docker/nginx.conf`` with only what differs outside compose replaced: the two
    upstream servers (``host:port``), the listening address and, given ``media_root``,
    the media volume's mount point. Every other line is the real file's, so a test of
    this config tests the file production mounts."""
    text = ROUTER_CONF.read_text(encoding="utf-8")
    replacements = [
        ("server web:8000;", f"server {web};"),
        ("server realtime:8000;", f"server {realtime};"),
        ("listen 8000;", f"listen {listen};"),
    ]
    if media_root is not None:
        replacements.append(("alias /app/var/media/;", f"alias {media_root.rstrip('/')}/;"))
    for old, new in replacements:
        # Exactly once: if the file changes shape, fail here instead of testing a
        # config that is not the real one.
        assert text.count(old) == 1, f"docker/nginx.conf no longer has one {old!r}"
        text = text.replace(old, new)
    return text


def router_main_config(workdir: Path, site: Path) -> Path:
    """The main ``nginx.conf`` around ``site``, as the nginx image's own includes
    ``conf.d/*.conf`` inside ``http``; every path in ``workdir``."""
    main = workdir / "nginx.conf"
    # As root, nginx would run its workers as "nobody", who cannot write the request-body
    # temp files into a private test directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {site};
}}
""",
        encoding="utf-8",
    )
    return main


def nginx_command(workdir: Path, main: Path, *args: str) -> list[str]:
    return [
        nginx_binary(),
        "-p",
        f"{workdir}/",
        "-e",
        f"{workdir}/error.log",
        "-c",
        str(main),
        *args,
    ]


@contextmanager
def router_process(
    workdir: Path, *, web: str, realtime: str, timeout: float = 15, media_root: str | None = None
) -> Iterator[Started]:
    """nginx on ``docker/nginx.conf`` (:func:`router_config`) in front of the servers at
    ``web`` and ``realtime`` (``http://host:port``), serving protected media from
    ``media_root`` if given; yields its ``http://127.0.0.1:<port>`` once it accepts
    connections."""
    port = free_port()
    site = workdir / "router.conf"
    site.write_text(
        router_config(
            web=web.removeprefix("http://"),
            realtime=realtime.removeprefix("http://"),
            listen=f"127.0.0.1:{port}",
            media_root=media_root,
        ),
        encoding="utf-8",
    )
    main = router_main_config(workdir, site)
    proc = subprocess.Popen(
        nginx_command(workdir, main), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log = (workdir / "error.log").read_text(errors="replace")
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"nginx exited early:\n{output}{log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("nginx did not listen") from None
                time.sleep(0.1)  # polling a child process start-up, not test time
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()  # SIGTERM: fast shutdown of master and workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sla_worker_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a real Celery worker and beat sweeping SLA clocks fast, on a
    queue of their own (the sweep every 0.5 s; pushes to the console backend)."""
    redis_url = settings.TEST_REDIS_URL
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DJANGO_SETTINGS_MODULE": "xixian_ems.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "SLA_SWEEP_QUEUE": f"sla-crash-{uuid.uuid4().hex[:8]}",
        "SLA_SWEEP_INTERVAL_SECONDS": "0.5",
        "SLA_SWEEP_TIME_BUDGET_SECONDS": "30",
        "XEMS_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "INFO",
        "NOTIFICATIONS_PUSH_BACKEND": "apps.notifications.backends.ConsolePushBackend",
    }
