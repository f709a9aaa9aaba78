"""CAP 1.2 in: the four OASIS examples round-trip through the endpoint, a repeat stores
nothing, a broken or out-of-scope message stores nothing, the command imports files."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.early_warnings import services
from apps.early_warnings.models import (
    MsgType,
    Source,
    TimelineKind,
    WarningChain,
    WarningStatus,
    WarningTarget,
    WarningTimelineEntry,
    WarningVersion,
)
from apps.notifications.models import Notification
from tests.early_warnings.cap.conftest import example
from tests.early_warnings.conftest import Cast

pytestmark = pytest.mark.django_db

EXAMPLES = ("HomelandAlert", "ThunderstormWarning", "EarthquakeReport", "AmberAlert")
IDENTIFIERS = {
    "HomelandAlert": ("hsas@dhs.gov", "43b080713727"),
    "ThunderstormWarning": ("KSTO@NWS.NOAA.GOV", "KSTO1055887203"),
    "EarthquakeReport": ("trinet@caltech.edu", "TRI13970876.2"),
    "AmberAlert": ("KARO@CLETS.DOJ.CA.GOV", "KAR0-0306112239-SW"),
}


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def post_cap(user: User | None, body: bytes, content_type: str = "application/cap+xml") -> Any:
    return client_for(user).post("/api/v1/warnings/import/", data=body, content_type=content_type)


def counts() -> dict[str, int]:
    return {
        "chains": WarningChain.objects.count(),
        "versions": WarningVersion.objects.count(),
        "targets": WarningTarget.objects.count(),
        "timeline": WarningTimelineEntry.objects.count(),
        "notifications": Notification.objects.count(),
    }


def earthquake_original() -> bytes:
    """The alert the OASIS earthquake Update references (TRI13970876.1), made from it."""
    data = example("EarthquakeReport")
    data = data.replace(b"<identifier>TRI13970876.2<", b"<identifier>TRI13970876.1<")
    data = data.replace(b"<sent>2003-06-11T20:56:00-07:00<", b"<sent>2003-06-11T20:30:00-07:00<")
    data = data.replace(b"<msgType>Update<", b"<msgType>Alert<")
    start = data.index(b"<references>")
    end = data.index(b"</references>") + len(b"</references>")
    return data[:start] + data[end:]


def sanqiao_alert(identifier: str = "CN-SX-2025-0001", status: str = "Actual") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>sxqx@cma.gov.cn</sender>
  <sent>2025-07-15T14:30:00+08:00</sent>
  <status>{status}</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨橙色预警</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>2025-07-15T20:00:00+08:00</expires>
    <headline>陕西省气象台发布暴雨橙色预警</headline>
    <description>三桥街道未来3小时降雨量将达50毫米以上。</description>
    <area>
      <areaDesc>三桥街道</areaDesc>
      <geocode><valueName>XIXIAN-REGION</valueName><value>fd-sanqiao</value></geocode>
      <geocode><valueName>XIXIAN-REGION</valueName><value>nowhere</value></geocode>
    </area>
  </info>
</alert>
""".encode()


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_oasis_example_is_stored_as_received_and_served_back_unchanged(
    cast: Cast, name: str
) -> None:
    data = example(name)
    answer = post_cap(cast.area_commander, data)
    assert answer.status_code == 200, answer.content
    version = WarningVersion.objects.get(pk=answer.json()["id"])
    sender, identifier = IDENTIFIERS[name]
    assert (version.upstream_sender, version.upstream_identifier) == (sender, identifier)
    assert version.source == Source.UPSTREAM
    assert version.chain.source == Source.UPSTREAM
    # no XIXIAN-REGION geocode: the whole new area
    assert [t.region.code for t in version.targets.all()] == [cast.tree.root.code]
    received = WarningTimelineEntry.objects.get(version=version, kind=TimelineKind.RECEIVED)
    assert received.actor == cast.area_commander
    assert "No region code: the whole new area is targeted." in received.data["notes"]
    # served back as received, byte for byte
    served = client_for(None).get(f"/api/v1/warnings/{version.pk}/cap/")
    assert served.status_code == 200
    assert served.content == data
    assert served["Content-Type"].startswith("application/cap+xml")
    # a second import stores nothing and answers the stored version
    before = counts()
    again = post_cap(cast.area_commander, data, content_type="application/xml")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == version.pk
    assert counts() == before


