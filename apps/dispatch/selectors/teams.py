"""Team reads: scoped lists and details, a responder's own teams (conventions R3 selectors).

Who sees which team: staff and field roles see the teams whose home region lies in their
scope (``Team.objects.visible_to``); an out-of-scope team answers 404 like an unknown
code. A responder always sees the teams they are an active member of (``team_list_mine``).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch.capabilities import CAPABILITY_TAGS
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import (
    LIVE_TASK_STATUSES,
    DispatchTask,
    Team,
    TeamKind,
    TeamMember,
    TeamStatus,
)
from apps.incidents.selectors.incidents import incident_can_read
from apps.regions.models import Region


def team_can_read(user: Any) -> bool:
    """Staff and field roles may use the team API (citizens may not)."""
    return incident_can_read(user)


def live_task_count() -> Any:
    """``Count`` of a team's live tasks as a correlated subquery (partial index
    ``dispatch_task_team_live_idx``): no join that would multiply other annotations."""
    counts = (
        DispatchTask.objects.filter(team=OuterRef("pk"), status__in=LIVE_TASK_STATUSES)
        .order_by()
        .values("team")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


def on_duty_exists() -> Exists:
    return Exists(TeamMember.objects.filter(team=OuterRef("pk"), is_active=True, on_duty=True))


def on_duty_count() -> Any:
    counts = (
        TeamMember.objects.filter(team=OuterRef("pk"), is_active=True, on_duty=True)
        .order_by()
        .values("team")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


class TeamFilter(django_filters.FilterSet):
    """Query parameters of ``GET teams/``."""

    status = django_filters.MultipleChoiceFilter(choices=TeamStatus.choices)
    kind = django_filters.MultipleChoiceFilter(choices=TeamKind.choices)
    capability = django_filters.ChoiceFilter(
        choices=sorted((tag, tag) for tag in CAPABILITY_TAGS),
        method="filter_capability",
        help_text=_("A capability tag, e.g. pumping: teams that have it."),
    )
    region = django_filters.CharFilter(
        method="filter_region",
        help_text=_("Region code: teams based in this region or below it."),
    )
    department = django_filters.CharFilter(field_name="department__code")

    class Meta:
        model = Team
        fields = ["status", "kind", "capability", "region", "department"]

    def filter_capability(self, queryset: QuerySet[Team], name: str, value: str) -> Any:
        return queryset.filter(capabilities__contains=[value])

    def filter_region(self, queryset: QuerySet[Team], name: str, value: str) -> Any:
        path = Region.objects.filter(code=value).values_list("path", flat=True).first()
        if path is None:
            return queryset.none()
        return queryset.filter(home_region__path__startswith=path)


def _annotated(queryset: QuerySet[Team]) -> QuerySet[Team]:
    return queryset.select_related("home_region", "department").annotate(
        live_tasks=live_task_count(), members_on_duty=on_duty_count()
    )


def team_list(*, user: Any, filters: Any = None) -> QuerySet[Team]:
    """Active and inactive teams in ``user``'s scope, by code, with ``live_tasks`` and
    ``members_on_duty`` annotated (one query per page). Bad filters → 400 ``invalid``."""
    queryset = _annotated(Team.objects.visible_to(user)).order_by("code")
    if not filters:
        return queryset
    filterset = TeamFilter(filters, queryset=queryset)
    if not filterset.is_valid():
        raise ApplicationError(
            ErrorCode.INVALID, extra={"fields": filterset.errors.get_json_data()}
        )
    return filterset.qs


def _members_prefetch() -> Prefetch:
    return Prefetch(
        "members",
        queryset=TeamMember.objects.filter(is_active=True)
        .select_related("user")
        .order_by("-is_leader", "id"),
        to_attr="active_members",
    )


def team_get(*, user: Any, code: str) -> Team:
    """One team in ``user``'s scope with its active members (two queries), or 404."""
    team = (
        _annotated(Team.objects.visible_to(user))
        .prefetch_related(_members_prefetch())
        .filter(code=code)
        .first()
    )
    if team is None:
        raise ApplicationError(DispatchErrorCode.TEAM_NOT_FOUND, _("Team not found."), status=404)
    return team


def team_list_mine(*, user: Any) -> list[Team]:
    """The active teams ``user`` is an active member of, with members (two queries)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    mine = TeamMember.objects.filter(user=user, is_active=True, team=OuterRef("pk"))
    return list(
        _annotated(Team.objects.filter(Exists(mine), is_active=True))
        .prefetch_related(_members_prefetch())
        .order_by("code")
    )
