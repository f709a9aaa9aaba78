"""On-commit helpers: side effects never see a row that was rolled back (conventions R2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction


def on_commit(fn: Callable[[], Any], *, using: str | None = None) -> None:
    """Run ``fn`` after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(fn, using=using, robust=True)


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """``task.delay(*args, **kwargs)`` once the surrounding transaction has committed.

    Robust: the change is already durable when this runs, so a broker hiccup is logged
    (and the work is picked up by the periodic sweeps that own durability), never turned
    into a 500 for a request that succeeded.
    """
    transaction.on_commit(lambda: task.delay(*args, **kwargs), robust=True)
