"""``manage.py load_sla_policies [path] [--reset]``: the default SLA policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.sla.services.seed import default_fixture_path, policies_load_fixture


class Command(BaseCommand):
    help = (
        "Load the default SLA policies and ladders (default: fixtures/sla/policies.json). "
        "Idempotent: missing policies are created, existing ones are left as edited "
        "unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", type=Path, default=None, help="fixture file")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Put the fixture's figures and ladders back on policies with the same code.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"] or default_fixture_path()
        try:
            counts = policies_load_fixture(path, reset=options["reset"])
        except ApplicationError as exc:
            detail = json.dumps(exc.extra, ensure_ascii=False, indent=1)
            raise CommandError(f"{exc.message}\n{detail}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                "SLA policies loaded from {path}: {created} created, {reset} reset, "
                "{unchanged} unchanged ({total} in the file).".format(path=path, **counts)
            )
        )
