"""Memberships → scope: the resolver behind ``apps.core.scoping.scope_for``."""

from __future__ import annotations

from typing import Any

from apps.core.scoping import GLOBAL_SCOPE, Scope


def resolve_scope(user: Any) -> Scope:
    """Superusers and holders of the admin role at the root see everything; everyone
    else sees the subtrees of their active memberships (citizens have none)."""
    if user.is_superuser:
        return GLOBAL_SCOPE
    from apps.accounts.models import Membership, Role

    rows = list(
        Membership.objects.filter(user=user, is_active=True, region__is_active=True)
        .exclude(role=Role.CITIZEN)
        .values_list("role", "region__path", "region__parent_id")
    )
    if any(role == Role.ADMIN and parent_id is None for role, _path, parent_id in rows):
        return GLOBAL_SCOPE
    return Scope.from_paths(path for _role, path, _parent in rows)
