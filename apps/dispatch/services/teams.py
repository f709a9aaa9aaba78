"""Team writes: duty, status, out of service, shift handover, departments fixture.

Team status is *derived*, never typed in (except out of service):

* a live task accepted or en route → ``dispatched``;
* a live task on scene (or returned for rework, which is back on scene) → ``busy``;
* otherwise ``available`` if at least one active member is on duty, else ``off_duty``;
* ``out_of_service`` is set and lifted by hand (``team_set_out_of_service`` /
  ``team_return_to_service``) and nothing else overrides it.

A task that is only ``dispatched`` (not yet accepted) or ``completed`` (awaiting
verification) does not occupy the team: it may still take another job.

Locks (conventions R3): the team row first (``select_for_update``), then its members or shift.
The tasks work calls :func:`team_status_refresh` after each task transition, inside its
own transaction; the team lock serialises it with a responder toggling duty at the same
moment, so the status always reflects the last committed state of both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import (
    LIVE_TASK_STATUSES,
    Department,
    DispatchTask,
    Shift,
    TaskStatus,
    Team,
    TeamMember,
    TeamStatus,
)
from apps.incidents.models import Category
from apps.regions.models import Region

logger = logging.getLogger(__name__)

# Live task statuses that move the team out of "available".
_DISPATCHED_TASKS = frozenset({TaskStatus.ACCEPTED, TaskStatus.EN_ROUTE})
_BUSY_TASKS = frozenset({TaskStatus.ON_SCENE, TaskStatus.RETURNED})
# Statuses only people set (or the tasks' state drives) and duty never overrides.
_DUTY_CANNOT_OVERRIDE = frozenset(
    {TeamStatus.OUT_OF_SERVICE, TeamStatus.DISPATCHED, TeamStatus.BUSY}
)
REASON_MAX_LENGTH = 500


# --- Locks ---------------------------------------------------------------------------------


def team_for_update(team_id: int) -> Team:
    try:
        return Team.objects.select_for_update(of=("self",)).get(pk=team_id)
    except Team.DoesNotExist:
        raise ApplicationError(
            DispatchErrorCode.TEAM_NOT_FOUND, _("Team not found."), status=404
        ) from None


# --- Status --------------------------------------------------------------------------------


def _derived_status(team: Team) -> str:
    """The status the team's live tasks and duty give (the team row must be locked)."""
    task_statuses = set(
        DispatchTask.objects.filter(team=team, status__in=LIVE_TASK_STATUSES).values_list(
            "status", flat=True
        )
    )
    if task_statuses & _BUSY_TASKS:
        return TeamStatus.BUSY
    if task_statuses & _DISPATCHED_TASKS:
        return TeamStatus.DISPATCHED
    on_duty = TeamMember.objects.filter(team=team, is_active=True, on_duty=True).exists()
    return TeamStatus.AVAILABLE if on_duty else TeamStatus.OFF_DUTY


def _set_status(team: Team, status: str) -> Team:
    if team.status != status:
        logger.info("dispatch: team %s %s → %s", team.code, team.status, status)
        team.status = status
        team.save(update_fields=["status", "updated_at"])
    return team


@transaction.atomic
def team_status_refresh(*, team_id: int) -> Team:
    """Recompute the team's status from its live tasks and duty (see the module doc).

    Called by the tasks work after every task transition. Never lifts
    ``out_of_service``. Idempotent: a second call writes nothing.
    """
    team = team_for_update(team_id)
    if team.status == TeamStatus.OUT_OF_SERVICE:
        return team
    return _set_status(team, _derived_status(team))


@transaction.atomic
def team_set_out_of_service(*, team_id: int, by: Any, reason: str) -> Team:
    """Take a team out of service (vehicle broken, training, stood down): it is no longer
    recommended nor dispatchable until :func:`team_return_to_service`. Live tasks are
    left to the operator (they are cancelled or reassigned through the task services)."""
    reason = (reason or "").strip()
    if not reason:
        raise _invalid("reason", _("A reason is required."))
    team = team_for_update(team_id)
    logger.info(
        "dispatch: team %s out of service by %s: %s",
        team.code,
        getattr(by, "pk", None),
        reason[:REASON_MAX_LENGTH],
    )
    return _set_status(team, TeamStatus.OUT_OF_SERVICE)


