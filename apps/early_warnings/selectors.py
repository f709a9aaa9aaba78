"""Reads of early warnings (conventions R9): the citizen's, the responder's, the operator's.

- Citizens (anonymous allowed): the warnings in force at a place — every published
  version with a target at the place's region or above it (a target covers its
  subtree); recent history; the FCM topics a device subscribes to.
- Responsible persons: my pending 叫应.
- Staff (``warning.read``): the warnings whose targets overlap their scope (a target in
  it, or a target above one of its regions: a new-area warning is every town's), with
  the acknowledgement board.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from apps.accounts.permissions import Capability, capability_scope
from apps.core.errors import ApplicationError
from apps.early_warnings.errors import WarningErrorCode
from apps.early_warnings.models import (
    ENDED_STATUSES,
    LEVEL_RANK,
    OPEN_STATUSES,
    Acknowledgement,
    MsgType,
    WarningStatus,
    WarningTarget,
    WarningVersion,
)
from apps.notifications.services import region_topic
from apps.regions.models import Region


def _with_targets(qs: QuerySet[WarningVersion]) -> QuerySet[WarningVersion]:
    return qs.prefetch_related(
        Prefetch("targets", queryset=WarningTarget.objects.select_related("region"))
    )


def _covering(region: Region) -> Q:
    """Versions with a target at ``region`` or above it."""
    return Q(targets__region__path__in=[*region.ancestor_paths, region.path])


def warnings_active_at(*, region: Region) -> QuerySet[WarningVersion]:
    """The warnings in force at ``region`` (published, not yet expired), worst first."""
    ids = WarningVersion.objects.filter(
        _covering(region), status=WarningStatus.PUBLISHED, expires__gt=timezone.now()
    ).values("pk")
    rank = Case(
        *[When(level=level, then=Value(n)) for level, n in LEVEL_RANK.items()],
        default=Value(0),
        output_field=IntegerField(),
    )
    return (
        _with_targets(WarningVersion.objects.filter(pk__in=ids))
        .annotate(level_rank=rank)
        .order_by("-level_rank", "-sent", "-id")
    )


def warnings_history(*, region: Region | None = None) -> QuerySet[WarningVersion]:
    """Warnings that ended (cancelled or expired) in the last
    ``EARLY_WARNINGS_HISTORY_DAYS``, at ``region`` (or anywhere); newest first. The cancel
    message itself is not listed: the warning it ended is."""
    since = timezone.now() - timedelta(
        days=int(getattr(settings, "EARLY_WARNINGS_HISTORY_DAYS", 30))
    )
    qs = WarningVersion.objects.filter(status__in=ENDED_STATUSES, ended_at__gte=since).exclude(
        msg_type=MsgType.CANCEL
    )
    if region is not None:
        qs = qs.filter(pk__in=WarningVersion.objects.filter(_covering(region)).values("pk"))
    return _with_targets(qs)


def topics_for(regions: list[Region]) -> list[str]:
    """The FCM topics a device subscribes to for these places (home, last location): the
    topic of each region and of every ancestor, root first, each once."""
    topics: list[str] = []
    for region in regions:
        for code in region.path.strip("/").split("/"):
            topic = region_topic(code)
            if topic not in topics:
                topics.append(topic)
    return topics


def my_pending_acks(*, user: Any) -> QuerySet[Acknowledgement]:
    """What ``user`` still has to answer: rows of versions in force, newest first."""
    return (
        Acknowledgement.objects.pending()
        .filter(user_id=user.pk)
        .select_related("version", "region")
        .order_by("-version__sent", "-id")
    )


def staff_scope_q(user: Any) -> Q:
    """Versions visible to staff ``user`` (``warning.read``): a target inside their scope,
    or a target above one of their regions."""
    scope = capability_scope(user, Capability.WARNING_READ)
    if scope.is_global:
        return Q()
    if scope.is_empty:
        return Q(pk__in=[])
    condition = Q()
    for path in scope.paths:
        parts = path.strip("/").split("/")
        above = ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]
        condition |= Q(targets__region__path__startswith=path) | Q(targets__region__path__in=above)
    return condition


def warning_list(*, user: Any) -> QuerySet[WarningVersion]:
    """Every version visible to ``user`` (staff), newest first."""
    ids = WarningVersion.objects.filter(staff_scope_q(user)).values("pk")
    return _with_targets(
        WarningVersion.objects.filter(pk__in=ids).select_related("chain")
    ).order_by("-created_at", "-id")


def warning_get(*, user: Any, version_id: int) -> WarningVersion:
    """One version for staff; 404 when unknown or out of scope."""
    version = warning_list(user=user).filter(pk=version_id).first()
    if version is None:
        raise ApplicationError(WarningErrorCode.WARNING_NOT_FOUND, status=404)
    return version


@dataclass(frozen=True)
class AckBoard:
    """Who answered a version, when, and who is silent."""

    rows: list[Acknowledgement]
    acked: int
    silent: int


def ack_board(*, version: WarningVersion) -> AckBoard:
    """The acknowledgement board of ``version``: silent first, then by answer time."""
    rows = list(
        Acknowledgement.objects.filter(version=version)
        .select_related("user", "region")
        .order_by("acked_at", "region__path", "id")
    )
    rows.sort(key=lambda row: (row.acked_at is not None, row.acked_at or row.created_at))
    acked = sum(1 for row in rows if row.acked_at is not None)
    return AckBoard(rows=rows, acked=acked, silent=len(rows) - acked)


# --- CAP 1.2 (docs/early-warnings.md, "CAP 1.2") -------------------------------------------


def warning_for_cap(*, user: Any, version_id: int) -> WarningVersion:
    """A version whose CAP document may be served to ``user``: any sent version (CAP
    alerts are public documents); a draft or one awaiting approval only to staff who see
    it (``warning.read`` in scope). 404 otherwise."""
    version = (
        _with_targets(WarningVersion.objects.filter(pk=version_id)).select_related("chain").first()
    )
    if version is not None and version.status in OPEN_STATUSES:
        authenticated = user is not None and getattr(user, "is_authenticated", False)
        if not authenticated or not warning_list(user=user).filter(pk=version_id).exists():
            version = None
    if version is None:
        raise ApplicationError(WarningErrorCode.WARNING_NOT_FOUND, status=404)
    return version


def warnings_feed() -> QuerySet[WarningVersion]:
    """The warnings in force anywhere (the live version of each chain), newest first."""
    return _with_targets(
        WarningVersion.objects.filter(status=WarningStatus.PUBLISHED, expires__gt=timezone.now())
    ).order_by("-sent", "-id")


def warnings_feed_changed_at() -> datetime | None:
    """When a warning last left the feed (ended), for the feed's ``updated``."""
    return (
        WarningVersion.objects.filter(ended_at__isnull=False)
        .order_by("-ended_at")
        .values_list("ended_at", flat=True)
        .first()
    )
