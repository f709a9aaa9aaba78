"""Sliding-window limits checked together: DRF's semantics, one Redis round trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import time_machine
from django.conf import settings as django_settings

from apps.core import ratelimit
from apps.core.ratelimit import Limit


def limits(prefix: str, *pairs: tuple[str, int, int]) -> list[Limit]:
    return [Limit(f"{ratelimit.KEY_PREFIX}{prefix}:{name}", n, window) for name, n, window in pairs]


@pytest.mark.parametrize("ident", ["10.0.0.1", "+8613900001234", "2001:db8::1", "phone-1"])
def test_plain_idents_stay_readable_in_the_key(ident: str) -> None:
    assert Limit.of("report_ip", ident, "1/min").key == f"{ratelimit.KEY_PREFIX}report_ip:{ident}"


def test_idents_a_client_made_up_are_digested_into_a_bounded_clean_key() -> None:
    odd = ["F~+kY(c\t_", "设备", "a b", "x" * 65, "\ud800", "\x00"]
    keys = [Limit.of("sos_device", ident, "1/min").key for ident in odd]
    assert len(set(keys)) == len(odd)  # one counter per distinct value
    for key in keys:
        assert key.isascii()
        assert key.isprintable()
        assert " " not in key
        assert len(key) <= len(ratelimit.KEY_PREFIX) + len("sos_device:h.") + 32


def test_rates_read_like_drfs() -> None:
    assert ratelimit.parse_rate("30/min") == (30, 60)
    assert ratelimit.parse_rate("10/minute") == (10, 60)
    assert ratelimit.parse_rate("5/hour") == (5, 3600)
    assert ratelimit.parse_rate("2/s") == (2, 1)


class TestOnTheDjangoCache:
    """The fallback (no REDIS_URL): embedded default and unit tests."""

    def test_allows_up_to_the_limit_then_refuses_with_the_wait(self) -> None:
        checks = limits("c", ("ip", 2, 60))
        with time_machine.travel("2026-11-21 08:00:00+08:00", tick=False) as clock:
            assert ratelimit.hit(checks).allowed
            clock.shift(10)
            assert ratelimit.hit(checks).allowed
            refused = ratelimit.hit(checks)
            assert not refused.allowed
            assert refused.wait_s == pytest.approx(50)  # until the first hit leaves
            assert refused.retry_after == 50
            clock.shift(51)
            assert ratelimit.hit(checks).allowed

    def test_a_refused_request_consumes_none_of_its_limits(self) -> None:
        ip, device = limits("c2", ("ip", 5, 60), ("device", 1, 60))
        assert ratelimit.hit([ip, device]).allowed
        assert not ratelimit.hit([ip, device]).allowed  # the device is spent
        # the refusal did not count against the address
        for _ in range(4):
            assert ratelimit.hit([ip]).allowed
        assert not ratelimit.hit([ip]).allowed


@pytest.fixture
def on_redis(settings: Any) -> Iterator[redis.Redis]:
    url = django_settings.TEST_REDIS_URL
    settings.REDIS_URL = url
    client = redis.Redis.from_url(url)
    yield client
    for key in client.scan_iter(f"{ratelimit.KEY_PREFIX}*"):
        client.delete(key)


@pytest.mark.services
class TestOnRedis:
    def test_allows_up_to_the_limit_then_refuses_with_the_wait(self, on_redis: Any) -> None:
        checks = limits(uuid.uuid4().hex, ("ip", 2, 60))
        assert ratelimit.hit(checks).allowed
        assert ratelimit.hit(checks).allowed
        refused = ratelimit.hit(checks)
        assert not refused.allowed
        assert 59 <= refused.wait_s <= 60
        assert refused.retry_after == 60

    def test_a_refused_request_consumes_none_of_its_limits(self, on_redis: Any) -> None:
        ip, device = limits(uuid.uuid4().hex, ("ip", 5, 60), ("device", 1, 60))
        assert ratelimit.hit([ip, device]).allowed
        assert not ratelimit.hit([ip, device]).allowed
        assert on_redis.zcard(ip.key) == 1
        assert 0 < on_redis.pttl(ip.key) <= 60_000  # keys expire with their window

    def test_reads_other_keys_in_the_same_round_trip(self, on_redis: Any) -> None:
        on_redis.set("xems:test:generation", b"g-1")
        verdict = ratelimit.hit(
            limits(uuid.uuid4().hex, ("ip", 1, 60)),
            read=["xems:test:generation", "xems:test:missing"],
        )
        on_redis.delete("xems:test:generation")
        assert verdict.allowed
        assert verdict.values == (b"g-1", None)

    async def test_the_asyncio_limiter_shares_the_budget(self, on_redis: Any) -> None:
        checks = limits(uuid.uuid4().hex, ("ip", 2, 60))
        limiter = ratelimit.AsyncLimiter(django_settings.TEST_REDIS_URL)
        try:
            assert (await limiter.hit(checks)).allowed
            assert ratelimit.hit(checks).allowed
            assert not (await limiter.hit(checks)).allowed
        finally:
            await limiter.close()
