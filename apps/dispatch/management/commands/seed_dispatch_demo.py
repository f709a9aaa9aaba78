"""``manage.py seed_dispatch_demo``: departments and a few demo teams with responders.

Run after ``seed_demo`` (it uses the cast's team leader and responders of 三桥街道).
Idempotent: teams are upserted by code, members by (team, user); a re-run never
changes who is on duty except for members the fixture starts on duty when they are new.
Development only, like ``seed_demo`` (``--force`` to run with DEBUG off).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts import services as account_services
from apps.accounts.models import Role, User
from apps.dispatch.models import Department, Team, TeamMember
from apps.dispatch.services import teams as services
from apps.regions.models import Region

TEAMS_PATH = Path(settings.BASE_DIR) / "fixtures" / "dispatch" / "demo_teams.json"


class Command(BaseCommand):
    help = "Load departments and the demo teams (development only; idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")
        parser.add_argument("--teams", type=Path, default=TEAMS_PATH, help="Teams file (JSON).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(_("seed_dispatch_demo is for development; pass --force."))
        data = json.loads(Path(options["teams"]).read_text(encoding="utf-8"))
        counts = services.departments_load_fixture()
        with transaction.atomic():
            for entry in data["teams"]:
                team = self._team(entry)
                for person in entry.get("members", []):
                    self._member(team, entry, person)
        self.stdout.write(
            "Departments: {total} ({created} new). ".format(**counts)
            + "Demo teams: "
            + ", ".join(
                f"{t.name} ({t.get_status_display()})"
                for t in Team.objects.filter(code__in=[e["code"] for e in data["teams"]])
            )
        )

    def _team(self, entry: dict[str, Any]) -> Team:
        region = Region.objects.filter(code=entry["home_region"]).first()
        if region is None:
            raise CommandError(f"region {entry['home_region']} missing: run load_regions first")
        team = Team.objects.filter(code=entry["code"]).first() or Team(code=entry["code"])
        team.name = entry["name"]
        team.kind = entry["kind"]
        team.home_region = region
        team.department = Department.objects.filter(code=entry.get("department")).first()
        team.capabilities = list(entry.get("capabilities", []))
        team.equipment = dict(entry.get("equipment", {}))
        return services.team_save(team=team)

    def _member(self, team: Team, entry: dict[str, Any], person: dict[str, Any]) -> TeamMember:
        if person.get("phone"):
            user = account_services.phone_user_upsert(
                phone=person["phone"],
                username=person["username"],
                display_name=person.get("display_name", ""),
            )
            role = Role.TEAM_LEADER if person.get("leader") else Role.RESPONDER
            account_services.membership_grant(user=user, region=team.home_region, role=role)
        else:
            found = User.objects.filter(username=person["username"]).first()
            if found is None:
                raise CommandError(f"user {person['username']} missing: run seed_demo first")
            user = found
        is_new = not TeamMember.objects.filter(team=team, user=user).exists()
        return services.team_member_upsert(
            team=team,
            user=user,
            is_leader=bool(person.get("leader")),
            on_duty=bool(person.get("on_duty")) if is_new else None,
        )
