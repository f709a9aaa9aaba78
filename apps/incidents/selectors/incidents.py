"""Incident reads for staff, every one scoped by ``Incident.objects.visible_to(user)``.

Who may do what is the role table (``apps.accounts.permissions``, ``docs/roles.md``);
the API and admin ask these helpers, services do not (they also run for the system,
with ``by=None``):

- *read* incidents (``incident.read``): superusers and holders of a staff or field role
  (operator, commander, department liaison, admin; responder, team leader, grid
  worker) — inside their scope;
- *command* an incident (``incident.command``: transitions, classification, casualty
  figures, merge, create): operator, commander or admin membership whose region covers
  the incident's region;
- *note* (``incident.note``): those and department liaisons;
- the reporter's contact and photos: ``apps.incidents.policies``.

An incident outside the reader's scope does not exist for them: ``not_found`` (404),
the same answer as for an id that was never used.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import django_filters
from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.permissions import Capability, can, can_somewhere, roles_with
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.filters import IsoDateTimeFilter
from apps.incidents.models import (
    Attachment,
    Incident,
    IncidentEvent,
    IncidentQuerySet,
    IncidentStatus,
    Loop,
    Severity,
)
from apps.incidents.policies import incident_contact_visible
from apps.regions.models import Region

READ_ROLES = roles_with(Capability.INCIDENT_READ)
COMMAND_ROLES = roles_with(Capability.INCIDENT_COMMAND)

# Offline sync: rows are handed out only once their ``updated_at`` is this old; see
# :func:`incident_changes_since`.
SYNC_SETTLE_SECONDS_DEFAULT = 2
SYNC_LIMIT_DEFAULT = 100
SYNC_LIMIT_MAX = 500


# --- Roles and scope -----------------------------------------------------------------------


def incident_can_read(user: Any) -> bool:
    """May ``user`` use the staff incident API at all (citizens may not)?"""
    return can_somewhere(user, Capability.INCIDENT_READ)


def incident_can_command(user: Any, incident: Incident) -> bool:
    """May ``user`` change ``incident`` (operator/commander/admin covering its region)?"""
    return can(user, Capability.INCIDENT_COMMAND, incident.region.path)


def incident_can_command_at(user: Any, region_path: str) -> bool:
    """May ``user`` create an incident at ``region_path``?"""
    return can(user, Capability.INCIDENT_COMMAND, region_path)


def incident_can_note(user: Any, incident: Incident) -> bool:
    """May ``user`` add a note to ``incident``'s timeline (those, and liaisons)?"""
    return can(user, Capability.INCIDENT_NOTE, incident.region.path)


# --- Lists and detail ----------------------------------------------------------------------


class IncidentFilter(django_filters.FilterSet):
    """Filters of the staff incident list (query parameters of ``GET incidents/``)."""

    status = django_filters.MultipleChoiceFilter(choices=IncidentStatus.choices)
    category = django_filters.CharFilter(
        field_name="category__code", help_text=_("Category code, e.g. N02.")
    )
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    loop = django_filters.MultipleChoiceFilter(choices=Loop.choices)
    region = django_filters.CharFilter(
        method="filter_region",
        help_text=_("Region code: incidents in this region and everything below it."),
    )
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    is_drill = django_filters.BooleanFilter()

    class Meta:
        model = Incident
        fields = ["status", "category", "severity", "loop", "region", "is_drill"]

    def filter_region(self, queryset: QuerySet[Incident], name: str, value: str) -> Any:
        # One small lookup, then a prefix scan; an unknown code matches nothing (it does
        # not error, so probing codes tells nothing either).
        path = Region.objects.filter(code=value).values_list("path", flat=True).first()
        if path is None:
            return queryset.none()
        return queryset.filter(region__path__startswith=path)


def _base_queryset(user: Any) -> IncidentQuerySet:
    return Incident.objects.visible_to(user).select_related("category", "region")


def incident_list(*, user: Any, filters: Any = None) -> QuerySet[Incident]:
    """The incidents ``user`` may see, filtered by ``filters`` (query parameters, see
    :class:`IncidentFilter`), newest first. Bad filter values → 400 ``invalid``."""
    queryset = _base_queryset(user).order_by("-created_at", "-id")
    if not filters:
        return queryset
    filterset = IncidentFilter(filters, queryset=queryset)
    if not filterset.is_valid():
        raise ApplicationError(
            ErrorCode.INVALID, extra={"fields": filterset.errors.get_json_data()}
        )
    return filterset.qs


