"""Shared base model and the idempotency-key store."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    """Abstract base: creation and update times on every row (conventions R10)."""

    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class IdempotentRequest(BaseModel):
    """A mobile POST remembered by its ``Idempotency-Key`` so a retry replays, not repeats.

    ``scope`` is who sent it (``user:<id>`` or ``anon:<client id>``): keys are only unique
    per sender. The row is written in the same transaction as the change it guards, so a
    stored response always means the change committed.
    """

    scope = models.CharField(_("scope"), max_length=100)
    key = models.UUIDField(_("key"))
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    request_hash = models.CharField(_("request hash"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"))
    response_body = models.JSONField(_("response body"), null=True, blank=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="core_idempotent_scope_key_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


def idempotency_cutoff() -> datetime:
    """Keys older than this are purged by ``core.tasks.purge_idempotency_keys``."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
