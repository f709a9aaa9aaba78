"""The on-duty registry: notifications ask, dispatch (or anyone above) answers."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import pytest

from apps.notifications import duty


@pytest.fixture
def providers() -> Iterator[list[duty.OnDutyProvider]]:
    saved = list(duty._providers)
    duty._providers.clear()
    yield duty._providers
    duty._providers[:] = saved


def test_a_user_is_on_duty_if_any_provider_says_so(providers: list) -> None:
    duty.register_on_duty_provider(lambda ids: {1: False, 2: False})
    duty.register_on_duty_provider(lambda ids: {2: True})

    assert duty.duty_of([1, 2, 3]) == {1: False, 2: True}


def test_a_failing_provider_is_ignored_not_fatal(providers: list) -> None:
    def broken(ids: Collection[int]) -> dict[int, bool]:
        raise RuntimeError("database unavailable")

    duty.register_on_duty_provider(broken)
    duty.register_on_duty_provider(lambda ids: {7: True})

    assert duty.duty_of([7]) == {7: True}


def test_registering_twice_keeps_one(providers: list) -> None:
    def provider(ids: Collection[int]) -> dict[int, bool]:
        return {}

    duty.register_on_duty_provider(provider)
    duty.register_on_duty_provider(provider)
    assert providers == [provider]
    duty.unregister_on_duty_provider(provider)
    assert providers == []
