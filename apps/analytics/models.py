"""Analytics keeps no data of its own: every figure is computed from the rows of the apps
it reads (incidents, dispatch, sla) at request time, so it can never drift from them.

:class:`KpiReport` is the one exception, and it has no table: it anchors the read-only
KPI page in the admin (its menu entry under "Analytics") and carries the
``analytics.view_kpireport`` permission the command-centre roles are granted.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class KpiReport(models.Model):
    """The admin's KPI page (no table: ``managed = False``, never queried)."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = _("KPI report")
        verbose_name_plural = _("KPI reports")
        ordering = ["pk"]

    def __str__(self) -> str:
        return str(_("KPI report"))
