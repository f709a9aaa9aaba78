"""Start the missing triage clocks of submitted reports (a repair tool).

Every report gets its triage clock in the transaction that inserts it; this finds
reports written outside the services (a partial restore, a manual insert). It is safe to
run while operators triage: see ``report_triage_clocks_repair``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.incidents.services.sla import report_triage_clocks_repair


class Command(BaseCommand):
    help = "Start the missing triage clocks of submitted citizen reports."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, default=500, help="at most this many reports")

    def handle(self, *args: Any, limit: int, **options: Any) -> None:
        started = report_triage_clocks_repair(limit=limit)
        self.stdout.write(f"triage clocks started: {started}")
