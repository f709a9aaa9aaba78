"""Sliding-window rate limits checked together, in one Redis round trip.

Public intake is limited several ways at once (per client address, per device, per
phone). DRF's ``SimpleRateThrottle`` keeps a pickled list of timestamps per key in the
cache: each throttle costs a GET and a SET (six round trips for intake's three), the
read-modify-write races under concurrency, and only synchronous code can use it. This
module keeps the same *sliding window log* semantics (at most ``limit`` hits in any
``window`` seconds; the wait is until enough old hits leave the window) with:

* **Redis** (``REDIS_URL`` set): one Lua script per request checks every limit and, only
  if all allow, records the hit in each (a refused request consumes nothing). Sorted
  sets scored by time; keys expire with their window. The same script can read extra
  string keys in the same round trip (the fast intake path reads the cache generation
  tokens of its in-process indexes this way). Sync and asyncio clients share the script.
* **The Django cache** otherwise (embedded default, unit tests): a timestamp list per
  key, as DRF does; per process and not atomic, which is what DRF offered before.

Rates are DRF strings (``"30/min"``), read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
by the callers.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

KEY_PREFIX = "xems:rl:"

DURATIONS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# KEYS: the limit keys, then the keys to read. ARGV: now (ms), the number of limits,
# a unique member suffix, then limit and window (ms) per limit key.
# Returns {allowed (0/1), wait (ms), value of each read key or "" when missing}.
_SCRIPT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local wait = 0
for i = 1, n do
  local limit = tonumber(ARGV[2 + 2 * i])
  local window = tonumber(ARGV[3 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
local allowed = 0
if wait <= 0 then
  allowed = 1
  wait = 0
  for i = 1, n do
    local window = tonumber(ARGV[3 + 2 * i])
    redis.call('ZADD', KEYS[i], now, ARGV[1] .. ':' .. ARGV[3] .. ':' .. i)
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
local out = {allowed, math.ceil(wait)}
for j = n + 1, #KEYS do
  local value = redis.call('GET', KEYS[j])
  if value then out[#out + 1] = value else out[#out + 1] = '' end
end
return out
"""


def parse_rate(rate: str) -> tuple[int, int]:
    """``"30/min"`` → (30, 60), as DRF reads rates (the first letter of the period)."""
    count, period = rate.split("/")
    return int(count), DURATIONS[period.strip()[0]]


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` hits on ``key`` in any ``window_s`` seconds."""

    key: str
    limit: int
    window_s: int

    @classmethod
    def of(cls, scope: str, ident: str, rate: str) -> Limit:
        limit, window = parse_rate(rate)
        return cls(f"{KEY_PREFIX}{scope}:{key_part(ident)}", limit, window)


# Addresses, normalised phones, ids: kept readable in the key.
_PLAIN_IDENT = re.compile(r"[A-Za-z0-9.:+_@\[\]-]{1,64}")


def key_part(ident: str) -> str:
    """``ident`` as it may appear in a cache key: itself when plain, else a digest.

    Some idents are whatever the client sent (``X-Device-Id``): control characters and
    spaces make keys that the Django cache warns about and memcached refuses (found by
    ``tests/fuzz``). A digest keeps one counter per distinct value, in a bounded key.
    """
    if _PLAIN_IDENT.fullmatch(ident):
        return ident
    return "h." + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    wait_s: float  # until the request would be allowed; 0 when allowed
    values: tuple[bytes | None, ...] = ()  # the read keys' values, in order

    @property
    def retry_after(self) -> int:
        """Whole seconds for ``Retry-After`` (rounded up, at least 1 when refused)."""
        return 0 if self.allowed else max(1, math.ceil(self.wait_s))


def _args(limits: Sequence[Limit]) -> list[Any]:
    now_ms = int(time.time() * 1000)
    args: list[Any] = [now_ms, len(limits), uuid.uuid4().hex[:12]]
    for item in limits:
        args += [item.limit, item.window_s * 1000]
    return args


def _verdict(raw: Sequence[Any], reads: int) -> Verdict:
    values = tuple((v if v not in (b"", "") else None) for v in raw[2 : 2 + reads])
    return Verdict(bool(int(raw[0])), int(raw[1]) / 1000, values)  # type: ignore[arg-type]


_sync_clients: dict[str, Any] = {}
_lock = threading.Lock()


def redis_url() -> str:
    return str(getattr(settings, "REDIS_URL", "") or "")


def _sync_client(url: str) -> Any:
    client = _sync_clients.get(url)
    if client is None:
        import redis

        with _lock:
            client = _sync_clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url)
                _sync_clients[url] = client
    return client


def hit(limits: Sequence[Limit], *, read: Sequence[str] = ()) -> Verdict:
    """Check and record ``limits`` together (synchronous callers: DRF throttles)."""
    url = redis_url()
    if url:
        client = _sync_client(url)
        raw = client.eval(_SCRIPT, len(limits) + len(read), *[x.key for x in limits], *read,
                          *_args(limits))  # fmt: skip
        return _verdict(raw, len(read))
    return _cache_hit(limits)


class AsyncLimiter:
    """The same check from asyncio code, on one redis.asyncio client per event loop.

    The script is sent by SHA (``EVALSHA``) once loaded, so a request costs one small
    round trip.
    """

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(url)
        self._script = self._client.register_script(_SCRIPT)

    async def hit(self, limits: Sequence[Limit], *, read: Sequence[str] = ()) -> Verdict:
        raw = await self._script(keys=[*[x.key for x in limits], *read], args=_args(limits))
        return _verdict(raw, len(read))

    async def close(self) -> None:
        await self._client.aclose()


def _cache_hit(limits: Sequence[Limit]) -> Verdict:
    """The fallback on Django's cache: DRF's algorithm, one key per limit."""
    now = time.time()
    histories = []
    wait = 0.0
    for item in limits:
        history = [t for t in cache.get(item.key, []) if t > now - item.window_s]
        if len(history) >= item.limit:
            oldest = sorted(history)[len(history) - item.limit]
            wait = max(wait, oldest + item.window_s - now)
        histories.append(history)
    if wait > 0:
        return Verdict(False, wait)
    for item, history in zip(limits, histories, strict=True):
        cache.set(item.key, [*history, now], item.window_s)
    return Verdict(True, 0.0)
