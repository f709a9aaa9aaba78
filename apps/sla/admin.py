"""Command-centre admin of the SLA engine: policies, the overdue board, the escalation log.

- **Policies** are data an administrator edits, with their ladder as an inline; a save
  reaches every process's policy cache (``apps.sla.signals``). Running clocks keep the
  ladder they started with.
- **The overdue board** lists clocks region-scoped (``RegionScopedAdminMixin``), open ones
  by default, breached first, then by time left. Nothing is typed in: pause (with an
  approved reason) and resume are actions that call the services.
- **The escalation log** is read-only (append-only, R11).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.contrib.import_export.forms import ExportForm
from unfold.forms import ActionForm

from apps.accounts.admin_mixins import InternalAdminMixin
from apps.core.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInlineMixin
from apps.core.errors import ApplicationError
from apps.core.exports import ExportAdminMixin, ExportResource, column
from apps.regions.admin_mixins import RegionScopedAdminMixin
from apps.sla import registry
from apps.sla.models import (
    OPEN_CLOCK_STATUSES,
    Anchor,
    ClockStatus,
    Escalation,
    PauseReason,
    SlaClock,
    SlaLadderStep,
    SlaPause,
    SlaPolicy,
    urgency_ordering,
)
from apps.sla.services import clocks as clock_services

# --- Policies ----------------------------------------------------------------------------------


def _choices_with(name: str, current: str) -> list[tuple[str, Any]]:
    """The registered values of a dimension, blank ("any") first, keeping a stored value
    that no app offers (e.g. a warning level before the warnings app is installed)."""
    choices: list[tuple[str, Any]] = [("", _("Any"))]
    choices += registry.dimension_choices(name)
    if current and current not in {value for value, _label in choices}:
        choices.append((current, current))
    return choices


class SlaPolicyForm(forms.ModelForm):
    class Meta:
        model = SlaPolicy
        fields = (
            "code",
            "name",
            "kind",
            "is_active",
            "category_code",
            "severity",
            "loop",
            "target",
            "duration",
            "is_estimate",
            "source",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("category_code", "severity", "loop"):
            field = self.fields[name]
            current = getattr(self.instance, name, "") or ""
            self.fields[name] = forms.ChoiceField(
                label=field.label,
                help_text=field.help_text,
                required=False,
                choices=_choices_with(_DIMENSION[name], current),
            )


_DIMENSION = {"category_code": "category", "severity": "severity", "loop": "loop"}


class LadderStepFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        target = self.instance.target
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE"):
                continue
            if data.get("anchor") == Anchor.TARGET and target is None:
                form.add_error("anchor", _("This policy has no target to count from."))


class LadderStepInline(TabularInline):
    model = SlaLadderStep
    formset = LadderStepFormSet
    extra = 0
    fields = (
        "anchor",
        "after",
        "notify_assignee",
        "notify_team_leader",
        "notify_street_duty",
        "notify_new_town_command",
        "notify_new_area_command",
        "mark_supervised",
        "raise_loop",
        "expire_task",
        "next_team",
        "note",
    )


@admin.register(SlaPolicy)
class SlaPolicyAdmin(InternalAdminMixin, ModelAdmin):
    form = SlaPolicyForm
    inlines = (LadderStepInline,)
    list_display = (
        "code",
        "name",
        "kind",
        "category_code",
        "severity",
        "loop",
        "target",
        "duration",
        "is_estimate",
        "is_active",
    )
    list_filter = ("kind", "is_active", "is_estimate")
    search_fields = ("code", "name", "category_code", "source")
    ordering = ("kind", "category_code", "severity", "loop", "code")
    fieldsets = (
        (None, {"fields": ("code", "name", "kind", "is_active")}),
        (_("Applies to"), {"fields": ("category_code", "severity", "loop")}),
        (_("Time allowed"), {"fields": ("target", "duration", "is_estimate", "source")}),
    )


# --- The overdue board -------------------------------------------------------------------------


class ClockStateFilter(admin.SimpleListFilter):
    """Open clocks unless asked otherwise: the board is about what is still owed."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("overdue", _("Open and overdue")),
            ("closed", _("Stopped or cancelled")),
            ("all", _("All")),
        ]

    def choices(self, changelist: Any) -> Any:
        # "Open" is the default (no parameter): relabel Django's "All" entry accordingly.
        for choice in super().choices(changelist):
            if choice["query_string"] == changelist.get_query_string(remove=[self.parameter_name]):
                choice["display"] = _("Open")
            yield choice

    def queryset(self, request: HttpRequest, queryset: QuerySet[SlaClock]) -> QuerySet[SlaClock]:
        value = self.value()
        if value == "all":
            return queryset
        if value == "closed":
            return queryset.exclude(status__in=OPEN_CLOCK_STATUSES)
        if value == "overdue":
            return queryset.overdue(timezone.now())
        return queryset.open()


