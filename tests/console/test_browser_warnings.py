"""Early warnings in a real browser: an operator composes a warning on the tree and
the map, another approves it, and the 叫应 board turns a silent person into an answer
the moment they acknowledge from their phone — no reload.

The same real processes as ``test_browser_e2e`` (uvicorn serving the ASGI application,
a Celery worker delivering to the local fake FCM, Redis, PostgreSQL; Debian's chromium
driven by Playwright). Waits are on other processes, never on test time.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Role
from apps.early_warnings import services as warnings
from apps.early_warnings.approval import approval_rules_seed
from apps.early_warnings.models import WarningStatus, WarningVersion
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from apps.sla.policies import policies_invalidate
from apps.sla.services.seed import policies_load_fixture
from tests.console.test_browser_e2e import wait_for_push
from tests.factories.accounts import CitizenFactory, DeviceFactory, StaffUserFactory
from tests.support import browser as chrome
from tests.support.fake_fcm import FakeFcm

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

WAIT_MS = 15_000
PHONE = "fcm-token-of-the-sanqiao-roster-person"


def confirm(page: Any) -> None:
    """On a confirmation page: flip the confirm switch, submit, back on the warning."""
    page.check("input[name=confirm]", force=True)  # unfold's switch hides the checkbox
    page.click("button[name=_confirm]")
    page.wait_for_selector("#xc-warning")


def test_a_warning_is_composed_approved_and_answered_on_a_live_board(
    server: str,
    browser: Any,
    fcm: FakeFcm,
) -> None:
    from playwright.sync_api import expect

    base = server
    policies_invalidate()
    policies_load_fixture()
    regions_load_fixture()
    approval_rules_seed()
    fengdong = Region.objects.get(code="fengdong")
    author = chrome.sign_in_able(
        StaffUserFactory(username="fd-author", region=fengdong, region__role=Role.OPERATOR)
    )
    approver = chrome.sign_in_able(
        StaffUserFactory(username="fd-approver", region=fengdong, region__role=Role.OPERATOR)
    )
    person = CitizenFactory(display_name="三桥责任人")
    DeviceFactory(user=person, token=PHONE)
    sanqiao = Region.objects.get(code="fd-sanqiao")
    warnings.responsible_person_add(by=None, region_id=sanqiao.pk, user_id=person.pk)

    # given: the author composes a blue rainstorm warning for 三桥街道, ticked on the tree
    a = chrome.new_context(browser).new_page()
    chrome.admin_login(a, base, author.username)
    a.goto(f"{base}/admin/early_warnings/warningversion/add/")
    a.select_option("select[name=warning_type]", "rainstorm")
    a.select_option("select[name=level]", "blue")
    a.fill("input[name=title]", "三桥街道暴雨蓝色预警")
    a.fill("textarea[name=description]", "预计未来6小时三桥街道降雨量将达50毫米以上。")
    a.fill("textarea[name=instruction]", "注意防范城市内涝，低洼地带人员及时转移。")
    a.check('#xc-tree input[value="fd-sanqiao"]')
    a.wait_for_selector("#xc-target-map .leaflet-interactive", timeout=WAIT_MS)  # map drawn
    chrome.screenshot(a, "warning-compose")
    a.check("input[name=submit_now]", force=True)
    a.check("input[name=confirm]", force=True)
    a.click("button[name=_confirm]")
    a.wait_for_selector("#xc-warning", timeout=WAIT_MS)
    version = WarningVersion.objects.get(title="三桥街道暴雨蓝色预警")
    assert version.status == WarningStatus.PENDING_APPROVAL
    assert [t.region.code for t in version.targets.all()] == ["fd-sanqiao"]

    # when: another 沣东 operator approves it from the warning page
    b = chrome.new_context(browser).new_page()
    chrome.admin_login(b, base, approver.username)
    b.goto(f"{base}/admin/early_warnings/warningversion/{version.pk}/change/")
    b.click('#xc-actions a[data-action="approve"]')
    b.wait_for_selector("#xc-action form")
    confirm(b)

    # then: it is published, the roster person is silent on the live board and their
    # phone rings
    version.refresh_from_db()
    assert version.status == WarningStatus.PUBLISHED
    b.wait_for_selector('#xc-acks[data-state="live"]', timeout=WAIT_MS)
    row = b.locator(f'#xc-ack-rows tr[data-user-id="{person.pk}"]')
    expect(row).to_have_attribute("data-acked", "0", timeout=WAIT_MS)
    assert wait_for_push(fcm, PHONE)

    # when: the person answers (叫应) from the app
    response = httpx.post(
        f"{base}/api/v1/warnings/{version.pk}/ack/",
        json={},
        headers={"Authorization": f"Bearer {AccessToken.for_user(person)}"},
        timeout=20,
    )
    assert response.status_code in (200, 201), response.text

    # then: the board shows the answer without a reload
    expect(b.locator(f'#xc-ack-rows tr[data-user-id="{person.pk}"]')).to_have_attribute(
        "data-acked", "1", timeout=WAIT_MS
    )
    chrome.screenshot(b, "warning-acks")
