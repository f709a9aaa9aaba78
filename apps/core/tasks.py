"""Periodic housekeeping owned by core."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.core.models import IdempotentRequest, idempotency_cutoff

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def heartbeat() -> str:
    """Beat → broker → worker round trip; its log line shows the pipeline is alive."""
    logger.info("celery heartbeat")
    return "ok"


@shared_task(ignore_result=True)
def purge_idempotency_keys() -> int:
    """Forget Idempotency-Keys past their TTL (a retry that late is a new request)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=idempotency_cutoff()).delete()
    return deleted