@transaction.atomic
def team_return_to_service(*, team_id: int, by: Any) -> Team:
    """Lift ``out_of_service``: the status follows tasks and duty again."""
    team = team_for_update(team_id)
    logger.info("dispatch: team %s back in service by %s", team.code, getattr(by, "pk", None))
    return _set_status(team, _derived_status(team))


# --- Duty ----------------------------------------------------------------------------------


@transaction.atomic
def team_set_duty(
    *, user: Any, on_duty: bool, team_id: int | None = None, team_code: str | None = None
) -> TeamMember:
    """The responder ``user`` goes on or off duty in their team (``team_id`` or
    ``team_code`` needed only when they belong to several active teams).

    1. find the membership (``not_team_member`` 403 if none; ``invalid`` if several and
       no ``team_id``);
    2. lock the team, then the member row (the fixed order);
    3. write the flag (``on_duty_since`` is kept when already on duty, so a retried
       toggle does not restart the clock);
    4. the team follows: ``available`` with ≥ 1 member on duty, ``off_duty`` with none —
       unless it is out of service, dispatched or busy (tasks decide those).
    """
    memberships = TeamMember.objects.filter(user=user, is_active=True, team__is_active=True)
    if team_id is not None:
        memberships = memberships.filter(team_id=team_id)
    if team_code:
        memberships = memberships.filter(team__code=team_code)
    candidates = list(memberships.values_list("pk", "team_id")[:2])
    if not candidates:
        raise ApplicationError(
            DispatchErrorCode.NOT_TEAM_MEMBER, _("You are not a member of that team."), status=403
        )
    if len(candidates) > 1:
        raise _invalid("team", _("You belong to several teams: say which one."))
    member_id, member_team_id = candidates[0]
    team = team_for_update(member_team_id)
    member = TeamMember.objects.select_for_update(of=("self",)).get(pk=member_id)
    if member.on_duty != on_duty:
        member.on_duty = on_duty
        member.on_duty_since = timezone.now() if on_duty else None
        member.save(update_fields=["on_duty", "on_duty_since", "updated_at"])
    if team.status not in _DUTY_CANNOT_OVERRIDE:
        _set_status(team, _derived_status(team))
    member.team = team
    return member


# --- Shifts --------------------------------------------------------------------------------


@transaction.atomic
def shift_handover(*, shift_id: int, by: Any, note: str) -> Shift:
    """Close a shift with its handover note (交接班): who handed over, when, what the next
    shift must know. A shift is handed over once (``conflict`` 409 after that)."""
    team_id = Shift.objects.filter(pk=shift_id).values_list("team_id", flat=True).first()
    if team_id is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, _("Shift not found."), status=404)
    team_for_update(team_id)
    shift = Shift.objects.select_for_update(of=("self",)).get(pk=shift_id)
    if shift.handed_over_at is not None:
        raise ApplicationError(
            ErrorCode.CONFLICT,
            _("This shift was already handed over."),
            extra={"handed_over_at": shift.handed_over_at.isoformat()},
            status=409,
        )
    shift.handover_note = (note or "").strip()
    shift.handed_over_at = timezone.now()
    shift.handed_over_by = by
    shift.save(update_fields=["handover_note", "handed_over_at", "handed_over_by", "updated_at"])
    return shift


# --- Team rows -----------------------------------------------------------------------------


def team_fill_home_position(team: Team, *, region: Region | None = None) -> bool:
    """Give a team without a GPS fix its home region's centre as position.

    Why: the recommendation prefilters with one indexed bounding box on
    ``last_lat``/``last_lng``. Storing the centre (with ``last_position_at`` left null,
    which says "not a fix") keeps teams that never reported a position on that same code
    path instead of a second, unindexed one. Returns True if it changed the team.
    """
    if team.last_position_at is not None:
        return False
    region = region or team.home_region
    lat, lng = region.centre_lat, region.centre_lng
    if (team.last_lat, team.last_lng) == (lat, lng):
        return False
    team.last_lat, team.last_lng = lat, lng
    return True


