"""Role → Django Group with the admin permissions that role needs.

Region scope decides *which rows* a staff member sees (``apps.core.scoping``); these
groups decide *which admin pages and actions* they get. One group per staff role, named
by the role value, recreated idempotently after every ``migrate`` so a new model's
permissions reach the roles without a data migration.

The scope does not depend on the level: an operator membership at a community (the
community duty officer, 社区值班员) gets the operator's pages, showing that community's
rows only, and may grant roles up to operator inside it — grid workers, say. Field
roles (responder, team leader, grid worker) get no group: they work in the mobile app,
and ``is_staff`` stays off for them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from apps.accounts.models import STAFF_ROLES, Role

logger = logging.getLogger(__name__)

# (app_label, codename) pairs; "*" grants every permission of that app.
_OPERATOR = {
    ("regions", "view_region"),
    ("accounts", "view_user"),
    ("accounts", "view_membership"),
    ("accounts", "add_membership"),
    ("accounts", "change_membership"),
    ("accounts", "view_device"),
}
# The audit trail (apps.audit): commanders and administrators answer for what happens in
# their regions, so they may search who did and read what there (SECURITY.md).
_AUDIT_VIEW = ("audit", "view_auditentry")
ROLE_PERMISSIONS: dict[str, frozenset[tuple[str, str]]] = {
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.COMMANDER: frozenset({*_OPERATOR, ("accounts", "change_user"), _AUDIT_VIEW}),
    # Liaisons look people and places up; they manage nobody.
    Role.DEPARTMENT_LIAISON: frozenset(
        {("regions", "view_region"), ("accounts", "view_user"), ("accounts", "view_membership")}
    ),
    Role.ADMIN: frozenset({("accounts", "*"), ("regions", "*"), _AUDIT_VIEW}),
}


def register_role_permissions(role: str, pairs: set[tuple[str, str]]) -> None:
    """Let an app above accounts add the admin permissions its roles need.

    Called from that app's ``AppConfig.ready()`` (accounts must not import it: layers).
    The next ``ensure_role_groups()`` (after every migrate) applies them.
    """
    ROLE_PERMISSIONS[role] = frozenset({*ROLE_PERMISSIONS.get(role, frozenset()), *pairs})


def role_group_name(role: str) -> str:
    return str(role)


def _permissions_for(pairs: frozenset[tuple[str, str]]) -> list[Permission]:
    condition = Q(pk__in=[])
    for app_label, codename in pairs:
        if codename == "*":
            condition |= Q(content_type__app_label=app_label)
        else:
            condition |= Q(content_type__app_label=app_label, codename=codename)
    return list(Permission.objects.filter(condition))


@transaction.atomic
def ensure_role_groups() -> dict[str, Group]:
    """Create or refresh one group per staff role with exactly its permissions.

    Idempotent: running it twice changes nothing the second time. Permissions whose
    model does not exist yet are simply absent (they join on the next migrate).
    """
    groups: dict[str, Group] = {}
    for role in sorted(STAFF_ROLES):
        group, _created = Group.objects.get_or_create(name=role_group_name(role))
        group.permissions.set(_permissions_for(ROLE_PERMISSIONS[role]))
        groups[role] = group
    return groups


def ensure_role_groups_after_migrate(**kwargs: Any) -> None:
    """``post_migrate`` receiver (wiring only): keep the role groups current, once per
    migrate, after the last installed app's permissions were created (each app's
    permissions appear on its own ``post_migrate``, in ``INSTALLED_APPS`` order)."""
    from django.apps import apps

    last = list(apps.get_app_configs())[-1]
    if kwargs.get("app_config") is last:
        ensure_role_groups()
