"""The forms of the early-warning pages of the command centre (``admin_warnings``): they
parse what the operator typed and nothing more. Which regions one may target, who may
approve, which state allows what: the services decide (``apps.early_warnings.services``),
and their refusals come back as messages or field errors (``forms.errors_to_form``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from apps.console.forms import TEXT_MAX_LENGTH, ActionForm
from apps.early_warnings.models import WarningLevel, WarningType

DATETIME_INPUT = "%Y-%m-%dT%H:%M"
DATETIME_FORMATS = [DATETIME_INPUT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]

# The content fields of a version as the form names them (the services' names).
CONTENT_FIELDS = (
    "warning_type",
    "level",
    "title",
    "description",
    "instruction",
    "title_en",
    "description_en",
    "instruction_en",
    "onset",
    "expires",
)


def local_input(value: datetime | None) -> str:
    """An aware datetime as the value of a ``datetime-local`` input (Asia/Shanghai)."""
    return timezone.localtime(value).strftime(DATETIME_INPUT) if value else ""


def _datetime(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        input_formats=DATETIME_FORMATS,
        widget=UnfoldAdminTextInputWidget(attrs={"type": "datetime-local"}),
    )


def _textarea(label: Any, *, required: bool, rows: int = 3) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=TEXT_MAX_LENGTH,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": rows}),
    )


class ComposeForm(ActionForm):
    """撰写预警 (and the update of a published warning, pre-filled from the live version).

    ``context``: ``region_choices`` — (code, label) of the regions the user may target;
    ``incident_choices`` — (id, label) of open incidents they may link."""

    warning_type = forms.ChoiceField(
        label=_("type"), choices=WarningType.choices, widget=UnfoldAdminSelectWidget
    )
    level = forms.ChoiceField(
        label=_("level"), choices=WarningLevel.choices, widget=UnfoldAdminSelectWidget
    )
    title = forms.CharField(
        label=_("title (Chinese)"), max_length=200, widget=UnfoldAdminTextInputWidget
    )
    description = _textarea(_("description (Chinese)"), required=True, rows=4)
    instruction = _textarea(_("instruction (Chinese)"), required=False)
    title_en = forms.CharField(
        label=_("English title"), max_length=200, required=False, widget=UnfoldAdminTextInputWidget
    )
    description_en = _textarea(_("English description"), required=False)
    instruction_en = _textarea(_("English instruction"), required=False)
    onset = _datetime(_("onset"))
    expires = _datetime(_("expires"))
    targets = forms.MultipleChoiceField(
        label=_("target regions"),
        help_text=_("A target covers its whole subtree. Tick on the tree or click on the map."),
    )

    def setup(self) -> None:
        self.fields["targets"].choices = self.context.get("region_choices", [])
        incidents = self.context.get("incident_choices")
        if incidents is not None:
            self.fields["incident"] = forms.TypedChoiceField(
                label=_("linked incident"),
                choices=[("", "—"), *incidents],
                coerce=int,
                empty_value=None,
                required=False,
                widget=UnfoldAdminSelectWidget,
            )
        if self.context.get("offer_submit"):
            self.fields["submit_now"] = forms.BooleanField(
                label=_("Submit for approval right away"),
                required=False,
                widget=UnfoldBooleanSwitchWidget,
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        onset, expires = data.get("onset"), data.get("expires")
        if onset and expires and expires <= onset:
            self.add_error("expires", _("A warning must expire after its onset."))
        return data


class WarningReasonForm(ActionForm):
    reason = _textarea(_("reason"), required=True)
