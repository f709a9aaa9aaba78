"""Periodic housekeeping of the accounts app (conventions R5: thin and idempotent)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import OtpFailureCounter


@shared_task(ignore_result=True)
def otp_failure_counters_purge() -> int:
    """Drop one-time-code failure counters already forgotten (no wrong code for
    OTP_FAILURE_WINDOW_SECONDS): a guessing spray from many addresses leaves a row per
    address, and a stale row counts as zero anyway."""
    cutoff = timezone.now() - timedelta(seconds=settings.OTP_FAILURE_WINDOW_SECONDS)
    deleted, _ = OtpFailureCounter.objects.filter(last_failure_at__lt=cutoff).delete()
    return deleted
