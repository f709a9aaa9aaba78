"""Periodic track housekeeping: thin old chunks, delete expired ones (conventions R5).

Both tasks take no arguments (the cutoffs come from settings at run time), call one
service, and are idempotent: a second run, a redelivered message or two workers running
at once do nothing twice (``SKIP LOCKED`` batches, ``downsampled`` mark, delete by age).
"""

from __future__ import annotations

import logging

from celery import shared_task

from apps.dispatch.services import positions

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, acks_late=True)
def tracks_downsample_old() -> int:
    """Thin chunks older than ``DISPATCH_TRACK_DOWNSAMPLE_AFTER_HOURS`` to one point per
    ``DISPATCH_TRACK_DOWNSAMPLE_SECONDS``."""
    rewritten = positions.tracks_downsample(
        older_than=positions.downsample_cutoff(),
        keep_every_seconds=positions.setting("DISPATCH_TRACK_DOWNSAMPLE_SECONDS"),
    )
    logger.info("track chunks downsampled: %s", rewritten)
    return rewritten


@shared_task(ignore_result=True, acks_late=True)
def tracks_purge_old() -> int:
    """Delete chunks older than ``DISPATCH_TRACK_RETENTION_DAYS``."""
    deleted = positions.tracks_purge(older_than=positions.retention_cutoff())
    logger.info("track chunks purged: %s", deleted)
    return deleted
