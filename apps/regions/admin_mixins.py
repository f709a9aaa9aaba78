"""Region scoping for Django admin classes (the admin side of conventions R9).

Usage — put the mixin first and name the path of the object's region::

    @admin.register(Membership)
    class MembershipAdmin(RegionScopedAdminMixin, admin.ModelAdmin):
        region_path_field = "region__path"

What it does for a non-superuser (superusers are never narrowed):

* ``get_queryset``: only objects whose ``region_path_field`` lies in the user's scope
  (``apps.core.scoping.restrict``), so changelists, search and "change" URLs of other
  regions show nothing; opening one redirects to the index like a deleted object.
* ``formfield_for_foreignkey``: every FK to ``Region`` offers visible regions only, so
  an object cannot be moved (or created) outside the user's scope; in tree order,
  indented, since community names repeat across streets.
* ``has_view/change/delete_permission(obj)``: refuse objects outside the scope (403),
  for code paths that bypass ``get_queryset``.

It only narrows: Django's model permissions (``regions.view_region`` …) are checked first
and still decide whether a staff user may use the admin class at all.

* ``get_list_filter``: the sidebar gets the region tree as filters — new town, street,
  community — each listing only the regions the user may see, each narrowed by the one
  above it (a chosen street lists its communities), and a plain filter on the region
  foreign key (``"region"``) is dropped: it lists every region of the tree, outside the
  user's scope too, ~470 of them with the community tier. Set ``region_tree_filters =
  False`` to keep the admin's own filters untouched.

``region_path_field`` may cross a multi-valued relation (``"memberships__region__path"``
for users); the changelist then gets ``distinct()`` so one user with two memberships is
listed once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.core.scoping import restrict, scope_for
from apps.regions.models import Region, RegionLevel

# A filter with more choices than this is hidden until a filter above narrows it: a
# sidebar of every community of the new area (~420) helps nobody.
REGION_FILTER_MAX_CHOICES = 60
INACTIVE_LABEL = _("inactive")


class RegionLevelFilter(admin.SimpleListFilter):
    """Objects in the subtree of one region of ``level`` (subclassed per admin by
    :func:`region_level_filters`, which sets ``path_field``)."""

    level: ClassVar[str] = RegionLevel.STREET
    path_field: ClassVar[str] = "region__path"
    # The filters above this one, whose choice narrows this one's list.
    narrowed_by: ClassVar[tuple[str, ...]] = ()

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        regions = Region.objects.visible_to(request.user).filter(level=self.level, is_active=True)
        within = self._chosen_path(request)
        if within is not None:
            regions = regions.filter(path__startswith=within)
        rows = list(
            regions.order_by("path").values_list("code", "name_zh")[: REGION_FILTER_MAX_CHOICES + 1]
        )
        if len(rows) > REGION_FILTER_MAX_CHOICES:
            # Too many to list: choose above first; a choice made stays shown.
            rows = list(regions.filter(code=self.value()).values_list("code", "name_zh"))
        return [(code, name) for code, name in rows]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        code = self.value()
        if not code:
            return queryset
        path = _visible_path(request, code)
        if path is None:
            return queryset.none()  # unknown or out of scope: the same empty answer
        condition = {f"{self.path_field}__startswith": path}
        if "__" not in self.path_field:
            return queryset.filter(**condition)
        # Across a relation that may be to-many (a user's memberships): a subquery, so a
        # user with two memberships in the street is still listed once.
        inside = queryset.model._default_manager.filter(**condition).values("pk")
        return queryset.filter(pk__in=inside)

    def _chosen_path(self, request: HttpRequest) -> str | None:
        for parameter in self.narrowed_by:
            code = request.GET.get(parameter)
            if code:
                return _visible_path(request, code) or "/-/"  # out of scope: nothing
        return None


def region_choice_label(region: Region) -> str:
    """A region in a select: indented by depth (full-width spaces), inactive marked."""
    label = "\u3000" * region.depth + region.name_zh
    return label if region.is_active else f"{label} ({INACTIVE_LABEL})"


def _visible_path(request: HttpRequest, code: str) -> str | None:
    return (
        Region.objects.visible_to(request.user)
        .filter(code=code)
        .values_list("path", flat=True)
        .first()
    )


# (level, query parameter, title): top-down, each narrowing the next.
REGION_FILTER_LEVELS: tuple[tuple[str, str, Any], ...] = (
    (RegionLevel.NEW_TOWN, "in_new_town", _("by new town")),
    (RegionLevel.STREET, "in_street", _("by street / town")),
    (RegionLevel.UNIT, "in_community", _("by community / village")),
)


def region_level_filters(path_field: str) -> list[type[RegionLevelFilter]]:
    """The new town, street and community filters on ``path_field`` (``"region__path"``)."""
    filters: list[type[RegionLevelFilter]] = []
    above: list[str] = []
    for level, parameter, title in REGION_FILTER_LEVELS:
        filters.append(
            type(
                f"RegionFilter_{level}",
                (RegionLevelFilter,),
                {
                    "level": level,
                    "path_field": path_field,
                    "parameter_name": parameter,
                    "title": title,
                    # The nearest chosen filter above wins: a street inside a new town.
                    "narrowed_by": tuple(reversed(above)),
                },
            )
        )
        above.append(parameter)
    return filters


class RegionScopedAdminMixin:
    """Narrow a ``ModelAdmin`` to the requesting user's region subtrees."""

    region_path_field: ClassVar[str] = "region__path"
    region_tree_filters: ClassVar[bool] = True

    # --- the narrowing -----------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        queryset = restrict(queryset, request.user, self.region_path_field)
        if self._path_is_multi_valued(queryset.model):
            queryset = queryset.distinct()
        return queryset

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.related_model is Region and not request.user.is_superuser:
            kwargs["queryset"] = Region.objects.visible_to(request.user).order_by("path")
        field: ModelChoiceField | None = super().formfield_for_foreignkey(  # type: ignore[misc]
            db_field, request, **kwargs
        )
        if db_field.related_model is Region and field is not None:
            # Community names repeat across streets (和平社区 is in 三桥 and in 王寺):
            # in path order, indented by depth, each sits right under its street.
            field.label_from_instance = region_choice_label  # type: ignore[method-assign]
        return field

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_view_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_change_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

    def get_list_filter(self, request: HttpRequest) -> Sequence[Any]:
        filters: Sequence[Any] = super().get_list_filter(request)  # type: ignore[misc]
        if not self.region_tree_filters:
            return filters
        region_fk = self.region_path_field.removesuffix("__path")
        kept = [f for f in filters if f != region_fk]
        return [*region_level_filters(self.region_path_field), *kept]

    # --- helpers (part of the interface: subclasses may call them) --------------------------

    def region_in_scope(self, request: HttpRequest, obj: Any) -> bool:
        """True if ``obj`` is visible to the user (or there is no object to judge).

        Asks the database with the same filter as ``get_queryset`` (one indexed query), so
        multi-valued paths and null regions get the same answer as the changelist.
        """
        if obj is None or request.user.is_superuser:
            return True
        if "__" not in self.region_path_field:
            # The path is a column of the object itself (Region): no query needed.
            path = getattr(obj, self.region_path_field, None)
            return bool(path) and scope_for(request.user).covers(path)
        if obj.pk is None:
            return False  # an unsaved object has no region path to check yet
        model = type(obj)
        return restrict(
            model._default_manager.filter(pk=obj.pk), request.user, self.region_path_field
        ).exists()

    def _path_is_multi_valued(self, model: type[models.Model]) -> bool:
        """Does ``region_path_field`` cross a to-many relation (so joins duplicate rows)?"""
        opts = model._meta
        for name in self.region_path_field.split("__")[:-1]:
            field = opts.get_field(name)
            if field.many_to_many or field.one_to_many:
                return True
            if field.related_model is None:
                return False
            opts = field.related_model._meta
        return False
