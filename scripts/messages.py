"""Compile and check translations without GNU gettext.

``compile``: every ``locale/*/LC_MESSAGES/*.po`` → ``.mo`` with polib (pure Python), so a
fresh machine needs no msgfmt; the ``.mo`` files are committed.
``check`` (in ``make lint``): every committed ``.mo`` equals a fresh compile of its
``.po``, and the zh_Hans catalogue has no untranslated or fuzzy entry — operators work
in Chinese, so a missing translation is a defect, not a detail.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"
REQUIRED_COMPLETE = ("zh_Hans",)


def compile_all() -> None:
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        polib.pofile(str(po_path)).save_as_mofile(str(po_path.with_suffix(".mo")))
        print(f"compiled {po_path.relative_to(LOCALE.parent)}")


def check_all() -> int:
    problems: list[str] = []
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        po = polib.pofile(str(po_path))
        mo_path = po_path.with_suffix(".mo")
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "fresh.mo"
            po.save_as_mofile(str(fresh))
            if not mo_path.exists() or mo_path.read_bytes() != fresh.read_bytes():
                problems.append(f"{mo_path}: stale, run 'make compilemessages'")
        language = po_path.parent.parent.name
        if language in REQUIRED_COMPLETE:
            missing = [e.msgid for e in po.untranslated_entries()]
            fuzzy = [e.msgid for e in po.fuzzy_entries()]
            problems += [f"{po_path}: untranslated: {m!r}" for m in missing]
            problems += [f"{po_path}: fuzzy: {m!r}" for m in fuzzy]
    for problem in problems:
        print(problem)
    if not problems:
        print("translations: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "compile":
        compile_all()
        sys.exit(0)
    sys.exit(check_all())
