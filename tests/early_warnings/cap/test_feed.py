"""The Atom index feed: valid Atom, one entry per version, linking to its CAP XML."""

from __future__ import annotations

from datetime import timedelta

import defusedxml.ElementTree as SafeET

from apps.early_warnings.cap.feed import ATOM_NAMESPACE, CAP_MIME_TYPE, warnings_atom_feed
from apps.early_warnings.cap.mapping import WarningData
from tests.early_warnings.cap.conftest import SENT, make_warning

A = "{" + ATOM_NAMESPACE + "}"
BASE = "https://yjgl.xixianxinqu.gov.cn/api/v1/early-warnings/cap/"


def cap_url(warning: WarningData) -> str:
    return f"{BASE}{warning.identifier}.xml"


def feed(*warnings: WarningData) -> bytes:
    return warnings_atom_feed(
        feed_id="https://yjgl.xixianxinqu.gov.cn/api/v1/early-warnings/feed.atom",
        title="西咸新区预警信息",
        self_url="https://yjgl.xixianxinqu.gov.cn/api/v1/early-warnings/feed.atom",
        author="西咸新区应急管理局",
        warnings=warnings,
        cap_url=cap_url,
        updated=SENT - timedelta(days=1),
    )


def test_each_entry_links_to_the_cap_document_of_its_version() -> None:
    older = make_warning(identifier="W-1.1")
    newer = make_warning(
        identifier="W-2.1", type="gale", level="blue", sent=SENT + timedelta(hours=1)
    )

    root = SafeET.fromstring(feed(older, newer))
    entries = root.findall(A + "entry")

    assert root.tag == A + "feed"
    assert (
        root.findtext(A + "id") == "https://yjgl.xixianxinqu.gov.cn/api/v1/early-warnings/feed.atom"
    )
    assert root.findtext(A + "updated") == "2025-07-15T15:30:05+08:00"
    assert root.find(A + "link").get("rel") == "self"
    assert root.findtext(f"{A}author/{A}name") == "西咸新区应急管理局"
    assert [e.findtext(A + "id") for e in entries] == [cap_url(newer), cap_url(older)]
    assert [e.findtext(A + "updated") for e in entries] == [
        "2025-07-15T15:30:05+08:00",
        "2025-07-15T14:30:05+08:00",
    ]
    for entry, warning in zip(entries, (newer, older), strict=True):
        (link,) = entry.findall(A + "link")
        assert (link.get("rel"), link.get("type"), link.get("href")) == (
            "alternate",
            CAP_MIME_TYPE,
            cap_url(warning),
        )
        assert entry.findtext(A + "title") == warning.title
        assert entry.findtext(A + "summary") == warning.description
        assert [c.get("term") for c in entry.findall(A + "category")] == [
            warning.type,
            warning.level,
        ]


def test_an_empty_feed_is_still_valid_atom_with_its_own_updated_time() -> None:
    root = SafeET.fromstring(feed())

    assert root.findall(A + "entry") == []
    assert root.findtext(A + "updated") == "2025-07-14T14:30:05+08:00"
    assert root.findtext(A + "title") == "西咸新区预警信息"
