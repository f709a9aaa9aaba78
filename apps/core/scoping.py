"""The one visibility rule: who sees which part of the region tree (conventions R9).

A user's *scope* is a set of region paths (materialised paths such as
``/xixian/fengdong/``); they see and touch an object iff its region path starts with
one of them. Every queryset, admin, socket subscription and push fan-out reuses
:func:`scope_for` + :meth:`Scope.q`, so there is one place to get it right.

``core`` cannot import ``accounts`` (dependencies point downward), so accounts registers
the resolver that turns memberships into paths in ``AccountsConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Scope:
    """The region subtrees a user may see. ``is_global`` means the whole tree."""

    paths: tuple[str, ...] = ()
    is_global: bool = False

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> Scope:
        """Normalise: drop paths that lie inside another path of the set."""
        unique = sorted(set(paths))
        kept: list[str] = []
        for path in unique:
            if not any(path.startswith(parent) for parent in kept):
                kept.append(path)
        return cls(paths=tuple(kept))

    @property
    def is_empty(self) -> bool:
        return not self.is_global and not self.paths

    def q(self, path_field: str) -> Q:
        """A filter on ``path_field`` (e.g. ``"region__path"``) matching this scope."""
        if self.is_global:
            return Q()
        if not self.paths:
            return Q(pk__in=[])
        condition = Q()
        for path in self.paths:
            condition |= Q(**{f"{path_field}__startswith": path})
        return condition

    def covers(self, path: str) -> bool:
        """True if an object at region ``path`` is visible."""
        return self.is_global or any(path.startswith(p) for p in self.paths)


EMPTY_SCOPE = Scope()
GLOBAL_SCOPE = Scope(is_global=True)

_resolver: Callable[[Any], Scope] | None = None


def register_scope_resolver(resolver: Callable[[Any], Scope]) -> None:
    global _resolver
    _resolver = resolver


def scope_for(user: Any) -> Scope:
    """The scope of ``user``; cached on the user object for the request's lifetime."""
    if user is None or not getattr(user, "is_authenticated", False):
        return EMPTY_SCOPE
    cached = getattr(user, "_xems_scope", None)
    if cached is not None:
        return cached
    if _resolver is None:  # pragma: no cover - accounts always registers one
        raise RuntimeError("No scope resolver registered (is apps.accounts installed?)")
    scope = _resolver(user)
    user._xems_scope = scope
    return scope


def restrict(queryset: QuerySet[M], user: Any, path_field: str) -> QuerySet[M]:
    """``queryset`` limited to what ``user`` may see, by the region path in ``path_field``."""
    return queryset.filter(scope_for(user).q(path_field))
