"""The forms of the command centre's action pages: they parse what the operator typed
and nothing more. Every rule (which status allows what, who may act, what a valid reason
is) is the service's; its refusal comes back as a message or a field error
(:func:`errors_to_form`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from apps.core.errors import ApplicationError
from apps.incidents.models import Category, Loop, Severity

TEXT_MAX_LENGTH = 2000


def _text(label: Any, *, required: bool = True, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=TEXT_MAX_LENGTH,
        help_text=help_text,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
    )


def _choice(label: Any, choices: Any, *, required: bool = False) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=label,
        choices=[("", "—"), *choices],
        required=required,
        widget=UnfoldAdminSelectWidget,
    )


def category_choices() -> list[tuple[str, str]]:
    rows = Category.objects.filter(is_active=True).order_by("sort_order", "code")
    return [(c.code, f"{c.code} {c.name_zh}") for c in rows]


def severity_choices() -> list[tuple[str, Any]]:
    return list(Severity.choices)


class ActionForm(forms.Form):
    """Base of every action page's form; ``confirm`` is the explicit confirmation step."""

    confirm = forms.BooleanField(
        label=_("I have checked the above and confirm"),
        required=True,
        widget=UnfoldBooleanSwitchWidget,
    )

    def __init__(self, *args: Any, context: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context or {}
        self.setup()
        # The confirmation comes last, under everything it confirms.
        self.fields["confirm"] = self.fields.pop("confirm")

    def setup(self) -> None:
        """Subclasses add choices that depend on the incident or the user here."""


class NoInputForm(ActionForm):
    pass


class ReasonForm(ActionForm):
    reason = _text(_("Reason"))


class OptionalReasonForm(ActionForm):
    reason = _text(_("Reason"), required=False)


class NoteForm(ActionForm):
    note = _text(_("Note"), required=False)


class ClassifyForm(ActionForm):
    category = forms.ChoiceField(label=_("category"), required=False)
    severity = _choice(_("severity"), Severity.choices)
    loop = _choice(_("loop"), Loop.choices)

    def setup(self) -> None:
        self.fields["category"] = _choice(_("category"), category_choices())


class ResolveForm(ActionForm):
    resolution = _text(_("Resolution"), help_text=_("What was done, and the result."))


class TimelineNoteForm(ActionForm):
    text = _text(_("Note"))
    public = forms.BooleanField(
        label=_("Show it to the reporting citizens too"),
        required=False,
        widget=UnfoldBooleanSwitchWidget,
    )


def _count(label: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=0, widget=UnfoldAdminIntegerFieldWidget
    )


class CasualtiesForm(ActionForm):
    deaths = _count(_("deaths"))
    injured = _count(_("injured"))
    missing = _count(_("missing"))
    trapped = _count(_("trapped"))
    note = _text(_("Note"), required=False)


class MergeForm(ActionForm):
    into = forms.TypedChoiceField(
        label=_("Merge into"), coerce=int, widget=UnfoldAdminRadioSelectWidget
    )

    def setup(self) -> None:
        self.fields["into"].choices = self.context.get("merge_choices", [])


class DispatchForm(ActionForm):
    teams = forms.TypedMultipleChoiceField(
        label=_("Teams to send"),
        coerce=int,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("Ranked by the recommendation; its reasons are shown beside each team."),
    )
    instructions = _text(_("Instructions"), required=False)

    def setup(self) -> None:
        self.fields["teams"].choices = self.context.get("team_choices", [])


class ReassignForm(ActionForm):
    to_team = forms.TypedChoiceField(
        label=_("Reassign to"), coerce=int, widget=UnfoldAdminRadioSelectWidget
    )
    reason = _text(_("Reason"), required=False)

    def setup(self) -> None:
        self.fields["to_team"].choices = self.context.get("team_choices", [])


class InstructionsForm(ActionForm):
    text = _text(_("Instructions to add"))


def _user_choice(label: Any, *, required: bool = True) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label, coerce=int, required=required, widget=UnfoldAdminSelectWidget
    )


class CommandPostForm(ActionForm):
    commander = _user_choice(_("Commander"))
    members = forms.TypedMultipleChoiceField(
        label=_("Members"),
        coerce=int,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    lat = forms.FloatField(label=_("latitude"), widget=UnfoldAdminDecimalFieldWidget)
    lng = forms.FloatField(label=_("longitude"), widget=UnfoldAdminDecimalFieldWidget)
    address = forms.CharField(
        label=_("address"), required=False, max_length=300, widget=UnfoldAdminTextInputWidget
    )

    def setup(self) -> None:
        people = self.context.get("people", [])
        self.fields["commander"].choices = [("", "—"), *people]
        self.fields["members"].choices = people


class PostMembersForm(ActionForm):
    add = forms.TypedMultipleChoiceField(
        label=_("Add to the post"),
        coerce=int,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    remove = forms.TypedMultipleChoiceField(
        label=_("Remove from the post"),
        coerce=int,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )

    def setup(self) -> None:
        members = self.context.get("members", [])
        current = {pk for pk, _label in members}
        self.fields["add"].choices = [
            (pk, label) for pk, label in self.context.get("people", []) if pk not in current
        ]
        self.fields["remove"].choices = members


class HandOverForm(ActionForm):
    commander = _user_choice(_("New commander"))
    note = _text(_("Handover note"), required=False)

    def setup(self) -> None:
        self.fields["commander"].choices = [("", "—"), *self.context.get("people", [])]


class TriageAcceptForm(ClassifyForm):
    community = forms.ChoiceField(label=_("community / village"), required=False)

    def setup(self) -> None:
        super().setup()
        self.fields["community"] = _choice(
            _("community / village"), self.context.get("community_choices", [])
        )


class TriageDuplicateForm(ActionForm):
    incident = forms.TypedChoiceField(
        label=_("Duplicate of"), coerce=int, widget=UnfoldAdminRadioSelectWidget
    )

    def setup(self) -> None:
        self.fields["incident"].choices = self.context.get("duplicate_choices", [])


class TriageRejectForm(ActionForm):
    reason = _text(_("Reason shown to the citizen"))


def errors_to_form(form: forms.Form, exc: ApplicationError, fields: dict[str, str]) -> bool:
    """Put the service's field errors (``extra.fields``) on the form fields they concern
    (``fields`` maps service field names to form field names). True if any was placed;
    the caller shows the rest as a message."""
    placed = False
    for name, problems in (exc.extra.get("fields") or {}).items():
        target = fields.get(name, name)
        for problem in problems:
            message = problem.get("message") if isinstance(problem, dict) else str(problem)
            if target in form.fields:
                form.add_error(target, message)
            else:
                form.add_error(None, message)
            placed = True
    return placed
