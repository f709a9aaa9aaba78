"""Reads of the notifications app (conventions, Layers)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.selectors import user_list_visible
from apps.core.scoping import scope_for
from apps.notifications.models import Channel, Notification, NotificationPreference


def notification_list_visible(*, viewer: Any) -> QuerySet[Notification]:
    """Outbox rows ``viewer`` may see: messages to people they may see, and topic
    messages of regions in their scope (admin). Superusers and global scopes see all."""
    scope = scope_for(viewer)
    if getattr(viewer, "is_superuser", False) or scope.is_global:
        return Notification.objects.all()
    people = user_list_visible(viewer=viewer).values("pk")
    regions = scope.q("region__path") if scope.paths else Q(pk__in=[])
    return Notification.objects.filter(Q(user__in=people) | (Q(user__isnull=True) & regions))


def preference_list_visible(*, viewer: Any) -> QuerySet[NotificationPreference]:
    if getattr(viewer, "is_superuser", False) or scope_for(viewer).is_global:
        return NotificationPreference.objects.all()
    return NotificationPreference.objects.filter(
        user__in=user_list_visible(viewer=viewer).values("pk")
    )


def preference_for(*, user: Any) -> NotificationPreference:
    """The user's preference, or the defaults (unsaved) when they never set one."""
    found = NotificationPreference.objects.filter(user_id=user.pk).first()
    return found if found is not None else NotificationPreference(user=user)


def recipient_ids(*, dedupe_key_prefix: str) -> list[int]:
    """The users who were sent (or are being sent) the pushes of a prefix."""
    return sorted(
        set(
            Notification.objects.filter(
                dedupe_key__startswith=f"{dedupe_key_prefix}:",
                channel=Channel.PUSH,
                user__isnull=False,
            ).values_list("user_id", flat=True)
        )
    )
