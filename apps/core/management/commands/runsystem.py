"""``manage.py runsystem``: the whole system in one command (what ``make run`` calls).

1. Migrate, collect static files, load the Xixian regions and the demo cast.
2. Print the URLs and the demo logins.
3. Start the ASGI server (HTTP + WebSocket), a Celery worker and Celery beat as child
   processes, prefix their output, and stop all of them when one dies or on Ctrl-C.

Without DATABASE_URL/REDIS_URL this is the embedded default (SQLite, in-memory channel
layer, kombu's filesystem broker); with them, PostgreSQL and Redis. A supervisor of our
own instead of honcho/foreman: three processes, no Procfile to keep in sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, seed the demo data and run web (ASGI), worker and beat together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-seed", action="store_true", help="Skip loading demo data.")
        parser.add_argument(
            "--check-only",
            action="store_true",
            help="Prepare and print, then exit without starting the processes.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        for folder in (
            settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in"),
            settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("processed_folder"),
            settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("control_folder"),
        ):
            if folder:
                Path(str(folder)).mkdir(parents=True, exist_ok=True)

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("load_regions", verbosity=0)  # reference data, idempotent
        call_command("load_categories", verbosity=0)
        call_command("load_departments", verbosity=0)
        call_command("load_sla_policies", verbosity=0)  # defaults; never overwrites edits
        if not options["no_seed"]:
            call_command("seed_demo", force=True)
            call_command("seed_dispatch_demo", force=True)
            call_command("seed_warnings_demo", force=True)

        base = f"http://{options['host']}:{options['port']}"
        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "西咸应急通 is starting:",
                    f"  admin (command centre)   {base}/admin/",
                    f"  API v1                   {base}/api/v1/",
                    f"  API docs (Swagger UI)    {base}/api/docs/",
                    f"  readiness                {base}/readyz",
                    f"  WebSocket ping           ws://{options['host']}:{options['port']}"
                    "/ws/v1/ping/?access_token=<JWT>",
                    f"  database={db} redis={'yes' if settings.REDIS_URL else 'embedded'} "
                    f"broker={settings.CELERY_BROKER_URL.split('://')[0]}",
                    "",
                ]
            )
        )
        if options["check_only"]:
            return
        self._supervise(options["host"], options["port"])

    def _supervise(self, host: str, port: int) -> None:
        python = sys.executable
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]}
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "xixian_ems.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--lifespan",
                "on",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "xixian_ems",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "threads",
                "--concurrency",
                "4",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "xixian_ems",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        for name, argv in commands.items():
            children[name] = subprocess.Popen(  # noqa: S603 - our own fixed argv
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            threading.Thread(target=self._pump, args=(name, children[name]), daemon=True).start()

        stopping = threading.Event()

        def stop(*_: Any) -> None:
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping.is_set():
                dead = [n for n, p in children.items() if p.poll() is not None]
                if dead:
                    self.stderr.write(f"process {', '.join(dead)} exited; stopping the rest")
                    break
                time.sleep(0.5)
        finally:
            for proc in children.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None  # noqa: S101 - set by Popen above
        for raw in iter(proc.stdout.readline, b""):
            self.stdout.write(f"{name:>6} | {raw.decode(errors='replace').rstrip()}")
