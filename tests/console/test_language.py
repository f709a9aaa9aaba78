"""An operator's admin, in Chinese: no English words left on their screens (English stays
selectable through the language switch), only the pages of the work in their menus, and
every asset served by us."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse

from apps.incidents.models import IncidentStatus
from tests.console.conftest import ZH, act_url, client_for, page_url, task_url
from tests.dispatch.task_support import Scene
from tests.factories.incidents import IncidentFactory, ReportFactory

pytestmark = pytest.mark.django_db

# Words that are not English prose: abbreviations and proper names, the language switch
# (English, the zh-hans code), units, the time zone's name, the keyboard key of the
# theme's search box.
ALLOWED = {
    "sos",
    "csv",
    "xlsx",
    "gps",
    "kpi",
    "sla",
    "open311",
    "english",
    "hans",
    "km",
    "p90",
    "asia",
    "shanghai",
    "esc",
}


class _Text(HTMLParser):
    """The text a person reads: element text plus placeholders, titles and button values;
    not scripts, styles or the values of hidden inputs and options of a select's code."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._skip += 1
        values = dict(attrs)
        for name in ("placeholder", "title", "aria-label", "alt"):
            if values.get(name):
                self.parts.append(values[name] or "")
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(values["value"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


ICON = re.compile(r'<(\w+)[^>]*class="[^"]*material-symbols[^"]*"[^>]*>[^<]*</\1>')


def english_words(html: str) -> set[str]:
    parser = _Text()
    parser.feed(ICON.sub("", html))  # icon names are ligatures of the icon font, not words
    text = " ".join(parser.parts)
    words = re.findall(r"[A-Za-z][A-Za-z0-9']{2,}", text)
    return {w for w in words if w.lower() not in ALLOWED}


def data_words(scene: Scene) -> set[str]:
    """What the test's data spells in Latin letters (usernames, team codes): not UI."""
    from apps.accounts.models import User
    from apps.dispatch.models import Team
    from apps.incidents.models import Category

    texts = [*User.objects.values_list("username", flat=True)]
    texts += Category.objects.values_list("code", flat=True)
    for code, name in Team.objects.values_list("code", "name"):
        texts += [code, name]
    return {w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z0-9']{2,}", t)}


def _operator_pages(scene: Scene) -> dict[str, str]:
    reported = IncidentFactory(region=scene.street, status=IncidentStatus.REPORTED)
    report = ReportFactory(region=scene.street, category=scene.incident.category)
    task = scene.task("completed")
    return {
        "dashboard": reverse("admin:index"),
        "incidents": reverse("admin:incidents_incident_changelist"),
        "incidents filtered": reverse("admin:incidents_incident_changelist")
        + "?breached=yes&supervised=open",
        "incident page": page_url(scene.incident),
        "accept": act_url(reported, "accept"),
        "dispatch": act_url(scene.incident, "dispatch"),
        "classify": act_url(scene.incident, "classify"),
        "casualties": act_url(scene.incident, "casualties"),
        "merge": act_url(reported, "merge"),
        "command post": act_url(scene.incident, "post_setup"),
        "task return": task_url(task, "return"),
        "intake": reverse("admin:incidents_incident_add"),
        "triage queue": reverse("admin:incidents_report_changelist") + "?status__exact=submitted",
        "report page": reverse("admin:incidents_report_change", args=[report.pk]),
        "triage accept": reverse("admin:incidents_report_triage", args=[report.pk, "accept"]),
        "tasks": reverse("admin:dispatch_dispatchtask_changelist"),
        "clocks": reverse("admin:sla_slaclock_changelist"),
        "escalations": reverse("admin:sla_escalation_changelist"),
        "teams": reverse("admin:dispatch_team_changelist"),
        "kpi": reverse("admin:analytics_kpireport_changelist"),
        "board": reverse("admin:console_dutydesk_board"),
        "map": reverse("admin:console_dutydesk_map"),
        "export": reverse("admin:incidents_incident_export"),
    }


def test_an_operators_pages_render_with_no_english_left(scene: Scene) -> None:
    client = client_for(scene.operator)
    found: dict[str, set[str]] = {}

    for name, url in _operator_pages(scene).items():
        response = client.get(url, **ZH)
        assert response.status_code == 200, (name, response.status_code)
        words = english_words(response.content.decode()) - data_words(scene)
        if words:
            found[name] = words

    assert found == {}, found


def test_english_stays_selectable(scene: Scene) -> None:
    client = client_for(scene.operator)

    html = client.get(page_url(scene.incident), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert 'lang="en"' in html
    assert "Dispatch teams" in html


INTERNALS = (
    "notifications/notification",
    "notifications/notificationpreference",
    "accounts/device",
    "auth/group",
    "token_blacklist/outstandingtoken",
    "token_blacklist/blacklistedtoken",
    "core/idempotentrequest",
    "accounts/otpchallenge",
    "incidents/category",
    "sla/slapolicy",
    "open311/apikey",
)


def test_operators_menus_show_the_work_and_no_internals(scene: Scene) -> None:
    client = client_for(scene.operator)

    html = client.get(reverse("admin:index"), **ZH).content.decode()

    for internal in INTERNALS:
        assert f"/admin/{internal}/" not in html, internal
    for work in ("incidents/incident", "incidents/report", "dispatch/dispatchtask", "sla/slaclock"):
        assert f"/admin/{work}/" in html, work
    for reserved in ("console/dutydesk/board", "console/dutydesk/map"):
        assert f"/admin/{reserved}/" in html
    for app in ("notifications", "auth", "token_blacklist"):
        assert client.get(f"/admin/{app}/").status_code in (403, 404), app


def test_an_administrator_sees_the_internals(scene: Scene) -> None:
    from apps.accounts.models import Role
    from tests.factories.accounts import StaffUserFactory

    admin = StaffUserFactory(region=scene.tree.root, region__role=Role.ADMIN)

    html = client_for(admin).get(reverse("admin:index"), **ZH).content.decode()

    assert "/admin/notifications/notification/" in html
    assert "/admin/incidents/category/" in html


def test_a_liaisons_menu_has_no_phone_intake_and_no_triage(scene: Scene, liaison: object) -> None:
    html = client_for(liaison).get(reverse("admin:index"), **ZH).content.decode()

    assert "/admin/incidents/incident/add/" not in html
    assert "/admin/incidents/report/" not in html
    assert "/admin/incidents/incident/" in html  # they read incidents


@pytest.mark.parametrize(
    "url",
    ["/admin/", "/admin/incidents/incident/", "/admin/login/"],
)
def test_admin_pages_load_every_asset_from_this_server(scene: Scene, url: str) -> None:
    client = client_for(scene.operator) if url != "/admin/login/" else None
    html = client.get(url) if client else __import__("django.test").test.Client().get(url)
    text = html.content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|woff2?|png|svg|ico))"', text)
    assert assets
    assert all(a.startswith("/static/") for a in assets), assets
    assert "cdn" not in text.lower()
    assert "googleapis" not in text


def test_the_admin_theme_alone_gets_its_wider_content_security_policy(client: Any) -> None:
    admin_page = client.get("/admin/login/")
    api = client.get("/api/v1/regions/tree/")
    admin_csp = admin_page["Content-Security-Policy"]
    assert "'unsafe-eval'" in admin_csp
    assert "style-src 'self' 'unsafe-inline'" in admin_csp
    assert "unsafe" not in api["Content-Security-Policy"]
