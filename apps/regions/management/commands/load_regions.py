"""``manage.py load_regions [path]``: upsert the region tree from a fixture file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.regions.services import default_fixture_path, regions_load_fixture


class Command(BaseCommand):
    help = (
        "Load the administrative region tree (default: fixtures/regions/xixian.json). "
        "Idempotent: nodes are upserted by code, parents first, in one transaction; a "
        "region an earlier load wrote and the file lacks is marked inactive, never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path",
            nargs="?",
            type=Path,
            default=None,
            help="fixture file (default: fixtures/regions/xixian.json)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"] or default_fixture_path()
        try:
            counts = regions_load_fixture(path)
        except ApplicationError as exc:
            detail = json.dumps(exc.extra, ensure_ascii=False, indent=1)
            raise CommandError(f"{exc.message}\n{detail}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                "Regions loaded from {path}: {created} created, {updated} updated, "
                "{unchanged} unchanged, {retired} retired ({total} in the file).".format(
                    path=path, **counts
                )
            )
        )
