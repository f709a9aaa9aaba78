"""The bench harness: real services, real ASGI servers, figures beside raw baselines.

A run (``bench/run.py``) opens one :class:`BenchContext`, which

1. refuses to start unless PostgreSQL and Redis answer (:func:`check_services`);
0. refuses a work tree with uncommitted changes unless told (``--allow-dirty``, recorded):
   a result must name the code it measured (:func:`commit_info`, :func:`check_tree`);
2. drops and re-creates the ``xixian_ems_bench`` database (``BENCH_DATABASE``) and flushes
   Redis db 14 (``BENCH_REDIS_URL``), so a run never sees the previous run's rows, cached
   scopes or throttle counters;
3. runs ``migrate``, ``load_regions`` and ``seed_demo`` with the server's settings;
4. starts uvicorn servers on demand, one process group each, on a free loopback port:
   :meth:`BenchContext.django` serves ``xixian_ems.asgi:application`` and
   :meth:`BenchContext.server` serves a raw baseline app (``bench/raw_*.py``) with the
   same worker count, so the ratio is the cost of Django/DRF/auth over the substrate;
5. tears everything down in reverse order (servers, database, Redis db), also when a
   benchmark raises or the run is interrupted.

Settings: ``xixian_ems.settings.production``, the module the Docker image runs, so the
middleware, logging, hashers and DEBUG=False (DEBUG=True would also record every SQL
query in memory) are the deployed ones; management commands get the same environment.
Only what a loopback run cannot have differs: a random per-run ``DJANGO_SECRET_KEY``,
``DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost``, ``DJANGO_SECURE_SSL_REDIRECT=false``
(no TLS terminator: every request would be a 301) and ``TRUSTED_PROXIES=127.0.0.1`` (the
load generator stands in for the router, so a caller's ``X-Forwarded-For`` names the
client as the router's does in production). Servers of the project run, as in production,
with ``--no-proxy-headers``: the application, not uvicorn, reads that header.
``xixian_ems.settings.local`` with ``DJANGO_DEBUG=false`` would also work today, but it
would silently stop matching production as soon as production gains a setting.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis
from psycopg import sql

from bench.loadgen import ClientKind, LoadResult, Metric, Request, closed_loop, run_async

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
LOG_DIR = ROOT / "var" / "bench"  # server and setup logs (var/ is git-ignored)
SCHEMA_VERSION = 1
SETTINGS_MODULE = "xixian_ems.settings.production"
DJANGO_APP = "xixian_ems.asgi:application"
DJANGO_WSGI_APP = "xixian_ems.wsgi:application"  # REST only: `uvicorn --interface wsgi`
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Overrides of production settings beyond the loopback three (module docstring), recorded
# in each result. Empty on purpose: throttled endpoints are driven by many callers
# (BenchContext.mint_tokens) instead of raised rates, which would change what is measured.
SERVER_ENV_OVERRIDES: dict[str, str] = {}
# Variables of the calling shell that must not leak into the bench servers.
SCRUBBED_ENV_PREFIXES = (
    "DJANGO_",
    "DATABASE_URL",
    "REDIS_",
    "CELERY_",
    "DB_POOL_",
    "JWT_",
    "THROTTLE_",
)

Better = Literal["higher", "lower"]

# The databases the harness may drop: ``bench`` as a whole ``_``-separated part of the name.
BENCH_DATABASE_NAME = re.compile(r"(?:^|_)bench(?:_|$)")
# Outputs, not inputs: a run writes them, so they must not make the next run's tree dirty.
RESULT_PATHS = ("bench/results/",)

# Average cores used by processes outside the bench above which a run is called noisy.
NOISE_CORES = 0.25

MINT_TOKENS_SCRIPT = """
import hashlib
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
User = get_user_model()
prefix = {prefix}
names = [f"{{prefix}}-{{i:04d}}" for i in range({count})]
User.objects.bulk_create([User(username=n, password="!") for n in names], ignore_conflicts=True)
users = User.objects.filter(username__in=names).order_by("username")
print(json.dumps([str(AccessToken.for_user(u)) for u in users]))
"""


class BenchError(RuntimeError):
    """A benchmark could not produce a trustworthy figure (setup failed, errors under load)."""


# --- Figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    name: str
    value: float
    unit: str


@dataclass(frozen=True)
class Figure:
    """One measured number beside the raw baseline measured in the same run.

    ``ratio`` is ``value / baseline.value``: for ``better="higher"`` (throughput) below 1
    means slower than raw, for ``better="lower"`` (latency) above 1 means slower.
    """

    name: str
    unit: str
    value: float
    baseline: Baseline
    better: Better
    goal: float | None = None
    description: str = ""

    @property
    def ratio(self) -> float:
        if not self.baseline.value or math.isnan(self.baseline.value):
            return math.nan
        return self.value / self.baseline.value

    @property
    def goal_met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value >= self.goal if self.better == "higher" else self.value <= self.goal

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "unit": self.unit,
            "value": _round(self.value),
            "baseline": {
                "name": self.baseline.name,
                "value": _round(self.baseline.value),
                "unit": self.baseline.unit,
            },
            "ratio": _round(self.ratio, 3),
            "better": self.better,
            "goal": self.goal,
        }
        if self.goal is not None:
            data["goal_met"] = self.goal_met
        if self.description:
            data["description"] = self.description
        return data


def compare(
    name: str,
    measured: LoadResult,
    baseline: LoadResult,
    metric: Metric,
    *,
    goal: float | None = None,
    description: str = "",
) -> Figure:
    """A figure for ``metric`` of ``measured`` beside the same metric of ``baseline``."""
    value, unit = measured.metric(metric)
    base_value, base_unit = baseline.metric(metric)
    return Figure(
        name=name,
        unit=unit,
        value=value,
        baseline=Baseline(name=f"{baseline.label} {metric}", value=base_value, unit=base_unit),
        better="higher" if metric == "rps" else "lower",  # latency and CPU: lower
        goal=goal,
        description=description,
    )


def _round(value: float, digits: int = 2) -> float | None:
    return None if math.isnan(value) else round(value, digits)


# --- Options and service probes ---------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Knobs of a run; those that shape the figures are recorded in the result's ``config``."""

    workers: int = 2
    concurrency: int = 8
    warmup: float = 2.0
    duration: float = 8.0
    client: ClientKind = "raw"
    keep_db: bool = False
    postgres_url: str = "postgres://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/14"
    database: str = "xixian_ems_bench"
    allow_dirty: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> Options:
        env = {
            "postgres_url": os.environ.get("BENCH_POSTGRES_URL"),
            "redis_url": os.environ.get("BENCH_REDIS_URL"),
            # Another name (with a ``bench`` part: xixian_ems_bench_rt) and another Redis db
            # let two runs share one server.
            "database": os.environ.get("BENCH_DATABASE"),
        }
        return cls(**{**{k: v for k, v in env.items() if v}, **overrides})

    @property
    def database_url(self) -> str:
        """The bench database on the same server as ``postgres_url``."""
        return urlunsplit(urlsplit(self.postgres_url)._replace(path=f"/{self.database}"))

    def validate(self) -> None:
        """Guard rails: the harness drops a database and flushes a Redis db."""
        for url in (self.postgres_url, self.redis_url):
            host = urlsplit(url).hostname
            if host not in LOCAL_HOSTS:
                raise BenchError(f"bench services must be local, not {host!r} ({url})")
        if not BENCH_DATABASE_NAME.search(self.database):
            raise BenchError(
                f"refusing to drop {self.database!r}: the name must have a 'bench' part "
                "(xixian_ems_bench, xixian_ems_bench_rt)"
            )
        redis_db = urlsplit(self.redis_url).path.strip("/")
        if not redis_db.isdigit() or redis_db == "0":
            raise BenchError(f"BENCH_REDIS_URL must name a non-zero db (it is flushed): {redis_db}")


