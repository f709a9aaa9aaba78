"""The console keeps no data: every page reads the apps' rows through their selectors.

:class:`DutyDesk` has no table; it anchors the duty-desk pages of the admin (值班台, 一张图)
and carries their permission, ``console.view_dutydesk``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class DutyDesk(models.Model):
    """The admin's duty-desk pages (no table: ``managed = False``, never queried)."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = _("duty desk")
        verbose_name_plural = _("duty desk")
        ordering = ["pk"]

    def __str__(self) -> str:
        return str(_("duty desk"))
