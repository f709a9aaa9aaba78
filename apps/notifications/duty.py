"""Who is on duty: asked of the app that knows (dispatch), without importing it.

Notifications sit below dispatch in the layers (docs/architecture.md section 2), so dispatch
registers a provider in its ``AppConfig.ready()``::

    register_on_duty_provider(members_on_duty)

A provider takes user ids and answers ``{user_id: on_duty}`` for the users it knows
(responders); users it does not know are left out and never count as off duty, so a
citizen's preference to mute "when off duty" never silences them by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

logger = logging.getLogger(__name__)

OnDutyProvider = Callable[[Collection[int]], Mapping[int, bool]]

_providers: list[OnDutyProvider] = []


def register_on_duty_provider(provider: OnDutyProvider) -> None:
    """Add ``provider`` (idempotent: registering the same function twice keeps one)."""
    if provider not in _providers:
        _providers.append(provider)


def unregister_on_duty_provider(provider: OnDutyProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def duty_of(user_ids: Collection[int]) -> dict[int, bool]:
    """``{user_id: on_duty}`` for the users some provider knows; on duty if any says so.

    A failing provider is logged and ignored: not knowing the duty state must not stop
    a push (the user is then treated as unknown, i.e. not muted).
    """
    known: dict[int, bool] = {}
    if not user_ids:
        return known
    for provider in list(_providers):
        try:
            answer = provider(user_ids)
        except Exception:
            logger.exception("on-duty provider %r failed", provider)
            continue
        for user_id, on_duty in answer.items():
            known[user_id] = known.get(user_id, False) or bool(on_duty)
    return known
