"""Headless Chromium for the browser tests, driven by Playwright.

Playwright never downloads a browser here: it drives Debian's ``chromium`` package
(``.ci/run`` installs it with ``fonts-noto-cjk``, so Chinese renders in screenshots).
Missing, the browser tests skip on a bare machine and fail under
``XEMS_REQUIRE_SERVICES=1`` (CI), as a missing nginx does (``servers.nginx_binary``).

The admin needs its static files collected (``CompressedManifestStaticFilesStorage``,
``DEBUG`` off as in production): :func:`collected_static` runs ``collectstatic`` once
per test session into a directory the servers get as ``DJANGO_STATIC_ROOT``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.factories.accounts import DEFAULT_PASSWORD
from tests.support import servers

# Never fetch a browser, whatever runs Playwright (its own "install" command included).
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

ARTIFACTS = servers.ROOT / "var" / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}
# What a user in 西咸 sends: Django maps zh-cn to zh-hans, the admin's language.
LOCALE = "zh-CN"
TIMEZONE = "Asia/Shanghai"


def chromium_executable() -> str:
    """Debian's chromium. Missing: skip on a bare machine, fail under CI."""
    found = shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if os.access(p, os.X_OK)),
        None,
    )
    if found:
        return found
    message = "chromium is not installed (apt-get install chromium fonts-noto-cjk)"
    if getattr(settings, "XEMS_REQUIRE_SERVICES", False):
        pytest.fail(f"XEMS_REQUIRE_SERVICES=1 but {message}", pytrace=False)
    pytest.skip(message)


def launch_args() -> list[str]:
    # Chromium refuses to run as root with its sandbox (containers, CI).
    return ["--no-sandbox"] if os.geteuid() == 0 else []


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``) on the Debian binary."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=launch_args()
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Any) -> Any:
    """A fresh browser profile (its own cookies: one signed-in person), in Chinese."""
    return browser.new_context(viewport=VIEWPORT, locale=LOCALE, timezone_id=TIMEZONE)


def collect_static(target: Path) -> Path:
    """``collectstatic`` into ``target`` with the production settings module."""
    env = {
        **servers.server_env(),
        "DJANGO_STATIC_ROOT": str(target),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=servers.ROOT,
        env=env,
        check=True,
    )
    return target


def admin_login(page: Any, base: str, username: str, password: str = DEFAULT_PASSWORD) -> None:
    """Sign in through the admin's own login form, as a person does."""
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form [type=submit]")
    page.wait_for_url(f"{base}/admin/")


def sign_in_able(user: Any, password: str = DEFAULT_PASSWORD) -> Any:
    """Give ``user`` a password the servers can check: the test settings hash with MD5
    (fast factories), the servers run the production settings, which know only the
    default hashers. PBKDF2 is the first of those."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(password, hasher.salt())
    user.save(update_fields=["password"])
    return user


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save ``<name>.png`` as a test artefact (``var/test-artifacts/screenshots/``) and,
    when ``XEMS_SCREENSHOTS_DIR`` is set (e.g. ``docs/screenshots``, relative to the
    repository), there too: that is how the documentation's pictures are refreshed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    extra = os.environ.get("XEMS_SCREENSHOTS_DIR")
    if extra:
        target = Path(extra)
        if not target.is_absolute():
            target = servers.ROOT / target
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / f"{name}.png")
    return path


# Records every row the board ever adds (kind:id), so a test can say a row never
# appeared rather than only that it is gone now.
ROW_RECORDER = """
() => {
  window.__xcRowsSeen = [];
  const note = (el) => {
    if (!(el instanceof Element)) return;
    const rows = el.matches('[data-kind][data-id]') ? [el] : [];
    rows.push(...el.querySelectorAll('[data-kind][data-id]'));
    for (const r of rows) window.__xcRowsSeen.push(r.dataset.kind + ':' + r.dataset.id);
  };
  const board = document.getElementById('xc-board');
  note(board);
  new MutationObserver((records) => {
    for (const rec of records) rec.addedNodes.forEach(note);
  }).observe(board, {childList: true, subtree: true});
}
"""


def record_rows(page: Any) -> None:
    page.evaluate(ROW_RECORDER)


def rows_seen(page: Any) -> list[str]:
    return list(page.evaluate("() => window.__xcRowsSeen || []"))
