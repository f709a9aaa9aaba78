"""Region admin and the reusable RegionScopedAdminMixin."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory
from django.urls import reverse

from apps.accounts.models import Membership, User
from apps.regions.admin_mixins import RegionScopedAdminMixin
from apps.regions.models import Region

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:regions_region_changelist")
ADD = reverse("admin:regions_region_add")
REGION_PERMS = ("view_region", "change_region", "add_region")


def change_url(region: Region) -> str:
    return reverse("admin:regions_region_change", args=[region.pk])


@pytest.fixture
def fengxi_staff(xixian: dict[str, Region], make_user: Any, client: Client) -> Client:
    client.force_login(
        make_user("fx-op", region=xixian["fengxi"], is_staff=True, perms=REGION_PERMS)
    )
    return client


def _listed_codes(response: Any) -> set[str]:
    return {region.code for region in response.context["cl"].result_list}


def test_a_superuser_pages_through_the_whole_tree_indented_by_depth(
    xixian: dict[str, Region], make_user: Any, client: Client
) -> None:
    # given
    client.force_login(make_user("root", is_superuser=True))

    # when
    first = client.get(CHANGELIST)

    # then: path order, 100 a page, every region on some page
    assert first.status_code == 200
    changelist = first.context["cl"]
    assert changelist.result_count == len(xixian) == 472
    listed = [region.code for region in changelist.result_list]
    assert listed[:3] == ["xixian", "fengdong", "fd-doumen"]
    assert len(listed) == 100
    html = first.content.decode()
    assert '<span style="padding-left:0.0em">陕西西咸新区</span>' in html
    assert '<span style="padding-left:3.0em">斗门街道</span>' in html


def test_the_street_filter_shows_a_street_with_its_communities(
    xixian: dict[str, Region], make_user: Any, client: Client
) -> None:
    # given
    client.force_login(make_user("root", is_superuser=True))

    # when
    response = client.get(CHANGELIST, {"in_street": "fx-mawang"})

    # then
    assert _listed_codes(response) == {
        code
        for code, region in xixian.items()
        if region.path.startswith("/xixian/fengxi/fx-mawang/")
    }
    assert '<span style="padding-left:4.5em">马王村</span>' in response.content.decode()


def _filter_choices(response: Any, parameter: str) -> list[str]:
    """The choices a sidebar filter shows (none: Django leaves the filter out)."""
    specs = response.context["cl"].filter_specs
    shown = [f for f in specs if getattr(f, "parameter_name", None) == parameter]
    return [code for spec in shown for code, _name in spec.lookup_choices]


def test_the_tree_filters_list_what_is_in_scope_narrowed_by_the_level_above(
    fengxi_staff: Client, xixian: dict[str, Region]
) -> None:
    # when
    plain = fengxi_staff.get(CHANGELIST)
    in_mawang = fengxi_staff.get(CHANGELIST, {"in_street": "fx-mawang"})
    outside = fengxi_staff.get(CHANGELIST, {"in_street": "fd-sanqiao"})

    # then: the new town and streets of 沣西 only; a chosen street narrows the communities
    assert _filter_choices(plain, "in_new_town") == ["fengxi"]
    assert _filter_choices(plain, "in_street") == [
        "fx-chenyangzhai",
        "fx-diaotai",
        "fx-gaoqiao",
        "fx-mawang",
    ]
    assert len(_filter_choices(plain, "in_community")) == 20 + 9 + 14 + 9  # active, 沣西
    assert len(_filter_choices(in_mawang, "in_community")) == 9
    assert _listed_codes(outside) == set()


def test_the_community_filter_waits_for_a_street_when_there_are_hundreds(
    xixian: dict[str, Region], make_user: Any, client: Client
) -> None:
    client.force_login(make_user("root", is_superuser=True))
    assert _filter_choices(client.get(CHANGELIST), "in_community") == []
    chosen = client.get(CHANGELIST, {"in_community": "fd-sanqiao-u01"})
    assert _filter_choices(chosen, "in_community") == ["fd-sanqiao-u01"]
    assert _listed_codes(chosen) == {"fd-sanqiao-u01"}


def test_a_fengxi_operator_lists_no_fengdong_rows(
    fengxi_staff: Client, xixian: dict[str, Region]
) -> None:
    response = fengxi_staff.get(CHANGELIST)
    assert response.status_code == 200
    codes = _listed_codes(response)
    assert "fx-mawang" in codes
    assert all(xixian[code].path.startswith("/xixian/fengxi/") for code in codes)
    assert "fd-sanqiao" not in codes


def test_search_cannot_reach_outside_the_scope(fengxi_staff: Client) -> None:
    response = fengxi_staff.get(CHANGELIST, {"q": "三桥"})
    assert _listed_codes(response) == set()


def test_a_fengxi_operator_cannot_open_a_fengdong_region(
    fengxi_staff: Client, xixian: dict[str, Region]
) -> None:
    # when
    outside = fengxi_staff.get(change_url(xixian["fd-sanqiao"]))
    inside = fengxi_staff.get(change_url(xixian["fx-mawang"]))

    # then: Django treats an out-of-scope object like a missing one
    assert outside.status_code == 302
    assert outside["Location"] == reverse("admin:index")
    assert inside.status_code == 200


def test_the_parent_choices_are_limited_to_the_scope(
    fengxi_staff: Client, xixian: dict[str, Region]
) -> None:
    # when
    response = fengxi_staff.get(ADD)

    # then
    parent_field = response.context["adminform"].form.fields["parent"]
    choices = set(parent_field.queryset.values_list("code", flat=True))
    assert "fengxi" in choices
    assert "fengdong" not in choices
    assert "xixian" not in choices
    assert parent_field.required


def test_code_and_parent_are_read_only_once_the_region_exists(
    fengxi_staff: Client, xixian: dict[str, Region]
) -> None:
    response = fengxi_staff.get(change_url(xixian["fx-mawang"]))
    form_fields = response.context["adminform"].form.fields
    assert "code" not in form_fields
    assert "parent" not in form_fields


def test_staff_without_the_model_permission_is_still_refused(
    xixian: dict[str, Region], make_user: Any, client: Client
) -> None:
    # given: in scope, but no regions.view_region
    client.force_login(make_user("no-perms", region=xixian["fengxi"], is_staff=True))

    # when / then
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(change_url(xixian["fx-mawang"])).status_code == 403


# --- the mixin on other models (how accounts will use it) -------------------------------


class _MembershipAdmin(RegionScopedAdminMixin, admin.ModelAdmin):
    region_path_field = "region__path"


class _UserAdmin(RegionScopedAdminMixin, admin.ModelAdmin):
    region_path_field = "memberships__region__path"


def _request(user: User) -> Any:
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_the_mixin_narrows_a_related_model_by_its_region(
    xixian: dict[str, Region], make_user: Any
) -> None:
    # given
    operator = make_user("fx-op", region=xixian["fengxi"], is_staff=True)
    make_user("fd-resp", region=xixian["fd-sanqiao"], role=Membership.Role.RESPONDER)
    make_user("fx-resp", region=xixian["fx-mawang"], role=Membership.Role.RESPONDER)
    operator.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_membership", "change_membership", "delete_membership"],
        )
    )
    user = User.objects.get(pk=operator.pk)  # fresh: Django caches permissions per instance
    model_admin = _MembershipAdmin(Membership, admin.site)
    request = _request(user)
    outside = Membership.objects.get(user__username="fd-resp")
    inside = Membership.objects.get(user__username="fx-resp")

    # when
    visible = set(model_admin.get_queryset(request).values_list("user__username", flat=True))

    # then
    assert visible == {"fx-op", "fx-resp"}
    assert model_admin.has_change_permission(request, inside)
    assert not model_admin.has_change_permission(request, outside)
    assert not model_admin.has_view_permission(request, outside)
    assert not model_admin.has_delete_permission(request, outside)


def test_the_mixin_lists_a_user_with_two_memberships_once(
    xixian: dict[str, Region], make_user: Any
) -> None:
    # given
    operator = make_user("fx-op", region=xixian["fengxi"], is_staff=True)
    twice = make_user("twice", region=xixian["fx-mawang"], role=Membership.Role.RESPONDER)
    Membership.objects.create(user=twice, region=xixian["fx-diaotai"], role="responder")
    make_user("elsewhere", region=xixian["fd-sanqiao"], role=Membership.Role.RESPONDER)
    model_admin = _UserAdmin(User, admin.site)

    # when
    usernames = list(
        model_admin.get_queryset(_request(operator)).values_list("username", flat=True)
    )

    # then
    assert sorted(usernames) == ["fx-op", "twice"]


def test_the_mixin_offers_only_visible_regions_in_foreign_keys(
    xixian: dict[str, Region], make_user: Any
) -> None:
    operator = make_user("fx-op", region=xixian["fengxi"], is_staff=True)
    model_admin = _MembershipAdmin(Membership, admin.site)
    field = model_admin.formfield_for_foreignkey(
        Membership._meta.get_field("region"), _request(operator)
    )
    assert field is not None
    codes = set(field.queryset.values_list("code", flat=True))
    assert codes == set(
        Region.objects.filter(path__startswith="/xixian/fengxi/").values_list("code", flat=True)
    )


def test_the_street_filter_lists_a_user_with_two_memberships_there_once(
    xixian: dict[str, Region], make_user: Any
) -> None:
    # given: a responder in two communities of 马王, and one elsewhere
    twice = make_user("twice", region=xixian["fx-mawang-u01"], role=Membership.Role.RESPONDER)
    Membership.objects.create(user=twice, region=xixian["fx-mawang-u02"], role="responder")
    make_user("elsewhere", region=xixian["fx-diaotai"], role=Membership.Role.RESPONDER)
    root = make_user("root", is_superuser=True)
    model_admin = _UserAdmin(User, admin.site)
    request = RequestFactory().get("/admin/", {"in_street": "fx-mawang"})
    request.user = root
    (street_filter,) = [
        f
        for f in model_admin.get_list_filter(request)
        if getattr(f, "parameter_name", None) == "in_street"
    ]

    # when
    spec = street_filter(request, {"in_street": ["fx-mawang"]}, User, model_admin)
    usernames = list(spec.queryset(request, User.objects.all()).values_list("username", flat=True))

    # then
    assert usernames == ["twice"]


def test_region_choices_are_indented_under_their_street(
    xixian: dict[str, Region], make_user: Any
) -> None:
    # given: 和平社区 exists in two streets of 沣东
    operator = make_user("fd-op", region=xixian["fengdong"], is_staff=True)
    model_admin = _MembershipAdmin(Membership, admin.site)

    # when
    field = model_admin.formfield_for_foreignkey(
        Membership._meta.get_field("region"), _request(operator)
    )
    assert field is not None
    labels = [label for _value, label in field.choices][1:]  # after the empty choice

    # then: path order, each community right under its street, one level deeper
    sanqiao = labels.index("\u3000\u3000三桥街道")
    assert labels[sanqiao + 1] == "\u3000\u3000\u3000三桥火车站社区"
    assert labels.count("\u3000\u3000\u3000和平社区") == 2
    assert labels[0] == "\u3000沣东新城"
