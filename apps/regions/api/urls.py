"""Region routes, included under /api/v1/ (namespace ``v1``)."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.regions.api.views import (
    RegionCommunitiesApi,
    RegionLookupApi,
    RegionTreeApi,
    RegionViewSet,
)

router = SimpleRouter()
router.register("regions", RegionViewSet, basename="regions")

# The fixed paths come first: "tree" and "lookup" would otherwise match {code}
# (the loader refuses them as codes for the same reason).
urlpatterns = [
    path("regions/tree/", RegionTreeApi.as_view(), name="regions-tree"),
    path("regions/lookup/", RegionLookupApi.as_view(), name="regions-lookup"),
    path(
        "regions/<slug:code>/communities/",
        RegionCommunitiesApi.as_view(),
        name="regions-communities",
    ),
    *router.urls,
]
