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
  an object cannot be moved (or created) outside the user's scope.
* ``has_view/change/delete_permission(obj)``: refuse objects outside the scope (403),
  for code paths that bypass ``get_queryset``.

It only narrows: Django's model permissions (``regions.view_region`` …) are checked first
and still decide whether a staff user may use the admin class at all.

``region_path_field`` may cross a multi-valued relation (``"memberships__region__path"``
for users); the changelist then gets ``distinct()`` so one user with two memberships is
listed once.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from apps.core.scoping import restrict, scope_for
from apps.regions.models import Region


class RegionScopedAdminMixin:
    """Narrow a ``ModelAdmin`` to the requesting user's region subtrees."""

    region_path_field: ClassVar[str] = "region__path"

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
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_view_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_change_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed: bool = super().has_delete_permission(request, obj)  # type: ignore[misc]
        return allowed and self.region_in_scope(request, obj)

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