def check_services(options: Options) -> dict[str, str]:
    """``{service: problem}`` for each of PostgreSQL and Redis that does not answer."""
    problems: dict[str, str] = {}
    try:
        with psycopg.connect(options.postgres_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problems["PostgreSQL"] = f"{_redact(options.postgres_url)}: {str(exc).strip()}"
    try:
        client = redis.Redis.from_url(options.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        problems["Redis"] = f"{_redact(options.redis_url)}: {exc}"
    return problems


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def django_env(
    *, database_url: str, redis_url: str, secret_key: str, **extra: str
) -> dict[str, str]:
    """The environment of the project's processes in a bench run (module docstring)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "TRUSTED_PROXIES": "127.0.0.1",  # the load generator is the router (docstring)
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PYTHONUNBUFFERED": "1",
            **SERVER_ENV_OVERRIDES,
            **extra,
        }
    )
    return env


# --- Servers ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Interface = Literal["asgi", "wsgi"]


class Server:
    """``workers`` single-worker uvicorn processes serving one app, one port each.

    Not ``uvicorn --workers N``: with a shared listening socket the kernel decides which
    process accepts each connection, and a bench opens only a handful of keep-alive
    connections at once. Measured here, one of two workers often accepted all eight, so
    throughput halved from one run to the next. Separate ports and clients split evenly
    across them (``closed_loop``) behave like a load balancer in front of N processes,
    and make every run use every process. All processes share one process group.

    ``interface="wsgi"`` serves a WSGI callable through uvicorn's WSGI adapter (each
    request runs whole in one thread of a 10-thread pool, no ``sync_to_async`` hops).

    ``proxy_headers=False`` for the project (as ``docker/entrypoint.sh``: the application
    reads ``X-Forwarded-For`` itself, trusting ``TRUSTED_PROXIES``); raw baselines keep
    uvicorn's own rewrite of the client address from 127.0.0.1, their least machinery.
    """

    def __init__(
        self,
        name: str,
        app: str,
        *,
        workers: int,
        env: Mapping[str, str],
        interface: Interface = "asgi",
        proxy_headers: bool = True,
    ) -> None:
        self.name = name
        self.app = app
        self.workers = workers
        self.interface = interface
        self.proxy_headers = proxy_headers
        self.ports = [_free_port() for _ in range(workers)]
        self.base_urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.base_url = self.base_urls[0]  # for unmeasured requests
        self.log_path = LOG_DIR / f"server-{name}.log"
        self._env = dict(env)
        self._processes: list[subprocess.Popen[bytes]] = []
        self.started_at: float | None = None  # time.perf_counter() when it was ready

    def command(self, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",  # both servers alike; production access logs are the proxy's
            "--log-level",
            "warning",
            *(["--interface", self.interface] if self.interface != "asgi" else []),
            *([] if self.proxy_headers else ["--no-proxy-headers"]),
        ]

    @property
    def pgid(self) -> int:
        if not self._processes:
            raise BenchError(f"server {self.name} is not running")
        return self._processes[0].pid  # the first process leads the group

    def start(self, ready_path: str = "/readyz", timeout: float = 60.0) -> None:
        """Start every process and wait until each answers ``ready_path`` with 200."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            for port in self.ports:
                # A new process group for the first, the others join it (a group can only
                # be joined within its session, so no new session).
                leader = self._processes[0].pid if self._processes else 0
                self._processes.append(
                    subprocess.Popen(
                        self.command(port),
                        cwd=ROOT,
                        env=self._env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        process_group=leader,
                    )
                )
        deadline = time.monotonic() + timeout
        pending, last = list(self.base_urls), "no answer"
        while pending:
            for process in self._processes:
                if process.poll() is not None:
                    raise BenchError(
                        f"{self.name} server exited with {process.returncode}:\n{self.log_tail()}"
                    )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} server not ready after {timeout:.0f}s ({last}):\n"
                    f"{self.log_tail()}"
                )
            try:
                with httpx.Client(base_url=pending[0], trust_env=False, timeout=5) as client:
                    response = client.get(ready_path)
                last = f"{ready_path} -> {response.status_code} {response.text[:200]}"
                if response.status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        self.started_at = time.perf_counter()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group (uvicorn drains), SIGKILL whatever is left after ``timeout``."""
        processes, self._processes = self._processes, []
        if not processes:
            return
        group = processes[0].pid
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # stragglers, if any
        for process in processes:
            process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def description(self) -> str:
        """How the server runs, for the start message and results."""
        flag = "" if self.interface == "asgi" else f" --interface {self.interface}"
        return f"{self.workers} x uvicorn {self.app}{flag}, one port each"

    def _role(self, pid: int) -> str:
        """``worker`` (serves requests) or ``master`` (a process manager that does not)."""
        return "worker"  # a single-worker uvicorn process serves requests itself

    def memory(self) -> list[ProcessMemory]:
        """Resident memory of every process of the group now (Linux /proc; else empty)."""
        if not self._processes:
            raise BenchError(f"server {self.name} is not running")
        return [
            ProcessMemory(pid=pid, role=self._role(pid), rss_mib=rss, peak_rss_mib=peak)
            for pid, rss, peak in group_memory(self.pgid)
        ]


WorkerClass = Literal["sync", "gthread"]


class GunicornServer(Server):
    """``workers`` gunicorn masters with one worker process each, one port each (WSGI).

    The same layout as :class:`Server` (the kernel must not pick the worker; see there),
    so a gunicorn run compares with a uvicorn run process for process. Each master only
    supervises its worker; the group's CPU includes it (it is part of the deployment).

    ``worker_class="sync"``: one request at a time per worker, and the connection is
    closed after every response (sync workers do not keep connections alive), so every
    request also pays a TCP connect. ``"gthread"``: ``threads`` requests at a time in a
    thread pool; idle keep-alive connections wait in the worker's poller, not in a thread.
    No control socket (gunicorn >= 25.1 opens one per master at a fixed path by default, and
    several masters would fight over it) and no access log, like the uvicorn servers.
    """

    def __init__(
        self,
        name: str,
        app: str,
        *,
        workers: int,
        env: Mapping[str, str],
        worker_class: WorkerClass = "sync",
        threads: int = 1,
    ) -> None:
        if worker_class == "sync" and threads != 1:
            # gunicorn silently switches a sync worker with threads > 1 to gthread.
            raise BenchError("a sync worker has one thread; use worker_class='gthread'")
        if threads < 1:
            raise BenchError(f"threads must be >= 1, not {threads}")
        super().__init__(name, app, workers=workers, env=env, interface="wsgi")
        self.worker_class = worker_class
        self.threads = threads

    def command(self, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            self.app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--no-control-socket",
            "--log-level",
            "warning",
        ]

    @property
    def description(self) -> str:
        threads = f" --threads {self.threads}" if self.worker_class == "gthread" else ""
        return (
            f"{self.workers} x gunicorn {self.app} --workers 1 --worker-class "
            f"{self.worker_class}{threads}, one port each"
        )

    def _role(self, pid: int) -> str:
        return "master" if any(p.pid == pid for p in self._processes) else "worker"


@dataclass(frozen=True)
class ProcessMemory:
    """One server process's resident memory: now (VmRSS) and its peak so far (VmHWM)."""

    pid: int
    role: str
    rss_mib: float
    peak_rss_mib: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "role": self.role,
            "rss_mib": round(self.rss_mib, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
        }


