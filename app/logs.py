"""Structured logs, stdlib loggers included (their ``extra`` fields too).

JSON lines (one object a line) when stderr is not a terminal: a container, a log shipper, a file.
Readable lines on a terminal, for a person running ``hotline run`` by hand. ``--log-format`` forces
either.

Secrets never reach a log: settings hold them as ``SecretStr`` and the AMI link never logs its login.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["auto", "json", "console"]
FORMATS: tuple[LogFormat, ...] = ("auto", "json", "console")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: not a person watching
        return False


def configure(level: str = "INFO", log_format: LogFormat = "auto", stream: TextIO | None = None) -> None:
    out = sys.stderr if stream is None else stream
    console = log_format == "console" or (log_format == "auto" and _is_terminal(out))
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if console:
        renderer = structlog.dev.ConsoleRenderer(colors=_is_terminal(out))
        tail: list[structlog.types.Processor] = []  # ConsoleRenderer formats exceptions itself
    else:
        renderer = structlog.processors.JSONRenderer()
        tail = [structlog.processors.format_exc_info]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
