"""Subject handlers: how the SLA engine acts on things it does not know.

``apps.sla`` times incidents, reports, dispatch tasks, warning receipts and hidden dangers
but imports none of their apps (they sit above it). Each owning app registers, in its
``AppConfig.ready()``, a :class:`SubjectHandler` for its subject type::

    registry.register_subject("incident", SubjectHandler(label=_("Incident"), lock=...))
    registry.register_recipients("incident", Audience.ASSIGNEE, incident_assignee_ids)

like healthchecks' ``TRANSPORTS`` table. The sweeper then calls, inside the transaction
of one clock:

1. ``lock(subject_id, wait=False)``: lock the subject's rows in the owning app's own
   lock order and report :class:`Lock` ``LOCKED``, ``BUSY`` (someone else holds them:
   try again on the next sweep) or ``GONE`` (the clock is cancelled);
2. the step's actions that apply: ``supervise`` (督办), ``raise_loop``, ``expire`` (a task
   not accepted in time; ``next_team`` says whether the next recommended team is only
   proposed or dispatched), each returning a JSON-able dict of what it did;
3. ``record`` for the subject's timeline (an incident timeline row per escalation).

Recipients: the region audiences (street duty officer, new-town and new-area command) are
resolved here from memberships; ``assignee`` and ``team_leader`` depend on the subject and
come from resolvers the owning apps register (dispatch registers both for incidents too:
the teams on an incident are dispatch's knowledge).

Registration is idempotent (the last registration of a type wins), so ``ready()``
running twice in tests does not stack handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.sla.models import Escalation, SlaClock
    from apps.sla.policies import LadderStep


class Lock(StrEnum):
    LOCKED = "locked"
    BUSY = "busy"
    GONE = "gone"


@dataclass(frozen=True)
class RecordEvent:
    """What ``record`` is asked to write on the subject's timeline.

    ``kind`` is ``target_missed``, ``breached``, ``step`` (an :class:`Escalation`), or
    ``paused``/``resumed``; ``data`` is JSON-able and self-describing.
    """

    kind: str
    clock: SlaClock
    data: dict[str, Any]
    escalation: Escalation | None = None


Action = Callable[["SlaClock", "LadderStep"], dict[str, Any]]


@dataclass(frozen=True)
class SubjectHandler:
    """What the owning app of a subject type lends the SLA engine (all but ``lock``
    optional: a missing action is recorded as not applicable)."""

    label: Any
    lock: Callable[..., Lock]
    record: Callable[[RecordEvent], None] | None = None
    supervise: Action | None = None
    raise_loop: Action | None = None
    expire: Action | None = None


RecipientResolver = Callable[["SlaClock"], Iterable[int]]

_handlers: dict[str, SubjectHandler] = {}
_recipients: dict[tuple[str, str], RecipientResolver] = {}


def register_subject(subject_type: str, handler: SubjectHandler) -> None:
    _handlers[subject_type] = handler


def register_recipients(subject_type: str, audience: str, resolver: RecipientResolver) -> None:
    """``resolver(clock)`` gives the user ids of ``audience`` for clocks on this type."""
    _recipients[(subject_type, str(audience))] = resolver


def handler_for(subject_type: str) -> SubjectHandler | None:
    return _handlers.get(subject_type)


def recipients_resolver(subject_type: str, audience: str) -> RecipientResolver | None:
    return _recipients.get((subject_type, str(audience)))


def subject_types() -> dict[str, Any]:
    """Registered subject types and their labels (admin filters)."""
    return {name: handler.label for name, handler in sorted(_handlers.items())}


# --- Choices the policy admin offers ------------------------------------------------------------

_dimensions: dict[str, list[Callable[[], Iterable[tuple[str, Any]]]]] = {}


def register_dimension(name: str, choices: Callable[[], Iterable[tuple[str, Any]]]) -> None:
    """Offer ``choices()`` for a policy's ``category_code``, ``severity`` or ``loop`` in the
    admin (incidents registers its categories, severities and loops; warning levels come
    from the warnings app). Idempotent per callable."""
    registered = _dimensions.setdefault(name, [])
    if choices not in registered:
        registered.append(choices)


def dimension_choices(name: str) -> list[tuple[str, Any]]:
    seen: dict[str, Any] = {}
    for provider in _dimensions.get(name, []):
        for value, label in provider():
            seen.setdefault(str(value), label)
    return list(seen.items())