class SubjectTypeFilter(admin.SimpleListFilter):
    title = _("subject type")
    parameter_name = "subject_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(registry.subject_types().items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[SlaClock]) -> QuerySet[SlaClock]:
        return queryset.filter(subject_type=self.value()) if self.value() else queryset


class PauseActionForm(ActionForm):
    """The action bar with the approved pause reasons and a note."""

    pause_reason = forms.ChoiceField(
        label=_("Pause reason"), required=False, choices=[("", "---------"), *PauseReason.choices]
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=1000)


class SlaPauseInline(ReadOnlyInlineMixin, TabularInline):
    model = SlaPause
    fields = ("reason", "note", "paused_at", "paused_by", "resumed_at", "resumed_by")
    readonly_fields = fields


class EscalationInline(ReadOnlyInlineMixin, TabularInline):
    model = Escalation
    fields = ("kind", "step", "scheduled_at", "at", "audiences", "recipients", "actions")
    readonly_fields = fields
    ordering = ("at", "id")


def _time_left(clock: SlaClock) -> timedelta | None:
    if clock.status == ClockStatus.PAUSED and clock.paused_at is not None:
        return clock.due_at - clock.paused_at  # frozen while paused
    if clock.status == ClockStatus.RUNNING:
        return clock.due_at - timezone.now()
    return None


def _minutes(delta: timedelta) -> int:
    return int(abs(delta.total_seconds()) // 60)


@admin.register(SlaClock)
class SlaClockAdmin(RegionScopedAdminMixin, ModelAdmin):
    """The overdue board: breached first, then least time left."""

    region_path_field = "region__path"
    list_display = (
        "time_left",
        "kind",
        "subject_label",
        "region",
        "status",
        "due_at",
        "target_at",
        "breached_at",
        "step",
        "failures",
    )
    list_filter = (ClockStateFilter, "kind", SubjectTypeFilter, "status", "is_drill", "region")
    list_select_related = ("region",)
    search_fields = ("subject_label",)
    date_hierarchy = "due_at"
    inlines = (SlaPauseInline, EscalationInline)
    action_form = PauseActionForm
    actions = ("pause_selected", "resume_selected")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "kind",
                    "subject_type",
                    "subject_id",
                    "subject_label",
                    "region",
                    "policy",
                    "status",
                )
            },
        ),
        (
            _("Classification at start"),
            {"fields": ("category_code", "severity", "loop", "is_drill")},
        ),
        (
            _("Times"),
            {
                "fields": (
                    "started_at",
                    "target_at",
                    "due_at",
                    "next_check_at",
                    "paused_at",
                    "paused_total",
                    "target_missed_at",
                    "breached_at",
                    "stopped_at",
                    "stop_reason",
                )
            },
        ),
        (_("Escalation"), {"fields": ("ladder", "step", "failures", "last_error")}),
    )

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return urgency_ordering(timezone.now())

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field for _name, opts in self.fieldsets for field in opts["fields"]]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # clocks start from the services of the apps they time

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # compliance history is never deleted

    @admin.display(description=_("time left"), ordering="due_at")
    def time_left(self, obj: SlaClock) -> SafeString | str:
        left = _time_left(obj)
        if left is None:
            return "—"
        if left < timedelta(0):
            return format_html(
                '<strong style="color:#ba2121">{}</strong>',
                _("%(minutes)s min overdue") % {"minutes": _minutes(left)},
            )
        return str(_("%(minutes)s min left") % {"minutes": _minutes(left)})

    @admin.action(
        description=_("Pause selected clocks (choose the reason)"), permissions=["change"]
    )
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[SlaClock]) -> None:
        reason = request.POST.get("pause_reason", "")
        if reason not in PauseReason.values:
            self.message_user(request, _("Choose one of the approved reasons."), messages.ERROR)
            return
        note = request.POST.get("note", "")
        self._run_each(
            request,
            queryset,
            lambda clock: clock_services.sla_clock_pause(
                clock_id=clock.pk, reason=reason, note=note, by=request.user
            ),
            _("%(count)d clock(s) paused."),
        )

    @admin.action(description=_("Resume selected clocks"), permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[SlaClock]) -> None:
        self._run_each(
            request,
            queryset,
            lambda clock: clock_services.sla_clock_resume(clock_id=clock.pk, by=request.user),
            _("%(count)d clock(s) resumed."),
        )

    def _run_each(
        self, request: HttpRequest, queryset: QuerySet[SlaClock], call: Any, done: Any
    ) -> None:
        """Apply ``call`` per row; a refusal becomes that row's message, never a 500."""
        succeeded = 0
        for clock in queryset:
            try:
                call(clock)
            except ApplicationError as exc:
                self.message_user(
                    request,
                    _("%(object)s: %(message)s (%(code)s)")
                    % {"object": clock, "message": exc.message, "code": exc.code},
                    messages.ERROR,
                )
            else:
                succeeded += 1
        if succeeded:
            self.message_user(request, done % {"count": succeeded}, messages.SUCCESS)


