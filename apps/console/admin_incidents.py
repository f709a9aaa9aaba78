"""The incident page of the command centre and every operator action on an incident.

URLs (all under ``/admin/incidents/incident/``; Django's admin with ``get_urls()``):

=====================================  ================================================
``add/``                               电话接警: a new incident from a phone call
``<id>/change/``                       the incident page: everything about it, read-only,
                                       with the buttons of the actions the user may take
``<id>/act/<action>/``                 one action: GET shows the confirmation page (with
                                       its form), POST calls the one service
``<id>/task/<task>/<action>/``         one action on one of the incident's tasks
``export/``                            the list as CSV/XLSX (django-import-export)
=====================================  ================================================

Each action is a thin caller, like an API view: parse the form, call the service, show
its ``ApplicationError`` as a message (and its field errors on the fields). Who may act
is asked of the same selectors the API asks (``incident_can_command``,
``task_can_command``); an incident outside the user's regions does not exist for them
(the admin's "does not exist" answer). Which buttons show comes from the transition
tables (``allowed_actions``): a hint, since the service decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter
from unfold.contrib.import_export.forms import ExportForm

from apps.accounts.models import STAFF_ROLES, Membership
from apps.accounts.permissions import role_scope
from apps.audit.personal import PersonalDataAdminMixin
from apps.console import forms as f
from apps.console import map as console_map
from apps.console.exports import IncidentResource, contact_visible
from apps.console.filters import BreachedFilter, SupervisedFilter
from apps.console.photos import photo_links
from apps.console.timeline import timeline_rows
from apps.core.errors import ApplicationError
from apps.core.exports import ExportAdminMixin
from apps.dispatch.models import DispatchTask
from apps.dispatch.recommendation import recommend_teams
from apps.dispatch.selectors.tasks import command_post_get, incident_tasks, task_can_command
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services import tasks as task_services
from apps.dispatch.services.command_post import POST_INCIDENT_STATUSES
from apps.dispatch.services.tasks import DISPATCHABLE_INCIDENT_STATUSES
from apps.dispatch.task_transitions import task_allowed_actions
from apps.incidents.admin import ReasonActionForm, run_each
from apps.incidents.duplicates import duplicate_candidates
from apps.incidents.models import Attachment, Category, Incident, IncidentStatus, Loop
from apps.incidents.selectors.incidents import (
    COMMAND_ROLES,
    incident_can_command,
    incident_timeline,
)
from apps.incidents.services import incidents as services
from apps.incidents.services import sla as sla_services
from apps.incidents.transitions import allowed_actions
from apps.regions.admin_mixins import RegionScopedAdminMixin, region_choice_label
from apps.regions.models import Region, RegionLevel
from apps.regions.selectors import place_for_intake
from apps.sla.models import SlaClock

RECOMMEND_LIMIT = 8
MERGE_CANDIDATES = 10

# --- The actions -------------------------------------------------------------------------------

COMMAND = "command"  # operator/commander/admin covering the incident (incident_can_command)
DISPATCH = "dispatch"  # the above, or the open command post's people (task_can_command)


@dataclass(frozen=True)
class Act:
    """One operator action: its page, form, who may take it and the service it calls."""

    name: str
    label: Any
    form: type[f.ActionForm]
    who: str
    done: Any
    # When the button shows (a hint from the transition tables; the service decides).
    shown: Callable[[Incident, dict[str, Any]], bool]
    style: str = "default"  # "primary" | "danger"
    help: Any = ""
    # Service field name → form field name, for placing field errors.
    fields: dict[str, str] = field(default_factory=dict)


def _status_allows(action: str) -> Callable[[Incident, dict[str, Any]], bool]:
    return lambda incident, page: action in page["allowed"]


ACTS: tuple[Act, ...] = (
    Act(
        "accept",
        _("Accept (受理)"),
        f.ClassifyForm,
        COMMAND,
        _("Incident accepted."),
        _status_allows("accept"),
        "primary",
        _("Accepting starts the dispatch and resolution clocks."),
    ),
    Act(
        "reject",
        _("Reject"),
        f.ReasonForm,
        COMMAND,
        _("Incident rejected."),
        _status_allows("reject"),
        "danger",
        _("The reason is shown to the reporting citizen."),
    ),
    Act(
        "dispatch",
        _("Dispatch teams"),
        f.DispatchForm,
        DISPATCH,
        _("Teams dispatched."),
        lambda i, p: i.status in DISPATCHABLE_INCIDENT_STATUSES,
        "primary",
        fields={"team_ids": "teams"},
    ),
    Act(
        "start",
        _("Start handling"),
        f.NoInputForm,
        COMMAND,
        _("Handling started."),
        _status_allows("start"),
    ),
    Act(
        "classify",
        _("Classify"),
        f.ClassifyForm,
        COMMAND,
        _("Classification saved."),
        _status_allows("classify"),
        help=_("Category, severity Ⅰ–Ⅳ and loop; only what you change is written."),
    ),
    Act(
        "supervise",
        _("Supervise (督办)"),
        f.OptionalReasonForm,
        COMMAND,
        _("Incident marked supervised."),
        _status_allows("classify"),
    ),
    Act(
        "raise_loop",
        _("Raise the loop"),
        f.ReasonForm,
        COMMAND,
        _("Loop raised; command moved up."),
        lambda i, p: "classify" in p["allowed"] and i.loop != Loop.LARGE,
        "danger",
        _("Small → medium (the new town commands) → large (the new area commands)."),
    ),
    Act(
        "note",
        _("Add a note"),
        f.TimelineNoteForm,
        COMMAND,
        _("Note added to the timeline."),
        _status_allows("note"),
    ),
    Act(
        "casualties",
        _("Casualty figures"),
        f.CasualtiesForm,
        COMMAND,
        _("Casualty figures recorded."),
        _status_allows("casualties"),
        help=_("Leave a figure empty to keep it; every revision is kept on the timeline."),
        fields={"non_field_errors": "__all__"},
    ),
    Act(
        "resolve",
        _("Resolve (办结)"),
        f.ResolveForm,
        COMMAND,
        _("Incident resolved; verification clock started."),
        _status_allows("resolve"),
        "primary",
    ),
    Act(
        "close",
        _("Verify and close (核查销号)"),
        f.NoteForm,
        COMMAND,
        _("Incident closed."),
        _status_allows("close"),
        "primary",
    ),
    Act(
        "reopen",
        _("Verification failed: reopen (重办)"),
        f.ReasonForm,
        COMMAND,
        _("Incident reopened; the resolution clock runs again."),
        _status_allows("reopen"),
        "danger",
    ),
    Act(
        "confirm_closure",
        _("Confirm the closure"),
        f.NoteForm,
        COMMAND,
        _("Closure confirmed."),
        lambda i, p: i.status == IncidentStatus.CLOSED,
        help=_("After reviewing a dissatisfied citizen's rating or reopen request."),
    ),
    Act(
        "merge",
        _("Merge into another incident"),
        f.MergeForm,
        COMMAND,
        _("Incident merged."),
        _status_allows("merge"),
        "danger",
        fields={"into_id": "into"},
    ),
    Act(
        "post_setup",
        _("Set up a command post"),
        f.CommandPostForm,
        DISPATCH,
        _("Command post set up; it now directs dispatch."),
        lambda i, p: i.status in POST_INCIDENT_STATUSES and not p["post_open"],
        fields={"commander_id": "commander", "member_ids": "members"},
    ),
    Act(
        "post_handover",
        _("Hand the command post over"),
        f.HandOverForm,
        DISPATCH,
        _("Command post handed over."),
        lambda i, p: p["post_open"],
        fields={"commander_id": "commander"},
    ),
    Act(
        "post_members",
        _("Command post members"),
        f.PostMembersForm,
        DISPATCH,
        _("Command post members changed."),
        lambda i, p: p["post_open"],
    ),
    Act(
        "post_close",
        _("Close the command post"),
        f.NoInputForm,
        DISPATCH,
        _("Command post closed; dispatch returns to the operators."),
        lambda i, p: p["post_open"],
        "danger",
    ),
)
ACTS_BY_NAME = {act.name: act for act in ACTS}


@dataclass(frozen=True)
class TaskAct:
    name: str
    label: Any
    form: type[f.ActionForm]
    done: Any
    style: str = "default"
    fields: dict[str, str] = field(default_factory=dict)


TASK_ACTS: tuple[TaskAct, ...] = (
    TaskAct("verify", _("Verify (核查)"), f.NoInputForm, _("Task verified."), "primary"),
    TaskAct("return", _("Return for rework"), f.ReasonForm, _("Task returned."), "danger"),
    TaskAct(
        "instructions",
        _("Add instructions"),
        f.InstructionsForm,
        _("Instructions added."),
    ),
    TaskAct(
        "reassign",
        _("Reassign"),
        f.ReassignForm,
        _("Task reassigned."),
        fields={"to_team_id": "to_team"},
    ),
    TaskAct("cancel", _("Cancel the task"), f.ReasonForm, _("Task cancelled."), "danger"),
)
TASK_ACTS_BY_NAME = {act.name: act for act in TASK_ACTS}


# --- Phone intake ------------------------------------------------------------------------------


class IntakeForm(f.ActionForm):
    """电话接警: what the caller says and where. The region is found from the point (or the
    chosen street's centre) by ``place_for_intake``; the map picker above the form fills
    lat/lng (``static/console/intake_map.js``)."""

    reporter_name = f.forms.CharField(
        label=_("caller name"), required=False, max_length=100, widget=f.UnfoldAdminTextInputWidget
    )
    reporter_phone = f.forms.CharField(
        label=_("caller phone"), required=False, max_length=20, widget=f.UnfoldAdminTextInputWidget
    )
    category = f.forms.ChoiceField(label=_("category"))
    title = f.forms.CharField(label=_("title"), max_length=200, widget=f.UnfoldAdminTextInputWidget)
    description = f._text(_("description"), required=False)
    region = f.forms.ChoiceField(label=_("street / community"), required=False)
    address = f.forms.CharField(
        label=_("address"), required=False, max_length=300, widget=f.UnfoldAdminTextInputWidget
    )
    lat = f.forms.FloatField(
        label=_("latitude"), required=False, widget=f.UnfoldAdminTextInputWidget
    )
    lng = f.forms.FloatField(
        label=_("longitude"), required=False, widget=f.UnfoldAdminTextInputWidget
    )
    accept = f.forms.BooleanField(
        label=_("Accept it now (受理)"), required=False, widget=f.UnfoldBooleanSwitchWidget
    )
    severity = f._choice(_("severity"), f.Severity.choices)
    loop = f._choice(_("loop"), Loop.choices)
    is_drill = f.forms.BooleanField(
        label=_("drill"), required=False, widget=f.UnfoldBooleanSwitchWidget
    )

    def setup(self) -> None:
        self.fields["category"] = f._choice(_("category"), f.category_choices(), required=True)
        self.fields["region"] = f._choice(
            _("street / community"), self.context.get("region_choices", [])
        )
        self.fields["region"].help_text = _(
            "Give the coordinates, or a street / community (its centre is used)."
        )


def intake_region_choices(user: Any) -> list[tuple[str, str]]:
    """Streets and their communities the user may file incidents in, in tree order."""
    scope = role_scope(user, COMMAND_ROLES)
    regions = (
        Region.objects.active()
        .filter(scope.q("path"), level__in=(RegionLevel.STREET, RegionLevel.UNIT))
        .order_by("path")
    )
    return [(r.code, region_choice_label(r)) for r in regions]


# --- The admin ---------------------------------------------------------------------------------


@admin.register(Incident)
class IncidentAdmin(
    PersonalDataAdminMixin, RegionScopedAdminMixin, ExportAdminMixin, ExportMixin, ModelAdmin
):
    audit_personal_fields = ("reporter_name", "reporter_phone")  # each showing is audited

    region_path_field = "region__path"
    resource_classes = [IncidentResource]
    export_form_class = ExportForm
    list_display = (
        "number",
        "title",
        "status",
        "severity",
        "loop",
        "category",
        "region",
        "supervised_at",
        "created_at",
    )
    list_filter = (
        "status",
        "severity",
        "loop",
        "category",
        SupervisedFilter,
        BreachedFilter,
        "source",
        "is_drill",
        ("created_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    list_select_related = ("category", "region")
    search_fields = ("number", "title", "address")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_per_page = 50
    action_form = ReasonActionForm
    actions = (
        "accept_selected",
        "close_selected",
        "reopen_selected",
        "confirm_closure_selected",
        "supervise_selected",
        "raise_loop_selected",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # 电话接警: command roles (operator/commander/admin) somewhere in the tree; the
        # region of the call is checked against their scope when they submit it.
        return (
            self.has_view_permission(request)
            and not role_scope(request.user, COMMAND_ROLES).is_empty
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of an emergency is never deleted

    # --- URLs ----------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/act/<slug:action>/",
                view(self.action_view),
                name="{}_{}_act".format(*info),
            ),
            path(
                "<path:object_id>/task/<int:task_id>/<slug:action>/",
                view(self.task_action_view),
                name="{}_{}_task".format(*info),
            ),
            *super().get_urls(),
        ]

    # --- The incident page ---------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        incident = self.get_object(request, object_id)
        if incident is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, incident):
            raise PermissionDenied
        page = self.page_state(request, incident)
        context = {
            **self.admin_site.each_context(request),
            **page,
            "opts": self.opts,
            "original": incident,
            "title": f"{incident.number} {incident.title}",
            "subtitle": None,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/incidents/incident/page.html", context)

    def page_state(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        user = request.user
        post = command_post_get(incident_id=incident.pk)
        may_command = self._may(request, incident, COMMAND)
        may_dispatch = self._may(request, incident, DISPATCH)
        state: dict[str, Any] = {
            "incident": incident,
            "allowed": allowed_actions(incident.status),
            "post": post,
            "post_open": post is not None and post.closed_at is None,
            "may_command": may_command,
            "may_dispatch": may_dispatch,
            "contact_visible": contact_visible(user, incident),
        }
        buttons = []
        for act in ACTS:
            may = may_dispatch if act.who == DISPATCH else may_command
            if may and act.shown(incident, state):
                buttons.append({"act": act, "url": self._act_url(incident, act.name)})
        tasks = incident_tasks(incident=incident)
        task_rows = []
        for task in tasks:
            possible = set(task_allowed_actions(task.status))
            task_rows.append(
                {
                    "task": task,
                    "actions": [
                        {"act": act, "url": self._task_url(incident, task, act.name)}
                        for act in TASK_ACTS
                        if may_dispatch and act.name in possible
                    ],
                }
            )
        recommendations = []
        if may_dispatch and incident.status in DISPATCHABLE_INCIDENT_STATUSES:
            recommendations = recommend_teams(incident=incident, limit=5)
        clocks = SlaClock.objects.filter(
            Q(subject_type=sla_services.SUBJECT_INCIDENT, subject_id=incident.pk)
            | Q(subject_type="task", subject_id__in=[t.pk for t in tasks])
        ).order_by("started_at", "id")
        teams = {task.pk: task.team.name for task in tasks}
        clock_rows = list(clocks)
        for clock in clock_rows:
            clock.team_name = teams.get(clock.subject_id) if clock.subject_type == "task" else ""
        state.update(
            {
                "buttons": buttons,
                "tasks": task_rows,
                "recommendations": recommendations,
                "clocks": clock_rows,
                "timeline": timeline_rows(incident_timeline(incident=incident)),
                "reports": list(
                    incident.reports.select_related("category").order_by("created_at", "id")
                ),
                "attachments": photo_links(
                    Attachment.objects.filter(
                        Q(incident=incident) | Q(report__incident=incident)
                    ).order_by("created_at", "id")
                ),
                "post_members": list(post.members.all()) if post is not None else [],
            }
        )
        return state

    # --- One action ----------------------------------------------------------------------------

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        act = ACTS_BY_NAME.get(action)
        incident = self.get_object(request, object_id)
        if incident is None or act is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        refusal = self._refusal(request, incident, act.who)
        if refusal is not None:
            return refusal
        context = self.form_context(request, incident, act.name)
        form = act.form(request.POST or None, context=context)
        if request.method == "POST" and form.is_valid():
            try:
                self.run(request, incident, act.name, form.cleaned_data)
            except ApplicationError as exc:
                self._show_refusal(request, form, exc, act.fields)
            else:
                self.message_user(request, act.done, messages.SUCCESS)
                return HttpResponseRedirect(self._page_url(incident))
        return self._render_action(request, incident, act, form, context)

    def task_action_view(
        self, request: HttpRequest, object_id: str, task_id: int, action: str
    ) -> HttpResponse:
        act = TASK_ACTS_BY_NAME.get(action)
        incident = self.get_object(request, object_id)
        task = (
            DispatchTask.objects.select_related("team")
            .filter(pk=task_id, incident=incident)
            .first()
            if incident is not None
            else None
        )
        if act is None or task is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        refusal = self._refusal(request, incident, DISPATCH)
        if refusal is not None:
            return refusal
        context = self.form_context(request, incident, f"task_{act.name}", task=task)
        form = act.form(request.POST or None, context=context)
        if request.method == "POST" and form.is_valid():
            try:
                self.run_task(request, task, act.name, form.cleaned_data)
            except ApplicationError as exc:
                self._show_refusal(request, form, exc, act.fields)
            else:
                self.message_user(request, act.done, messages.SUCCESS)
                return HttpResponseRedirect(self._page_url(incident))
        return self._render_action(request, incident, act, form, context, task=task)

    def run(self, request: HttpRequest, incident: Incident, action: str, data: dict) -> Any:
        """The one service call of each action (the same the API makes)."""
        by, pk = request.user, incident.pk
        if action in ("accept", "classify"):
            call = services.incident_accept if action == "accept" else services.incident_classify
            category = (
                Category.objects.filter(code=data["category"]).first() if data["category"] else None
            )
            return call(
                incident_id=pk,
                by=by,
                category=category,
                severity=data["severity"] or None,
                loop=data["loop"] or None,
            )
        if action == "reject":
            return services.incident_reject(incident_id=pk, by=by, reason=data["reason"])
        if action == "start":
            return services.incident_start(incident_id=pk, by=by)
        if action == "dispatch":
            return task_services.task_dispatch(
                incident_id=pk, team_ids=data["teams"], by=by, instructions=data["instructions"]
            )
        if action == "supervise":
            return sla_services.incident_supervise(incident_id=pk, by=by, reason=data["reason"])
        if action == "raise_loop":
            return sla_services.incident_raise_loop(incident_id=pk, by=by, reason=data["reason"])
        if action == "note":
            return services.incident_add_note(
                incident_id=pk, by=by, text=data["text"], public=data["public"]
            )
        if action == "casualties":
            return services.incident_revise_casualties(
                incident_id=pk,
                by=by,
                deaths=data["deaths"],
                injured=data["injured"],
                missing=data["missing"],
                trapped=data["trapped"],
                note=data["note"],
            )
        if action == "resolve":
            return services.incident_resolve(incident_id=pk, by=by, resolution=data["resolution"])
        if action == "close":
            return services.incident_close(incident_id=pk, by=by, note=data["note"])
        if action == "reopen":
            return services.incident_reopen(incident_id=pk, by=by, reason=data["reason"])
        if action == "confirm_closure":
            return sla_services.incident_verification_confirm(
                incident_id=pk, by=by, note=data["note"]
            )
        if action == "merge":
            target = self.get_object(request, str(data["into"]))
            if target is None or not incident_can_command(by, target):
                raise ApplicationError("not_found", _("That incident is not in your regions."))
            return services.incident_merge(incident_id=pk, into_id=target.pk, by=by)
        if action == "post_setup":
            return post_services.command_post_establish(
                incident_id=pk,
                by=by,
                commander_id=data["commander"],
                lat=data["lat"],
                lng=data["lng"],
                address=data["address"],
                member_ids=data["members"],
            )
        if action == "post_handover":
            return post_services.command_post_hand_over(
                incident_id=pk, by=by, commander_id=data["commander"], note=data["note"]
            )
        if action == "post_members":
            return post_services.command_post_members_change(
                incident_id=pk, by=by, add=data["add"], remove=data["remove"]
            )
        if action == "post_close":
            return post_services.command_post_close(incident_id=pk, by=by)
        raise AssertionError(action)  # pragma: no cover - ACTS and run() list the same names

    def run_task(self, request: HttpRequest, task: DispatchTask, action: str, data: dict) -> Any:
        by, pk = request.user, task.pk
        if action == "verify":
            return task_services.task_verify(task_id=pk, by=by)
        if action == "return":
            return task_services.task_return(task_id=pk, by=by, reason=data["reason"])
        if action == "instructions":
            return task_services.task_add_instructions(task_id=pk, by=by, text=data["text"])
        if action == "reassign":
            return task_services.task_reassign(
                task_id=pk, to_team_id=data["to_team"], by=by, reason=data["reason"]
            )
        if action == "cancel":
            return task_services.task_cancel(task_id=pk, by=by, reason=data["reason"])
        raise AssertionError(action)  # pragma: no cover

    # --- What the forms offer ------------------------------------------------------------------

    def form_context(
        self, request: HttpRequest, incident: Incident, action: str, *, task: Any = None
    ) -> dict[str, Any]:
        """Choices the action's form offers: recommended teams (with their reasons),
        merge candidates, the people a command post may have."""
        context: dict[str, Any] = {}
        if action in ("dispatch", "task_reassign"):
            ranked = recommend_teams(incident=incident, limit=RECOMMEND_LIMIT)
            if task is not None:
                ranked = [r for r in ranked if r.team.pk != task.team_id]
            context["recommendations"] = ranked
            context["team_choices"] = [
                (r.team.pk, f"{r.team.name}（{r.team.code}）") for r in ranked
            ]
        if action == "merge":
            candidates = duplicate_candidates(
                lat=incident.lat,
                lng=incident.lng,
                category=incident.category,
                at=incident.created_at,
                limit=MERGE_CANDIDATES,
                visible_to=request.user,
                exclude_ids=(incident.pk,),
            )
            context["candidates"] = candidates
            context["merge_choices"] = [
                (
                    c.incident.pk,
                    _("%(number)s %(title)s · %(distance).0f m")
                    % {
                        "number": c.incident.number,
                        "title": c.incident.title,
                        "distance": c.distance_m,
                    },
                )
                for c in candidates
            ]
        if action in ("post_setup", "post_handover", "post_members"):
            context["people"] = self._command_people(request, incident)
        if action == "post_members":
            post = command_post_get(incident_id=incident.pk)
            context["members"] = (
                [
                    (u.pk, f"{u.display_name or u.username}（{u.username}）")
                    for u in post.members.all()
                ]
                if post is not None
                else []
            )
        return context

    def _command_people(self, request: HttpRequest, incident: Incident) -> list[tuple[int, str]]:
        """Staff whose regions cover the incident (a post's commander and members)."""
        paths = [*incident.region.ancestor_paths, incident.region.path]
        users = (
            get_user_model()
            .objects.filter(
                is_active=True,
                memberships__in=Membership.objects.filter(
                    is_active=True, role__in=STAFF_ROLES, region__path__in=paths
                ),
            )
            .distinct()
            .order_by("username")
        )
        return [(u.pk, f"{u.display_name or u.username}（{u.username}）") for u in users]

    # --- Helpers -------------------------------------------------------------------------------

    def _may(self, request: HttpRequest, incident: Incident, who: str) -> bool:
        if not self.has_change_permission(request, incident):
            return False
        if who == DISPATCH:
            return task_can_command(request.user, incident)
        return incident_can_command(request.user, incident)

    def _refusal(self, request: HttpRequest, incident: Incident, who: str) -> HttpResponse | None:
        if self._may(request, incident, who):
            return None
        self.message_user(
            request,
            _("Your role does not allow this action on this incident."),
            messages.ERROR,
        )
        return HttpResponseRedirect(self._page_url(incident))

    def _show_refusal(
        self, request: HttpRequest, form: Any, exc: ApplicationError, fields: dict[str, str]
    ) -> None:
        if not f.errors_to_form(form, exc, fields):
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, _("Please correct the errors below."), messages.ERROR)

    def _render_action(
        self,
        request: HttpRequest,
        incident: Incident,
        act: Any,
        form: Any,
        context: dict[str, Any],
        *,
        task: Any = None,
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/incidents/incident/action.html",
            {
                **self.admin_site.each_context(request),
                **context,
                "opts": self.opts,
                "original": incident,
                "incident": incident,
                "task": task,
                "act": act,
                "form": form,
                "title": act.label,
                "page_url": self._page_url(incident),
                "contact_visible": contact_visible(request.user, incident),
            },
        )

    def _page_url(self, incident: Incident) -> str:
        return reverse("admin:incidents_incident_change", args=[incident.pk])

    def _act_url(self, incident: Incident, action: str) -> str:
        return reverse("admin:incidents_incident_act", args=[incident.pk, action])

    def _task_url(self, incident: Incident, task: DispatchTask, action: str) -> str:
        return reverse("admin:incidents_incident_task", args=[incident.pk, task.pk, action])

    # --- 电话接警 ---------------------------------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        context = {"region_choices": intake_region_choices(request.user)}
        form = IntakeForm(request.POST or None, context=context)
        if request.method == "POST" and form.is_valid():
            try:
                incident = self.intake(request, form.cleaned_data)
            except ApplicationError as exc:
                self._show_refusal(request, form, exc, {})
            else:
                self.message_user(
                    request,
                    _("Incident %(number)s created.") % {"number": incident.number},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._page_url(incident))
        picker = console_map.picker_config(request.user)
        response = TemplateResponse(
            request,
            "admin/incidents/incident/intake.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "title": _("Phone call intake"),
                "picker": json.dumps(picker, cls=DjangoJSONEncoder, ensure_ascii=False),
                "tiles_configured": picker["tiles"] is not None,
            },
        )
        console_map.allow_tile_images(response, console_map.tile_origins(picker["tiles"]))
        return response

    def intake(self, request: HttpRequest, data: dict[str, Any]) -> Incident:
        """Parse → place → the create service, as ``POST incidents/`` does."""
        region = Region.objects.filter(code=data["region"]).first() if data["region"] else None
        place = place_for_intake(lat=data["lat"], lng=data["lng"], region=region)
        if not role_scope(request.user, COMMAND_ROLES).covers(place.region.path):
            raise ApplicationError(
                "out_of_scope", _("This place is outside your regions."), status=403
            )
        category = Category.objects.get(code=data["category"], is_active=True)
        accept = data["accept"]
        return services.incident_create(
            category=category,
            region=place.region,
            lat=place.lat,
            lng=place.lng,
            source=Incident.Source.HOTLINE,
            title=data["title"],
            by=request.user,
            description=data["description"],
            address=data["address"],
            severity=data["severity"] or Incident.Severity.UNCLASSIFIED,
            loop=data["loop"] or Loop.SMALL,
            reporter_name=data["reporter_name"],
            reporter_phone=data["reporter_phone"],
            is_drill=data["is_drill"],
            status=Incident.Status.ACCEPTED if accept else Incident.Status.REPORTED,
        )

    # --- Bulk actions on the list (the same services, one incident at a time) -------------------

    @admin.action(description=_("Accept selected incidents"), permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        self._bulk(
            request,
            queryset,
            lambda i: services.incident_accept(incident_id=i.pk, by=request.user),
            _("%(count)d incident(s) accepted."),
        )

    @admin.action(description=_("Close selected incidents (verified)"), permissions=["change"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        note = request.POST.get("reason", "")
        self._bulk(
            request,
            queryset,
            lambda i: services.incident_close(incident_id=i.pk, by=request.user, note=note),
            _("%(count)d incident(s) closed."),
        )

    @admin.action(
        description=_("Verification failed: reopen selected (give the reason)"),
        permissions=["change"],
    )
    def reopen_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "").strip()
        if not reason:
            self.message_user(
                request, _("Enter what failed verification in the box."), messages.ERROR
            )
            return
        self._bulk(
            request,
            queryset,
            lambda i: services.incident_reopen(incident_id=i.pk, by=request.user, reason=reason),
            _("%(count)d incident(s) reopened."),
        )

    @admin.action(
        description=_("Confirm the closure of selected (after the citizen's feedback)"),
        permissions=["change"],
    )
    def confirm_closure_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        note = request.POST.get("reason", "")
        self._bulk(
            request,
            queryset,
            lambda i: sla_services.incident_verification_confirm(
                incident_id=i.pk, by=request.user, note=note
            ),
            _("%(count)d closure(s) confirmed."),
        )

    @admin.action(description=_("Supervise selected (督办)"), permissions=["change"])
    def supervise_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "")
        self._bulk(
            request,
            queryset,
            lambda i: sla_services.incident_supervise(
                incident_id=i.pk, by=request.user, reason=reason
            ),
            _("%(count)d incident(s) supervised."),
        )

    @admin.action(
        description=_("Raise the loop of selected (command moves up)"), permissions=["change"]
    )
    def raise_loop_selected(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        reason = request.POST.get("reason", "")
        self._bulk(
            request,
            queryset,
            lambda i: sla_services.incident_raise_loop(
                incident_id=i.pk, by=request.user, reason=reason
            ),
            _("%(count)d incident(s) raised."),
        )

    def _bulk(
        self, request: HttpRequest, queryset: QuerySet[Incident], call: Any, done: Any
    ) -> None:
        """Only incidents the user commands; the others are refused by name."""
        allowed = []
        for incident in queryset.select_related("region"):
            if incident_can_command(request.user, incident):
                allowed.append(incident.pk)
            else:
                self.message_user(
                    request,
                    _("%(object)s: your role does not allow this action on this incident.")
                    % {"object": incident},
                    messages.ERROR,
                )
        run_each(self, request, queryset.filter(pk__in=allowed), call, done)
