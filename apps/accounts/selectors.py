"""Reads of the accounts app (conventions, Layers), each scoped to the asking user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import ROLE_RANK, Device, Membership, Role, User
from apps.core.scoping import Scope, restrict, scope_for


@dataclass(frozen=True)
class Profile:
    """What ``GET me/`` shows: who I am, what I hold where, and what I can see."""

    user: User
    memberships: list[Membership]
    roles: list[str]
    scope: Scope


def membership_list_active(*, user: User) -> list[Membership]:
    """The user's live memberships with their regions (one query)."""
    return list(
        Membership.objects.filter(user=user, is_active=True, region__is_active=True)
        .select_related("region")
        .order_by("region__path", "role")
    )


def user_profile(*, user: User) -> Profile:
    memberships = membership_list_active(user=user)
    held = {m.role for m in memberships}
    # Senior roles first; a person with no membership is a citizen.
    roles = sorted(held, key=lambda r: (-ROLE_RANK[r], r)) or [Role.CITIZEN.value]
    return Profile(user=user, memberships=memberships, roles=roles, scope=scope_for(user))


def device_list_for_user(*, user: User) -> QuerySet[Device]:
    """The user's own active devices (never anyone else's, whatever their scope)."""
    return Device.objects.filter(user=user, is_active=True)


def user_list_visible(*, viewer: User) -> QuerySet[User]:
    """Users holding an active membership inside ``viewer``'s scope.

    A subquery rather than a join: one user with three memberships must appear once,
    and the active-flag and region conditions must hold for the *same* membership.
    """
    scope = scope_for(viewer)
    if scope.is_global:
        return User.objects.all()
    memberships = restrict(Membership.objects.filter(is_active=True), viewer, "region__path")
    return User.objects.filter(pk__in=memberships.values("user_id"))


def membership_list_visible(*, viewer: User) -> QuerySet[Membership]:
    return restrict(Membership.objects.all(), viewer, "region__path")


def device_list_visible(*, viewer: User) -> QuerySet[Device]:
    """Devices of the users ``viewer`` may see (admin)."""
    scope = scope_for(viewer)
    if scope.is_global:
        return Device.objects.all()
    return Device.objects.filter(user__in=user_list_visible(viewer=viewer).values("pk"))


def user_rank(*, user: User) -> int:
    """The most senior role rank the user holds anywhere (-1 with no membership)."""
    roles = Membership.objects.filter(user=user, is_active=True).values_list("role", flat=True)
    return max((ROLE_RANK[r] for r in roles), default=-1)


def user_is_administrator(user: Any) -> bool:
    """Superusers and holders of an active administrator membership: the people who see
    the system's internals in the admin (outboxes, devices, groups, taxonomies). Cached
    on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_xems_is_administrator", None)
    if cached is None:
        cached = Membership.objects.filter(
            user=user, role=Role.ADMIN, is_active=True, region__is_active=True
        ).exists()
        user._xems_is_administrator = cached
    return bool(cached)
