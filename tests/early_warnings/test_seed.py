"""The demo roster: seeded idempotently, so the demo's warnings reach a person."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.early_warnings.models import ResponsiblePerson
from apps.early_warnings.services import responsible_for
from apps.regions.models import Region

pytestmark = pytest.mark.django_db


def test_the_demo_roster_is_seeded_idempotently_and_answers_for_its_street() -> None:
    call_command("seed_demo", force=True, stdout=StringIO())
    call_command("seed_warnings_demo", force=True, stdout=StringIO())
    out = StringIO()
    call_command("seed_warnings_demo", force=True, stdout=out)
    assert ResponsiblePerson.objects.count() == 6
    sanqiao = Region.objects.get(code="fd-sanqiao")
    usernames = {p.user.username for p in ResponsiblePerson.objects.filter(region=sanqiao)}
    assert usernames == {"op-sanqiao", "tl-sanqiao"}
    answering = {user_id for user_id, _region, _role in responsible_for([sanqiao])}
    assert len(answering) >= 4  # the roster of the street and of its community
