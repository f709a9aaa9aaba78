"""The one visibility rule, as data: a set of region path prefixes."""

from __future__ import annotations

from apps.core.scoping import EMPTY_SCOPE, GLOBAL_SCOPE, Scope, scope_for


def test_nested_paths_collapse_into_their_ancestor() -> None:
    scope = Scope.from_paths(["/x/fd/", "/x/fd/sq/", "/x/fx/"])
    assert scope.paths == ("/x/fd/", "/x/fx/")


def test_a_scope_covers_its_subtrees_only() -> None:
    scope = Scope.from_paths(["/xixian/fengxi/"])
    assert scope.covers("/xixian/fengxi/fx-diaotai/")
    assert not scope.covers("/xixian/fengdong/")
    # A sibling whose code shares a prefix is not inside (paths end with "/").
    assert not Scope.from_paths(["/xixian/fd/"]).covers("/xixian/fd2/")


def test_the_empty_scope_matches_nothing_and_the_global_one_everything() -> None:
    assert EMPTY_SCOPE.is_empty
    assert not EMPTY_SCOPE.covers("/xixian/")
    assert GLOBAL_SCOPE.covers("/anything/")
    assert str(GLOBAL_SCOPE.q("path")) == "(AND: )"


def test_a_scope_builds_one_prefix_filter_per_subtree() -> None:
    q = Scope.from_paths(["/a/", "/b/"]).q("region__path")
    assert q.connector == "OR"
    assert ("region__path__startswith", "/a/") in q.children
    assert ("region__path__startswith", "/b/") in q.children


def test_anonymous_users_have_the_empty_scope() -> None:
    from django.contrib.auth.models import AnonymousUser

    assert scope_for(AnonymousUser()) is EMPTY_SCOPE
    assert scope_for(None) is EMPTY_SCOPE
