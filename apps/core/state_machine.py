"""Transition tables: which action is allowed from which status, and where it leads.

Each stateful model keeps ONE table (``apps/incidents/transitions.py``,
``apps/dispatch/task_transitions.py``); services look their action up after locking the
row, and the API/admin ask the same table what is allowed now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apps.core.errors import ApplicationError


@dataclass(frozen=True)
class Transition:
    """``sources``: the statuses the action is allowed from; ``target``: the status it
    leads to, or ``None`` when the action leaves the status alone."""

    sources: frozenset[str]
    target: str | None = None


def transition_target(
    table: Mapping[Any, Transition], *, status: str, action: Any, code: str, message: Any
) -> str | None:
    """The status ``action`` leads to from ``status`` (``None``: unchanged), or raise
    ``code`` (409) with ``extra = {"from", "action", "to"}``."""
    rule = table[action]
    if status not in rule.sources:
        raise ApplicationError(
            code,
            message,
            extra={"from": status, "action": str(action), "to": rule.target},
            status=409,
        )
    return rule.target


def allowed_actions(table: Mapping[Any, Transition], status: str) -> list[str]:
    """The actions allowed from ``status``, in table order (for clients and admin)."""
    return [str(action) for action, rule in table.items() if status in rule.sources]
