"""Who may do what, by role: the role table of ``docs/roles.md`` in code.

A membership gives its holder a *role* in a region subtree (``apps.accounts.models``);
this module says what each role may do there. Each kind of act is a :class:`Capability`;
:data:`ROLE_CAPABILITIES` is the table. Everything that decides "may this person do
this here" by role asks :func:`capability_scope` / :func:`can` (selectors, API views,
and the services that check who acts or who is appointed: triage, command post), so a
role's powers change in one place and ``docs/roles.md`` is checked against it
(``tests/accounts/test_permissions.py``).

What a role does *not* give comes from elsewhere, and is decided in the apps that own
it (they call this module for the role part):

- the assigned team — members of a team with a live or completed task on an incident —
  sees that incident's reporter contact and photos and takes part in its room, wherever
  its members' memberships are (``apps.dispatch.policies``);
- the commander and members of an open command post direct their incident while they
  are still eligible for the post (``apps.dispatch.policies``);
- citizens see their own reports, by login or tracking token (``apps.incidents``).

Scopes are region subtrees (``apps.core.scoping``); an object outside the caller's
read scope does not exist for them (404), one they see but may not act on is 403.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from apps.accounts.models import Membership, Role
from apps.core.scoping import GLOBAL_SCOPE, Scope


class Capability(StrEnum):
    """One kind of act; the role table grants them per role, inside the region subtree."""

    INCIDENT_READ = "incident.read"  # incident list, detail, sync, timeline; tasks; teams
    INCIDENT_COMMAND = "incident.command"  # create, accept, reject, start, resolve, close...
    INCIDENT_NOTE = "incident.note"  # add a note to the incident timeline
    REPORT_READ = "report.read"  # the staff view of citizen reports
    REPORT_TRIAGE = "report.triage"  # triage queue, accept, reject (SOS too), duplicate
    REPORTER_CONTACT = "reporter.contact"  # reporters' phone, name and photos
    DISPATCH = "dispatch"  # send, cancel, reassign, instruct, verify, return; set up a post
    POST_COMMANDER = "command_post.commander"  # may be appointed commander of a post
    POST_MEMBER = "command_post.member"  # may be appointed member of a post
    ROOM = "room"  # read and post in the incident room (会商)
    POSITIONS_READ = "positions.read"  # the live map and track replay
    KPI_READ = "kpi.read"  # the first-time KPIs
    WARNING_READ = "warning.read"  # early warnings of the scope and their 叫应 board
    WARNING_COMPOSE = "warning.compose"  # draft, submit, update, cancel; the 责任人 roster
    WARNING_APPROVE = "warning.approve"  # approve/refuse, as the approval rule allows


_READER = frozenset({Capability.INCIDENT_READ, Capability.KPI_READ})
_COMMAND = frozenset(Capability)  # operators, commanders and admins: everything

# The role table (docs/roles.md, "Roles"). Citizens hold no capability: what they see
# of their own reports comes from the reports, not from a role.
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.CITIZEN: frozenset(),
    Role.GRID_WORKER: _READER,
    Role.RESPONDER: _READER | {Capability.POST_MEMBER},
    Role.TEAM_LEADER: _READER | {Capability.POST_MEMBER},
    Role.DEPARTMENT_LIAISON: _READER
    | {
        Capability.INCIDENT_NOTE,
        Capability.REPORT_READ,
        Capability.REPORTER_CONTACT,
        Capability.POST_MEMBER,
        Capability.ROOM,
        Capability.POSITIONS_READ,
        Capability.WARNING_READ,
    },
    Role.OPERATOR: _COMMAND,
    Role.COMMANDER: _COMMAND,
    Role.ADMIN: _COMMAND,
}


def roles_with(capability: Capability) -> frozenset[str]:
    """The roles whose memberships give ``capability``."""
    return frozenset(role for role, caps in ROLE_CAPABILITIES.items() if capability in caps)


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def _membership_rows(user: Any) -> list[tuple[str, str, int | None]]:
    """``(role, region path, region parent id)`` of the user's live memberships: one
    query per user object (a request), whatever capabilities are asked after it."""
    cached = user.__dict__.get("_xems_membership_rows")
    if cached is None:
        cached = list(
            Membership.objects.filter(user=user, is_active=True, region__is_active=True)
            .exclude(role=Role.CITIZEN)
            .values_list("role", "region__path", "region__parent_id")
        )
        user.__dict__["_xems_membership_rows"] = cached
    return cached


def role_scope(user: Any, roles: frozenset[str]) -> Scope:
    """The region subtrees where ``user`` holds one of ``roles`` (memberships read once
    per user object, i.e. per request, like ``scope_for``). Superusers, and holders of
    the admin role at the root, see everything."""
    if not _authenticated(user):
        return Scope()
    if user.is_superuser:
        return GLOBAL_SCOPE
    cache: dict[frozenset[str], Scope] = user.__dict__.setdefault("_xems_role_scopes", {})
    roles = frozenset(roles)
    if roles in cache:
        return cache[roles]
    rows = [row for row in _membership_rows(user) if row[0] in roles]
    if any(role == Role.ADMIN and parent_id is None for role, _path, parent_id in rows):
        scope = GLOBAL_SCOPE
    else:
        scope = Scope.from_paths(path for _role, path, _parent in rows)
    cache[roles] = scope
    return scope


def capability_scope(user: Any, capability: Capability) -> Scope:
    """Where ``user`` may do ``capability`` (empty: nowhere)."""
    return role_scope(user, roles_with(capability))


def can(user: Any, capability: Capability, region_path: str) -> bool:
    """May ``user`` do ``capability`` on an object at ``region_path``, by role?"""
    return capability_scope(user, capability).covers(region_path)


def can_somewhere(user: Any, capability: Capability) -> bool:
    """Does ``user`` hold ``capability`` in some region (may they use the API at all)?"""
    return not capability_scope(user, capability).is_empty
