"""The Region model: derived path/depth, tree invariants and form validation."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.regions.models import Region, RegionKind, RegionLevel
from tests.factories.regions import NewTownFactory, RegionFactory, StreetFactory, UnitFactory

pytestmark = pytest.mark.django_db


def test_path_and_depth_are_derived_from_parent_and_code() -> None:
    # given / when
    unit = UnitFactory(
        code="u1",
        parent__code="sq",
        parent__parent__code="fd",
    )

    # then
    assert unit.path == "/xixian/fd/sq/u1/"
    assert unit.depth == 3
    assert Region.objects.get(code="sq").path == "/xixian/fd/sq/"
    assert Region.objects.get(code="xixian").depth == 0


def test_save_with_update_fields_still_refreshes_path() -> None:
    # given
    street = StreetFactory(code="old")
    street.code = "new"

    # when
    street.save(update_fields=["code"])

    # then
    street.refresh_from_db()
    assert street.path.endswith("/new/")


def test_a_street_cannot_sit_directly_under_the_root() -> None:
    # given
    root = RegionFactory()

    # when / then: the level/depth check constraint refuses it at the database
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(
            code="stray",
            name_zh="游离街道",
            level=RegionLevel.STREET,
            kind=RegionKind.SUBDISTRICT,
            parent=root,
        )


def test_only_the_root_may_lack_a_parent() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Region.objects.create(
            code="orphan", name_zh="孤儿", level=RegionLevel.NEW_TOWN, kind=RegionKind.NEW_TOWN
        )


def test_parent_code_and_ancestor_paths_come_from_the_path_without_queries(
    django_assert_num_queries: Any,
) -> None:
    # given
    unit = UnitFactory(code="u1", parent__code="sq", parent__parent__code="fd")
    unit = Region.objects.get(pk=unit.pk)

    # when / then
    with django_assert_num_queries(0):
        assert unit.parent_code == "sq"
        assert unit.ancestor_paths == ["/xixian/", "/xixian/fd/", "/xixian/fd/sq/"]
    assert Region.objects.get(code="xixian").parent_code is None


def _form_errors(region: Region) -> dict[str, Any]:
    with pytest.raises(ValidationError) as excinfo:
        region.clean()
    return excinfo.value.message_dict


def test_clean_refuses_a_kind_that_does_not_fit_the_level() -> None:
    town = NewTownFactory()
    region = Region(
        code="x", name_zh="某村", level=RegionLevel.STREET, kind=RegionKind.VILLAGE, parent=town
    )
    assert "kind" in _form_errors(region)


def test_clean_refuses_a_level_that_skips_a_tier() -> None:
    root = RegionFactory()
    region = Region(
        code="x",
        name_zh="某街道",
        level=RegionLevel.STREET,
        kind=RegionKind.SUBDISTRICT,
        parent=root,
    )
    assert "parent" in _form_errors(region)


def test_clean_refuses_a_boundary_with_swapped_axes() -> None:
    town = NewTownFactory()
    # [lat, lng] instead of [lng, lat]: 108 is not a latitude.
    ring = [[34.2, 108.8], [34.3, 108.8], [34.3, 108.9], [34.2, 108.8]]
    region = StreetFactory.build(parent=town, boundary={"type": "Polygon", "coordinates": [ring]})
    assert "boundary" in _form_errors(region)


def test_clean_accepts_a_well_formed_street() -> None:
    town = NewTownFactory()
    ring = [[108.8, 34.2], [108.9, 34.2], [108.9, 34.3], [108.8, 34.2]]
    region = StreetFactory.build(
        parent=town,
        centre_lat=34.25,
        centre_lng=108.85,
        boundary={"type": "Polygon", "coordinates": [ring]},
    )
    region.clean()  # no exception
    assert region.level == RegionLevel.STREET