# --- The escalation log ------------------------------------------------------------------------


class EscalationResource(ExportResource):
    at = column("at", _("ran at"))
    scheduled_at = column("scheduled_at", _("due at"))
    sla_kind = column("clock__get_kind_display", _("SLA kind"))
    subject = column("clock__subject_label", _("subject"))
    kind = column("get_kind_display", _("kind"))
    step = column("step", _("step"))
    region = column("region__name_zh", _("region"))
    recipients = column("recipients", _("told"))

    class Meta:
        model = Escalation
        fields = export_order = (
            "at",
            "scheduled_at",
            "sla_kind",
            "subject",
            "kind",
            "step",
            "region",
            "recipients",
        )

    def dehydrate_recipients(self, escalation: Escalation) -> int:
        return len(escalation.recipients or [])


@admin.register(Escalation)
class EscalationAdmin(
    ReadOnlyAdminMixin, RegionScopedAdminMixin, ExportAdminMixin, ExportMixin, ModelAdmin
):
    region_path_field = "region__path"
    resource_classes = [EscalationResource]
    export_form_class = ExportForm
    list_display = (
        "at",
        "sla_kind",
        "subject",
        "kind",
        "step",
        "region",
        "lateness_s",
        "recipient_count",
        "action_list",
    )
    list_filter = ("kind", "clock__kind", "region", ("at", RangeDateTimeFilter))
    list_filter_submit = True
    list_select_related = ("clock", "region")
    search_fields = ("clock__subject_label",)
    date_hierarchy = "at"
    ordering = ("-at", "-id")
    readonly_fields = (
        "clock",
        "kind",
        "step",
        "scheduled_at",
        "at",
        "region",
        "subject_type",
        "subject_id",
        "audiences",
        "recipients",
        "actions",
    )
    fields = readonly_fields

    @admin.display(description=_("SLA kind"), ordering="clock__kind")
    def sla_kind(self, obj: Escalation) -> str:
        return str(obj.clock.get_kind_display())

    @admin.display(description=_("subject"))
    def subject(self, obj: Escalation) -> str:
        return obj.clock.subject_label or f"{obj.subject_type} {obj.subject_id}"

    @admin.display(description=_("late by (s)"))
    def lateness_s(self, obj: Escalation) -> str:
        return f"{obj.lateness.total_seconds():.1f}"

    @admin.display(description=_("told"))
    def recipient_count(self, obj: Escalation) -> int:
        return len(obj.recipients or [])

    @admin.display(description=_("actions"))
    def action_list(self, obj: Escalation) -> str:
        return ", ".join(sorted(k for k in (obj.actions or {}) if k not in {"note", "unreached"}))