def test_the_earthquake_update_starts_a_chain_when_its_alert_was_never_received(
    cast: Cast,
) -> None:
    version = services.warning_import_cap(data=example("EarthquakeReport"), by=None)
    assert version.msg_type == MsgType.UPDATE
    assert version.status == WarningStatus.PUBLISHED
    assert version.chain.versions.count() == 1
    assert version.references == []


def test_the_earthquake_update_joins_the_chain_of_its_alert_imported_first(cast: Cast) -> None:
    original = services.warning_import_cap(data=earthquake_original(), by=cast.area_commander)
    assert original.msg_type == MsgType.ALERT
    update = services.warning_import_cap(data=example("EarthquakeReport"), by=cast.area_commander)
    assert update.chain_id == original.chain_id
    assert update.number == 2
    assert update.msg_type == MsgType.UPDATE
    original.refresh_from_db()
    assert original.status == WarningStatus.SUPERSEDED
    assert [r["identifier"] for r in update.references] == [original.identifier]
    # each serves its own upstream message
    assert client_for(None).get(f"/api/v1/warnings/{update.pk}/cap/").content == example(
        "EarthquakeReport"
    )


def test_a_geocoded_message_targets_its_regions_and_needs_compose_over_them(cast: Cast) -> None:
    before = counts()
    refused = post_cap(cast.outsider, sanqiao_alert())  # operator of 沣西
    assert refused.status_code == 403, refused.content
    assert refused.json()["code"] == "permission_denied"
    assert counts() == before
    assert post_cap(cast.grid, sanqiao_alert()).status_code == 403  # no warning.compose
    assert post_cap(None, sanqiao_alert()).status_code == 401
    answer = post_cap(cast.town_operator, sanqiao_alert())
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [t["code"] for t in body["targets"]] == ["fd-sanqiao"]
    assert (body["warning_type"], body["level"]) == ("rainstorm", "orange")
    assert body["title"] == "陕西省气象台发布暴雨橙色预警"
    entry = WarningTimelineEntry.objects.get(version_id=body["id"], kind=TimelineKind.RECEIVED)
    assert "Unknown region codes ignored: nowhere." in entry.data["notes"]
    # fanned out like a warning issued here: 三桥's responsible persons are asked
    assert Notification.objects.filter(dedupe_key__startswith=f"ew:{body['id']}:").exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not xml at all", 422, "cap_invalid"),
        (sanqiao_alert().replace(b"<scope>Public</scope>", b""), 422, "cap_invalid"),
        (
            sanqiao_alert().replace(b"+08:00</sent>", b"Z</sent>").replace(b"Severe", b"Awful"),
            422,
            "cap_invalid",
        ),
        (sanqiao_alert(status="Exercise"), 422, "warning_cap_not_actual"),
        (b"<x>" + b" " * (1024 * 1024) + b"</x>", 413, "cap_too_large"),
    ],
    ids=["not-xml", "missing-scope", "two-problems", "exercise", "too-large"],
)
def test_a_broken_message_is_refused_with_its_reasons_and_nothing_is_stored(
    cast: Cast, body: bytes, status: int, code: str
) -> None:
    before = counts()
    answer = post_cap(cast.area_commander, body)
    assert answer.status_code == status, answer.content
    assert answer.json()["code"] == code
    assert counts() == before
    if code.startswith("cap_"):
        problems = answer.json()["extra"]["problems"]
        assert problems
        assert all({"line", "path", "reason"} <= set(p) for p in problems)
    if body.startswith(b"<?xml") and b"Awful" in body:
        paths = {p["path"] for p in answer.json()["extra"]["problems"]}
        assert {"/alert/sent", "/alert/info/severity"} <= paths


def test_a_body_that_is_not_xml_by_its_content_type_is_415(cast: Cast) -> None:
    answer = client_for(cast.area_commander).post(
        "/api/v1/warnings/import/", data={"x": 1}, format="json"
    )
    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_media_type"


def test_the_command_imports_files_and_reports_the_refused_ones(cast: Cast, tmp_path: Path) -> None:
    good = tmp_path / "quake.xml"
    good.write_bytes(example("EarthquakeReport"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<alert/>")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2"):
        call_command("import_cap", str(good), str(bad), stdout=out, stderr=err)
    assert "imported as version" in out.getvalue()
    assert "cap_invalid" in err.getvalue()
    assert "line " in err.getvalue()
    assert WarningVersion.objects.filter(upstream_identifier="TRI13970876.2").count() == 1
    out = StringIO()
    call_command("import_cap", str(good), stdout=out)
    assert "already stored" in out.getvalue()
    assert WarningVersion.objects.filter(upstream_identifier="TRI13970876.2").count() == 1
