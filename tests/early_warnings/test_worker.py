"""叫应 escalation by a real Celery worker and beat, as deployed.

A red warning published 20 minutes ago (deadline 10 min, SMS at 10, superior at 15):
beat sends the SLA sweep to a worker process of this test's own queue, which escalates
every silent person's clock once — an SMS, then a push to their superior — and delivers
the outbox rows; the person who answered in time gets nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.accounts.services import membership_grant
from apps.early_warnings import services
from apps.early_warnings.models import Acknowledgement
from apps.notifications.models import Channel, Kind, Notification
from apps.sla.models import Escalation, SlaClock, SlaKind
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import published
from tests.sla.test_crash import Process, _beat, _worker
from tests.support import servers

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """The SLA crash test's environment; delivery on the sweep's queue too."""
    env = servers.sla_worker_env(tmp_path)
    return {**env, "CELERY_TASK_DEFAULT_QUEUE": env["SLA_SWEEP_QUEUE"]}


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def _wait_until(condition: Any, timeout: float) -> None:
    """Poll the database (real processes are working) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)


def test_a_real_worker_escalates_the_silent_once_each_and_spares_who_answered(
    cast: Cast, worker_env: dict[str, str], tmp_path: Path, processes: list[Process]
) -> None:
    # given a red warning for 三桥 published 20 minutes ago; the grid worker answered
    approver = type(cast.area_commander).objects.create(username="cmd-approver")
    membership_grant(user=approver, region=cast.tree.root, role="commander")
    with time_machine.travel(timezone.now() - timedelta(minutes=20), tick=False):
        version = published(
            by=cast.area_commander, approver=approver, targets=[cast.sanqiao.pk], level="red"
        )
        services.warning_acknowledge(version_id=version.pk, user=cast.grid)
    silent = list(Acknowledgement.objects.filter(version=version, acked_at__isnull=True))
    assert len(silent) >= 3
    env = worker_env

    # when beat and a worker run
    processes.append(_beat(env, tmp_path))
    worker = _worker(env, tmp_path)
    processes.append(worker)
    worker.wait_for("ready.", 60)
    _wait_until(lambda: Escalation.objects.filter(kind="step").count() >= 2 * len(silent), 60)
    _wait_until(
        lambda: not Notification.objects.filter(status__in=("pending", "sending")).exists(), 60
    )
    time.sleep(1.5)  # three more sweeps: nothing more may happen

    # then each silent person got one SMS, and their superior one push, exactly once
    sms = Notification.objects.filter(channel=Channel.SMS, kind=Kind.WARNING)
    assert sorted(sms.values_list("user_id", flat=True)) == sorted(a.user_id for a in silent)
    superior = Notification.objects.filter(kind=Kind.ESCALATION, dedupe_key__contains=":superior:")
    assert superior.count() >= len(silent)
    assert set(Escalation.objects.filter(kind="step").values_list("step", flat=True)) == {1, 2}
    assert Escalation.objects.filter(kind="step").count() == 2 * len(silent)
    # and the one who answered was never escalated
    answered = Acknowledgement.objects.get(version=version, user=cast.grid)
    clock = SlaClock.objects.get(kind=SlaKind.WARNING_ACK, subject_id=answered.pk)
    assert not Escalation.objects.filter(clock=clock).exists()
    assert "sla sweep:" in worker.output()