def group_memory(pgid: int) -> list[tuple[int, float, float]]:
    """``(pid, VmRSS MiB, VmHWM MiB)`` of every process in group ``pgid``, by pid."""
    found: list[tuple[int, float, float]] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            if int(raw[raw.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # the process exited while we were looking
        kib = {
            key: int(value.split()[0])
            for key, _, value in (line.partition(":") for line in status.splitlines())
            if key in ("VmRSS", "VmHWM")
        }
        if "VmRSS" in kib:
            pid = int(stat.parent.name)
            found.append((pid, kib["VmRSS"] / 1024, kib.get("VmHWM", kib["VmRSS"]) / 1024))
    return sorted(found)


# --- CPU accounting -------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: per process (pid → group, seconds) and the machine's busy time."""

    at: float
    client: float
    processes: Mapping[int, tuple[str, float]]
    machine_busy: float | None
    machine_steal: float | None


def cpu_snapshot(server_pgid: int) -> CpuSnapshot:
    """Who has used how much CPU: this process, the server group, PostgreSQL, Redis, and
    the whole machine (Linux /proc; elsewhere only the client is known).

    The bench shares the cores with everything else on the machine, so a result records
    the CPU the rest of the machine used in the window ("other") as well.
    """
    at, client = time.perf_counter(), time.process_time()
    processes: dict[int, tuple[str, float]] = {}
    if not Path("/proc/stat").exists():
        return CpuSnapshot(at, client, processes, None, None)
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue  # the process exited while we were looking
        comm = raw[raw.find("(") + 1 : raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2 :].split()
        # After the comm: state, ppid, pgrp, ... utime is field 14 and stime 15 of proc(5).
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[2]) == server_pgid:
            processes[int(stat.parent.name)] = ("server", seconds)
        elif comm == "postgres":
            processes[int(stat.parent.name)] = ("postgres", seconds)
        elif comm.startswith("redis-server"):
            processes[int(stat.parent.name)] = ("redis", seconds)
    # First line of /proc/stat: user nice system idle iowait irq softirq steal ...
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / tick
    return CpuSnapshot(at, client, processes, busy, ticks[7] / tick)


def cpu_cores(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """Average cores used between two snapshots, by group.

    Per process, so a PostgreSQL backend that exits in between drops out instead of
    making the total negative (its share in the window is lost, a small undercount).
    """
    wall = end.at - start.at
    if wall <= 0:
        return {}
    used = {"client": end.client - start.client, "server": 0.0, "postgres": 0.0, "redis": 0.0}
    for pid, (group, seconds) in end.processes.items():
        before = start.processes.get(pid)
        used[group] += seconds - (before[1] if before and before[0] == group else 0.0)
    cores = {group: seconds / wall for group, seconds in used.items()}
    if start.machine_busy is not None and end.machine_busy is not None:
        machine = (end.machine_busy - start.machine_busy) / wall
        cores["other"] = max(0.0, machine - sum(cores.values()))
        cores["machine"] = machine
        cores["steal"] = ((end.machine_steal or 0.0) - (start.machine_steal or 0.0)) / wall
    return cores


def server_process_cores(start: CpuSnapshot, end: CpuSnapshot) -> list[float]:
    """Cores used by each server process in the window: shows the load was spread."""
    wall = end.at - start.at
    if wall <= 0:
        return []
    return [
        (seconds - start.processes.get(pid, ("server", 0.0))[1]) / wall
        for pid, (group, seconds) in sorted(end.processes.items())
        if group == "server"
    ]


# --- Machine and commit -----------------------------------------------------------------------


def machine_info(options: Options) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    mem_gib: float | None = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass  # not Linux: keep what platform knows
    with psycopg.connect(options.postgres_url, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        postgres_version = row[0] if row else "?"
    client = redis.Redis.from_url(options.redis_url)
    try:
        redis_version = str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": mem_gib,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgres": postgres_version,
        "redis": redis_version,
        "packages": {
            name: _version(name)
            for name in (
                "django",
                "djangorestframework",
                "uvicorn",
                "gunicorn",
                "psycopg",
                "channels",
            )
        },
        "note": (
            f"the load generator, the servers, PostgreSQL and Redis share these "
            f"{os.cpu_count()} cores; see runs[].cpu_cores for who used them"
        ),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
    ).stdout


def commit_info(*, allow_dirty: bool = False) -> dict[str, Any]:
    """The code a result measured: ``sha`` and ``branch`` of HEAD, and whether the work
    tree differed from it (``dirty``, with the changed paths and a hash of the tracked
    files' diff, so two dirty runs can be told apart). ``allow_dirty`` records that the
    run was told to go ahead anyway (:func:`check_tree`).

    Uncommitted, untracked (not ignored) files count: a new module changes what runs.
    Result files (``bench/results/``) do not: they are what a run writes.
    """
    changed = [
        line[3:]
        for line in _git("status", "--porcelain", "--untracked-files=all").splitlines()
        if line[3:] and not line[3:].strip('"').startswith(RESULT_PATHS)
    ]
    info: dict[str, Any] = {
        "sha": _git("rev-parse", "HEAD").strip() or None,
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD").strip() or None,
        "dirty": bool(changed),
        "allow_dirty": allow_dirty,
    }
    if changed:
        diff = _git("diff", "HEAD", "--", ".", *(f":(exclude){path}" for path in RESULT_PATHS))
        info["dirty_paths"] = changed[:50]
        info["diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest()
    return info


def check_tree(commit: Mapping[str, Any], *, allow_dirty: bool) -> None:
    """Refuse to measure uncommitted code unless told: a figure must name the commit that
    produced it, so whoever re-runs it gets the same code (``--allow-dirty`` for work in
    progress; the result then says ``dirty: true`` and lists the changed paths)."""
    if commit.get("sha") is None:
        raise BenchError("not a git work tree: a result could not name its commit")
    if commit["dirty"] and not allow_dirty:
        paths = ", ".join(commit.get("dirty_paths", [])[:8])
        raise BenchError(
            f"the work tree has uncommitted changes ({paths}); commit them, or pass "
            "--allow-dirty (recorded in the results as dirty)"
        )


# --- The context ----------------------------------------------------------------------------


@dataclass
class _BenchState:
    name: str
    started_at: datetime
    started: float
    runs: list[LoadResult] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


class BenchContext:
    """Provisioned services and servers for one ``bench/run.py`` invocation.

    Benchmarks receive it in ``run(ctx)``: start servers with :meth:`django` and
    :meth:`server`, get tokens with :meth:`login`, read the bench database with
    :meth:`sql`, drive load with :meth:`load` and add context with :meth:`note`.
    """

    def __init__(self, options: Options) -> None:
        options.validate()
        self.commit = commit_info(allow_dirty=options.allow_dirty)
        check_tree(self.commit, allow_dirty=options.allow_dirty)
        self.options = options
        self.database_url = options.database_url
        self.demo_password = secrets.token_urlsafe(18)
        self._secret_key = secrets.token_urlsafe(64)
        self._servers: dict[str, Server] = {}
        self._stack = ExitStack()
        self._state: _BenchState | None = None
        self.machine: dict[str, Any] = {}
        self.setup_s = 0.0
        self.loadgen_ceiling: LoadResult | None = None

    # Lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> BenchContext:
        try:
            self._provision()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _provision(self) -> None:
        started = time.perf_counter()
        self.machine = machine_info(self.options)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        (LOG_DIR / "setup.log").write_text("", encoding="utf-8")
        self._recreate_database()
        if not self.options.keep_db:
            self._stack.callback(self._drop_database)
        self._flush_redis()
        self._stack.callback(self._flush_redis)
        print(f"  database {self.options.database}: migrate, load_regions, seed_demo")
        self.manage("migrate", "--noinput")
        self.manage("load_regions")
        self.manage("seed_demo", "--force")  # DEBUG is off; the database is throwaway
        self.setup_s = time.perf_counter() - started

    def _admin_connection(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.options.postgres_url, autocommit=True, connect_timeout=5)

    def _recreate_database(self) -> None:
        name = sql.Identifier(self.options.database)
        with self._admin_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))

    def _drop_database(self) -> None:
        name = sql.Identifier(self.options.database)
        with self._admin_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

    def _flush_redis(self) -> None:
        client = redis.Redis.from_url(self.options.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()

    # Environment and commands -----------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The environment of every server and management command of the run."""
        return django_env(
            database_url=self.database_url,
            redis_url=self.options.redis_url,
            secret_key=self._secret_key,
            DEMO_PASSWORD=self.demo_password,
            # Channel names of this run only: two bench runs on one Redis (or a run beside
            # a test's servers) must not deliver each other's events to their sockets.
            CHANNEL_LAYER_PREFIX=f"bench{hashlib.sha256(self._secret_key.encode()).hexdigest()[:8]}",
        )

    def manage(self, *args: str, timeout: float = 300.0) -> str:
        """Run ``manage.py <args>`` against the bench database; its output is returned."""
        try:
            done = subprocess.run(
                [sys.executable, "manage.py", *args],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"manage.py {' '.join(args)} took over {timeout:.0f}s") from exc
        with (LOG_DIR / "setup.log").open("a", encoding="utf-8") as log:
            log.write(f"$ manage.py {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise BenchError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{tail}")
        return done.stdout

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the bench database (fixture data a workload is built from)."""
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def mint_tokens(self, prefix: str, count: int) -> list[str]:
        """Access tokens of ``count`` throwaway users ``<prefix>-0000``... (no memberships).

        Spreading a workload over many callers keeps per-user state as small as real
        traffic has it: DRF throttles keep each user's request history in the cache, so
        one user sending everything would be throttled (or, with the rate raised, would
        drag a history of every request of the last minute through Redis each time).
        """
        code = MINT_TOKENS_SCRIPT.format(prefix=json.dumps(prefix), count=int(count))
        tokens = json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])
        if len(tokens) != count:
            raise BenchError(f"minted {len(tokens)} tokens, wanted {count}")
        return [str(token) for token in tokens]

    # Servers ------------------------------------------------------------------------------

    def server(
        self, app: str, *, ready_path: str = "/readyz", interface: Interface = "asgi"
    ) -> Server:
        """The uvicorn server of ``app`` (``module:attribute``), started on first use."""
        key = app if interface == "asgi" else f"{app} ({interface})"
        server = self._servers.get(key)
        if server is None:
            project = app in (DJANGO_APP, DJANGO_WSGI_APP)
            if project:
                name = "django" if interface == "asgi" else f"django-{interface}"
            else:
                name = app.split(":", 1)[0].rsplit(".", 1)[-1]
            server = Server(
                name,
                app,
                workers=self.options.workers,
                env=self.env,
                interface=interface,
                proxy_headers=not project,
            )
            self._start(key, server, ready_path)
        return server

    def gunicorn(
        self,
        app: str = DJANGO_WSGI_APP,
        *,
        worker_class: WorkerClass = "sync",
        threads: int = 1,
        ready_path: str = "/readyz",
    ) -> Server:
        """A WSGI ``app`` under gunicorn (:class:`GunicornServer`), started on first use:
        one single-worker master per worker, one port each, like :meth:`server`."""
        variant = worker_class if worker_class == "sync" else f"{worker_class}{threads}"
        key = f"{app} (gunicorn {variant})"
        server = self._servers.get(key)
        if server is None:
            stem = "django" if app == DJANGO_WSGI_APP else app.split(":", 1)[0].rsplit(".", 1)[-1]
            server = GunicornServer(
                f"{stem}-gunicorn-{variant}",
                app,
                workers=self.options.workers,
                env=self.env,
                worker_class=worker_class,
                threads=threads,
            )
            self._start(key, server, ready_path)
        return server

    def _start(self, key: str, server: Server, ready_path: str) -> None:
        self._stack.callback(server.stop)
        print(f"  starting {server.name}: {server.description}")
        server.start(ready_path)
        self._servers[key] = server

    def django(self, interface: Interface = "asgi") -> Server:
        """The project itself with production settings: ``xixian_ems.asgi:application``,
        or with ``interface="wsgi"`` ``xixian_ems.wsgi:application`` (REST only)."""
        if interface == "wsgi":
            return self.server(DJANGO_WSGI_APP, interface="wsgi")
        return self.server(DJANGO_APP)

    # HTTP helpers ---------------------------------------------------------------------------

    def request(
        self,
        server: Server,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        expect: int = 200,
    ) -> Any:
        """One request outside the measurement; returns the decoded JSON answer."""
        with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as client:
            response = client.request(method, path, headers=headers, json=json_body)
        if response.status_code != expect:
            raise BenchError(
                f"{method} {path} on {server.name}: expected {expect}, got "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json()

    def login(self, username: str, password: str | None = None) -> str:
        """A JWT access token from ``POST /api/v1/auth/token/`` (demo password by default)."""
        tokens = self.request(
            self.django(),
            "POST",
            "/api/v1/auth/token/",
            json_body={"username": username, "password": password or self.demo_password},
        )
        return str(tokens["access"])

    # Load ---------------------------------------------------------------------------------

    def load(
        self,
        server: Server,
        requests: Sequence[Request],
        *,
        label: str,
        concurrency: int | None = None,
        duration: float | None = None,
        warmup: float | None = None,
    ) -> LoadResult:
        """A closed-loop run against ``server``; raises :class:`BenchError` on any error."""
        marks: dict[str, CpuSnapshot] = {}

        def on_window(mark: str) -> None:
            marks[mark] = cpu_snapshot(server.pgid)

        result: LoadResult = run_async(
            closed_loop(
                server.base_urls,
                requests,
                concurrency=concurrency or self.options.concurrency,
                duration=duration or self.options.duration,
                warmup=self.options.warmup if warmup is None else warmup,
                client=self.options.client,
                label=label,
                on_window=on_window,
            )
        )
        if "start" in marks and "end" in marks:
            result = result.with_cpu(
                cpu_cores(marks["start"], marks["end"]),
                server_process_cores(marks["start"], marks["end"]),
            )
        if self._state is not None:
            self._state.runs.append(result)
        lat = result.latency
        cpu = " ".join(f"{k} {v:.2f}" for k, v in result.cpu_cores.items())
        if len(result.server_process_cores) > 1:
            split = "+".join(f"{v:.2f}" for v in result.server_process_cores)
            cpu = cpu.replace(" postgres", f" ({split}) postgres", 1)
        print(
            f"  {label:<24} {result.rps:>9,.1f} req/s  p50 {lat.p50_ms:7.2f} ms  "
            f"p99 {lat.p99_ms:7.2f} ms  n={result.requests:<6} cores[{cpu}]"
        )
        other = result.cpu_cores.get("other", 0.0)
        if other > NOISE_CORES:
            print(f"  warning: other processes used {other:.2f} cores during {label!r}")
        if result.errors:
            raise BenchError(
                f"{label}: {result.errors} failed requests, e.g.\n  "
                + "\n  ".join(result.error_samples)
            )
        return result

    def record(self, result: LoadResult) -> None:
        """Add a run measured outside :meth:`load` (e.g. a finite drain) to the result."""
        if self._state is not None:
            self._state.runs.append(result)

    def calibrate(self, server: Server, path: str = "/ping") -> LoadResult:
        """The load generator's ceiling: a constant answer from a raw app, no database.

        A raw baseline close to this ceiling is limited by the client, not the substrate,
        and its ratio understates Django's overhead; the result records the ceiling.
        """
        if self.loadgen_ceiling is None:
            self.loadgen_ceiling = self.load(
                server,
                [Request.get(path)],
                label="loadgen ceiling",
                duration=min(3.0, self.options.duration),
                warmup=min(1.0, self.options.warmup),
            )
        return self.loadgen_ceiling

    # Results ------------------------------------------------------------------------------

    def begin(self, name: str) -> None:
        self._state = _BenchState(
            name=name, started_at=datetime.now(UTC), started=time.perf_counter()
        )

    def note(self, key: str, value: Any) -> None:
        """Add ``key: value`` to the result's ``config`` (workload size, sanity checks...)."""
        if self._state is None:
            raise BenchError("note() outside a benchmark")
        self._state.notes[key] = value

    def result(self, figures: Sequence[Figure]) -> dict[str, Any]:
        """The JSON document of the current benchmark (shape in bench/README.md)."""
        state = self._state
        if state is None:
            raise BenchError("result() outside a benchmark")
        runs = list(state.runs)
        if self.loadgen_ceiling is not None and self.loadgen_ceiling not in runs:
            runs.insert(0, self.loadgen_ceiling)
        return {
            "schema_version": SCHEMA_VERSION,
            "name": state.name,
            "started_at": state.started_at.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - state.started, 1),
            "machine": self.machine,
            "commit": self.commit,
            "config": {
                "settings": SETTINGS_MODULE,
                "env_overrides": SERVER_ENV_OVERRIDES,
                "server": (
                    "one single-worker uvicorn process per worker, one port each, clients "
                    "split evenly (uvloop, httptools, no access log), 127.0.0.1"
                ),
                "workers": self.options.workers,
                "client": self.options.client,
                "concurrency": self.options.concurrency,
                "warmup_s": self.options.warmup,
                "duration_s": self.options.duration,
                "database": self.options.database,
                "redis": self.options.redis_url,
                "setup_s": round(self.setup_s, 1),
                "loadgen_ceiling_rps": (
                    round(self.loadgen_ceiling.rps, 1) if self.loadgen_ceiling else None
                ),
                **state.notes,
            },
            "figures": [figure.to_dict() for figure in figures],
            "runs": [run.to_dict() for run in runs],
        }


def write_result(result: Mapping[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` atomically (a crash leaves the old file)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{result['name']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# --- The table --------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(results: Sequence[Mapping[str, Any]]) -> str:
    """One table for all results: figure, value, unit, baseline, ratio, goal."""
    header = ("figure", "value", "unit", "raw baseline", "ratio", "goal")
    rows: list[tuple[str, ...]] = []
    for result in results:
        for fig in result["figures"]:
            goal = "-"
            if fig.get("goal") is not None:
                sign = ">=" if fig["better"] == "higher" else "<="
                goal = f"{sign} {_fmt(fig['goal'])} {'ok' if fig.get('goal_met') else 'MISSED'}"
            ratio = fig["ratio"]
            rows.append(
                (
                    f"{result['name']}/{fig['name']}",
                    _fmt(fig["value"]),
                    fig["unit"],
                    _fmt(fig["baseline"]["value"]),
                    "-" if ratio is None else f"{ratio:.2f}x",
                    goal,
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    right = {1, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
    if results:
        first = results[0]
        machine, commit = first["machine"], first["commit"]
        sha = (commit.get("sha") or "?")[:10] + (" (dirty)" if commit.get("dirty") else "")
        out.append("")
        out.append(
            f"{machine['cpu']}, {machine['cores']} cores shared by load generator and servers; "
            f"PostgreSQL {machine['postgres']}, Redis {machine['redis']}; commit {sha}"
        )
        other = max(
            (run["cpu_cores"].get("other", 0.0) for result in results for run in result["runs"]),
            default=0.0,
        )
        if other > NOISE_CORES:
            out.append(
                f"warning: other processes used up to {other:.2f} cores during the runs "
                f"(runs[].cpu_cores.other): the machine was not quiet"
            )
        ceiling = first["config"].get("loadgen_ceiling_rps")
        if ceiling:
            out.append(
                f"load generator ceiling (raw app, constant answer): {_fmt(ceiling)} req/s; "
                f"ratio = value / raw baseline (higher is better for req/s, lower for ms)"
            )
    return "\n".join(out)
