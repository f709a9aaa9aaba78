"""Rate limit of ``POST requests`` per client address: a fixed-window counter in the cache.

An Open311 client may be a server relaying many citizens (one address), so the default
is generous and ``OPEN311_POST_RATE`` (``"<n>/<s|m|h|d>"``) tunes it. The counter lives
in Django's cache (Redis in production), so every web process shares one budget; a
cache outage lets requests through rather than refusing citizens.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

DEFAULT_POST_RATE = "60/m"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"60/m"`` → ``(60, 60)``: number of requests, window in seconds."""
    count, _slash, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[:1].lower()]


def post_allowed(ident: str | None) -> tuple[bool, int]:
    """Count one POST from ``ident``; ``(allowed, seconds until the window resets)``."""
    if not ident:
        return True, 0
    limit, window = parse_rate(str(getattr(settings, "OPEN311_POST_RATE", DEFAULT_POST_RATE)))
    now = int(time.time())
    bucket = now // window
    key = f"open311:post:{ident}:{bucket}"
    try:
        cache.add(key, 0, timeout=window + 1)
        count = cache.incr(key)
    except Exception:  # the limit must never take intake down with it
        logger.warning("open311 throttle: cache unavailable", exc_info=True)
        return True, 0
    return count <= limit, (bucket + 1) * window - now
