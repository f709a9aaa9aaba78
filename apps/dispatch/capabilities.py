"""What each incident category asks of a team: capability tags as data.

A team's ``capabilities`` is a list of the tags below. Each category code maps to
*required* tags (a team missing one cannot do the core job: it ranks below every team
that has them all, see ``recommendation.py``) and *preferred* tags (nice to have: they
only move a team within its tier). Codes are those of ``fixtures/incidents/categories.json``.

Casualties add ``medical`` as preferred whatever the category (``requirements_for``): an
incident with injured or trapped people is better served by a team that can give first aid.

Edit the table, not the code: it is plain data, reviewed like a fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

# The tags, with their labels (shown in the admin help and the API schema).
CAPABILITY_LABELS: dict[str, Any] = {
    "water_rescue": _("Water rescue"),
    "pumping": _("Pumping / drainage"),
    "gas": _("Gas leak handling"),
    "confined_space": _("Confined-space rescue"),
    "hazmat": _("Hazardous materials"),
    "medical": _("Medical / first aid"),
    "fire": _("Fire fighting"),
    "rope_rescue": _("Rope / height rescue"),
    "collapse_rescue": _("Collapse and structural rescue"),
    "traffic": _("Traffic control"),
    "power": _("Power supply repair"),
    "pipeline": _("Pipeline repair"),
    "geology": _("Geological hazard survey"),
    "evacuation": _("Evacuation and crowd control"),
    "epidemic": _("Epidemic prevention"),
    "environment": _("Environmental monitoring"),
    "general": _("General rescue"),
}
CAPABILITY_TAGS = frozenset(CAPABILITY_LABELS)


@dataclass(frozen=True)
class Requirement:
    """Tags a category asks for: ``required`` decide the tier, ``preferred`` refine it."""

    required: tuple[str, ...] = ()
    preferred: tuple[str, ...] = ()


# category code → (required, preferred)
CATEGORY_REQUIREMENTS: dict[str, Requirement] = {
    # Natural disasters
    "N01": Requirement(("water_rescue",), ("pumping", "evacuation")),
    "N02": Requirement(("pumping",), ("water_rescue",)),  # waterlogging
    "N03": Requirement(("water_rescue",), ("evacuation", "geology")),
    "N04": Requirement(("collapse_rescue",), ("geology", "evacuation")),
    "N05": Requirement(("collapse_rescue",), ("geology",)),
    "N06": Requirement(("collapse_rescue",), ("medical", "evacuation")),
    "N07": Requirement((), ("rope_rescue", "power", "general")),
    "N08": Requirement((), ("traffic", "general")),
    "N09": Requirement((), ("medical",)),
    "N10": Requirement((), ("pumping",)),
    "N11": Requirement(("fire",), ("evacuation",)),
    "N12": Requirement(("geology",), ("evacuation",)),
    # Accidents
    "A01": Requirement(("fire",), ("rope_rescue", "medical")),
    "A02": Requirement(("gas",), ("fire", "evacuation")),  # gas leak / explosion
    "A03": Requirement(("hazmat",), ("fire", "environment", "evacuation")),
    "A04": Requirement((), ("traffic", "medical")),
    "A05": Requirement((), ("evacuation", "medical")),
    "A06": Requirement(("fire",), ("medical",)),
    "A07": Requirement(("collapse_rescue",), ("medical", "rope_rescue")),
    "A08": Requirement(("confined_space",), ("hazmat", "medical")),  # confined space
    "A09": Requirement((), ("rope_rescue", "general")),
    "A10": Requirement((), ("power", "pipeline")),
    "A11": Requirement(("pipeline",), ("gas", "pumping")),
    "A12": Requirement(("water_rescue",), ("medical",)),
    "A13": Requirement(("environment",), ("hazmat",)),
    "A14": Requirement(("evacuation",), ("medical", "traffic")),
    "A15": Requirement((), ("general", "medical", "hazmat")),
    # Public health
    "H01": Requirement(("epidemic",), ("medical",)),
    "H02": Requirement(("medical",), ("epidemic",)),
    "H03": Requirement(("medical",), ()),
    "H04": Requirement(("medical",), ("hazmat",)),
    "H05": Requirement(("epidemic",), ()),
    # Social security
    "S01": Requirement(("evacuation",), ()),
    "S02": Requirement((), ("medical", "evacuation")),
    # Other
    "O99": Requirement((), ("general",)),
}


def requirements_for(category_code: str, *, casualties: bool = False) -> Requirement:
    """The tags ``category_code`` asks for; unknown codes ask for nothing (every team is
    in the one tier and distance decides). ``casualties`` adds ``medical`` as preferred."""
    requirement = CATEGORY_REQUIREMENTS.get(category_code, Requirement())
    if casualties and "medical" not in (*requirement.required, *requirement.preferred):
        requirement = Requirement(requirement.required, (*requirement.preferred, "medical"))
    return requirement
