"""The category taxonomy kept in process memory, for intake's hot path.

Every citizen report names a category; reading it costs a query per report, for a table
of about forty rows that changes a few times a year. Each process keeps the active
categories by code, built with one query, and checks a cluster-wide *generation* token
in Django's cache (one GET; the fast intake path reads it in the same Redis round trip
as its rate limits) — the same two-half invalidation as the street index
(:mod:`apps.regions.geo`): a ``post_save``/``post_delete`` signal drops this process's
copy at once, and on commit bumps the token for every other process.

The instances are shared: treat them as read-only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from apps.core.generation import SharedGeneration
from apps.incidents.models import Category

logger = logging.getLogger(__name__)

GENERATION_CACHE_KEY = "incidents:categories:generation"
_generation = SharedGeneration(GENERATION_CACHE_KEY, what="the category catalogue")


@dataclass(frozen=True)
class Catalogue:
    generation: str
    by_code: dict[str, Category]

    def citizen_category(self, code: object, *, sos: bool = False) -> Category | None:
        """The active category a citizen may report under ``code`` (an SOS may use one
        that is not offered in the picker), or ``None``."""
        category = self.by_code.get(code) if isinstance(code, str) else None
        if category is None or (not sos and not category.citizen_reportable):
            return None
        return category


_catalogue: Catalogue | None = None
_lock = threading.Lock()


def catalogue_invalidate() -> None:
    """Drop the copy here now, and in every process once the transaction commits."""
    global _catalogue  # the process-wide cache slot
    _catalogue = None
    _generation.bump_on_commit()


def catalogue() -> Catalogue:
    """The warm catalogue, rebuilt (one query) when missing or changed elsewhere."""
    global _catalogue  # the process-wide cache slot
    generation = _generation.read()
    current = _catalogue
    if current is not None and (generation is None or current.generation == generation):
        return current
    with _lock:
        current = _catalogue
        if current is None or (generation is not None and current.generation != generation):
            rows = Category.objects.filter(is_active=True).order_by("sort_order", "code")
            by_code: dict[str, Category] = {}
            for row in rows:
                by_code.setdefault(row.code, row)
            current = Catalogue(generation or "local", by_code)
            _catalogue = current
            logger.info("incidents: category catalogue built with %s categories", len(by_code))
    return current


def catalogue_if_current(generation: str | None) -> Catalogue | None:
    """This process's warm catalogue if it is at ``generation``, else ``None`` (no cache
    read, no query): see ``apps.regions.geo.street_index_if_current``."""
    current = _catalogue
    if current is None or generation is None or current.generation != generation:
        return None
    return current