@transaction.atomic
def team_save(*, team: Team) -> Team:
    """Create or update a team's own columns (admin, seed): validated, with the home
    position filled in for teams without a fix. Status is not taken from here on an
    existing team (duty and tasks own it)."""
    team_fill_home_position(team)
    unknown = sorted(set(team.capabilities or []) - _known_tags())
    if unknown:
        raise _invalid("capabilities", _("Unknown capability tags: %s") % ", ".join(unknown))
    team.full_clean()
    team.save()
    return team


def _known_tags() -> frozenset[str]:
    from apps.dispatch.capabilities import CAPABILITY_TAGS

    return CAPABILITY_TAGS


# --- Departments fixture -------------------------------------------------------------------


def departments_default_fixture_path() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "dispatch" / "departments.json"


@transaction.atomic
def departments_load_fixture(path: Path | str | None = None) -> dict[str, int]:
    """Upsert the departments of a fixture by code and link each to the categories it
    leads; returns ``{"created", "updated", "total", "links"}``.

    Linking: a category's ``lead_department`` text (``"城管 / 水务"``) is split on ``/``;
    a department leads the category when one of its ``lead_tokens`` occurs in a part
    (so ``公安`` matches ``公安交管``). Categories must be loaded first; without them the
    departments load unlinked and a later run links them.
    """
    file = Path(path) if path is not None else departments_default_fixture_path()
    data = json.loads(file.read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = data["departments"] if isinstance(data, dict) else data
    regions = {r.code: r for r in Region.objects.filter(code__in={e["region"] for e in entries})}
    categories = list(Category.objects.only("pk", "lead_department"))
    counts = {"created": 0, "updated": 0, "total": len(entries), "links": 0}
    for entry in entries:
        region = regions.get(entry["region"])
        if region is None:
            raise _invalid("region", _("Unknown region %s") % entry["region"])
        values = {
            "name_zh": entry["name_zh"],
            "name_en": entry.get("name_en", ""),
            "kind": entry["kind"],
            "region": region,
            "is_active": entry.get("is_active", True),
        }
        department, created = Department.objects.get_or_create(code=entry["code"], defaults=values)
        if created:
            counts["created"] += 1
        elif any(getattr(department, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(department, key, value)
            department.save()
            counts["updated"] += 1
        led = _categories_led(categories, entry.get("lead_tokens", []))
        department.categories.set(led)
        counts["links"] += len(led)
    return counts


def _categories_led(categories: Iterable[Category], tokens: list[str]) -> list[Category]:
    led = []
    for category in categories:
        parts = [p.strip() for p in (category.lead_department or "").split("/")]
        if any(token in part for token in tokens for part in parts if part):
            led.append(category)
    return led


def _invalid(field: str, message: Any) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        extra={"fields": {field: [{"code": "invalid", "message": str(message)}]}},
    )


@transaction.atomic
def team_member_upsert(
    *, team: Team, user: Any, is_leader: bool = False, on_duty: bool | None = None
) -> TeamMember:
    """Make ``user`` an active member of ``team`` (reactivating a removed one); with
    ``on_duty`` given, also set duty (seeding). The team's status follows."""
    team_for_update(team.pk)
    member, _created = TeamMember.objects.get_or_create(
        team=team, user=user, defaults={"is_leader": is_leader}
    )
    fields: list[str] = []
    if member.is_leader != is_leader:
        member.is_leader = is_leader
        fields.append("is_leader")
    if not member.is_active:
        member.is_active = True
        fields.append("is_active")
    if on_duty is not None and member.on_duty != on_duty:
        member.on_duty = on_duty
        member.on_duty_since = timezone.now() if on_duty else None
        fields += ["on_duty", "on_duty_since"]
    if fields:
        member.save(update_fields=[*fields, "updated_at"])
    team_status_refresh(team_id=team.pk)
    return member
