"""Who a ladder step tells: region audiences from memberships, the rest from handlers.

The command chain of a clock is the region tree above its subject's region
(新区 → 新城 → 街道): the *street duty officer* is an operator holding the street (or, for
a subject filed above street level, its own region); *new-town command* and *new-area
command* are the commanders and operators holding the new town and the root. All of a
step's region audiences cost one query. ``assignee`` and ``team_leader`` come from the
resolvers the subject's owning app registered (``apps.sla.registry``).
"""

from __future__ import annotations

from collections.abc import Iterable

from apps.accounts.models import Membership, Role
from apps.regions.models import LEVEL_DEPTH, RegionLevel
from apps.sla import registry
from apps.sla.models import Audience, SlaClock

# audience → (level of the region it sits at, roles that hold the duty there)
REGION_AUDIENCES: dict[str, tuple[str, tuple[str, ...]]] = {
    Audience.STREET_DUTY: (RegionLevel.STREET, (Role.OPERATOR,)),
    Audience.NEW_TOWN_COMMAND: (RegionLevel.NEW_TOWN, (Role.COMMANDER, Role.OPERATOR)),
    Audience.NEW_AREA_COMMAND: (RegionLevel.NEW_AREA, (Role.COMMANDER, Role.OPERATOR)),
}


def command_path(region_path: str, level: str) -> str:
    """The path of the region at ``level`` above (or at) ``region_path``; the region
    itself when it sits above that level."""
    parts = region_path.strip("/").split("/")
    depth = min(LEVEL_DEPTH[level], len(parts) - 1)
    return "/" + "/".join(parts[: depth + 1]) + "/"


def region_audience_users(region_path: str, audiences: Iterable[str]) -> dict[str, list[int]]:
    """``{audience: sorted user ids}`` of the region audiences (``REGION_AUDIENCES``) of
    a subject filed at ``region_path``, in one query: who holds the duty at the street,
    the new town, the new area above it. Other audiences are ignored."""
    return region_audience_users_many([region_path], audiences)[region_path]


def region_audience_users_many(
    region_paths: Iterable[str], audiences: Iterable[str]
) -> dict[str, dict[str, list[int]]]:
    """:func:`region_audience_users` of many subjects' paths at once, in one query."""
    wanted = {str(a): REGION_AUDIENCES[str(a)] for a in audiences if str(a) in REGION_AUDIENCES}
    subjects = list(dict.fromkeys(region_paths))
    found = {path: {audience: set() for audience in wanted} for path in subjects}
    if not wanted or not subjects:
        return {path: {} for path in subjects}
    command = {
        (path, a): command_path(path, level)
        for path in subjects
        for a, (level, _r) in wanted.items()
    }
    roles = {role for _level, rs in wanted.values() for role in rs}
    holders: dict[str, list[tuple[int, str]]] = {}
    for user_id, path, role in Membership.objects.filter(
        is_active=True,
        user__is_active=True,
        region__path__in=set(command.values()),
        role__in=roles,
    ).values_list("user_id", "region__path", "role"):
        holders.setdefault(path, []).append((user_id, role))
    for (subject, audience), path in command.items():
        audience_roles = wanted[audience][1]
        found[subject][audience].update(
            u for u, role in holders.get(path, []) if role in audience_roles
        )
    return {
        path: {audience: sorted(ids) for audience, ids in by_audience.items()}
        for path, by_audience in found.items()
    }


def recipients_for(clock: SlaClock, audiences: Iterable[str]) -> dict[str, list[int]]:
    """``{audience: sorted user ids}`` for the clock (empty lists where nobody holds it)."""
    wanted = [str(a) for a in audiences]
    found: dict[str, set[int]] = {audience: set() for audience in wanted}
    for audience, ids in region_audience_users(clock.region.path, wanted).items():
        found[audience].update(ids)
    for audience in wanted:
        if audience in REGION_AUDIENCES:
            continue
        resolver = registry.recipients_resolver(clock.subject_type, audience)
        if resolver is not None:
            found[audience].update(int(pk) for pk in resolver(clock))
    return {audience: sorted(ids) for audience, ids in found.items()}
