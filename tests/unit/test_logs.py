"""Console logs: JSON lines when not on a terminal, readable lines on a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app import logs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit() -> None:
    logging.getLogger("hotline.test").warning("agent %s: %s", "1001", "就绪", extra={"queue": "general"})


def test_not_a_terminal_gets_one_json_object_a_line() -> None:
    out = io.StringIO()
    logs.configure("INFO", stream=out)
    _emit()
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["queue"]) == ("agent 1001: 就绪", "warning", "general")
    assert record["logger"] == "hotline.test" and "timestamp" in record


def test_a_terminal_gets_readable_lines() -> None:
    out = _Terminal()
    logs.configure("INFO", stream=out)
    _emit()
    [line] = out.getvalue().splitlines()
    assert "agent 1001: 就绪" in line and "queue" in line and "general" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_the_format_can_be_forced() -> None:
    out = _Terminal()
    logs.configure("INFO", "json", stream=out)
    _emit()
    assert json.loads(out.getvalue())["queue"] == "general"
    plain = io.StringIO()
    logs.configure("INFO", "console", stream=plain)
    _emit()
    assert "agent 1001: 就绪" in plain.getvalue() and not plain.getvalue().startswith("{")
