"""The Redis cache shares one connection pool per process across request contexts."""

from __future__ import annotations

import pytest
from django.conf import settings

from apps.core.cache import SharedPoolRedisCache

pytestmark = pytest.mark.services


def make_cache() -> SharedPoolRedisCache:
    return SharedPoolRedisCache(
        settings.TEST_REDIS_URL, {"KEY_PREFIX": "xems-test", "OPTIONS": {"max_connections": 5}}
    )


def test_cache_objects_of_different_contexts_share_one_client_and_pool() -> None:
    # given: Django builds a new cache object per async context (one per ASGI request)
    first, second = make_cache(), make_cache()
    # when
    first.set("shared-pool-probe", "42", 10)
    value = second.get("shared-pool-probe")
    # then: one client, one pool, one warm connection instead of one per request
    assert value == "42"
    assert first._cache is second._cache
    pool = first._cache._get_connection_pool(write=True)
    assert len(pool._available_connections) + len(pool._in_use_connections) == 1
    first.delete("shared-pool-probe")


def test_a_different_configuration_gets_its_own_client() -> None:
    other = SharedPoolRedisCache(settings.TEST_REDIS_URL, {"OPTIONS": {"max_connections": 7}})
    assert other._cache is not make_cache()._cache


def test_cache_calls_reuse_one_redis_client_per_pool() -> None:
    cache = make_cache()
    assert cache._cache.get_client() is cache._cache.get_client()
    assert cache._cache.get_client(write=True) is cache._cache.get_client(write=True)
