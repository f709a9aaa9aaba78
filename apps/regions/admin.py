"""Region admin: the tree as a changelist, scoped to the user's subtrees."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from apps.regions.admin_mixins import RegionScopedAdminMixin
from apps.regions.models import Region

INDENT_EM_PER_LEVEL = 1.5


@admin.register(Region)
class RegionAdmin(RegionScopedAdminMixin, ModelAdmin):
    region_path_field = "path"

    list_display = (
        "tree_name",
        "code",
        "level",
        "kind",
        "management",
        "nbs_code",
        "urban_rural",
        "estimated",
        "is_active",
    )
    # The region tree filters (new town → street → community) come first, from the mixin.
    list_filter = (
        "level",
        "kind",
        "urban_rural",
        "management",
        "estimated",
        "confidence",
        "is_active",
        "from_fixture",
    )
    search_fields = ("name_zh", "name_en", "nbs_name", "code", "nbs_code")
    ordering = ("path",)  # depth-first: every node right below its parent
    # ~470 nodes with the communities: a page holds a new town's streets or, filtered by
    # street, the street with all its communities (the largest has 45).
    list_per_page = 100
    readonly_fields = ("path", "depth", "from_fixture", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("code", "parent", "name_zh", "name_en", "level", "kind")}),
        (
            _("Administration"),
            {
                "fields": (
                    "management",
                    "nbs_code",
                    "nbs_name",
                    "urban_rural",
                    "source_year",
                    "legacy_district",
                    "is_active",
                )
            },
        ),
        (
            _("Geometry"),
            {"fields": ("centre_lat", "centre_lng", "estimated", "accuracy_km", "boundary")},
        ),
        (_("Provenance"), {"fields": ("confidence", "sources", "notes", "from_fixture")}),
        (_("Tree"), {"fields": ("path", "depth", "created_at", "updated_at")}),
    )

    @admin.display(description=_("name"), ordering="path")
    def tree_name(self, region: Region) -> str:
        return format_html(
            '<span style="padding-left:{}em">{}</span>',
            region.depth * INDENT_EM_PER_LEVEL,
            region.name_zh,
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Region | None = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Changing code or parent moves a subtree (every descendant's path) and breaks
            # the fixture's upsert key: that is a reviewed fixture change, not a form edit.
            fields = ("code", "parent", *fields)
        return fields

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "parent" and field is not None and not request.user.is_superuser:
            # Without a parent the node would be a new root, outside everyone's scope
            # but the superusers'.
            field.required = True
        return field
