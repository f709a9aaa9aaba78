"""The command centre in a real browser: a citizen's report goes from the 值班台 to a
closed incident, and the 沣西 operator's board never sees any of it.

Real processes, as deployed: uvicorn serving the project's ASGI application (admin
pages, REST and the event socket the board listens on), a Celery worker delivering the
push outbox to the local fake FCM, Redis as channel layer and broker, PostgreSQL. Two
people sign in through the admin's login form in headless Chromium (Debian's package,
driven by Playwright, ``tests/support/browser.py``): the 沣东 operator (browser A) and the
沣西 operator (browser B, a separate profile). The citizen and the responder use the API
over HTTP, as their apps do.

Waits are on other processes (the server, the browser), never on test time: each
``wait_for``/``expect`` returns as soon as the page shows the state, and fails with
what the page showed otherwise. The pages' DOM is the contract of the board, map and
dashboard (``docs/admin.md``, "Proven in a browser").
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Role
from apps.dispatch.models import DispatchTask, TaskStatus
from apps.incidents.models import Incident, IncidentStatus, Report
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from apps.sla.policies import policies_invalidate
from apps.sla.services.seed import policies_load_fixture
from tests.factories.accounts import CitizenFactory, DeviceFactory, StaffUserFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory
from tests.factories.incidents import CategoryFactory
from tests.support import browser as chrome
from tests.support.fake_fcm import FakeFcm

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SANQIAO = (34.276, 108.85)  # 三桥街道, 沣东新城
RESPONDER_PHONE = "fcm-token-of-the-sanqiao-responder"
WAIT_MS = 15_000  # the longest any page may take to show what another process did


class World:
    """The demo regions; in 三桥街道 (沣东) a rescue team with an on-duty responder whose
    phone is registered; a 沣东 operator, a 沣西 operator, a citizen."""

    def __init__(self) -> None:
        policies_invalidate()
        policies_load_fixture()
        regions_load_fixture()
        self.regions = {r.code: r for r in Region.objects.all()}
        self.category = CategoryFactory(code="A01", name_zh="城市内涝")
        self.street = self.regions["fd-sanqiao"]
        self.team = TeamFactory(home_region=self.street, name="三桥应急救援队")
        self.responder = TeamMemberFactory(
            team=self.team, on_duty=True, user=CitizenFactory(display_name="张队员")
        ).user
        DeviceFactory(user=self.responder, token=RESPONDER_PHONE)
        self.fengdong = chrome.sign_in_able(
            StaffUserFactory(
                username="fengdong-duty",
                display_name="沣东值班员",
                region=self.regions["fengdong"],
                region__role=Role.OPERATOR,
            )
        )
        self.fengxi = chrome.sign_in_able(
            StaffUserFactory(
                username="fengxi-duty",
                display_name="沣西值班员",
                region=self.regions["fengxi"],
                region__role=Role.OPERATOR,
            )
        )
        self.citizen = CitizenFactory()


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def open_board(page: Any, base: str) -> None:
    page.goto(f"{base}/admin/console/dutydesk/board/")
    page.wait_for_selector('#xc-board[data-state="live"]', timeout=WAIT_MS)


def confirm_action(page: Any, fields: dict[str, str] | None = None) -> None:
    """On an action's confirmation page: fill its form, flip the confirm switch, submit,
    and wait to be back on the incident page."""
    page.wait_for_selector("#xc-action form")
    for selector, value in (fields or {}).items():
        element = page.locator(selector)
        if element.evaluate("e => e.tagName") == "SELECT":
            element.select_option(value)
        else:
            element.fill(value)
    page.check("input[name=confirm]", force=True)  # unfold's switch hides the checkbox
    page.click("#xc-action button[type=submit]")
    page.wait_for_selector("#xc-incident")


def task_api(base: str, task: DispatchTask, step: str, who: Any, **body: Any) -> None:
    response = httpx.post(
        f"{base}/api/v1/tasks/{task.pk}/{step}/", json=body, headers=bearer(who), timeout=20
    )
    assert response.status_code == 200, (step, response.text)


def wait_for_push(fcm: FakeFcm, token: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while not fcm.messages_to(token):
        assert time.monotonic() < deadline, f"no push reached {token}"
        time.sleep(0.1)  # waiting on another process (the worker), not on test time
    return fcm.messages_to(token)


def test_a_report_goes_from_the_board_to_a_closed_incident_in_the_browser_and_never_to_fengxi(
    server: str, browser: Any, fcm: FakeFcm
) -> None:
    from playwright.sync_api import expect

    base = server
    world = World()
    a = chrome.new_context(browser).new_page()
    b = chrome.new_context(browser).new_page()
    # given: both operators signed in, each watching their own 值班台
    chrome.admin_login(a, base, world.fengdong.username)
    chrome.admin_login(b, base, world.fengxi.username)
    open_board(a, base)
    open_board(b, base)
    chrome.record_rows(b)

    # when: a citizen reports through the API, in a 沣东 street
    response = httpx.post(
        f"{base}/api/v1/reports/",
        json={"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": "三桥路积水过膝"},
        headers=bearer(world.citizen),
        timeout=20,
    )
    assert response.status_code == 201, response.text
    report = Report.objects.get(pk=response.json()["id"])

    # then: it appears on A's board without a reload
    report_row = a.locator(f'tr[data-kind="report"][data-id="{report.pk}"]')
    expect(report_row).to_be_visible(timeout=WAIT_MS)
    chrome.screenshot(a, "board")

    # when: A triages it from the board: accept, with category and severity
    report_row.locator('a[data-role="open"]').click()
    a.click('#xc-actions a[data-action="accept"]')
    confirm_action(a, {"select[name=category]": "A01", "select[name=severity]": "IV"})
    report.refresh_from_db()
    assert report.status == Report.Status.ACCEPTED
    incident = Incident.objects.get(pk=report.incident_id)
    assert a.url.endswith(f"/admin/incidents/incident/{incident.pk}/change/")
    assert (incident.status, incident.severity) == (IncidentStatus.ACCEPTED, "IV")

    # and dispatches the recommended team: first in the ranked table, ticked, confirmed
    a.click('#xc-actions a[data-action="dispatch"]')
    first = a.locator("#xc-recommendation-table tbody tr").first
    expect(first).to_have_attribute("data-team-id", str(world.team.pk))
    first.locator("input[type=checkbox]").check()
    confirm_action(a)
    task = DispatchTask.objects.get(incident=incident)
    assert (task.team_id, task.status) == (world.team.pk, TaskStatus.DISPATCHED)
    expect(a.locator(f'#xc-tasks tr[data-task-id="{task.pk}"]')).to_be_visible()
    # the responder's phone rings (through the worker and FCM)
    assert wait_for_push(fcm, RESPONDER_PHONE)[0]["data"]["task_id"] == str(task.pk)

    # when: A watches the board while the responder works the task through the API
    open_board(a, base)
    incident_row = a.locator(f'tr[data-kind="incident"][data-id="{incident.pk}"]')
    expect(incident_row).to_be_visible(timeout=WAIT_MS)
    expect(a.locator(f'tr[data-kind="report"][data-id="{report.pk}"]')).to_have_count(0)
    task_cell = incident_row.locator(f'[data-task-id="{task.pk}"]')
    expect(task_cell).to_have_attribute("data-task-state", TaskStatus.DISPATCHED)
    # then: each step shows on the board live
    for step, state in (
        ("accept", TaskStatus.ACCEPTED),
        ("en-route", TaskStatus.EN_ROUTE),
        ("on-scene", TaskStatus.ON_SCENE),
    ):
        task_api(base, task, step, world.responder)
        expect(task_cell).to_have_attribute("data-task-state", state, timeout=WAIT_MS)
    task_api(base, task, "complete", world.responder, result="积水已排除，道路恢复通行")
    expect(task_cell).to_have_attribute("data-task-state", TaskStatus.COMPLETED, timeout=WAIT_MS)
    chrome.screenshot(a, "board-task-completed")

    # when: A verifies the team's work, resolves (办结) and closes (核查销号) the incident
    incident_row.locator('a[data-role="open"]').click()
    a.wait_for_selector("#xc-incident")
    chrome.screenshot(a, "incident")
    # meanwhile the open incident is a marker on A's map
    a.goto(f"{base}/admin/console/dutydesk/map/")
    a.wait_for_selector('#xc-map[data-ready="1"]', timeout=WAIT_MS)
    expect(a.locator(f'#xc-map [data-incident-id="{incident.pk}"]')).to_have_count(1)
    chrome.screenshot(a, "map", full_page=False)
    # and not on B's (a second tab of B's: B's board keeps recording)
    b_map = b.context.new_page()
    b_map.goto(f"{base}/admin/console/dutydesk/map/")
    b_map.wait_for_selector('#xc-map[data-ready="1"]', timeout=WAIT_MS)
    assert b_map.locator(f'[data-incident-id="{incident.pk}"]').count() == 0
    b_map.close()
    a.goto(f"{base}/admin/incidents/incident/{incident.pk}/change/")
    a.click(f'#xc-tasks tr[data-task-id="{task.pk}"] a[data-task-action="verify"]')
    confirm_action(a)
    a.click('#xc-actions a[data-action="resolve"]')
    confirm_action(a, {"textarea[name=resolution]": "排水抢通，积水已退"})
    a.click('#xc-actions a[data-action="close"]')
    confirm_action(a)

    # then: the incident is closed and leaves A's board
    incident.refresh_from_db()
    task.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert task.status == TaskStatus.VERIFIED
    open_board(a, base)
    expect(a.locator(f'tr[data-kind="incident"][data-id="{incident.pk}"]')).to_have_count(0)

    # and B's board never showed the report or the incident, live or on load
    seen = chrome.rows_seen(b)
    assert f"report:{report.pk}" not in seen
    assert f"incident:{incident.pk}" not in seen
    b.reload()
    b.wait_for_selector('#xc-board[data-state="live"]', timeout=WAIT_MS)
    assert b.locator(f'[data-kind="report"][data-id="{report.pk}"]').count() == 0
    assert b.locator(f'[data-kind="incident"][data-id="{incident.pk}"]').count() == 0

    # the other pages of the command centre, for the record (docs/screenshots)
    a.goto(f"{base}/admin/incidents/incident/{incident.pk}/change/")
    chrome.screenshot(a, "incident-closed")
    a.goto(f"{base}/admin/")
    a.wait_for_selector('#xc-charts[data-ready="1"]', timeout=WAIT_MS)
    chrome.screenshot(a, "dashboard")
    assert re.search(r"/admin/$", a.url)


def test_a_report_that_arrives_behind_a_full_page_of_overdue_incidents_is_drawn_on_top(
    server: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    from apps.console.board import PAGE_SIZE
    from apps.sla.models import SlaKind
    from tests.factories.incidents import IncidentFactory
    from tests.factories.sla import SlaClockFactory

    base = server
    world = World()
    # given: a storm — more overdue incidents in 沣东 than the board draws at once
    overdue = IncidentFactory.create_batch(
        PAGE_SIZE + 5, region=world.street, status=IncidentStatus.ACCEPTED
    )
    for incident in overdue:
        SlaClockFactory(
            kind=SlaKind.INCIDENT_RESOLUTION,
            subject_type="incident",
            subject_id=incident.pk,
            region=world.street,
            started_at=incident.created_at,
            due_at=incident.created_at,
            breached_at=incident.created_at,
        )
    a = chrome.new_context(browser).new_page()
    chrome.admin_login(a, base, world.fengdong.username)
    open_board(a, base)
    assert a.locator('tr[data-kind="incident"]').count() == PAGE_SIZE
    # when: a citizen reports
    response = httpx.post(
        f"{base}/api/v1/reports/",
        json={"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": "立交桥下积水"},
        headers=bearer(world.citizen),
        timeout=20,
    )
    assert response.status_code == 201, response.text
    # then: its row is drawn although 205 overdue rows rank before it, marked as pinned,
    # above the page
    row = a.locator(f'tr[data-kind="report"][data-id="{response.json()["id"]}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_have_class(re.compile(r"\bxc-pinned\b"))
    first = a.locator("tbody[data-role=rows] tr").first
    assert first.get_attribute("data-id") == str(response.json()["id"])


def test_a_phone_call_is_placed_by_clicking_the_map_and_filed_at_that_street(
    server: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    base = server
    world = World()
    a = chrome.new_context(browser).new_page()
    chrome.admin_login(a, base, world.fengdong.username)
    # given: the 沣东 operator on 电话接警, the picker drawn with the regions of 沣东
    a.goto(f"{base}/admin/incidents/incident/add/")
    a.wait_for_selector('#xc-pick[data-ready="1"]', timeout=WAIT_MS)
    expect(a.locator("#xc-pick .xc-map-label", has_text="三桥街道")).to_be_visible()
    # when: the operator clicks where the caller is, in 三桥街道
    x, y = a.evaluate(
        "([lat, lng]) => { const p = window.xcPick.map.latLngToContainerPoint([lat, lng]);"
        " return [p.x, p.y]; }",
        list(SANQIAO),
    )
    a.locator("#xc-pick").click(position={"x": x, "y": y})
    # then: the form holds the point (WGS84, within a pixel of it)
    lat, lng = float(a.input_value("#id_lat")), float(a.input_value("#id_lng"))
    assert abs(lat - SANQIAO[0]) < 0.002
    assert abs(lng - SANQIAO[1]) < 0.002
    chrome.screenshot(a, "intake")
    # and the call, taken down and confirmed, is an incident at that street
    a.select_option("select[name=category]", "A01")
    a.fill("input[name=title]", "三桥路口车辆落水")
    a.fill("input[name=reporter_phone]", "13900000123")
    a.check("input[name=confirm]", force=True)  # unfold's switch hides the checkbox
    a.locator("form.xc-card button[type=submit]").click()
    a.wait_for_url(re.compile(r"/admin/incidents/incident/\d+/change/$"), timeout=WAIT_MS)
    incident = Incident.objects.get(title="三桥路口车辆落水")
    assert incident.region_id == world.street.pk
    assert incident.source == Incident.Source.HOTLINE
