"""Which policy applies, and the ladder a clock carries.

**Matching order** (:func:`policy_match`). Among the *active* policies of the clock's kind,
a policy matches when each of its ``category_code``, ``severity`` and ``loop`` is blank or
equal to the subject's. The most specific match wins, compared in this order:

1. a policy naming the category beats one that does not (a gas leak's own arrival time
   beats any generic rule);
2. then one naming the severity (or warning level);
3. then one naming the loop.

So for a gas leak (A02), severity Ⅱ, small loop: ``A02/—/—`` beats ``—/II/small`` (category
first), and ``—/II/—`` beats ``—/—/small``. The unique constraint on the active
combinations makes ties impossible. No match: the obligation has no clock.

**Process cache.** Clocks start on hot paths (every citizen report), so each process keeps
the active policies in memory (two queries to build) and checks a cluster-wide generation
token in Django's cache — the two-half invalidation of the category catalogue: a save or
delete drops this process's copy at once and, on commit, bumps the token for every other
process. As a backstop for the embedded default (a local-memory cache per process), a copy
older than ``SLA_POLICY_CACHE_SECONDS`` is rebuilt anyway.

**Ladder.** A clock stores its policy's ladder as plain data (``SlaClock.ladder``) in time
order, so later edits of a policy never move running clocks and the sweeper needs no join.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from apps.core.generation import SharedGeneration
from apps.sla.models import Anchor, NextTeam, SlaLadderStep, SlaPolicy

logger = logging.getLogger(__name__)

GENERATION_CACHE_KEY = "sla:policies:generation"
_generation = SharedGeneration(GENERATION_CACHE_KEY, what="the SLA policies")


@dataclass(frozen=True)
class LadderStep:
    """One step of a clock's ladder (its JSON form is :meth:`as_json`)."""

    number: int  # 1-based, in time order
    anchor: str
    after: timedelta
    audiences: tuple[str, ...]
    mark_supervised: bool = False
    raise_loop: bool = False
    expire_task: bool = False
    next_team: str = NextTeam.NONE
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.number,
            "anchor": self.anchor,
            "after_s": int(self.after.total_seconds()),
            "audiences": list(self.audiences),
            "supervise": self.mark_supervised,
            "raise_loop": self.raise_loop,
            "expire_task": self.expire_task,
            "next_team": self.next_team,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LadderStep:
        return cls(
            number=int(data["n"]),
            anchor=str(data.get("anchor", Anchor.LIMIT)),
            after=timedelta(seconds=int(data.get("after_s", 0))),
            audiences=tuple(data.get("audiences", ())),
            mark_supervised=bool(data.get("supervise")),
            raise_loop=bool(data.get("raise_loop")),
            expire_task=bool(data.get("expire_task")),
            next_team=str(data.get("next_team", NextTeam.NONE)),
            note=str(data.get("note", "")),
        )

    def due(self, *, target_at: datetime | None, due_at: datetime) -> datetime:
        """When this step runs for a clock with these (pause-shifted) deadlines."""
        base = target_at if self.anchor == Anchor.TARGET and target_at is not None else due_at
        return base + self.after


@dataclass(frozen=True)
class PolicyRule:
    """An active policy as the clock start needs it (read-only, shared by threads)."""

    pk: int
    code: str
    kind: str
    category_code: str
    severity: str
    loop: str
    target: timedelta | None
    duration: timedelta | None
    ladder: tuple[LadderStep, ...]

    def matches(self, *, category: str, severity: str, loop: str) -> bool:
        return (
            self.category_code in ("", category)
            and self.severity in ("", severity)
            and self.loop in ("", loop)
        )

    @property
    def specificity(self) -> tuple[bool, bool, bool]:
        return (bool(self.category_code), bool(self.severity), bool(self.loop))

    def ladder_json(self) -> list[dict[str, Any]]:
        return [step.as_json() for step in self.ladder]


def ladder_of(policy: SlaPolicy, steps: list[SlaLadderStep]) -> tuple[LadderStep, ...]:
    """``steps`` in the order they run: by their offset from the start of the clock.

    A target-anchored step of a policy without a target counts from the deadline. With no
    fixed deadline (the subject brings it) every step counts from the deadline anyway.
    """

    def offset(step: SlaLadderStep) -> tuple[timedelta, int, int]:
        if step.anchor == Anchor.TARGET and policy.target is not None:
            base = policy.target
        else:
            base = policy.duration or timedelta(0)
        return (base + step.after, 0 if step.anchor == Anchor.TARGET else 1, step.pk or 0)

    ordered = sorted(steps, key=offset)
    return tuple(
        LadderStep(
            number=index,
            anchor=step.anchor if policy.target is not None else Anchor.LIMIT,
            after=step.after,
            audiences=tuple(step.audiences),
            mark_supervised=step.mark_supervised,
            raise_loop=step.raise_loop,
            expire_task=step.expire_task,
            next_team=step.next_team,
            note=step.note,
        )
        for index, step in enumerate(ordered, start=1)
    )


# --- The process cache -----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyTable:
    generation: str
    built_at: float
    by_kind: dict[str, tuple[PolicyRule, ...]]


_table: PolicyTable | None = None
_lock = threading.Lock()


def policies_invalidate() -> None:
    """Drop this process's copy now, and every process's once the transaction commits."""
    global _table  # the process-wide cache slot
    _table = None
    _generation.bump_on_commit()


def _build(generation: str) -> PolicyTable:
    policies = list(SlaPolicy.objects.filter(is_active=True).order_by("pk"))
    steps: dict[int, list[SlaLadderStep]] = {}
    for step in SlaLadderStep.objects.filter(policy__is_active=True).order_by("pk"):
        steps.setdefault(step.policy_id, []).append(step)
    by_kind: dict[str, list[PolicyRule]] = {}
    for policy in policies:
        by_kind.setdefault(policy.kind, []).append(
            PolicyRule(
                pk=policy.pk,
                code=policy.code,
                kind=policy.kind,
                category_code=policy.category_code,
                severity=policy.severity,
                loop=policy.loop,
                target=policy.target,
                duration=policy.duration,
                ladder=ladder_of(policy, steps.get(policy.pk, [])),
            )
        )
    return PolicyTable(
        generation=generation,
        built_at=time.monotonic(),
        by_kind={kind: tuple(rules) for kind, rules in by_kind.items()},
    )


def _current() -> PolicyTable:
    global _table  # the process-wide cache slot
    generation = _generation.read()
    max_age = float(getattr(settings, "SLA_POLICY_CACHE_SECONDS", 60))
    current = _table
    if (
        current is not None
        and (generation is None or current.generation == generation)
        and time.monotonic() - current.built_at < max_age
    ):
        return current
    with _lock:
        current = _table
        if (
            current is None
            or (generation is not None and current.generation != generation)
            or time.monotonic() - current.built_at >= max_age
        ):
            current = _build(generation or "local")
            _table = current
    return current


def policies_current() -> PolicyTable:
    """The process's current table of active policies (one cache GET to check it is
    current). A batch that starts many clocks reads it once and passes it on."""
    return _current()


def policy_match(
    *,
    kind: str,
    category: str = "",
    severity: str = "",
    loop: str = "",
    table: PolicyTable | None = None,
) -> PolicyRule | None:
    """The active policy for an obligation (see the module docstring for the order), from
    ``table`` (:func:`policies_current`) or the current table."""
    candidates = [
        rule
        for rule in (table or _current()).by_kind.get(str(kind), ())
        if rule.matches(category=category or "", severity=severity or "", loop=loop or "")
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda rule: rule.specificity)
