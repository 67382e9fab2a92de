"""The write journal: storage writes a stopping service could not make, kept on local disk for the next start.

One JSON document per line, appended and fsynced:

- ``{"id": "<hex>", "op": "call_answered", "args": [...]}``: a write not yet made;
- ``{"done": "<hex>"}``: that write was made since (during a replay).

:meth:`WriteJournal.pending` is every write without its ``done``, in order. :meth:`WriteJournal.replace`
rewrites the whole file atomically (a temporary file, fsync, rename, fsync of the directory), so a
crash leaves either the old journal or the new one, never half of it. A replayed write whose ``done``
did not reach the disk before a crash is made again at the next start: the writes themselves are
idempotent (calls only move forward, log entries and transitions are looked up before they are added),
so each takes effect exactly once.

Arguments are JSON with two tagged types: datetimes (``{"$datetime": iso}``) and dataclasses such as
:class:`agents.presence.Transition` (``{"$fields": {...}}``). They are read back by the write's own
type hints, so the journal never names a Python type to import.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import threading
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: str
    op: str
    args: tuple[Any, ...]


def encode(value: Any) -> Any:
    """A write argument as JSON data."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"$fields": {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot journal a {type(value).__name__}")


def decode(data: Any, hint: Any) -> Any:
    """JSON data back into a value of type ``hint`` (the write's parameter annotation)."""
    if data is None:
        return None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [h for h in typing.get_args(hint) if h is not type(None)]
        hint = members[0] if len(members) == 1 else Any
    if isinstance(data, dict) and "$datetime" in data:
        return datetime.fromisoformat(data["$datetime"])
    if isinstance(data, dict) and "$fields" in data and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{k: decode(v, hints.get(k, Any)) for k, v in data["$fields"].items()})  # type: ignore[operator]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    return data


def decode_args(write: Callable[..., Any], args: Iterable[Any]) -> tuple[Any, ...]:
    """The journaled arguments of ``write``, typed by its annotations (none: as JSON gave them)."""
    try:
        hints = typing.get_type_hints(write)
        params = [hints.get(name, Any) for name in inspect.signature(write).parameters]
    except (TypeError, ValueError, NameError):  # a callable without readable annotations
        params = []
    return tuple(decode(a, params[i] if i < len(params) else Any) for i, a in enumerate(args))


class WriteJournal:
    """An append-only file of writes not yet made (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the writer's thread and a stopping service may both write

    def pending(self) -> list[JournalEntry]:
        """The writes the journal holds that were not marked done, oldest first."""
        if not self.path.exists():
            return []
        entries: dict[str, JournalEntry] = {}
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if "done" in record:
                        entries.pop(record["done"], None)
                    else:
                        entry = JournalEntry(record["id"], record["op"], tuple(record["args"]))
                        entries[entry.id] = entry
                except (ValueError, KeyError, TypeError):
                    # A line cut short by a crash while appending: everything before it is intact.
                    log.error("unreadable line %d in the write journal %s skipped", number, self.path)
        return list(entries.values())

    def replace(self, entries: Iterable[JournalEntry]) -> int:
        """Make the journal hold exactly ``entries`` (none: remove it); returns how many it holds."""
        lines = []
        for entry in entries:
            try:
                record = {"id": entry.id, "op": entry.op, "args": encode(list(entry.args))}
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            except TypeError as exc:
                log.error("storage write %s lost: %s", entry.op, exc, extra={"write": entry.op})
        with self._lock:
            if not lines:
                if self.path.exists():
                    self.path.unlink()
                    self._sync_directory()
                return 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            with temporary.open("w", encoding="utf-8") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
            self._sync_directory()
            return len(lines)

    def mark_done(self, entry_id: str) -> None:
        """Record that a journaled write was made (during a replay)."""
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"done": entry_id}) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def _sync_directory(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
