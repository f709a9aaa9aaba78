"""``manage.py load_departments [path]``: upsert the departments and link the categories
they lead (default ``fixtures/dispatch/departments.json``). Idempotent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.dispatch.services.teams import departments_load_fixture


class Command(BaseCommand):
    help = (
        "Load the line departments of Xixian (default: fixtures/dispatch/departments.json) "
        "and link each to the categories it leads. Load the categories first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", type=Path, default=None, help="fixture file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = departments_load_fixture(options["path"])
        except (ApplicationError, OSError, ValueError, KeyError) as exc:
            raise CommandError(f"departments not loaded: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                "Departments: {created} created, {updated} updated ({total} in the file); "
                "{links} category links.".format(**counts)
            )
        )
