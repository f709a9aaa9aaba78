"""Command-centre admin for dispatch: departments, teams (members and shifts inline),
members and the duty roster. Region-scoped like everything else: a team belongs to its
home region's subtree; members and shifts follow their team.

Team *status* is never typed in: duty and tasks drive it (``services.teams``); the
actions take a team out of service and back, and recompute a status. Shifts are handed
over with an action (it stamps who and when). The DispatchTask admin lives in
``admin_tasks.py`` (tasks work) and is imported at the bottom.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import ActionForm

from apps.core.errors import ApplicationError
from apps.core.scoping import restrict
from apps.dispatch.capabilities import CAPABILITY_LABELS
from apps.dispatch.models import Department, Shift, Team, TeamMember
from apps.dispatch.selectors.teams import live_task_count, on_duty_count
from apps.dispatch.services import teams as services
from apps.regions.admin_mixins import RegionScopedAdminMixin


class NoteActionForm(ActionForm):
    """The action bar with a text box: the out-of-service reason, the handover note."""

    note = forms.CharField(label=_("Reason / note"), required=False, max_length=2000)


def _run_each(
    model_admin: ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], call: Any
) -> None:
    """Apply ``call`` to each selected row; a refusal is an error message for that row."""
    done = 0
    for obj in queryset:
        try:
            call(obj)
        except ApplicationError as exc:
            model_admin.message_user(
                request,
                _("%(object)s: %(message)s (%(code)s)")
                % {"object": obj, "message": exc.message, "code": exc.code},
                messages.ERROR,
            )
        else:
            done += 1
    if done:
        model_admin.message_user(request, _("%(count)d done.") % {"count": done}, messages.SUCCESS)


class TeamScopedFkMixin:
    """FKs to Team offer only the teams of the user's regions."""

    def formfield_for_foreignkey(
        self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.related_model is Team and not request.user.is_superuser:
            kwargs["queryset"] = restrict(
                Team.objects.all(), request.user, "home_region__path"
            ).order_by("code")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


# --- Departments ---------------------------------------------------------------------------


@admin.register(Department)
class DepartmentAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "region__path"
    list_display = ("code", "name_zh", "name_en", "kind", "region", "is_active")
    list_filter = ("kind", "is_active")
    list_select_related = ("region",)
    search_fields = ("code", "name_zh", "name_en")
    filter_horizontal = ("categories",)
    ordering = ("code",)


# --- Teams ---------------------------------------------------------------------------------


class TeamMemberInline(TabularInline):
    model = TeamMember
    extra = 0
    fields = ("user", "is_leader", "on_duty", "on_duty_since", "is_active")
    readonly_fields = ("on_duty", "on_duty_since")  # the responder toggles duty in the app
    raw_id_fields = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[TeamMember]:
        return super().get_queryset(request).select_related("user")


class ShiftInline(TabularInline):
    model = Shift
    extra = 0
    fields = ("starts_at", "ends_at", "leader", "handover_note", "handed_over_at")
    readonly_fields = ("handover_note", "handed_over_at")
    raw_id_fields = ("leader",)
    ordering = ("-starts_at",)
    max_num = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Shift]:
        return super().get_queryset(request).select_related("leader")


class TeamForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        label=_("capabilities"),
        required=False,
        choices=[(tag, f"{tag} · {label}") for tag, label in CAPABILITY_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Team
        fields = (
            "code",
            "name",
            "department",
            "kind",
            "home_region",
            "capabilities",
            "equipment",
            "is_active",
        )
        help_texts = {"equipment": _('JSON: equipment name → count, e.g. {"移动泵车": 2}')}

    def clean_equipment(self) -> Any:
        equipment = self.cleaned_data.get("equipment") or {}
        if not isinstance(equipment, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in equipment.items()
        ):
            raise forms.ValidationError(_("Equipment must map names to whole counts."))
        return equipment


@admin.register(Team)
class TeamAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "home_region__path"
    form = TeamForm
    list_display = (
        "code",
        "name",
        "kind",
        "status",
        "department",
        "home_region",
        "on_duty_members",
        "live_task_count",
        "last_position_at",
        "is_active",
    )
    list_filter = ("status", "kind", "is_active", "department")
    list_select_related = ("department", "home_region")
    search_fields = ("code", "name")
    ordering = ("code",)
    readonly_fields = ("status", "last_lat", "last_lng", "last_position_at")
    inlines = (TeamMemberInline, ShiftInline)
    action_form = NoteActionForm
    actions = ("take_out_of_service", "return_to_service", "refresh_status")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(_on_duty=on_duty_count(), _live_tasks=live_task_count())
        )

    @admin.display(description=_("on duty"), ordering="_on_duty")
    def on_duty_members(self, obj: Team) -> int:
        return int(getattr(obj, "_on_duty", 0))

    @admin.display(description=_("live tasks"), ordering="_live_tasks")
    def live_task_count(self, obj: Team) -> int:
        return int(getattr(obj, "_live_tasks", 0))

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        services.team_save(team=obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # A member added or removed changes who may be on duty.
        services.team_status_refresh(team_id=form.instance.pk)

    @admin.action(description=_("Take out of service (reason in the box)"))
    def take_out_of_service(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        reason = request.POST.get("note", "")
        _run_each(
            self,
            request,
            queryset,
            lambda team: services.team_set_out_of_service(
                team_id=team.pk, by=request.user, reason=reason
            ),
        )

    @admin.action(description=_("Return to service"))
    def return_to_service(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        _run_each(
            self,
            request,
            queryset,
            lambda team: services.team_return_to_service(team_id=team.pk, by=request.user),
        )

    @admin.action(description=_("Recompute status from duty and tasks"))
    def refresh_status(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        _run_each(
            self, request, queryset, lambda team: services.team_status_refresh(team_id=team.pk)
        )


# --- Members and shifts --------------------------------------------------------------------


@admin.register(TeamMember)
class TeamMemberAdmin(TeamScopedFkMixin, RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "team__home_region__path"
    list_display = ("user", "team", "is_leader", "on_duty", "on_duty_since", "is_active")
    list_filter = ("on_duty", "is_leader", "is_active", "team__kind")
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__display_name", "user__phone", "team__name")
    raw_id_fields = ("user",)
    readonly_fields = ("on_duty", "on_duty_since")
    ordering = ("team__code", "-is_leader", "id")

    def save_model(self, request: HttpRequest, obj: TeamMember, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.team_status_refresh(team_id=obj.team_id)


@admin.register(Shift)
class ShiftAdmin(TeamScopedFkMixin, RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "team__home_region__path"
    list_display = ("team", "starts_at", "ends_at", "leader", "handed_over_at", "handed_over_by")
    list_filter = ("team__kind",)
    list_select_related = ("team", "leader", "handed_over_by")
    search_fields = ("team__name", "team__code", "handover_note")
    date_hierarchy = "starts_at"
    raw_id_fields = ("leader",)
    readonly_fields = ("handover_note", "handed_over_at", "handed_over_by")
    ordering = ("-starts_at",)
    action_form = NoteActionForm
    actions = ("hand_over",)

    @admin.action(description=_("Hand over (note in the box)"))
    def hand_over(self, request: HttpRequest, queryset: QuerySet[Shift]) -> None:
        note = request.POST.get("note", "")
        _run_each(
            self,
            request,
            queryset,
            lambda shift: services.shift_handover(shift_id=shift.pk, by=request.user, note=note),
        )


# --- Dispatch tasks, room and command posts (tasks work) -------------------------------------

from apps.dispatch import admin_tasks  # noqa: E402, F401 - registers its ModelAdmins
