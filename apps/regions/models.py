"""The administrative tree 新区 → 新城 → 街道/镇 → 社区/村/企业.

Parent FK plus a materialised ``path`` of codes (``/xixian/fengdong/fd-sanqiao/``):
subtree queries are one indexed ``path LIKE 'prefix%'`` and the scope rule
(``apps.core.scoping``) needs nothing else. django-mptt is unmaintained and the tree
is small and rarely edited, so no tree library (docs/architecture.md section 2).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.core.scoping import restrict


class RegionLevel(models.TextChoices):
    """The four tiers of command: 新区 → 新城 → 街道/镇 → 社区/村/企业.

    ``unit`` is the community tier: 社区 (居委会) and 村 (村委会) from the NBS tables, plus
    estates and enterprises added by hand. Its value stays ``unit`` (it is API)."""

    NEW_AREA = "new_area", _("New area")
    NEW_TOWN = "new_town", _("New town")
    STREET = "street", _("Street / town")
    UNIT = "unit", _("Community / village / enterprise")


class RegionKind(models.TextChoices):
    """What the region is, finer than its level (a 镇 and a 街道 are both streets)."""

    NEW_AREA = "new_area", _("New area")
    NEW_TOWN = "new_town", _("New town")
    SUBDISTRICT = "subdistrict", _("Subdistrict (街道)")
    TOWN = "town", _("Town (镇)")
    COMMUNITY = "community", _("Community")
    VILLAGE = "village", _("Village")
    RESIDENTIAL_AREA = "residential_area", _("Residential estate (小区)")
    ENTERPRISE = "enterprise", _("Enterprise")


class Management(models.TextChoices):
    """Who runs the street day to day (xixian-data.md §1.3)."""

    DIRECT = "direct", _("Directly managed")
    SHARED_XIANYANG = "shared_xianyang", _("Shared zone, managed by Xianyang")
    HISTORICAL = "historical", _("Historical, no longer managed")


class UrbanRural(models.TextChoices):
    """NBS 城乡分类代码 of a village-level unit (统计用区划代码和城乡划分代码)."""

    MAIN_URBAN = "111", _("111 Main urban area (主城区)")
    URBAN_FRINGE = "112", _("112 Urban–rural fringe (城乡结合区)")
    TOWN_CENTRE = "121", _("121 Town centre (镇中心区)")
    TOWN_FRINGE = "122", _("122 Town–rural fringe (镇乡结合区)")
    SPECIAL = "123", _("123 Special area (特殊区域)")
    TOWNSHIP_CENTRE = "210", _("210 Township centre (乡中心区)")
    VILLAGE = "220", _("220 Village (村庄)")


class Confidence(models.TextChoices):
    """How sure the research is about the node (xixian-data.md legend)."""

    A = "A", _("Solid")
    B = "B", _("Probable")
    C = "C", _("Inferred or estimated")


LEVEL_DEPTH: dict[str, int] = {
    RegionLevel.NEW_AREA: 0,
    RegionLevel.NEW_TOWN: 1,
    RegionLevel.STREET: 2,
    RegionLevel.UNIT: 3,
}
# The kinds each level may have: a 镇 is a street, never a unit.
LEVEL_KINDS: dict[str, frozenset[str]] = {
    RegionLevel.NEW_AREA: frozenset({RegionKind.NEW_AREA}),
    RegionLevel.NEW_TOWN: frozenset({RegionKind.NEW_TOWN}),
    RegionLevel.STREET: frozenset({RegionKind.SUBDISTRICT, RegionKind.TOWN}),
    RegionLevel.UNIT: frozenset(
        {
            RegionKind.COMMUNITY,
            RegionKind.VILLAGE,
            RegionKind.RESIDENTIAL_AREA,
            RegionKind.ENTERPRISE,
        }
    ),
}


class RegionQuerySet(models.QuerySet["Region"]):
    """Tree-aware filters; every one is a single indexed query."""

    def visible_to(self, user: object) -> RegionQuerySet:
        """Regions inside the user's scope (the one visibility rule, apps.core.scoping)."""
        return restrict(self, user, "path")

    def subtree(self, region: Region, *, include_self: bool = True) -> RegionQuerySet:
        """``region`` and everything below it: one ``path LIKE 'prefix%'`` scan."""
        qs = self.filter(path__startswith=region.path)
        return qs if include_self else qs.exclude(pk=region.pk)

    def active(self) -> RegionQuerySet:
        return self.filter(is_active=True)


