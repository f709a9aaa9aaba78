"""The JSON renderer of every API answer: never fails on text it cannot encode."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class SafeJSONRenderer(JSONRenderer):
    """DRF's renderer (compact UTF-8), falling back to ASCII escapes when the data holds
    a string UTF-8 cannot encode (a lone surrogate from some input the parsers did not
    see, e.g. a path segment): the answer stays JSON instead of becoming a 500."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return json.dumps(data, cls=JSONEncoder, ensure_ascii=True).encode("ascii")
