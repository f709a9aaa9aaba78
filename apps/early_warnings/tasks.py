"""Celery tasks of early warnings: thin callers of the services (conventions R5)."""

from __future__ import annotations

import logging

from celery import shared_task

from apps.early_warnings import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def warnings_expire_due() -> int:
    """Beat: expire the warnings whose ``expires`` has passed (idempotent)."""
    expired = services.warnings_expire_due()
    if expired:
        logger.info("early warnings expired: %s", expired)
    return expired
