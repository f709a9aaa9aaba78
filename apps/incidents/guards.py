"""Checks other apps hook into incident transitions without incidents importing them.

Dependencies point downward (dispatch imports incidents, never the reverse), yet
"resolved" must wait for dispatch: an incident can be resolved only when its tasks are
done. So apps above register a *guard* here and :func:`incident_resolve` runs every
guard after locking the incident and before writing anything; a guard refuses by
raising ``ApplicationError``.

    register_resolve_guard(tasks_all_done)  # in the registering app's import path

Registration is idempotent (a guard registered twice runs once), so module reloads and
``AppConfig.ready()`` running again in tests do not stack guards.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.incidents.models import Incident

ResolveGuard = Callable[[Incident], None]

_resolve_guards: list[ResolveGuard] = []


def register_resolve_guard(guard: ResolveGuard) -> ResolveGuard:
    """Run ``guard(incident)`` before every resolve; usable as a decorator."""
    if guard not in _resolve_guards:
        _resolve_guards.append(guard)
    return guard


def resolve_guards_run(incident: Incident) -> None:
    """Called by ``incident_resolve`` with the locked incident; the first refusal wins."""
    for guard in list(_resolve_guards):
        guard(incident)
