"""The KPI filters, validated once for the API (query parameters) and the admin page.

``from``/``to`` are Asia/Shanghai dates (ISO ``YYYY-MM-DD``), both included; default:
the last 30 days up to today. A window is at most :data:`MAX_WINDOW_DAYS` long, so one
request never scans years of rows. ``region`` is a region code; whether it exists and
lies in the caller's scope is the selector's business (an unknown or out-of-scope code
gives an empty report, as the list filters do), not a validation error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django import forms
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MAX_WINDOW_DAYS = 366
DEFAULT_WINDOW_DAYS = 30
TRUE_VALUES = frozenset({"true", "1", "yes", "on"})
FALSE_VALUES = frozenset({"false", "0", "no", "off", ""})


class GroupBy(models.TextChoices):
    CATEGORY = "category", _("Category")
    TEAM = "team", _("Team")
    REGION = "region", _("Region (one level down)")
    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")


PERIODS = frozenset({GroupBy.DAY, GroupBy.WEEK, GroupBy.MONTH})


@dataclass(frozen=True)
class KpiQuery:
    """What a KPI report is asked for (validated)."""

    date_from: date
    date_to: date
    region_code: str = ""
    group_by: str = ""
    include_drills: bool = False


class KpiFilterForm(forms.Form):
    """Query parameters ``region``, ``from``, ``to``, ``group_by``, ``include_drills``.

    ``region_choices`` (the admin's region picker) turns the region box into a select;
    the API passes none and takes any code.
    """

    region = forms.CharField(label=_("Region"), required=False, max_length=40)
    group_by = forms.ChoiceField(
        label=_("Group by"),
        required=False,
        choices=[("", _("No grouping")), *GroupBy.choices],
    )
    include_drills = forms.CharField(
        label=_("Drills"),
        required=False,
        widget=forms.Select(choices=[("false", _("Excluded")), ("true", _("Included"))]),
    )

    def __init__(
        self, *args: Any, region_choices: list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: these two are added here, under their API names.
        self.fields["from"] = forms.DateField(
            label=_("From"),
            required=False,
            input_formats=["%Y-%m-%d"],
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        )
        self.fields["to"] = forms.DateField(
            label=_("To (included)"),
            required=False,
            input_formats=["%Y-%m-%d"],
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        )
        self.order_fields(["region", "from", "to", "group_by", "include_drills"])
        if region_choices is not None:
            self.fields["region"].widget = forms.Select(
                choices=[("", _("All my regions")), *region_choices]
            )

    def clean_include_drills(self) -> bool:
        value = str(self.cleaned_data.get("include_drills") or "").strip().lower()
        if value in TRUE_VALUES:
            return True
        if value in FALSE_VALUES:
            return False
        raise forms.ValidationError(_("Use true or false."), code="invalid")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        date_to = cleaned.get("to") or timezone.localdate()
        date_from = cleaned.get("from") or date_to - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
        if date_from > date_to:
            self.add_error(
                "to",
                forms.ValidationError(_("The end lies before the start."), code="before_from"),
            )
        elif (date_to - date_from).days + 1 > MAX_WINDOW_DAYS:
            self.add_error(
                "to",
                forms.ValidationError(
                    _("At most %(days)s days at once.") % {"days": MAX_WINDOW_DAYS},
                    code="too_long",
                ),
            )
        cleaned["from"], cleaned["to"] = date_from, date_to
        return cleaned

    def query(self) -> KpiQuery:
        """The validated query; call after ``is_valid()``."""
        data = self.cleaned_data
        return KpiQuery(
            date_from=data["from"],
            date_to=data["to"],
            region_code=(data.get("region") or "").strip(),
            group_by=data.get("group_by") or "",
            include_drills=bool(data.get("include_drills")),
        )
