"""``manage.py import_cap FILE...``: import upstream CAP 1.2 messages (a feed poller's tool).

Each file goes through ``services.warning_import_cap`` as the system (no scope check), in
its own transaction: a broken file is reported with every problem and stores nothing, the
others are imported. Idempotent: a message already stored is reported as such. Exits
non-zero when any file was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.early_warnings.cap.parse import MAX_CAP_BYTES
from apps.early_warnings.models import WarningVersion
from apps.early_warnings.services import warning_import_cap


class Command(BaseCommand):
    help = "Import upstream CAP 1.2 messages as received early warnings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="CAP 1.2 XML files")

    def handle(self, *args: Any, files: list[Path], **options: Any) -> None:
        refused = 0
        for path in files:
            try:
                with path.open("rb") as handle:
                    data = handle.read(MAX_CAP_BYTES + 1)
            except OSError as exc:
                refused += 1
                self.stderr.write(f"{path}: {exc.strerror or exc}")
                continue
            known = WarningVersion.objects.count()
            try:
                version = warning_import_cap(data=data, by=None)
            except ApplicationError as exc:
                refused += 1
                self.stderr.write(f"{path}: {exc.code}: {exc.message}")
                for problem in exc.extra.get("problems", []):
                    self.stderr.write(
                        f"  line {problem.get('line')}: {problem.get('path')}: "
                        f"{problem.get('reason')}"
                    )
                continue
            stored = WarningVersion.objects.count() > known
            self.stdout.write(
                f"{path}: {'imported' if stored else 'already stored'} as version "
                f"{version.pk} ({version.identifier}, {version.get_msg_type_display()}, "
                f"chain {version.chain_id})"
            )
        if refused:
            raise CommandError(f"{refused} of {len(files)} file(s) refused")
