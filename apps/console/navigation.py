"""The admin's sidebar, built per request: each entry shows only if the user may open
the page behind it (the same ``has_perm`` the page checks), so an operator sees the
pages of the work and an administrator also the system's internals.

Wired in ``settings.UNFOLD["SIDEBAR"]``; 值班台 and 一张图 are ``apps.console.admin``'s
duty-desk pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Role


def is_admin(request: HttpRequest) -> bool:
    """Superusers and holders of an administrator membership see the internals."""
    user = request.user
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_xems_console_admin", None)
    if cached is None:
        cached = user.memberships.filter(
            role=Role.ADMIN, is_active=True, region__is_active=True
        ).exists()
        user._xems_console_admin = cached
    return bool(cached)


def can(*perms: str) -> Callable[[HttpRequest], bool]:
    """A permission callback: the user has every one of ``perms``."""

    def check(request: HttpRequest) -> bool:
        return all(request.user.has_perm(perm) for perm in perms)

    return check


def _changelist(model: str, **query: str) -> Any:
    url = reverse_lazy(f"admin:{model.replace('.', '_')}_changelist")
    if not query:
        return url
    return lambda request: f"{url}?{urlencode(query)}"


def _item(title: Any, icon: str, link: Any, permission: Any) -> dict[str, Any]:
    return {"title": title, "icon": icon, "link": link, "permission": permission}


def sidebar(request: HttpRequest) -> list[dict[str, Any]]:
    """The groups of the sidebar, top to bottom in the order of a duty shift."""
    admin = is_admin
    return [
        {
            "title": _("Duty"),
            "separator": False,
            "items": [
                _item(_("Dashboard"), "dashboard", reverse_lazy("admin:index"), None),
                _item(
                    _("Duty board"),
                    "view_kanban",
                    reverse_lazy("admin:console_dutydesk_board"),
                    can("console.view_dutydesk"),
                ),
                _item(
                    _("Map"),
                    "map",
                    reverse_lazy("admin:console_dutydesk_map"),
                    can("console.view_dutydesk"),
                ),
                _item(
                    _("Phone call intake"),
                    "call",
                    reverse_lazy("admin:incidents_incident_add"),
                    lambda r: _may_add_incident(r),
                ),
                _item(
                    _("Triage queue"),
                    "inbox",
                    _changelist("incidents.report", status__exact="submitted"),
                    can("incidents.view_report"),
                ),
                _item(
                    _("Incidents"),
                    "emergency",
                    _changelist("incidents.incident"),
                    can("incidents.view_incident"),
                ),
                _item(
                    _("Dispatch tasks"),
                    "local_shipping",
                    _changelist("dispatch.dispatchtask"),
                    can("dispatch.view_dispatchtask"),
                ),
                _item(
                    _("Overdue and supervision"),
                    "alarm",
                    _changelist("sla.slaclock"),
                    can("sla.view_slaclock"),
                ),
                _item(
                    _("Escalation log"),
                    "trending_up",
                    _changelist("sla.escalation"),
                    can("sla.view_escalation"),
                ),
                _item(
                    _("Command posts"),
                    "flag",
                    _changelist("dispatch.commandpost"),
                    can("dispatch.view_commandpost"),
                ),
            ],
        },
        {
            "title": _("Early warnings"),
            "separator": True,
            "collapsible": True,
            "items": [
                _item(
                    _("Warnings"),
                    "warning",
                    _changelist("early_warnings.warningversion"),
                    _may_warning("early_warnings.view_warningversion", "WARNING_READ"),
                ),
                _item(
                    _("Compose a warning"),
                    "edit_note",
                    reverse_lazy("admin:early_warnings_warningversion_add"),
                    _may_warning("early_warnings.view_warningversion", "WARNING_COMPOSE"),
                ),
                _item(
                    _("Awaiting approval"),
                    "approval",
                    _changelist("early_warnings.warningversion", status__exact="pending_approval"),
                    _may_warning("early_warnings.view_warningversion", "WARNING_APPROVE"),
                ),
                _item(
                    _("Responsible persons"),
                    "contact_phone",
                    _changelist("early_warnings.responsibleperson"),
                    can("early_warnings.view_responsibleperson"),
                ),
                _item(
                    _("Approval rules"),
                    "rule",
                    _changelist("early_warnings.approvalrule"),
                    can("early_warnings.view_approvalrule"),
                ),
            ],
        },
        {
            "title": _("Teams"),
            "separator": True,
            "collapsible": True,
            "items": [
                _item(
                    _("Teams"), "groups", _changelist("dispatch.team"), can("dispatch.view_team")
                ),
                _item(
                    _("Team members"),
                    "badge",
                    _changelist("dispatch.teammember"),
                    can("dispatch.view_teammember"),
                ),
                _item(
                    _("Shifts"),
                    "schedule",
                    _changelist("dispatch.shift"),
                    can("dispatch.view_shift"),
                ),
                _item(
                    _("Departments"),
                    "apartment",
                    _changelist("dispatch.department"),
                    can("dispatch.view_department"),
                ),
            ],
        },
        {
            "title": _("Analysis"),
            "separator": True,
            "collapsible": True,
            "items": [
                _item(
                    _("First-time KPIs"),
                    "monitoring",
                    reverse_lazy("admin:analytics_kpireport_changelist"),
                    can("analytics.view_kpireport"),
                ),
            ],
        },
        {
            "title": _("People and places"),
            "separator": True,
            "collapsible": True,
            "items": [
                _item(
                    _("Users"), "person", _changelist("accounts.user"), can("accounts.view_user")
                ),
                _item(
                    _("Memberships"),
                    "how_to_reg",
                    _changelist("accounts.membership"),
                    can("accounts.view_membership"),
                ),
                _item(
                    _("Regions"),
                    "account_tree",
                    _changelist("regions.region"),
                    can("regions.view_region"),
                ),
            ],
        },
        {
            "title": _("System"),
            "separator": True,
            "collapsible": True,
            "items": [
                _item(_("Categories"), "category", _changelist("incidents.category"), admin),
                _item(_("SLA policies"), "timer", _changelist("sla.slapolicy"), admin),
                _item(
                    _("Notifications outbox"),
                    "outbox",
                    _changelist("notifications.notification"),
                    admin,
                ),
                _item(_("Devices"), "smartphone", _changelist("accounts.device"), admin),
                _item(_("Open311 API keys"), "key", _changelist("open311.apikey"), admin),
                _item(_("Groups"), "group_work", _changelist("auth.group"), admin),
            ],
        },
    ]


def _may_warning(perm: str, capability: str) -> Callable[[HttpRequest], bool]:
    """The page's permission and the warning capability somewhere in the tree."""

    def check(request: HttpRequest) -> bool:
        from apps.accounts.permissions import Capability, can_somewhere

        return request.user.has_perm(perm) and can_somewhere(
            request.user, getattr(Capability, capability)
        )

    return check


def _may_add_incident(request: HttpRequest) -> bool:
    from apps.accounts.permissions import role_scope
    from apps.incidents.selectors.incidents import COMMAND_ROLES

    return (
        request.user.has_perm("incidents.view_incident")
        and not role_scope(request.user, COMMAND_ROLES).is_empty
    )


def stylesheet(request: HttpRequest) -> str:
    return static("console/console.css")


def script(request: HttpRequest) -> str:
    return static("console/console.js")
