"""``manage.py load_categories [path]``: upsert the incident categories from a fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.incidents.taxonomy import categories_load_fixture, default_fixture_path


class Command(BaseCommand):
    help = (
        "Load the incident category taxonomy (default: fixtures/incidents/categories.json). "
        "Idempotent: categories are upserted by code in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            type=Path,
            default=None,
            help="fixture file (default: fixtures/incidents/categories.json)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"] or default_fixture_path()
        try:
            counts = categories_load_fixture(path)
        except ApplicationError as exc:
            detail = json.dumps(exc.extra, ensure_ascii=False, indent=1)
            raise CommandError(f"{exc.message}\n{detail}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                "Categories loaded from {path}: {created} created, {updated} updated, "
                "{unchanged} unchanged ({total} in the file).".format(path=path, **counts)
            )
        )
