"""Machine-readable error codes of the regions app (conventions R8).

Codes are stable API: the mobile app branches on them. An unknown or out-of-scope
region is the core ``not_found`` on purpose: a separate code would tell a user that a
region outside their scope exists.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _


class RegionErrorCode(StrEnum):
    POINT_OUTSIDE_AREA = "point_outside_area"
    FIXTURE_INVALID = "region_fixture_invalid"


REGION_ERROR_MESSAGES: dict[str, Any] = {
    RegionErrorCode.POINT_OUTSIDE_AREA: _("This location is outside the Xixian New Area."),
    RegionErrorCode.FIXTURE_INVALID: _("The region fixture is invalid."),
}
