"""The read-only KPI page of the admin: permission, scope, filters, and no 500s."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ensure_role_groups
from tests.analytics.conftest import NOW, WINDOW, Scenario
from tests.factories.accounts import UserFactory

pytestmark = pytest.mark.django_db

URL = "admin:analytics_kpireport_changelist"


@pytest.fixture(autouse=True)
def _role_groups(db: None) -> None:
    """The role groups as a migrate leaves them once every app's permissions exist (on
    a fresh test database the groups are built before the later apps' permissions)."""
    ensure_role_groups()


def page(user: User, **params: str) -> tuple[int, str]:
    client = Client()
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        response = client.get(reverse(URL), params)
    return response.status_code, response.content.decode()


def test_an_operator_sees_the_figures_of_their_new_town_only(scenario: Scenario) -> None:
    status, html = page(scenario.fengdong_operator, **WINDOW, group_by="region")

    assert status == 200
    # The total row: 6 incidents (1 rejected / 1 merged / 1 reopened), 4 tasks.
    assert "6 (1 / 1 / 1)" in html
    assert "4 (1 / 0 / 0)" in html
    assert scenario.jianzhang.name_en in html
    # 钓台 (沣西) is neither a group nor offered in the region picker.
    assert scenario.tree.diaotai.name_en not in html
    assert "钓台街道" not in html


def test_the_other_operator_sees_the_other_figures(scenario: Scenario) -> None:
    status, html = page(scenario.fengxi_operator, **WINDOW)

    assert status == 200
    assert "1 (0 / 0 / 0)" in html
    assert "6 (1 / 1 / 1)" not in html
    assert "三桥街道" not in html


def test_the_page_shows_median_and_p90_as_durations(scenario: Scenario) -> None:
    _status, html = page(scenario.fengdong_operator, **WINDOW)

    # respond: 3 measured, median 120 s, p90 168 s
    assert "3 · median 2 min 00 s · p90 2 min 48 s" in html
    # resolve: 2 measured, median 49380 s = 13 h 43 min
    assert "2 · median 13 h 43 min" in html


def test_bad_filters_are_shown_on_the_form_not_a_500(scenario: Scenario) -> None:
    status, html = page(scenario.fengdong_operator, **{"from": "2026-11-21", "to": "2026-11-01"})

    assert status == 200
    assert "The end lies before the start." in html
    assert 'id="kpi-intervals"' not in html


def test_a_staff_user_without_the_permission_is_refused(scenario: Scenario) -> None:
    clerk = UserFactory(is_staff=True)

    status, _html = page(clerk)

    assert status == 403


def test_the_admin_index_links_the_page_for_operators(scenario: Scenario) -> None:
    client = Client()
    client.force_login(scenario.fengdong_operator)

    html = client.get(reverse("admin:index")).content.decode()

    assert reverse(URL) in html


def test_the_page_has_no_other_urls() -> None:
    from django.urls import NoReverseMatch

    with pytest.raises(NoReverseMatch):
        reverse("admin:analytics_kpireport_add")
