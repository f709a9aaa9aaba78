"""值班台, the live duty board (``/admin/console/dutydesk/board/``, docs/admin.md).

- :func:`board_page`: the server-rendered first paint: the most urgent rows as HTML
  (``FIRST_PAINT`` of them), every row as JSON (``json_script``, not executed), the
  labels and words of the page, and the region streams to follow with their heads.
- :func:`board_rows_page`: ``board/rows/?incident=1&incident=2&report=3`` (JSON): the rows
  ``board.js`` fetches when an event does not carry enough to draw one; without ids, the
  whole board (after a ``resync``). Ids outside the user's scope, closed or unknown are
  listed in ``gone``, never drawn: they look the same, so ids cannot be probed.

Both ask :func:`apps.console.selectors.board_rows` (``visible_to``: the one scope rule).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from apps.console.selectors import board_names, board_rows, board_streams, stream_heads
from apps.dispatch.models import TaskStatus
from apps.incidents.models import IncidentStatus, Loop, ReportStatus, Severity
from apps.sla.models import SlaKind

FIRST_PAINT = 50  # rows drawn as HTML (a screenful and more); board.js draws the rest
PAGE_SIZE = 200  # rows board.js draws at a time ("show more" adds as many)
MAX_IDS = 200  # ids per board/rows/ request (board.js asks in batches of 100)


# The rows travel as lists in this column order (a 2,000-row board is half the bytes and
# half the encoding time of a list of objects); board.js unpacks them (``unpack``).
COLUMNS = (
    "kind",
    "id",
    "number",
    "title",
    "status",
    "severity",
    "loop",
    "category",
    "street",
    "address",
    "reported_at",
    "sos",
    "drill",
    "supervised",
    "breached",
    "paused",
    "deadline",
    "started",
    "clock",
    "tasks",
)
_SCRIPT_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003C"), (b">", b"\\u003E"))


def pack(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"columns": COLUMNS, "rows": [[...], ...]}``; a task is ``[id, team, status]``."""
    packed = []
    for row in rows:
        values = [row[name] for name in COLUMNS]
        values[-1] = [[task["id"], task["team"], task["status"]] for task in row["tasks"]]
        packed.append(values)
    return {"columns": COLUMNS, "rows": packed}


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON by orjson (``json.dumps`` took a fifth of the page's time at
    2,000 rows); lazy translations and other objects as their ``str``, choices as their
    values (keys too)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def json_data(value: Any, element_id: str) -> str:
    """``django.utils.html.json_script`` made for a megabyte: compact JSON, and the three
    characters that matter inside ``<script>`` escaped by ``str.replace`` (the
    ``str.translate`` of json_script was a tenth of the page's time at 2,000 rows)."""
    data = json_bytes(value)
    for char, escaped in _SCRIPT_ESCAPES:
        data = data.replace(char, escaped)
    text = data.decode()
    return format_html(
        '<script id="{}" type="application/json">{}</script>',
        element_id,
        mark_safe(text),  # noqa: S308 (escaped above)
    )


def _url_template(name: str) -> str:
    """An admin change URL with ``{id}`` in place of the pk (one reverse, not one a row)."""
    return reverse(name, args=[0]).replace("/0/", "/{id}/")


def _labels() -> dict[str, dict[str, str]]:
    status = {value: str(label) for value, label in IncidentStatus.choices}
    status[ReportStatus.SUBMITTED] = _("Awaiting triage")
    return {
        "status": status,
        "severity": {value: str(label) for value, label in Severity.choices},
        "loop": {value: str(label) for value, label in Loop.choices},
        "task": {value: str(label) for value, label in TaskStatus.choices},
        "clock": {value: str(label) for value, label in SlaKind.choices},
        "kind": {"incident": _("Incident"), "report": _("Citizen report")},
    }


def _words() -> dict[str, str]:
    """Every word board.js writes itself (the rest is in the template)."""
    return {
        "breached": _("Overdue"),
        "supervised": _("Supervised"),
        "sos": _("SOS"),
        "drill": _("Drill"),
        "paused": _("Clock paused"),
        "no_clock": _("No running clock"),
        "left": _("left"),
        "overdue": _("overdue"),
        "no_tasks": _("No team yet"),
        "new_report": _("New citizen report"),
        "new_sos": _("New SOS"),
        "new_breach": _("Deadline breached"),
        "state_connecting": _("Connecting…"),
        "state_live": _("Live"),
        "state_reconnecting": _("Reconnecting…"),
        "state_logged_out": _("Your session has ended: reload the page to log in again."),
        "shown": _("Showing %(shown)s of %(total)s rows"),
        "sound_on": _("Sound on"),
        "sound_off": _("Sound off"),
        "empty": _("Nothing open in your regions."),
    }