class Region(BaseModel):
    """A node of the Xixian administrative tree; every scoped object points at one."""

    Level = RegionLevel
    Kind = RegionKind
    Management = Management
    Confidence = Confidence
    UrbanRural = UrbanRural

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    level = models.CharField(_("level"), max_length=16, choices=RegionLevel.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=RegionKind.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("path"), max_length=255, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(_("depth"), editable=False)
    nbs_code = models.CharField(
        _("NBS statistical code"),
        max_length=12,
        blank=True,
        help_text=_(
            "统计用区划代码 of the year in source year: 9 digits for a street, 12 for a "
            "community or village; streets still sit under their legacy districts."
        ),
    )
    nbs_name = models.CharField(
        _("NBS name"),
        max_length=100,
        blank=True,
        help_text=_("The name in the NBS table, verbatim (e.g. 三桥火车站社区居委会)."),
    )
    urban_rural = models.CharField(
        _("urban–rural class"),
        max_length=3,
        blank=True,
        choices=UrbanRural.choices,
        help_text=_("NBS 城乡分类代码 of a community or village."),
    )
    source_year = models.PositiveSmallIntegerField(
        _("source year"),
        null=True,
        blank=True,
        help_text=_("Year of the official table the code, name and class come from."),
    )
    legacy_district = models.CharField(_("legacy district"), max_length=20, blank=True)
    management = models.CharField(
        _("management"), max_length=20, choices=Management.choices, default=Management.DIRECT
    )
    centre_lat = models.FloatField(_("centre latitude"), null=True, blank=True)
    centre_lng = models.FloatField(_("centre longitude"), null=True, blank=True)
    estimated = models.BooleanField(
        _("coordinates estimated"),
        default=True,
        help_text=_("Hand-estimated centre or boundary; verify against official GIS."),
    )
    accuracy_km = models.FloatField(_("accuracy (km)"), null=True, blank=True)
    boundary = models.JSONField(
        _("boundary (GeoJSON)"),
        null=True,
        blank=True,
        help_text=_("A GeoJSON Polygon or MultiPolygon geometry in WGS84."),
    )
    confidence = models.CharField(
        _("confidence"), max_length=1, choices=Confidence.choices, default=Confidence.B
    )
    sources = models.JSONField(_("sources"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    from_fixture = models.BooleanField(
        _("from the fixture"),
        default=False,
        editable=False,
        help_text=_(
            "Kept in step with the region fixture by load_regions, which marks it inactive "
            "(never deletes it) once the fixture drops it. Regions made here are not."
        ),
    )

    objects = RegionQuerySet.as_manager()

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level__in=RegionLevel.values), name="regions_region_level_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=RegionKind.values), name="regions_region_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(management__in=Management.values),
                name="regions_region_mgmt_valid",
            ),
            models.CheckConstraint(
                condition=Q(confidence__in=Confidence.values), name="regions_region_conf_valid"
            ),
            models.CheckConstraint(
                condition=Q(urban_rural="") | Q(urban_rural__in=UrbanRural.values),
                name="regions_region_urban_rural_valid",
            ),
            # Only the root may lack a parent.
            models.CheckConstraint(
                condition=Q(parent__isnull=False) | Q(level=RegionLevel.NEW_AREA),
                name="regions_region_parent_required",
            ),
            models.CheckConstraint(
                condition=(Q(centre_lat__isnull=True) & Q(centre_lng__isnull=True))
                | (
                    Q(centre_lat__gte=-90, centre_lat__lte=90)
                    & Q(centre_lng__gte=-180, centre_lng__lte=180)
                ),
                name="regions_region_centre_valid",
            ),
            # depth is derived from path; the level must sit at its depth, so a street
            # can never be filed directly under the root (netbox-style tree invariant).
            models.CheckConstraint(
                condition=Q(level=RegionLevel.NEW_AREA, depth=0)
                | Q(level=RegionLevel.NEW_TOWN, depth=1)
                | Q(level=RegionLevel.STREET, depth=2)
                | Q(level=RegionLevel.UNIT, depth=3),
                name="regions_region_level_depth",
            ),
            # Sibling names are unique (netbox dcim/models/sites.py pattern).
            models.UniqueConstraint(
                fields=["parent", "name_zh"], name="regions_region_sibling_name_uniq"
            ),
        ]
        indexes = [
            # Point → street lookup scans the active streets only.
            models.Index(
                fields=["level"], name="regions_region_active_lvl_idx", condition=Q(is_active=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name_zh

    def derive_path(self) -> None:
        """Set ``path``/``depth`` from parent + code (also used before ``bulk_create``)."""
        self.path = f"{self.parent.path if self.parent else '/'}{self.code}/"
        self.depth = self.path.count("/") - 2

    def save(self, *args: object, **kwargs: object) -> None:
        # path/depth are derived columns of parent+code, kept here so no write path can
        # leave them stale; moving a node is a service (it must rewrite the subtree).
        self.derive_path()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "path", "depth"}  # type: ignore[misc]
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        """Form-level checks (admin): the level fits the parent, the boundary is GeoJSON."""
        from apps.regions.geo import boundary_problem

        errors: dict[str, list[Any]] = {}
        expected_kinds = LEVEL_KINDS.get(self.level)
        if expected_kinds is not None and self.kind and self.kind not in expected_kinds:
            errors.setdefault("kind", []).append(_("This kind does not fit the level."))
        parent = self.parent if self.parent_id else None
        depth = LEVEL_DEPTH.get(self.level)
        if depth is not None:
            parent_depth = parent.depth if parent is not None else -1
            if depth != parent_depth + 1:
                errors.setdefault("parent", []).append(
                    _("A region of this level must sit directly below a region one level up.")
                )
        if self.boundary is not None:
            problem = boundary_problem(self.boundary)
            if problem:
                errors.setdefault("boundary", []).append(problem)
        if (self.centre_lat is None) != (self.centre_lng is None):
            errors.setdefault("centre_lng", []).append(
                _("Give both centre coordinates or neither.")
            )
        if errors:
            raise ValidationError(errors)

    @property
    def has_centre(self) -> bool:
        return self.centre_lat is not None and self.centre_lng is not None

    @property
    def parent_code(self) -> str | None:
        """The parent's code read from ``path``, so listing parents costs no join."""
        parts = self.path.strip("/").split("/") if self.path else []
        return parts[-2] if len(parts) >= 2 else None

    @property
    def ancestor_paths(self) -> list[str]:
        """Paths of the ancestors, root first (``/xixian/``, ``/xixian/fengdong/``)."""
        parts = self.path.strip("/").split("/") if self.path else []
        return ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts))]
