""".env.example lists every environment variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READS = re.compile(
    r"""(?:env(?:\.\w+)?\(\s*|env_secret\(\s*|environ\.get\(\s*|getenv\(\s*)["']([A-Z][A-Z0-9_]+)["']"""
)


def test_every_variable_read_is_documented() -> None:
    # given
    sources = [*ROOT.glob("xixian_ems/**/*.py"), *ROOT.glob("apps/**/*.py")]
    read = {name for path in sources for name in READS.findall(path.read_text("utf-8"))}
    documented = set(
        re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text("utf-8"), re.M)
    )
    # then
    assert read, "the scan found no variables: the pattern is broken"
    assert read - documented == set()
