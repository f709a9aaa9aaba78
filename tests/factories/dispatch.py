"""factory_boy factories for apps.dispatch.

Rows are written directly (set-up, not services): ``TeamFactory(status=...)`` puts a
team in any status. A team gets its home region's centre as ``last_lat``/``last_lng``
with ``last_position_at=None`` unless given a position, as ``team_create`` does (one
indexed code path for the recommendation prefilter). Usage::

    team = TeamFactory(home_region=street, capabilities=["pumping"], status="available")
    member = TeamMemberFactory(team=team, on_duty=True)
    shift = ShiftFactory(team=team)

The tasks and tracks work append their factories at the bottom of this module.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.dispatch.models import (
    Department,
    DepartmentKind,
    DispatchTask,
    Shift,
    TaskStatus,
    Team,
    TeamKind,
    TeamMember,
    TeamStatus,
    TrackChunk,
)
from tests.factories.accounts import CitizenFactory
from tests.factories.regions import StreetFactory


class DepartmentFactory(DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"dept-{n}")
    name_zh = factory.Sequence(lambda n: f"测试部门{n}")
    name_en = factory.Sequence(lambda n: f"Test department {n}")
    kind = DepartmentKind.EMERGENCY
    region = factory.SubFactory(StreetFactory)


def _centre(team: Any, axis: str) -> float | None:
    region = team.home_region
    return getattr(region, f"centre_{axis}", None) if region is not None else None


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"team-{n}")
    name = factory.Sequence(lambda n: f"测试救援队{n}")
    department = None
    kind = TeamKind.PROFESSIONAL
    home_region = factory.SubFactory(StreetFactory)
    capabilities: Any = factory.LazyFunction(list)
    equipment: Any = factory.LazyFunction(dict)
    status = TeamStatus.AVAILABLE
    last_lat = factory.LazyAttribute(lambda o: _centre(o, "lat"))
    last_lng = factory.LazyAttribute(lambda o: _centre(o, "lng"))
    last_position_at = None
    is_active = True


class TeamMemberFactory(DjangoModelFactory):
    """A responder in a team; the user is a phone user unless given."""

    class Meta:
        model = TeamMember

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(CitizenFactory)
    is_leader = False
    on_duty = False
    on_duty_since = factory.LazyAttribute(lambda o: timezone.now() if o.on_duty else None)
    is_active = True


class ShiftFactory(DjangoModelFactory):
    class Meta:
        model = Shift

    team = factory.SubFactory(TeamFactory)
    starts_at = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(hours=12))
    leader = None


# --- Dispatch tasks (added by the tasks work) ---------------------------------------------


class DispatchTaskFactory(DjangoModelFactory):
    """A task written directly in any status (set-up, not a transition); use the services
    in ``apps.dispatch.services.tasks`` to *move* one. The incident defaults to an
    accepted one in the team's home region."""

    class Meta:
        model = DispatchTask

    team = factory.SubFactory(TeamFactory)
    incident = factory.SubFactory(
        "tests.factories.incidents.IncidentFactory",
        region=factory.SelfAttribute("..team.home_region"),
        status="accepted",
    )
    status = TaskStatus.DISPATCHED
    dispatched_at = factory.LazyFunction(timezone.now)


# --- Tracks (added by the tracks work) -----------------------------------------------------


class TrackChunkFactory(DjangoModelFactory):
    """A stored chunk of ``n_points`` fixes every ``step_s`` seconds from ``bucket_start``
    (set-up for reads and sweeps; use ``pings_ingest`` to exercise ingestion)::

        TrackChunkFactory(user=user, team=team, bucket_start=start, n_points=120)
    """

    class Meta:
        model = TrackChunk
        exclude = ("n_points", "step_s")

    n_points = 12
    step_s = 5
    user = factory.SubFactory(CitizenFactory)
    team = factory.SubFactory(TeamFactory)
    bucket_start = factory.LazyFunction(
        lambda: timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    )
    points: Any = factory.LazyAttribute(
        lambda o: [
            [i * o.step_s * 1000, 34_270_000 + i * 10, 108_850_000 + i * 10, 50]
            for i in range(o.n_points)
        ]
    )
    count = factory.LazyAttribute(lambda o: len(o.points))
    first_at = factory.LazyAttribute(
        lambda o: o.bucket_start + timedelta(milliseconds=o.points[0][0])
    )
    last_at = factory.LazyAttribute(
        lambda o: o.bucket_start + timedelta(milliseconds=o.points[-1][0])
    )
    downsampled = False
