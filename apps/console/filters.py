"""List filters of the command-centre lists: 督办 and breached clocks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.incidents.models import OPEN_STATUSES
from apps.incidents.services.sla import SUBJECT_INCIDENT
from apps.sla.models import SlaClock


class SupervisedFilter(admin.SimpleListFilter):
    title = _("supervision (督办)")
    parameter_name = "supervised"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("yes", _("Supervised")),
            ("open", _("Supervised and open")),
            ("no", _("Not supervised")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(supervised_at__isnull=False)
        if self.value() == "open":
            return queryset.filter(supervised_at__isnull=False, status__in=OPEN_STATUSES)
        if self.value() == "no":
            return queryset.filter(supervised_at__isnull=True)
        return queryset


class BreachedFilter(admin.SimpleListFilter):
    """Incidents with a deadline breached: any of their clocks, or one still running."""

    title = _("deadline breached")
    parameter_name = "breached"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("yes", _("Breached")),
            ("running", _("Breached and still running")),
            ("no", _("Never breached")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        clocks = SlaClock.objects.filter(
            subject_type=SUBJECT_INCIDENT, subject_id=OuterRef("pk"), breached_at__isnull=False
        )
        if self.value() == "yes":
            return queryset.filter(Exists(clocks))
        if self.value() == "running":
            return queryset.filter(Exists(clocks.filter(stopped_at__isnull=True)))
        if self.value() == "no":
            return queryset.exclude(Exists(clocks))
        return queryset
