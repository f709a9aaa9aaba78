"""Read the expected answers of ``docs/authz-matrix.md``: one table, one row per endpoint
and object, one column per role (``tests.authz.world.ROLES``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.authz.world import ROLES

MATRIX = Path(__file__).resolve().parents[2] / "docs" / "authz-matrix.md"
CELL = re.compile(r"^(?P<status>[1-5][0-9][0-9])(?P<phone>\+phone)?$")


@dataclass(frozen=True)
class Expected:
    status: int
    phone: bool  # a reporter's phone appears in the answer

    def __str__(self) -> str:
        return f"{self.status}{'+phone' if self.phone else ''}"

    @classmethod
    def parse(cls, text: str) -> Expected:
        match = CELL.match(text.strip())
        if match is None:
            raise ValueError(f"not a matrix cell: {text!r} (e.g. 200, 200+phone, 404)")
        return cls(status=int(match["status"]), phone=bool(match["phone"]))


Row = tuple[str, str]  # ("METHOD /route", object)


def read_matrix(path: Path = MATRIX) -> dict[Row, dict[str, Expected]]:
    """``{(endpoint, object): {role: Expected}}`` from the table of ``path``."""
    rows: dict[Row, dict[str, Expected]] = {}
    header: list[str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if cells[:2] == ["endpoint", "object"]:
            header = cells
            if tuple(cells[2:]) != ROLES:
                raise ValueError(f"{path.name}:{number}: role columns must be {ROLES}")
            continue
        if header is None or set("".join(cells)) <= set("-: "):
            continue
        endpoint, obj, *values = cells
        if len(values) != len(ROLES):
            raise ValueError(f"{path.name}:{number}: {len(values)} cells for {len(ROLES)} roles")
        key = (endpoint, obj)
        if key in rows:
            raise ValueError(f"{path.name}:{number}: {key} twice")
        try:
            rows[key] = {
                role: Expected.parse(value) for role, value in zip(ROLES, values, strict=True)
            }
        except ValueError as exc:
            raise ValueError(f"{path.name}:{number}: {exc}") from None
    return rows


def format_row(row: Row, cells: dict[str, str]) -> str:
    endpoint, obj = row
    return "| " + " | ".join([f"`{endpoint}`", obj, *(cells[role] for role in ROLES)]) + " |"
