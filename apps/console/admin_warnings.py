"""Early warnings (预警) in the command centre: compose, approve, update, cancel, and the
acknowledgement board (叫应看板), all through ``apps.early_warnings.services``.

URLs (under ``/admin/early_warnings/warningversion/``; the plain read-only admin of
``apps.early_warnings.admin`` is replaced here by this subclass):

=====================================  ================================================
``(list)``                             every version whose targets overlap my scope
                                       (``selectors.staff_scope_q``, the API's rule)
``add/``                               撰写预警: a draft (optionally submitted at once)
``<id>/change/``                       the warning page: content, targets, the approval
                                       rule that applies and who may approve, buttons,
                                       the chain's timeline, the 叫应 board
``<id>/act/<action>/``                 edit / submit / approve / reject / update /
                                       cancel: GET the confirmation page, POST the one
                                       service call
``<id>/acks/``                         the 叫应 board as JSON (the page's live refresh)
=====================================  ================================================

Who may act is the services' (capabilities ``warning.compose`` / ``warning.approve``
and the approval rule, ``apps.early_warnings.approval``); the buttons are a hint from
the same functions. A version outside the user's scope does not exist for them (the
admin's "does not exist" redirect; the JSON answers 404).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from apps.accounts.models import Membership
from apps.accounts.permissions import Capability, can, can_somewhere, capability_scope
from apps.console import map as console_map
from apps.console import warning_forms as wf
from apps.console.forms import NoInputForm, errors_to_form
from apps.console.selectors import board_streams
from apps.core.errors import DEFAULT_MESSAGES, ApplicationError, ErrorCode
from apps.core.exceptions import envelope
from apps.early_warnings import services
from apps.early_warnings.admin import WarningVersionAdmin
from apps.early_warnings.approval import ROLES_FOR, approver_rule_for, decide, target_regions
from apps.early_warnings.models import (
    MsgType,
    WarningStatus,
    WarningTimelineEntry,
    WarningVersion,
)
from apps.early_warnings.selectors import ack_board, staff_scope_q
from apps.incidents.models import Incident
from apps.regions.models import LEVEL_DEPTH, Region

INCIDENT_CHOICES = 200  # open incidents offered as a link, newest first
APPROVERS_SHOWN = 12
ACK_REFRESH_SECONDS = 30  # the board's fallback refetch (the socket is the live path)


@dataclass(frozen=True)
class Act:
    name: str
    label: Any
    done: Any
    style: str = "default"
    help: Any = ""


ACTS: tuple[Act, ...] = (
    Act("edit", _("Edit the draft"), _("Draft saved.")),
    Act(
        "submit",
        _("Submit for approval"),
        _("Submitted for approval."),
        "primary",
        _("The approver named on the warning page decides."),
    ),
    Act(
        "approve",
        _("Approve and publish"),
        _("Warning approved and published."),
        "primary",
        _("Publishing tells citizens, the boards and every responsible person at once."),
    ),
    Act(
        "reject",
        _("Refuse"),
        _("Warning refused; back to draft."),
        "danger",
        _("The draft goes back to its author with your reason."),
    ),
    Act(
        "update",
        _("Update (new version)"),
        _("Update saved."),
        "primary",
        _("A new version, pre-filled from the one in force; it is approved like the first."),
    ),
    Act(
        "cancel",
        _("Cancel the warning (all-clear)"),
        _("Cancel saved."),
        "danger",
        _("The all-clear is approved like an update; the warning ends when it is published."),
    ),
)
ACTS_BY_NAME = {act.name: act for act in ACTS}


# --- Helpers the pages share -------------------------------------------------------------------


def compose_region_choices(user: Any) -> list[tuple[str, str]]:
    """The regions ``user`` may target (``warning.compose``), in tree order, as
    (code, name); the template indents them by depth."""
    scope = capability_scope(user, Capability.WARNING_COMPOSE)
    if scope.is_empty:
        return []
    regions = Region.objects.active().filter(scope.q("path")).order_by("path")
    return [(r.code, r.name_zh) for r in regions]


def region_tree(user: Any, chosen: list[str]) -> list[dict[str, Any]]:
    """The checkbox tree of the compose page: each region with its depth, whether it is
    ticked, and whether a ticked ancestor already covers it."""
    scope = capability_scope(user, Capability.WARNING_COMPOSE)
    if scope.is_empty:
        return []
    regions = list(Region.objects.active().filter(scope.q("path")).order_by("path"))
    ticked_paths = [r.path for r in regions if r.code in chosen]
    return [
        {
            "code": r.code,
            "name": r.name_zh,
            "depth": r.depth,
            "parent": r.path.rstrip("/").rsplit("/", 2)[-2] if r.depth else "",
            "ticked": r.code in chosen,
            "covered": any(r.path != p and r.path.startswith(p) for p in ticked_paths),
        }
        for r in regions
    ]


def incident_choices(user: Any) -> list[tuple[int, str]]:
    rows = (
        Incident.objects.visible_to(user)
        .open()
        .order_by("-created_at", "-id")
        .values_list("pk", "number", "title")[:INCIDENT_CHOICES]
    )
    return [(pk, f"{number} {title}") for pk, number, title in rows]


def approval_hint(version: WarningVersion) -> dict[str, Any] | None:
    """The rule that applies, in words ("needs a commander of 沣东新城 or above"), and
    the people who hold such a membership (the author excepted unless allowed)."""
    rule = approver_rule_for(version)
    regions = target_regions(version)
    if rule is None or not regions:
        return None
    parts = [r.path.strip("/").split("/") for r in regions]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    depth = min(len(common) - 1, LEVEL_DEPTH[rule.approver_level])
    approver_path = "/" + "/".join(common[: depth + 1]) + "/"
    approver_region = Region.objects.filter(path=approver_path).first()
    above = approver_region.ancestor_paths if approver_region is not None else []
    memberships = Membership.objects.filter(
        is_active=True,
        region__is_active=True,
        role__in=ROLES_FOR[rule.approver_role],
        region__path__in=[*above, approver_path],
    )
    people = get_user_model().objects.filter(is_active=True, memberships__in=memberships)
    if not rule.allow_self_approval and version.created_by_id:
        people = people.exclude(pk=version.created_by_id)
    names = [
        u.display_name or u.username
        for u in people.distinct().order_by("username")[:APPROVERS_SHOWN]
    ]
    return {
        "rule": rule,
        "text": _("Approved by: %(role)s of %(region)s or of a region above it")
        % {
            "role": rule.get_approver_role_display(),
            "region": approver_region.name_zh if approver_region else approver_path,
        },
        "people": names,
        "self_approval": rule.allow_self_approval,
    }


def _person(user: Any) -> str:
    return (getattr(user, "display_name", "") or user.username) if user is not None else ""


def ack_board_data(version: WarningVersion) -> dict[str, Any]:
    """The 叫应 board as the page and its JSON show it: every person asked, silent first,
    with when and how they answered or how long they have been silent (seconds)."""
    board = ack_board(version=version)
    now = timezone.now()
    since = version.sent or version.approved_at
    rows = []
    for row in board.rows:
        acked = row.acked_at
        rows.append(
            {
                "id": row.pk,
                "user_id": row.user_id,
                "name": _person(row.user),
                "region": row.region.name_zh,
                "role": row.get_role_display(),
                "acked": acked is not None,
                "acked_at": timezone.localtime(acked).strftime("%Y-%m-%d %H:%M:%S")
                if acked
                else "",
                "channel": row.get_channel_display() if acked else "",
                "answered_after": int((acked - since).total_seconds()) if acked and since else None,
                "silent_for": int((now - since).total_seconds()) if not acked and since else None,
                "since": since.isoformat() if since else "",
            }
        )
    return {
        "version": version.pk,
        "acked": board.acked,
        "silent": board.silent,
        "total": len(rows),
        "rows": rows,
        "now": now.isoformat(),
    }


# --- The admin ---------------------------------------------------------------------------------


admin.site.unregister(WarningVersion)


@admin.register(WarningVersion)
class WarningAdmin(WarningVersionAdmin):
    """The warning pages of the command centre (the module docstring)."""

    list_display = (
        "__str__",
        "msg_type",
        "status",
        "level",
        "warning_type",
        "title",
        "onset",
        "expires",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[WarningVersion]:
        # The API's rule (targets overlap my scope), not only the chain's region: a
        # street's duty officer sees the new town's warning that covers their street.
        ids = WarningVersion.objects.filter(staff_scope_q(request.user)).values("pk")
        return ModelAdmin.get_queryset(self, request).filter(pk__in=ids)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return ModelAdmin.has_view_permission(self, request, obj) and can_somewhere(
            request.user, Capability.WARNING_READ
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return ModelAdmin.has_view_permission(self, request) and can_somewhere(
            request.user, Capability.WARNING_COMPOSE
        )

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
            path("<path:object_id>/acks/", view(self.acks_view), name="{}_{}_acks".format(*info)),
            *super().get_urls(),
        ]

    def _page_url(self, version: WarningVersion) -> str:
        return reverse("admin:early_warnings_warningversion_change", args=[version.pk])

    def _act_url(self, version: WarningVersion, action: str) -> str:
        return reverse("admin:early_warnings_warningversion_act", args=[version.pk, action])

    def _version(self, request: HttpRequest, object_id: str) -> WarningVersion | None:
        if not str(object_id).isdigit():
            return None
        return (
            self.get_queryset(request)
            .select_related("chain__region", "created_by", "approved_by", "incident")
            .prefetch_related("targets__region")
            .filter(pk=int(object_id))
            .first()
        )

    # --- Compose -------------------------------------------------------------------------------

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        user = request.user
        context = {
            "region_choices": compose_region_choices(user),
            "incident_choices": incident_choices(user),
            "offer_submit": True,
        }
        now = timezone.localtime()
        initial = {
            "onset": wf.local_input(now),
            "expires": wf.local_input(now + timedelta(hours=12)),
        }
        form = wf.ComposeForm(request.POST or None, initial=initial, context=context)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                version = services.warning_create(
                    by=user,
                    targets=data["targets"],
                    incident_id=data.get("incident"),
                    **{name: data[name] for name in wf.CONTENT_FIELDS},
                )
            except ApplicationError as exc:
                self._show_refusal(request, form, exc)
            else:
                self.message_user(request, _("Draft saved."), messages.SUCCESS)
                if data.get("submit_now"):
                    try:
                        services.warning_submit(version_id=version.pk, by=user)
                    except ApplicationError as exc:
                        self.message_user(request, exc.message, messages.ERROR)
                    else:
                        self.message_user(request, _("Submitted for approval."), messages.SUCCESS)
                return HttpResponseRedirect(self._page_url(version))
        return self._render_compose(request, form, None, ACTS_BY_NAME["edit"], is_new=True)

    def _render_compose(
        self,
        request: HttpRequest,
        form: Any,
        version: WarningVersion | None,
        act: Act,
        *,
        is_new: bool = False,
    ) -> HttpResponse:
        chosen = list(form["targets"].value() or [])
        picker = {
            **console_map.picker_config(request.user),
            "regions_url": reverse("admin:console_dutydesk_map_data", args=["regions"]),
        }
        response = TemplateResponse(
            request,
            "admin/early_warnings/warningversion/compose.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "form": form,
                "act": act,
                "version": version,
                "is_new": is_new,
                "title": _("Compose a warning") if is_new else act.label,
                "tree": region_tree(request.user, chosen),
                "picker": json.dumps(picker, cls=DjangoJSONEncoder, ensure_ascii=False),
                "tiles_configured": picker["tiles"] is not None,
                "page_url": self._page_url(version) if version is not None else None,
            },
        )
        console_map.allow_tile_images(response, console_map.tile_origins(picker["tiles"]))
        return response

    # --- The warning page ----------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        version = self._version(request, object_id)
        if version is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, version) or request.method != "GET":
            raise PermissionDenied  # read-only: every change is an action (act/<action>/)
        user = request.user
        buttons = [
            {"act": ACTS_BY_NAME[name], "url": self._act_url(version, name)}
            for name in self.allowed(request, version)
        ]
        versions = list(WarningVersion.objects.filter(chain=version.chain).order_by("number", "id"))
        timeline = list(
            WarningTimelineEntry.objects.filter(chain=version.chain)
            .select_related("actor", "version")
            .order_by("at", "id")
        )
        has_board = version.msg_type != MsgType.CANCEL and version.sent is not None
        board = ack_board_data(version) if has_board else None
        streams = board_streams(user) if has_board else []
        config = {
            "url": reverse("admin:early_warnings_warningversion_acks", args=[version.pk]),
            "version": version.pk,
            "streams": streams,
            "wsPath": "/ws/v1/events/",
            "refresh": ACK_REFRESH_SECONDS,
            "live": version.status == WarningStatus.PUBLISHED,
            "strings": {
                "silent": str(_("silent")),
                "answered": str(_("answered")),
                "state_live": str(_("live")),
                "state_connecting": str(_("connecting…")),
                "state_polling": str(_("refreshing every %(s)d s") % {"s": ACK_REFRESH_SECONDS}),
            },
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": version,
            "version": version,
            "title": str(version.title),
            "subtitle": None,
            "has_view_permission": True,
            "targets": target_regions(version),
            "buttons": buttons,
            "approval": approval_hint(version),
            "may_approve": "approve" in [b["act"].name for b in buttons],
            "versions": versions,
            "timeline": timeline,
            "board": board,
            "board_config": json.dumps(config, cls=DjangoJSONEncoder, ensure_ascii=False),
        }
        return TemplateResponse(request, "admin/early_warnings/warningversion/page.html", context)

    def allowed(self, request: HttpRequest, version: WarningVersion) -> list[str]:
        """The buttons to show: the state and the user's capabilities (a hint; the
        service decides and its refusal is shown)."""
        user = request.user
        regions = target_regions(version)
        compose = bool(regions) and all(
            can(user, Capability.WARNING_COMPOSE, r.path) for r in regions
        )
        names: list[str] = []
        if version.status == WarningStatus.DRAFT and compose:
            names += ["edit", "submit"]
        if version.status == WarningStatus.PENDING_APPROVAL:
            if decide(user, version).allowed or (
                version.msg_type != MsgType.ALERT
                and decide(user, version, author_may_approve=True).allowed
            ):
                names.append("approve")
            if decide(user, version, author_may_approve=True).allowed:
                names.append("reject")
        if version.status == WarningStatus.PUBLISHED and compose:
            busy = WarningVersion.objects.filter(
                chain_id=version.chain_id,
                status__in=(WarningStatus.DRAFT, WarningStatus.PENDING_APPROVAL),
            ).exists()
            if not busy:
                names += ["update", "cancel"]
        return names

    # --- One action ----------------------------------------------------------------------------

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        act = ACTS_BY_NAME.get(action)
        version = self._version(request, object_id)
        if version is None or act is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        capability = (
            Capability.WARNING_APPROVE
            if action in ("approve", "reject")
            else Capability.WARNING_COMPOSE
        )
        if not all(can(request.user, capability, r.path) for r in target_regions(version)):
            self.message_user(
                request,
                _("Your role does not allow this action on this warning."),
                messages.ERROR,
            )
            return HttpResponseRedirect(self._page_url(version))
        if action in ("edit", "update"):
            return self._content_action(request, version, act)
        form_class = wf.WarningReasonForm if action in ("reject", "cancel") else NoInputForm
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = self.run(request, version, action, form.cleaned_data)
            except ApplicationError as exc:
                self._show_refusal(request, form, exc)
            else:
                return self._done(request, act, result)
        return self._render_action(request, version, act, form)

    def _content_action(
        self, request: HttpRequest, version: WarningVersion, act: Act
    ) -> HttpResponse:
        """edit (a draft) and update (a published warning): the compose form, pre-filled."""
        user = request.user
        context = {
            "region_choices": compose_region_choices(user),
            "incident_choices": incident_choices(user) if act.name == "edit" else None,
        }
        initial: dict[str, Any] = {name: getattr(version, name) for name in wf.CONTENT_FIELDS}
        initial["onset"] = wf.local_input(version.onset)
        initial["expires"] = wf.local_input(version.expires)
        old_targets = sorted(r.code for r in target_regions(version))
        initial["targets"] = old_targets
        initial["incident"] = version.incident_id
        # Targets the user cannot pick stay choosable so a pre-filled form is valid
        # (the service refuses them if the user may not issue warnings there).
        known = {code for code, _name in context["region_choices"]}
        context["region_choices"] += [
            (r.code, r.name_zh) for r in target_regions(version) if r.code not in known
        ]
        form = wf.ComposeForm(request.POST or None, initial=initial, context=context)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            changes = {
                name: data[name]
                for name in wf.CONTENT_FIELDS
                if data[name] != getattr(version, name)
            }
            targets = sorted(data["targets"]) if sorted(data["targets"]) != old_targets else None
            try:
                if act.name == "edit":
                    if data.get("incident") != version.incident_id:
                        changes["incident_id"] = data.get("incident")
                    result = services.warning_update_draft(
                        version_id=version.pk, by=user, targets=targets, **changes
                    )
                else:
                    result = services.warning_update(
                        version_id=version.pk, by=user, targets=targets, **changes
                    )
            except ApplicationError as exc:
                self._show_refusal(request, form, exc)
            else:
                return self._done(request, act, result)
        return self._render_compose(request, form, version, act)

    def run(self, request: HttpRequest, version: WarningVersion, action: str, data: dict) -> Any:
        """The one service call of each action (the same the API and tasks make)."""
        by, pk = request.user, version.pk
        if action == "submit":
            return services.warning_submit(version_id=pk, by=by)
        if action == "approve":
            return services.warning_approve(version_id=pk, by=by)
        if action == "reject":
            return services.warning_reject(version_id=pk, by=by, reason=data["reason"])
        if action == "cancel":
            return services.warning_cancel(version_id=pk, by=by, reason=data["reason"])
        raise AssertionError(action)  # pragma: no cover - ACTS and run() list the same names

    def _done(self, request: HttpRequest, act: Act, result: WarningVersion) -> HttpResponse:
        self.message_user(request, act.done, messages.SUCCESS)
        published = result.status == WarningStatus.PUBLISHED and act.name == "update"
        if published or (result.status == WarningStatus.CANCELLED and act.name == "cancel"):
            self.message_user(request, _("Published at once: you approved the warning in force."))
        return HttpResponseRedirect(self._page_url(result))

    def _show_refusal(self, request: HttpRequest, form: Any, exc: ApplicationError) -> None:
        if errors_to_form(form, exc, {"incident_id": "incident"}):
            self.message_user(request, _("Please correct the errors below."), messages.ERROR)
        else:
            self.message_user(request, exc.message, messages.ERROR)

    def _render_action(
        self, request: HttpRequest, version: WarningVersion, act: Act, form: Any
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/early_warnings/warningversion/action.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": version,
                "version": version,
                "targets": target_regions(version),
                "approval": approval_hint(version),
                "act": act,
                "form": form,
                "title": act.label,
                "page_url": self._page_url(version),
            },
        )

    # --- The 叫应 board as JSON ----------------------------------------------------------------

    def acks_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        version = self._version(request, object_id) if self.has_view_permission(request) else None
        if version is None:
            code = ErrorCode.NOT_FOUND
            return JsonResponse(envelope(code, DEFAULT_MESSAGES[code]), status=404)
        return JsonResponse(ack_board_data(version), json_dumps_params={"ensure_ascii": False})
