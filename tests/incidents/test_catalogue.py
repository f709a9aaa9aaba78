"""The in-process category catalogue: no query per report, never stale after an edit."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from apps.incidents import catalogue
from tests.factories.incidents import CategoryFactory

pytestmark = pytest.mark.django_db


def test_a_warm_catalogue_answers_without_a_query(django_assert_num_queries: Any) -> None:
    CategoryFactory(code="A01")
    catalogue.catalogue()
    with django_assert_num_queries(0):
        assert catalogue.catalogue().citizen_category("A01") is not None


def test_only_active_citizen_categories_are_offered_but_sos_may_use_a_hidden_one() -> None:
    CategoryFactory(code="A01")
    CategoryFactory(code="O99", citizen_reportable=False)
    CategoryFactory(code="X01", is_active=False)
    current = catalogue.catalogue()
    assert current.citizen_category("A01") is not None
    assert current.citizen_category("O99") is None
    assert current.citizen_category("O99", sos=True) is not None
    assert current.citizen_category("X01") is None
    assert current.citizen_category(12) is None


def test_an_edit_here_drops_the_copy_at_once(django_capture_on_commit_callbacks: Any) -> None:
    category = CategoryFactory(code="A01")
    assert catalogue.catalogue().citizen_category("A01") is not None
    # when
    with django_capture_on_commit_callbacks(execute=True):
        category.citizen_reportable = False
        category.save()
    # then
    assert catalogue.catalogue().citizen_category("A01") is None


def test_an_edit_in_another_process_is_seen_through_the_generation() -> None:
    CategoryFactory(code="A01")
    before = catalogue.catalogue()
    # when: another process bumped the shared token (this process's copy is untouched)
    cache.set(catalogue.GENERATION_CACHE_KEY, "another-process", timeout=None)
    # then
    after = catalogue.catalogue()
    assert after is not before
    assert after.generation == "another-process"


def test_the_warm_copy_is_offered_only_at_its_own_generation(
    django_assert_num_queries: Any,
) -> None:
    CategoryFactory(code="A01")
    current = catalogue.catalogue()
    with django_assert_num_queries(0):
        assert catalogue.catalogue_if_current(current.generation) is current
        assert catalogue.catalogue_if_current("another-process") is None
        assert catalogue.catalogue_if_current(None) is None