def _present(
    row: dict[str, Any],
    labels: dict[str, dict[str, str]],
    streets: dict[str, str],
    categories: dict[str, str],
    urls: dict[str, str],
) -> dict[str, Any]:
    """A row with the names the template shows (the first paint only)."""
    classes = ["xc-row"]
    classes += [name for name, on in _ROW_CLASSES if row[on]]
    return {
        **row,
        "classes": " ".join(classes),
        "url": urls[row["kind"]].replace("{id}", str(row["id"])),
        "key": f"{row['kind']}:{row['id']}",
        "status_label": labels["status"].get(row["status"], row["status"]),
        "severity_label": labels["severity"].get(row["severity"], ""),
        "loop_label": labels["loop"].get(row["loop"], ""),
        "clock_label": labels["clock"].get(row["clock"], ""),
        "street_label": streets.get(row["street"], row["street"]),
        "category_label": categories.get(row["category"], row["category"]),
        "tasks": [
            {**task, "status_label": labels["task"].get(task["status"], task["status"])}
            for task in row["tasks"]
        ],
    }


_ROW_CLASSES = (("xc-breached", "breached"), ("xc-supervised", "supervised"), ("xc-sos", "sos"))


def board_page(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The board; ``context`` is the admin's (``each_context``, ``opts``)."""
    user = request.user
    names = board_streams(user)
    heads = stream_heads(names)  # before the rows (see stream_heads)
    data = board_rows(user)
    street_names, category_names = board_names(user)
    labels = _labels()
    urls = {
        "incident": _url_template("admin:incidents_incident_change"),
        "report": _url_template("admin:incidents_report_change"),
    }
    first = [
        _present(row, labels, data.streets, data.categories, urls)
        for row in data.rows[:FIRST_PAINT]
    ]
    config = {
        "streams": heads,
        "rowsUrl": reverse("admin:console_dutydesk_rows"),
        "wsPath": "/ws/v1/events/",
        "urls": urls,
        "now": data.now.isoformat(),
        "pageSize": PAGE_SIZE,
        "labels": labels,
        "words": _words(),
        "streets": {**street_names, **data.streets},
        "categories": {**category_names, **data.categories},
    }
    context = {
        **context,
        "title": _("Duty board"),
        "rows": first,
        "total": len(data.rows),
        "incidents": sum(1 for row in data.rows if row["kind"] == "incident"),
        "reports": sum(1 for row in data.rows if row["kind"] == "report"),
        "breached": sum(1 for row in data.rows if row["breached"]),
        "board_config": json_data(config, "xc-board-config"),
        "board_rows": json_data(pack(data.rows), "xc-board-rows"),
    }
    return TemplateResponse(request, "admin/console/board.html", context)


def _error(code: str, message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "extra": extra}, status=status)


def forbidden() -> JsonResponse:
    return _error("permission_denied", _("You may not view the duty board."), 403)


def _ids(request: HttpRequest, name: str) -> list[int] | None:
    values = request.GET.getlist(name)
    ids = []
    for value in values:
        if not value.isdigit() or len(value) > 18:
            return None
        ids.append(int(value))
    return ids


def board_rows_page(request: HttpRequest) -> HttpResponse:
    """``board/rows/`` (module docstring)."""
    incident_ids = _ids(request, "incident")
    report_ids = _ids(request, "report")
    if incident_ids is None or report_ids is None:
        return _error("invalid", _("Ids are whole numbers."), 400)
    if len(incident_ids) + len(report_ids) > MAX_IDS:
        return _error(
            "too_many_ids",
            _("Ask for at most %(max)d rows at once.") % {"max": MAX_IDS},
            400,
            max=MAX_IDS,
        )
    whole = not incident_ids and not report_ids
    data = (
        board_rows(request.user)
        if whole
        else board_rows(request.user, incident_ids=incident_ids, report_ids=report_ids)
    )
    found = {f"{row['kind']}:{row['id']}" for row in data.rows}
    asked = [f"incident:{pk}" for pk in incident_ids] + [f"report:{pk}" for pk in report_ids]
    body = {
        **pack(data.rows),
        "gone": sorted({key for key in asked if key not in found}),
        "complete": whole,
        "streets": data.streets,
        "categories": data.categories,
        "now": data.now.isoformat(),
    }
    return HttpResponse(json_bytes(body), content_type="application/json")
