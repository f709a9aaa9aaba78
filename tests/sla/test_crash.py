"""A real Celery worker and beat, killed with SIGKILL in the middle of a sweep.

The worker and beat run as separate processes against this session's PostgreSQL database
and Redis (the broker), exactly as deployed (``celery -A xixian_ems worker|beat``), with a
queue of their own for the sweep so nothing else in Redis can take it. The test:

1. commits 200 incidents whose dispatch and resolution clocks fell due hours ago
   (1,400 escalation events to run: a sweep of several seconds);
2. starts beat and a worker, waits until the worker has committed some escalations,
   and kills it (``SIGKILL``: no cleanup, open transaction and all);
3. checks that what was committed is whole: each clock has exactly the escalation rows
   its own state says it has run — a killed transaction left nothing half-done;
4. starts a new worker and checks that overdue clocks fire within 5 s of it being ready,
   that every event runs, and none twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.incidents.services.sla import on_incident_accepted
from apps.sla.models import ClockStatus, Escalation, EscalationKind, SlaClock, SlaKind
from tests.sla.conftest import Cast
from tests.support import servers

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

INCIDENTS = 200
# dispatch-default: breach + 2 steps; resolution-small: breach + 3 steps (the last raises
# the loop and starts a medium clock, due in 24 h).
EVENTS_PER_INCIDENT = 3 + 4
READY_TIMEOUT = 60.0


class Process:
    """A child process in its own session, its output in a file we can poll."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=servers.ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float) -> float:
        """Poll the output of a starting process (not test time) until ``text`` shows."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} never showed:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        return time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def celery_env(tmp_path: Path) -> dict[str, str]:
    return servers.sla_worker_env(tmp_path)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def _worker(env: dict[str, str], tmp_path: Path) -> Process:
    return Process(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "xixian_ems",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "--queues",
            env["SLA_SWEEP_QUEUE"],
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ],
        env,
        tmp_path,
    )


def _beat(env: dict[str, str], tmp_path: Path) -> Process:
    (tmp_path / "var").mkdir(exist_ok=True)
    return Process(
        "beat",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "xixian_ems",
            "beat",
            "--schedule",
            str(tmp_path / "var" / "celerybeat-schedule"),
            "--loglevel",
            "INFO",
        ],
        env,
        tmp_path,
    )


def _escalations() -> int:
    return Escalation.objects.count()


def _wait_until(condition: Any, timeout: float) -> float:
    """Poll the database (real processes are working) until ``condition()``; the time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)
    return time.monotonic()


def _assert_every_clock_is_whole() -> None:
    """Each clock has exactly the rows its own state says have run: nothing half-done."""
    rows = Counter(Escalation.objects.values_list("clock_id", "kind"))
    for clock in SlaClock.objects.all():
        assert rows[(clock.pk, EscalationKind.BREACHED)] == (1 if clock.breached_at else 0)
        assert rows[(clock.pk, EscalationKind.STEP)] == clock.step, clock.pk
    assert set(Counter(Escalation.objects.values_list("clock_id", "kind", "step")).values()) <= {1}


def test_a_worker_killed_mid_sweep_loses_nothing_and_its_successor_catches_up(
    cast: Cast,
    default_policies: Any,
    celery_env: dict[str, str],
    tmp_path: Path,
    processes: list[Process],
    record_property: Any,
) -> None:
    # given incidents accepted 6 hours ago: every dispatch and resolution clock overdue
    with time_machine.travel(timezone.now() - timedelta(hours=6), tick=False):
        for _ in range(INCIDENTS):
            on_incident_accepted(cast.incident())
    expected = INCIDENTS * EVENTS_PER_INCIDENT
    assert SlaClock.objects.filter(status=ClockStatus.RUNNING).count() == 2 * INCIDENTS

    # when beat and a worker run, and the worker is killed once it is well into the sweep
    beat = _beat(celery_env, tmp_path)
    processes.append(beat)
    worker = _worker(celery_env, tmp_path)
    processes.append(worker)
    worker.wait_for("ready.", READY_TIMEOUT)
    _wait_until(lambda: _escalations() >= 40, timeout=60)
    worker.kill()
    done_at_kill = _escalations()

    # then what it committed is whole, and the work is not finished
    assert 40 <= done_at_kill < expected, "the kill should land mid-sweep"
    _assert_every_clock_is_whole()
    time.sleep(1.0)  # nothing runs while no worker does (beat alone sweeps nothing)
    assert _escalations() == done_at_kill

    # when a new worker starts
    successor = _worker(celery_env, tmp_path)
    processes.append(successor)
    ready_at = successor.wait_for("ready.", READY_TIMEOUT)
    first_at = _wait_until(lambda: _escalations() > done_at_kill, timeout=30)

    # then overdue clocks fire within 5 s of it being ready, and everything runs once
    record_property("killed_after_escalations", done_at_kill)
    record_property("worker_boot_s", round(ready_at - successor.started, 2))
    record_property("first_escalation_after_ready_s", round(first_at - ready_at, 2))
    assert first_at - ready_at <= 5.0, f"first escalation {first_at - ready_at:.2f}s after ready"
    _wait_until(lambda: _escalations() >= expected, timeout=300)
    assert _escalations() == expected
    _assert_every_clock_is_whole()
    medium = SlaClock.objects.filter(
        kind=SlaKind.INCIDENT_RESOLUTION, loop="medium", status=ClockStatus.RUNNING
    )
    assert medium.count() == INCIDENTS  # each loop raised exactly once
    assert "sla sweep:" in successor.output()