def incident_get(*, user: Any, incident_id: int) -> Incident:
    """One incident ``user`` may see (with category, region and merge target), or 404."""
    incident = (
        _base_queryset(user)
        .select_related("merged_into", "created_by")
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    return incident


def incident_timeline(*, incident: Incident, public_only: bool = False) -> QuerySet[IncidentEvent]:
    """The incident's timeline, oldest first, with actors (one query)."""
    events = IncidentEvent.objects.filter(incident=incident).select_related("actor")
    if public_only:
        events = events.filter(public=True)
    return events.order_by("at", "id")


@dataclass(frozen=True)
class IncidentDetail:
    """What the staff detail shows besides the incident's own columns.

    ``show_contact``: the reporter's name and phone and the photos are the viewer's to
    see (``apps.incidents.policies``); when not, ``attachments`` is empty too."""

    incident: Incident
    timeline: list[IncidentEvent]
    report_ids: list[int]
    attachments: list[Attachment]
    show_contact: bool = False


def incident_detail(*, user: Any, incident_id: int) -> IncidentDetail:
    """Incident + timeline + linked report ids + photo metadata: four queries in all,
    and the reporter-contact rule (cached role scopes; the assignment check when the
    viewer's roles do not decide it).

    Photos are the incident's own and those of its linked reports, for viewers who may
    see the reporter's contact only.
    """
    incident = incident_get(user=user, incident_id=incident_id)
    show_contact = incident_contact_visible(user, incident)
    report_ids = list(incident.reports.order_by("created_at", "id").values_list("id", flat=True))
    attachments = (
        list(
            Attachment.objects.filter(Q(incident=incident) | Q(report__incident=incident)).order_by(
                "created_at", "id"
            )
        )
        if show_contact
        else []
    )
    return IncidentDetail(
        incident=incident,
        timeline=list(incident_timeline(incident=incident)),
        report_ids=report_ids,
        attachments=attachments,
        show_contact=show_contact,
    )


def incident_timeline_prefetch() -> Prefetch:
    """For lists that show timelines (admin): events with actors, oldest first."""
    return Prefetch(
        "events", queryset=IncidentEvent.objects.select_related("actor").order_by("at", "id")
    )


# --- Offline sync --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangesPage:
    results: list[Incident]
    next_cursor: str
    has_more: bool


def _cursor_encode(updated_at: datetime, pk: int) -> str:
    raw = f"{updated_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError(stamp)
        return moment, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApplicationError(
            ErrorCode.INVALID,
            extra={"fields": {"cursor": [{"code": "invalid", "message": str(_("Bad cursor."))}]}},
        ) from None


def incident_changes_since(
    *, user: Any, cursor: str | None, limit: int = SYNC_LIMIT_DEFAULT
) -> ChangesPage:
    """Incidents changed after ``cursor``, ordered by ``(updated_at, id)``, for offline
    sync. Start with no cursor; keep calling with ``next_cursor`` while ``has_more``.

    Merged, closed and rejected incidents are included (with their status and
    ``merged_into``) so a client can drop them from its local copy.

    Why the settle window: ``updated_at`` is stamped when the row is *saved*, not when
    the transaction *commits*. A transaction stamped T1 can commit after another one
    stamped T2 > T1 was already read and handed out; the client's cursor is then past
    T1 and that change would never be delivered. So only rows whose ``updated_at`` is
    older than ``now - INCIDENT_SYNC_SETTLE_SECONDS`` (default 2 s, well above how long
    an incident transaction holds its lock; the same margin covers small clock skew
    between app servers) are handed out; younger rows come with the next poll. The
    cost is that a change reaches offline clients up to that much later; live clients
    get it over the WebSocket anyway.
    """
    limit = max(1, min(int(limit), SYNC_LIMIT_MAX))
    settle = getattr(settings, "INCIDENT_SYNC_SETTLE_SECONDS", SYNC_SETTLE_SECONDS_DEFAULT)
    horizon = timezone.now() - timedelta(seconds=settle)
    queryset = _base_queryset(user).filter(updated_at__lt=horizon)
    if cursor:
        after, after_pk = _cursor_decode(cursor)
        queryset = queryset.filter(Q(updated_at__gt=after) | Q(updated_at=after, pk__gt=after_pk))
    rows = list(queryset.order_by("updated_at", "id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    # Nothing new: the client keeps its cursor.
    next_cursor = _cursor_encode(rows[-1].updated_at, rows[-1].pk) if rows else cursor or ""
    return ChangesPage(results=rows, next_cursor=next_cursor, has_more=has_more)
