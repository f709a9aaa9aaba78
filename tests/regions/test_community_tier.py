"""The community tier (社区/村) works wherever a region does: scope, API, admin, event
streams and KPIs.

The tree: 沣东新城 → 三桥街道 with two communities, 火车站社区 (A) and 建章路社区 (B);
an incident filed at each community and one at the street itself (where reports are
routed). The community duty officer of A is an operator membership at A; the grid
worker of A a ``grid_worker`` membership there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import membership_grant
from apps.core.errors import ApplicationError
from apps.core.scoping import scope_for
from apps.incidents.models import Incident
from apps.incidents.realtime import incident_streams
from apps.realtime import events
from apps.regions.models import Region, RegionKind
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import IncidentFactory, TwoTowns
from tests.factories.regions import UnitFactory
from tests.realtime.conftest import ask, connected, frames


@dataclass
class Tier:
    tree: TwoTowns
    a: Region  # 火车站社区
    b: Region  # 建章路社区, A's sibling
    at_a: Incident
    at_b: Incident
    at_street: Incident
    officer: User  # operator at A
    grid_worker: User  # grid worker at A
    street_officer: User  # operator at 三桥


def build_tier() -> Tier:
    tree = TwoTowns()
    a = UnitFactory(
        code="fd-sanqiao-u01", name_zh="三桥火车站社区", parent=tree.sanqiao, kind="community"
    )
    b = UnitFactory(
        code="fd-sanqiao-u02", name_zh="建章路社区", parent=tree.sanqiao, kind="community"
    )
    return Tier(
        tree=tree,
        a=a,
        b=b,
        at_a=IncidentFactory(region=a, status=Incident.Status.ACCEPTED),
        at_b=IncidentFactory(region=b, status=Incident.Status.ACCEPTED),
        at_street=IncidentFactory(region=tree.sanqiao, status=Incident.Status.ACCEPTED),
        officer=StaffUserFactory(region=a),
        grid_worker=StaffUserFactory(region=a, region__role=Role.GRID_WORKER),
        street_officer=StaffUserFactory(region=tree.sanqiao),
    )


@pytest.fixture
def tier(db: Any) -> Tier:
    return build_tier()


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))  # nothing cached on it
    return client


def listed_incidents(user: User) -> set[int]:
    response = api(user).get(reverse("v1:incidents"))
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


# --- Objects ----------------------------------------------------------------------------------


def test_a_community_duty_officer_sees_only_their_communitys_incidents(tier: Tier) -> None:
    # then: not the sibling's, not the street's (above them), not another town's
    assert scope_for(tier.officer).paths == (tier.a.path,)
    assert listed_incidents(tier.officer) == {tier.at_a.pk}
    outside = api(tier.officer).get(reverse("v1:incident", kwargs={"incident_id": tier.at_b.pk}))
    assert outside.status_code == 404
    # while the street's duty officer sees the whole street, communities included
    assert listed_incidents(tier.street_officer) == {
        tier.at_a.pk,
        tier.at_b.pk,
        tier.at_street.pk,
    }


def test_a_community_duty_officer_commands_their_communitys_incidents(tier: Tier) -> None:
    # when: the officer of A notes on A's incident, and tries B's
    mine = api(tier.officer).post(
        reverse("v1:incident-notes", kwargs={"incident_id": tier.at_a.pk}),
        {"text": "社区已组织转移"},
        format="json",
    )
    theirs = api(tier.officer).post(
        reverse("v1:incident-notes", kwargs={"incident_id": tier.at_b.pk}),
        {"text": "社区已组织转移"},
        format="json",
    )

    # then
    assert mine.status_code == 201, mine.json()
    assert theirs.status_code == 404


def test_a_grid_worker_reads_their_communitys_incidents_but_commands_nothing(
    tier: Tier,
) -> None:
    assert not User.objects.get(pk=tier.grid_worker.pk).is_staff  # a field role: no admin
    assert listed_incidents(tier.grid_worker) == {tier.at_a.pk}
    response = api(tier.grid_worker).post(
        reverse("v1:incident-notes", kwargs={"incident_id": tier.at_a.pk}),
        {"text": "x"},
        format="json",
    )
    assert response.status_code == 403


def test_the_region_api_shows_a_community_member_their_community_only(tier: Tier) -> None:
    tree = api(tier.grid_worker).get(reverse("v1:regions-tree")).json()
    assert [(node["code"], node["children"]) for node in tree] == [(tier.a.code, [])]
    listed = api(tier.officer).get(reverse("v1:regions-list")).json()["results"]
    assert [row["code"] for row in listed] == [tier.a.code]


def test_a_community_officer_grants_grid_workers_in_their_community_only(tier: Tier) -> None:
    # given
    newcomer = CitizenFactory()

    # when / then: inside the community, up to their own rank
    membership = membership_grant(
        user=newcomer, region=tier.a, role=Role.GRID_WORKER, by=tier.officer
    )
    assert membership.is_active
    with pytest.raises(ApplicationError) as sibling:
        membership_grant(user=newcomer, region=tier.b, role=Role.GRID_WORKER, by=tier.officer)
    assert sibling.value.code == "out_of_scope"
    with pytest.raises(ApplicationError) as above:
        membership_grant(user=newcomer, region=tier.a, role=Role.COMMANDER, by=tier.officer)
    assert above.value.code == "role_not_grantable"


def test_the_admin_shows_a_community_officer_their_communitys_rows(
    tier: Tier, client: Client
) -> None:
    # given: the operator role group (the admin pages of an operator)
    officer = User.objects.get(pk=tier.officer.pk)
    assert officer.is_staff
    assert officer.has_perm("incidents.view_incident")
    client.force_login(officer)

    # when
    incidents = client.get(reverse("admin:incidents_incident_changelist"))
    regions = client.get(reverse("admin:regions_region_changelist"))

    # then
    assert {i.pk for i in incidents.context["cl"].result_list} == {tier.at_a.pk}
    assert [r.code for r in regions.context["cl"].result_list] == [tier.a.code]


# --- KPIs -------------------------------------------------------------------------------------


def kpis(user: User, **params: Any) -> dict[str, Any]:
    response = api(user).get(reverse("v1:analytics-kpis"), params)
    assert response.status_code == 200, response.json()
    return response.json()  # type: ignore[no-any-return]


def test_kpis_of_a_street_group_by_its_communities(tier: Tier) -> None:
    # given: a second incident in A
    IncidentFactory(region=tier.a)

    # when
    report = kpis(tier.street_officer, region=tier.tree.sanqiao.code, group_by="region")

    # then: the street's own rows (routed reports) apart, then each community
    groups = {g["key"]: g["incidents"]["total"] for g in report["groups"]}
    assert groups == {tier.tree.sanqiao.code: 1, tier.a.code: 2, tier.b.code: 1}
    assert report["total"]["incidents"]["total"] == 4
    assert report["region"]["code"] == tier.tree.sanqiao.code


def test_kpis_of_a_community_officer_cover_their_community(tier: Tier) -> None:
    report = kpis(tier.officer)
    assert report["total"]["incidents"]["total"] == 1
    narrowed = kpis(tier.street_officer, region=tier.b.code)
    assert narrowed["total"]["incidents"]["total"] == 1
    assert narrowed["region"]["level"] == "unit"


def test_the_kpi_page_offers_a_community_officer_their_community(
    tier: Tier, client: Client
) -> None:
    client.force_login(User.objects.get(pk=tier.officer.pk))
    response = client.get(reverse("admin:analytics_kpireport_changelist"))
    assert response.status_code == 200
    choices = [code for code, _label in response.context["form"].fields["region"].widget.choices]
    assert choices == ["", tier.a.code]


def test_the_kpi_page_offers_a_chosen_streets_communities(tier: Tier, client: Client) -> None:
    client.force_login(User.objects.get(pk=tier.street_officer.pk))
    plain = client.get(reverse("admin:analytics_kpireport_changelist"))
    chosen = client.get(
        reverse("admin:analytics_kpireport_changelist"), {"region": tier.tree.sanqiao.code}
    )

    def codes(response: Any) -> list[str]:
        return [code for code, _label in response.context["form"].fields["region"].widget.choices]

    assert codes(plain) == ["", tier.tree.sanqiao.code]
    assert codes(chosen) == ["", tier.tree.sanqiao.code, tier.a.code, tier.b.code]


# --- Event streams (the operator board and the app's live pushes) ------------------------------


@pytest.fixture
def live_tier(transactional_db: None, settings: Any) -> Tier:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return build_tier()


@database_sync_to_async
def emit_for(incident: Incident, n: int) -> None:
    events.emit(incident_streams(incident), "incident.note", {"n": n})


@database_sync_to_async
def emit_to_user(user: User) -> None:
    events.emit([f"user.{user.pk}"], "task.instructions", {"sentinel": True})


@pytest.mark.django_db(transaction=True)
async def test_a_community_member_subscribes_to_their_community_and_gets_only_its_events(
    live_tier: Tier,
) -> None:
    # given: the grid worker's socket
    tier = live_tier
    ws = await connected(tier.grid_worker)

    # when: they subscribe to what they may and may not
    mine = await ask(ws, type="subscribe", stream=f"region.{tier.a.code}")
    street = await ask(ws, type="subscribe", stream=f"region.{tier.tree.sanqiao.code}")
    sibling = await ask(ws, type="subscribe", stream=f"region.{tier.b.code}")
    await ask(ws, type="subscribe", stream=f"user.{tier.grid_worker.pk}")

    # then
    assert mine["type"] == "subscribed"
    assert (street["code"], sibling["code"]) == ("out_of_scope", "out_of_scope")

    # when: an event of B's incident, of A's, then a sentinel on their own stream
    await emit_for(tier.at_b, 1)
    await emit_for(tier.at_a, 2)
    await emit_to_user(tier.grid_worker)

    # then: A's event, then the sentinel — B's never came (the queue is FIFO)
    first, second = await frames(ws, 2)
    assert (first["stream"], first["data"]) == (f"region.{tier.a.code}", {"n": 2})
    assert second["stream"] == f"user.{tier.grid_worker.pk}"
    await ws.disconnect()


def test_an_incident_of_a_community_goes_to_the_streams_of_its_whole_chain(tier: Tier) -> None:
    assert incident_streams(tier.at_a)[1:] == [
        "region.xixian",
        "region.fengdong",
        "region.fd-sanqiao",
        f"region.{tier.a.code}",
    ]


def test_a_community_is_a_valid_target_of_region_keyed_things(tier: Tier) -> None:
    """Topics, streams and clocks take a region of any level (warnings will too)."""
    from apps.notifications.services import region_topic
    from apps.realtime.streams import parse
    from apps.sla.recipients import command_path

    assert region_topic(tier.a.code) == "region-fd-sanqiao-u01"
    assert parse(f"region.{tier.a.code}") == ("region", tier.a.code)
    # a clock at a community escalates to its street's duty officer
    assert command_path(tier.a.path, "street") == tier.tree.sanqiao.path
    assert tier.a.kind == RegionKind.COMMUNITY
