"""``manage.py seed_warnings_demo``: the responsible-person roster of the demo regions.

Run after ``seed_demo`` (it uses the demo cast). Idempotent, through the services: each
street with a demo duty officer gets them on its roster, 三桥火车站社区 its community duty
officer and grid worker, 三桥街道 its team leader. Development only (``--force`` to run
with DEBUG off), like ``seed_demo``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.early_warnings.approval import approval_rules_seed
from apps.early_warnings.models import PersonRole
from apps.early_warnings.services import responsible_person_add
from apps.regions.models import Region

# (region code, username, role label, order): the demo cast of fixtures/demo/cast.json.
ROSTER = (
    ("fd-sanqiao", "op-sanqiao", PersonRole.DUTY_OFFICER, 1),
    ("fd-sanqiao", "tl-sanqiao", PersonRole.TEAM_LEADER, 2),
    ("fd-jianzhanglu", "op-jianzhanglu", PersonRole.DUTY_OFFICER, 1),
    ("fd-wangsi", "op-wangsi", PersonRole.DUTY_OFFICER, 1),
    ("fd-sanqiao-u01", "op-sanqiao-hcz", PersonRole.DUTY_OFFICER, 1),
    ("fd-sanqiao-u01", "grid-sanqiao-hcz", PersonRole.GRID_WORKER, 2),
)


class Command(BaseCommand):
    help = "Put the demo cast on the warning roster of the demo regions (development only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(_("seed_warnings_demo is for development; pass --force."))
        added = 0
        with transaction.atomic():
            approval_rules_seed()
            for code, username, role, order in ROSTER:
                region = Region.objects.filter(code=code, is_active=True).first()
                user = User.objects.filter(username=username).first()
                if region is None or user is None:
                    self.stderr.write(f"skipped {username} at {code}: run seed_demo first")
                    continue
                responsible_person_add(
                    by=None, region_id=region.pk, user_id=user.pk, role=role, order=order
                )
                added += 1
        self.stdout.write(
            _("Warning roster: %(count)d demo responsible persons.") % {"count": added}
        )
