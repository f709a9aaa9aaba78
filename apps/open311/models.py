"""Open311 client keys. Reports themselves live in ``apps.incidents`` (channel ``open311``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class ApiKey(BaseModel):
    """A key an Open311 client sends as ``api_key`` on ``POST requests``.

    Only the SHA-256 of the key is stored: keys are 256-bit random strings, so a fast
    hash is enough to make a leaked table useless, and it lets the lookup be one indexed
    equality instead of checking every row with a slow password hasher. The plain key is
    shown once, when the key is created. ``prefix`` (the first characters) tells keys
    apart in the admin without revealing them.
    """

    name = models.CharField(_("name"), max_length=100, help_text=_("Who uses this key."))
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("Open311 API key")
        verbose_name_plural = _("Open311 API keys")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
