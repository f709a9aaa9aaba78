"""Request parsers that refuse hostile input before any view or serializer sees it.

Every API body goes through these (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`` and the
views that name their own parsers), so one place enforces what the rest of the code may
assume about parsed input:

- **JSON is an object**, nested at most ``API_JSON_MAX_DEPTH`` levels (a deeply nested
  array made the standard library's parser recurse until ``RecursionError``: a 500 for
  any anonymous caller). No API operation takes a top-level array, a string or ``null``;
  views may call ``request.data.get`` without guessing.
- **No NUL characters and no lone UTF-16 surrogates** in any string, key or value, of
  JSON or form bodies. PostgreSQL refuses NUL in text; a lone surrogate cannot be encoded
  as UTF-8, so a validation error that echoed it could not be rendered (with DEBUG on,
  Django's own error page failed the same way and never returned its database
  connection to the pool: ten such requests took the API down).

Refusals are DRF ``ParseError``s: the envelope's 400 ``parse_error``, naming the rule.
Sizes are bounded by Django (``DATA_UPLOAD_MAX_MEMORY_SIZE``, answered by
:func:`apps.core.exceptions.json_bad_request`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

DEFAULT_MAX_DEPTH = 32


def max_depth() -> int:
    return int(getattr(settings, "API_JSON_MAX_DEPTH", DEFAULT_MAX_DEPTH))


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be taken (``"nul"``, ``"surrogate"``), or ``None``."""
    if "\x00" in text:
        return "nul"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "surrogate"
    return None


def _refuse(problem: str) -> ParseError:
    messages = {
        "nul": _("Text may not contain NUL characters."),
        "surrogate": _("Text may not contain unpaired UTF-16 surrogates."),
        "depth": _("The JSON body is nested too deeply."),
        "object": _("The JSON body must be an object."),
    }
    return ParseError(messages[problem])


def check_json(value: Any) -> None:
    """Walk a parsed JSON value (iteratively: no recursion for the attacker to exhaust)
    and refuse it under the module's rules."""
    if not isinstance(value, dict):
        raise _refuse("object")
    limit = max_depth()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise _refuse("depth")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise _refuse(problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    raise _refuse(problem)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def check_form(data: Any) -> None:
    """Refuse a form (``QueryDict``) whose keys or values break the text rules."""
    for key, values in data.lists():
        for text in (key, *values):
            if isinstance(text, str):
                problem = text_problem(text)
                if problem:
                    raise _refuse(problem)


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _refuse("depth") from None
        check_json(data)
        return data


class SafeFormParser(FormParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        check_form(data)
        return data


class SafeMultiPartParser(MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parsed = super().parse(stream, media_type, parser_context)
        check_form(parsed.data)
        return parsed


DEFAULT_PARSERS = (SafeJSONParser, SafeFormParser, SafeMultiPartParser)
