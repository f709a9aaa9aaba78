"""Celery tasks of the outbox: thin, id-based, idempotent (conventions R5).

Each calls one service in ``apps.notifications.delivery``; the claim and the fenced
outcome make a redelivered message, a duplicate enqueue or two workers harmless, and
the beat sweeps make a lost message or a killed worker a delay rather than a loss.
"""

from __future__ import annotations

from celery import shared_task

from apps.notifications import delivery


@shared_task(ignore_result=True, acks_late=True)
def notification_deliver(notification_id: int) -> str:
    """Deliver one outbox row (push or SMS)."""
    return delivery.notification_deliver(notification_id=notification_id)


@shared_task(ignore_result=True, acks_late=True)
def notifications_deliver_many(notification_ids: list[int]) -> list[str]:
    """Deliver several outbox rows as one batch (a batch's SOS alarms, a warning's
    persons): claimed rows only, so a redelivered message delivers nothing twice."""
    return delivery.notifications_deliver_many(notification_ids=notification_ids)


@shared_task(ignore_result=True)
def notifications_requeue() -> dict[str, int]:
    """Beat: re-enqueue due rows and hand back rows stuck in ``sending``."""
    return delivery.notifications_requeue()


@shared_task(ignore_result=True)
def notifications_receipts_sweep() -> int:
    """Beat: the SMS fallback of pushes not acknowledged by their deadline."""
    return delivery.receipts_sweep()
