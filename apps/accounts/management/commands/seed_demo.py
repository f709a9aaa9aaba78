"""``manage.py seed_demo``: the Xixian region tree plus a demo cast to log in with.

Idempotent: run it on every start (``make run`` does); it creates what is missing and
resets the demo passwords and memberships, nothing else. Development only: it refuses
to run with DEBUG off unless ``--force`` (the embedded ``runsystem`` passes it).

The cast lives in ``fixtures/demo/cast.json``. Staff log in with their username and
``DEMO_PASSWORD`` (default ``xixian-demo-2026``); phone users log in by OTP and the code
shows up in the server log through the console SMS backend.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _

from apps.accounts import services
from apps.accounts.models import Role, User
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture

DEFAULT_DEMO_PASSWORD = "xixian-demo-2026"  # noqa: S105 - documented dev-only demo password
CAST_PATH = Path(settings.BASE_DIR) / "fixtures" / "demo" / "cast.json"


class Command(BaseCommand):
    help = "Load the Xixian regions and the demo cast (development only; idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (the demo password is public: never in production).",
        )
        parser.add_argument("--cast", type=Path, default=CAST_PATH, help="Cast file (JSON).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                _(
                    "seed_demo creates accounts with a public password; it runs only with "
                    "DEBUG on. Pass --force if you really mean it."
                )
            )
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        cast = json.loads(Path(options["cast"]).read_text(encoding="utf-8"))
        counts = regions_load_fixture()
        # The grant log lines are an audit trail in production; here they would bury the
        # table that `make run` prints.
        accounts_logger = logging.getLogger("apps.accounts")
        previous_level = accounts_logger.level
        accounts_logger.setLevel(logging.WARNING)
        try:
            with transaction.atomic():
                rows = self._seed(cast, password)
        finally:
            accounts_logger.setLevel(previous_level)
        self.stdout.write(
            _("Regions: %(total)d in the tree (%(created)d new).")
            % {"total": counts.get("total", 0), "created": counts.get("created", 0)}
        )
        self._print_table(rows)

    def _seed(self, cast: dict[str, Any], password: str) -> list[tuple[str, str, str, str]]:
        regions = {r.code: r for r in Region.objects.all()}
        rows: list[tuple[str, str, str, str]] = []
        everywhere = _("all regions")
        for person in cast.get("superusers", []):
            services.staff_user_upsert(
                username=person["username"],
                password=password,
                display_name=person.get("display_name", ""),
                is_superuser=True,
            )
            rows.append((_("Superuser"), person["username"], password, everywhere))
        for person in cast.get("staff", []):
            user = services.staff_user_upsert(
                username=person["username"],
                password=password,
                display_name=person.get("display_name", ""),
            )
            region = self._region(regions, person["region"])
            self._grant_only(user, region, person["role"])
            rows.append((Role(person["role"]).label, user.username, password, _label(region)))
        otp = _("OTP via console SMS")
        for person in cast.get("phone_users", []):
            user = services.phone_user_upsert(
                phone=person["phone"],
                username=person.get("username", ""),
                display_name=person.get("display_name", ""),
            )
            role = person.get("role")
            if role:
                region = self._region(regions, person["region"])
                self._grant_only(user, region, role)
                rows.append((Role(role).label, user.phone or "", otp, _label(region)))
            else:
                rows.append((Role.CITIZEN.label, user.phone or "", otp, "-"))
        return rows

    def _region(self, regions: dict[str, Region], code: str) -> Region:
        try:
            return regions[code]
        except KeyError:
            raise CommandError(
                _("The demo cast needs region %(code)s, which the region fixture lacks.")
                % {"code": code}
            ) from None

    def _grant_only(self, user: User, region: Region, role: str) -> None:
        """Exactly this one membership: a re-run also undoes hand edits to the cast."""
        for membership in user.memberships.filter(is_active=True).select_related("region"):
            if (membership.region_id, membership.role) != (region.pk, role):
                services.membership_revoke(membership=membership)
        services.membership_grant(user=user, region=region, role=role)

    def _print_table(self, rows: list[tuple[str, str, str, str]]) -> None:
        headers = (_("role"), _("login"), _("password"), _("region"))
        table = [tuple(str(c) for c in headers), *[tuple(str(c) for c in r) for r in rows]]
        widths = [max(_width(row[i]) for row in table) for i in range(len(headers))]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row))

        self.stdout.write(_("Demo logins (development only):"))
        self.stdout.write("  " + line(table[0]).rstrip())
        self.stdout.write("  " + "  ".join("-" * w for w in widths))
        for row in table[1:]:
            self.stdout.write("  " + line(row).rstrip())
        self.stdout.write(
            _(
                "Staff: POST /api/v1/auth/token/ or /admin/. Phone users: POST "
                "/api/v1/auth/otp/request/ then /api/v1/auth/otp/verify/ (code in the log)."
            )
        )


def _label(region: Region) -> str:
    return f"{region.name_zh} ({region.code})"


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
