"""Path parameters that must not swallow the actions beside them.

``/queues/{name}`` next to ``POST /queues/reload``: without care ``GET /queues/reload`` is routed
to the queue called "reload" (404) instead of being a 405, and the schema lies about the path.
"""

from __future__ import annotations

import re

from starlette.convertors import Convertor, register_url_convertor


class _SegmentExcept(Convertor[str]):
    def __init__(self, reserved: tuple[str, ...]) -> None:
        self.regex = rf"(?!(?:{'|'.join(map(re.escape, reserved))})/?$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def segment_except(name: str, *reserved: str) -> str:
    """Register ``{param:name}``: one path segment, but none of ``reserved``; returns ``name``."""
    register_url_convertor(name, _SegmentExcept(reserved))
    return name
