"""The OASIS CAP 1.2 XSD shipped in ``schema/`` (see its README), loaded once per process.

Validation takes an ElementTree element that ``parse.py`` or ``build.py`` already parsed
safely; ``xmlschema`` never reads the document itself, and the schema is loaded with every
access beyond local files refused (validation itself reads nothing).
"""

from __future__ import annotations

import functools
from pathlib import Path
from xml.etree.ElementTree import Element

import xmlschema

from apps.early_warnings.cap.errors import Problem
from apps.early_warnings.cap.model import CAP_NAMESPACE

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "CAP-v1.2.xsd"
SCHEMA_SHA256 = "b7798ef25868b068c97b268bda02d067c7d4ba9373adc5638bf37105804ee723"
MAX_PROBLEMS = 50  # a hostile document could produce thousands; the first ones suffice


@functools.cache
def cap_schema() -> xmlschema.XMLSchema10:
    return xmlschema.XMLSchema10(str(SCHEMA_PATH), allow="local", defuse="always")


def short_path(path: str | None) -> str:
    """``/{urn:...cap:1.2}alert/{urn:...}info[2]`` → ``/alert/info[2]``."""
    return (path or "/").replace("{" + CAP_NAMESPACE + "}", "")


def schema_problems(root: Element, lines: dict[int, int] | None = None) -> list[Problem]:
    """Every XSD violation of the document under ``root`` (at most ``MAX_PROBLEMS``).

    ``lines`` maps ``id(element)`` to its line in the source, when the caller kept them.
    """
    problems: list[Problem] = []
    # An already parsed tree; "none": no schemaLocation hint or include is ever followed.
    resource = xmlschema.XMLResource(root, allow="none", defuse="always")
    for error in cap_schema().iter_errors(resource, use_location_hints=False):
        element = getattr(error, "elem", None)
        line = (lines or {}).get(id(element)) if element is not None else None
        reason = error.reason or error.message
        problems.append(Problem(line=line, path=short_path(error.path), reason=str(reason)))
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems
