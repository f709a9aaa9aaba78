"""Stream names are canonical Channels group names; regions fan out to their ancestors."""

from __future__ import annotations

import pytest

from apps.realtime import streams
from apps.realtime.streams import StreamKind
from apps.regions.models import Region


def test_names_of_each_kind() -> None:
    assert streams.user(7) == "user.7"
    assert streams.region("fengdong") == "region.fengdong"
    assert streams.incident(12) == "incident.12"
    assert streams.report(3) == "report.3"


@pytest.mark.django_db
def test_an_incident_region_streams_are_the_street_and_every_ancestor_without_a_query(
    django_assert_num_queries,
) -> None:
    street = Region(code="fd-sanqiao", path="/xixian/fengdong/fd-sanqiao/")
    with django_assert_num_queries(0):
        names = streams.region_and_ancestors(street)
    assert names == ["region.xixian", "region.fengdong", "region.fd-sanqiao"]


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("user.7", (StreamKind.USER, "7")),
        ("region.fd-sanqiao", (StreamKind.REGION, "fd-sanqiao")),
        ("incident.123456", (StreamKind.INCIDENT, "123456")),
        ("report.9", (StreamKind.REPORT, "9")),
    ],
)
def test_canonical_names_parse(name: str, parsed: tuple[StreamKind, str]) -> None:
    assert streams.parse(name) == parsed


@pytest.mark.parametrize(
    "name",
    [
        None,
        42,
        "",
        "user",
        "user.",
        "user.007",  # a second group for user 7
        "user.-1",
        "user.abc",
        "incident.1.2",
        "region.沣东",
        "region.a b",
        "region." + "x" * 41,
        "team.5",
        "report",
    ],
)
def test_anything_else_is_not_a_stream_name(name: object) -> None:
    with pytest.raises(ValueError, match="stream"):
        streams.parse(name)
