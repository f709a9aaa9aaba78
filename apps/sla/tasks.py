"""The sweep task beat sends every ``SLA_SWEEP_INTERVAL_SECONDS`` (conventions R4, R5).

No arguments, one service call, idempotent: a second copy, a redelivered message or two
workers at once escalate nothing twice (``apps.sla.services.sweep``). Not ``acks_late``:
a sweep lost with a killed worker is not worth redelivering an hour later (Redis's
visibility timeout) — the next one, a fraction of a second away, does the same work from
the database. Messages queued while no worker ran expire (the beat entry's ``expires``).
"""

from __future__ import annotations

import logging

from celery import shared_task

from apps.sla.services.sweep import sla_sweep as sweep

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sla_sweep() -> int:
    """Escalate every clock that is due; returns the number of escalation rows written."""
    result = sweep()
    if result.events or result.failed:
        logger.info(
            "sla sweep: %s clocks, %s escalations, %s busy, %s failed",
            result.clocks,
            result.events,
            result.busy,
            result.failed,
        )
    return result.events
