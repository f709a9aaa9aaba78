"""Early warnings in the command centre: every action of the warning page goes through
the service (timeline row, events and outbox rows written), refuses out-of-scope
warnings and wrong roles with a message (never a 500), and the 叫应 board and the map
layer show what the user may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.early_warnings import services
from apps.early_warnings.models import (
    Acknowledgement,
    TimelineKind,
    WarningStatus,
    WarningTimelineEntry,
    WarningVersion,
)
from apps.notifications.models import Notification
from apps.realtime.models import Event
from tests.console.conftest import ZH, client_for, messages_of
from tests.early_warnings import conftest as ew
from tests.early_warnings.conftest import Cast

pytestmark = pytest.mark.django_db

# The early-warnings cast (a real-shaped tree with someone at every tier), shared.
cast = ew.cast
_fresh_policy_cache = ew._fresh_policy_cache

FMT = "%Y-%m-%dT%H:%M"


def page(version: WarningVersion) -> str:
    return reverse("admin:early_warnings_warningversion_change", args=[version.pk])


def act(version: WarningVersion, action: str) -> str:
    return reverse("admin:early_warnings_warningversion_act", args=[version.pk, action])


def acks(version: WarningVersion) -> str:
    return reverse("admin:early_warnings_warningversion_acks", args=[version.pk])


ADD = "/admin/early_warnings/warningversion/add/"


def compose_data(targets: list[str], **extra: Any) -> dict[str, Any]:
    now = timezone.localtime()
    data = {
        "warning_type": "rainstorm",
        "level": "blue",
        "title": "暴雨蓝色预警",
        "description": "未来12小时三桥街道有暴雨。",
        "instruction": "注意防范。",
        "onset": now.strftime(FMT),
        "expires": (now + timedelta(hours=6)).strftime(FMT),
        "targets": targets,
        "confirm": "on",
    }
    data.update(extra)
    return data


def draft(cast: Cast, level: str = "blue") -> WarningVersion:
    now = timezone.now()
    return services.warning_create(
        by=cast.town_operator,
        warning_type="rainstorm",
        level=level,
        title="暴雨预警",
        description="有暴雨。",
        targets=[cast.sanqiao.code],
        onset=now,
        expires=now + timedelta(hours=6),
    )


def published(cast: Cast) -> WarningVersion:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    return services.warning_approve(version_id=version.pk, by=cast.town_operator2)


def kinds(version: WarningVersion) -> list[str]:
    return list(
        WarningTimelineEntry.objects.filter(chain_id=version.chain_id)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


# --- Compose -------------------------------------------------------------------------------


def test_the_compose_page_offers_the_users_regions_as_a_tree_and_a_map(cast: Cast) -> None:
    html = client_for(cast.town_operator).get(ADD, **ZH).content.decode()

    assert 'id="xc-tree"' in html
    assert 'id="xc-target-map"' in html
    assert f'value="{cast.sanqiao.code}"' in html
    assert f'value="{cast.tree.fengdong.code}"' in html
    assert f'value="{cast.tree.fengxi.code}"' not in html  # not theirs
    assert "console/warning_compose.js" in html


def test_compose_and_submit_creates_a_draft_through_the_service_and_submits_it(
    cast: Cast,
) -> None:
    response = client_for(cast.town_operator).post(
        ADD, compose_data([cast.sanqiao.code], submit_now="on"), **ZH
    )

    version = WarningVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == page(version)
    assert version.status == WarningStatus.PENDING_APPROVAL
    assert [t.region_id for t in version.targets.all()] == [cast.sanqiao.pk]
    assert kinds(version) == [TimelineKind.CREATED, TimelineKind.SUBMITTED]


def test_compose_for_a_region_outside_the_scope_is_refused_with_a_message(cast: Cast) -> None:
    response = client_for(cast.street_operator).post(
        ADD, compose_data([cast.tree.fengdong.code]), **ZH
    )

    assert response.status_code == 200  # the form again, no 500
    assert not WarningVersion.objects.exists()


def test_a_liaison_may_not_compose(cast: Cast) -> None:
    from apps.accounts.models import Role
    from tests.factories.accounts import StaffUserFactory

    liaison = StaffUserFactory(region=cast.tree.fengdong, region__role=Role.DEPARTMENT_LIAISON)
    assert client_for(liaison).get(ADD).status_code == 403


# --- The page, approval --------------------------------------------------------------------


def test_the_page_names_the_approval_rule_and_hides_approve_from_the_author(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)

    html = client_for(cast.town_operator).get(page(version), **ZH).content.decode()

    assert 'id="xc-approval"' in html
    assert "沣东" in html.split('id="xc-approval"')[1].split("</div>")[0]
    assert 'data-action="approve"' not in html  # four eyes
    assert 'id="xc-timeline"' in html
    other = client_for(cast.town_operator2).get(page(version), **ZH).content.decode()
    assert 'data-action="approve"' in other
    assert 'data-action="reject"' in other


def test_approve_publishes_through_the_service_with_events_and_pushes(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    client = client_for(cast.town_operator2)

    confirm_page = client.get(act(version, "approve"), **ZH)
    assert confirm_page.status_code == 200
    assert 'data-action="approve"' in confirm_page.content.decode()
    response = client.post(act(version, "approve"), {"confirm": "on"}, **ZH)

    version.refresh_from_db()
    assert response.status_code == 302
    assert version.status == WarningStatus.PUBLISHED
    assert version.approved_by == cast.town_operator2
    assert kinds(version)[-1] == TimelineKind.APPROVED
    assert Event.objects.filter(kind="warning.published").exists()
    assert Notification.objects.filter(dedupe_key__startswith=f"ew:{version.pk}:").exists()
    assert Acknowledgement.objects.filter(version=version).exists()


def test_approve_without_the_confirmation_does_nothing(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)

    response = client_for(cast.town_operator2).post(act(version, "approve"), {}, **ZH)

    version.refresh_from_db()
    assert response.status_code == 200
    assert version.status == WarningStatus.PENDING_APPROVAL


def test_the_author_approving_gets_the_services_refusal_as_a_message(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)

    response = client_for(cast.town_operator).post(act(version, "approve"), {"confirm": "on"})

    version.refresh_from_db()
    assert response.status_code == 200
    assert version.status == WarningStatus.PENDING_APPROVAL
    assert any("author" in m for m in messages_of(response))


def test_the_street_operator_is_refused_by_the_rule_with_a_message(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)

    response = client_for(cast.street_operator).post(act(version, "approve"), {"confirm": "on"})

    version.refresh_from_db()
    assert response.status_code == 200
    assert version.status == WarningStatus.PENDING_APPROVAL
    assert messages_of(response)


def test_reject_needs_a_reason_and_writes_it_on_the_timeline(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    client = client_for(cast.town_operator2)

    client.post(act(version, "reject"), {"confirm": "on"})
    version.refresh_from_db()
    assert version.status == WarningStatus.PENDING_APPROVAL
    client.post(act(version, "reject"), {"confirm": "on", "reason": "范围不对"})

    version.refresh_from_db()
    assert version.status == WarningStatus.DRAFT
    assert version.rejection_reason == "范围不对"
    entry = WarningTimelineEntry.objects.filter(chain_id=version.chain_id).latest("id")
    assert entry.kind == TimelineKind.REJECTED
    assert entry.reason == "范围不对"


def test_out_of_scope_warnings_do_not_exist_for_the_user(cast: Cast) -> None:
    version = draft(cast)
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    client = client_for(cast.outsider)

    assert client.get(page(version)).status_code == 302  # the admin's "does not exist"
    response = client.post(act(version, "approve"), {"confirm": "on"})
    assert response.status_code == 302
    assert client.get(acks(version)).status_code == 404
    version.refresh_from_db()
    assert version.status == WarningStatus.PENDING_APPROVAL


def test_a_street_operator_sees_the_warning_of_their_street_in_the_list(cast: Cast) -> None:
    version = published(cast)
    url = "/admin/early_warnings/warningversion/"

    assert version.title in client_for(cast.street_operator).get(url).content.decode()
    assert version.title not in client_for(cast.outsider).get(url).content.decode()


# --- Update, cancel ------------------------------------------------------------------------


def test_update_is_prefilled_from_the_live_version_and_publishes_for_its_approver(
    cast: Cast,
) -> None:
    live = published(cast)
    client = client_for(cast.town_operator2)

    form = client.get(act(live, "update"), **ZH).content.decode()
    assert live.title in form
    assert f'value="{cast.sanqiao.code}" checked' in form
    data = compose_data([cast.sanqiao.code], title="暴雨黄色预警", level="yellow")
    data["onset"] = timezone.localtime(live.onset).strftime(FMT)
    data["expires"] = timezone.localtime(live.expires).strftime(FMT)
    response = client.post(act(live, "update"), data)

    new = WarningVersion.objects.get(chain=live.chain, number=2)
    assert response.status_code == 302
    assert response["Location"] == page(new)
    assert new.status == WarningStatus.PUBLISHED
    assert new.level == "yellow"  # its approver
    live.refresh_from_db()
    assert live.status == WarningStatus.SUPERSEDED
    assert TimelineKind.UPDATED in kinds(live)
    assert Event.objects.filter(kind="warning.updated").exists()


def test_cancel_by_another_composer_waits_for_approval(cast: Cast) -> None:
    live = published(cast)

    response = client_for(cast.town_operator).post(
        act(live, "cancel"), {"confirm": "on", "reason": "雨停了"}
    )

    cancel = WarningVersion.objects.get(chain=live.chain, number=2)
    assert response.status_code == 302
    assert cancel.msg_type == "cancel"
    assert cancel.status == WarningStatus.PENDING_APPROVAL
    entry = WarningTimelineEntry.objects.filter(chain_id=live.chain_id).latest("id")
    assert entry.kind == TimelineKind.CANCEL_REQUESTED
    assert entry.reason == "雨停了"
    # A second one is refused by the service (one at a time), shown as a message.
    again = client_for(cast.town_operator).post(
        act(live, "cancel"), {"confirm": "on", "reason": "再来"}
    )
    assert again.status_code == 200
    assert messages_of(again)


def test_a_liaison_is_refused_every_action_with_a_message(cast: Cast) -> None:
    from apps.accounts.models import Role
    from tests.factories.accounts import StaffUserFactory

    live = published(cast)
    liaison = StaffUserFactory(region=cast.tree.fengdong, region__role=Role.DEPARTMENT_LIAISON)
    client = client_for(liaison)

    html = client.get(page(live), **ZH).content.decode()
    assert 'data-action="' not in html
    response = client.post(act(live, "cancel"), {"confirm": "on", "reason": "x"})
    assert response.status_code == 302
    assert messages_of(response)
    assert WarningVersion.objects.filter(chain=live.chain).count() == 1


# --- The 叫应 board --------------------------------------------------------------------------


def test_the_ack_board_shows_answered_and_silent_people(cast: Cast) -> None:
    live = published(cast)
    services.warning_acknowledge(version_id=live.pk, user=cast.grid)
    client = client_for(cast.town_operator)

    data = client.get(acks(live)).json()
    by_user = {row["user_id"]: row for row in data["rows"]}
    assert by_user[cast.grid.pk]["acked"]
    assert by_user[cast.grid.pk]["channel"]
    assert not by_user[cast.roster_person.pk]["acked"]
    assert by_user[cast.roster_person.pk]["silent_for"] is not None
    assert data["acked"] == 1
    assert data["silent"] == data["total"] - 1
    assert data["rows"][0]["acked"] is False  # the silent first

    html = client.get(page(live), **ZH).content.decode()
    assert 'id="xc-acks"' in html
    assert f'data-user-id="{cast.grid.pk}" data-acked="1"' in html
    assert f'data-user-id="{cast.roster_person.pk}" data-acked="0"' in html
    assert "console/warning_acks.js" in html


# --- The map layer -------------------------------------------------------------------------


def test_the_map_layer_shows_warnings_in_force_by_level_and_is_scoped(cast: Cast) -> None:
    live = published(cast)
    url = reverse("admin:console_dutydesk_map_data", args=["warnings"])

    mine = client_for(cast.street_operator).get(url).json()
    theirs = client_for(cast.outsider).get(url).json()

    assert [f["properties"]["attrs"]["warning-id"] for f in mine["features"]] == [live.pk]
    feature = mine["features"][0]
    assert feature["properties"]["colour"] == "#2563eb"  # blue
    assert feature["properties"]["popup"]["title"] == live.title
    assert feature["properties"]["popup"]["link"]["url"] == page(live)
    assert theirs["features"] == []


def test_the_navigation_has_a_warnings_section_for_warning_roles(cast: Cast) -> None:
    html = client_for(cast.town_operator).get("/admin/", **ZH).content.decode()
    assert ADD in html
