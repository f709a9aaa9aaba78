"""Cluster-wide generation tokens for in-process copies of reference data.

Several hot paths keep a read-mostly table in process memory (the street index, the
category catalogue, the SLA policies) instead of querying it per request. Each copy is
stamped with a *generation*: a token in Django's cache (Redis in production) that every
process compares on use — one cache GET, no query — and that an edit replaces once its
transaction commits, so every other process rebuilds. The process that made the edit
drops its own copy at once (its signal handler), so it sees the edit in the same request.

A cache outage never stops the hot path: :meth:`SharedGeneration.read` answers ``None``
and callers keep their local copy.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


class SharedGeneration:
    """The generation token of one in-process copy, under ``key`` in Django's cache."""

    def __init__(self, key: str, *, what: str) -> None:
        self.key = key
        self.what = what  # for the log: "the street index", "the SLA policies"

    def read(self) -> str | None:
        """The current token (created on first use); ``None`` if the cache is down."""
        try:
            token = cache.get(self.key)
            if token is None:
                # add() is atomic: concurrent first readers agree on one token.
                cache.add(self.key, uuid.uuid4().hex, timeout=None)
                token = cache.get(self.key)
        except Exception:  # an outage must not stop lookups; the local copy still works
            logger.warning("cannot read the generation of %s", self.what, exc_info=True)
            return None
        return token

    def bump(self) -> None:
        """Make every process's copy stale (now)."""
        try:
            cache.set(self.key, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.warning("cannot bump the generation of %s", self.what, exc_info=True)

    def bump_on_commit(self) -> None:
        """Make every process's copy stale once the current transaction commits."""
        transaction.on_commit(self.bump)
