"""The intake taxonomy: the category tree and the districts an agent picks from (a TOML file).

``HOTLINE_TAXONOMY_FILE`` names the file; without one, ``taxonomy.example.toml`` at the repository root
is used. Shape (every key documented in that file)::

    urgent_deadline_hours = 2            # an order marked urgent is due within this, whatever its category

    [[districts]]
    code = "xuhui"
    zh = "徐汇区"
    en = "Xuhui"

    [[categories]]
    code = "ENV"
    zh = "生态环境"
    en = "Environment"
    department = "区生态环境局"          # where its orders are normally dispatched
    deadline_days = 15                   # working days; or deadline_hours for urgent matters

      [[categories.children]]
      code = "ENV-NOISE"
      zh = "噪声扰民"
      en = "Noise"
      deadline_days = 10                 # a child inherits what it does not set

Every category in the tree can be chosen; codes are unique across the tree.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "taxonomy.example.toml"


class TaxonomyError(ValueError):
    """The taxonomy file is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    zh: str
    en: str
    department: str | None
    deadline_days: int | None  # working days
    deadline_hours: float | None  # for urgent matters: hours, not working days
    parent: str | None
    children: tuple[Category, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "department": self.department,
            "deadline_days": self.deadline_days,
            "deadline_hours": self.deadline_hours,
            "parent": self.parent,
            "children": [c.as_dict() for c in self.children],
        }


@dataclass(frozen=True, slots=True)
class District:
    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Taxonomy:
    roots: tuple[Category, ...]
    districts: tuple[District, ...]
    urgent_deadline_hours: float | None = None
    by_code: Mapping[str, Category] = field(default_factory=dict)
    district_codes: frozenset[str] = frozenset()

    def category(self, code: str) -> Category | None:
        return self.by_code.get(code)

    def walk(self) -> Iterator[Category]:
        yield from self.by_code.values()


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TaxonomyError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def _category(entry: Any, parent: Category | None, by_code: dict[str, Category], where: str) -> Category:
    if not isinstance(entry, dict):
        raise TaxonomyError(f"{where}: a category must be a table")
    unknown = set(entry) - {"code", "zh", "en", "department", "deadline_days", "deadline_hours", "children"}
    if unknown:
        raise TaxonomyError(f"{where}: unknown keys {sorted(unknown)}")
    code = _text(entry, "code", where)
    where = f"category {code!r}"
    if code in by_code:
        raise TaxonomyError(f"{where}: code used twice")
    days, hours = entry.get("deadline_days"), entry.get("deadline_hours")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 1):
        raise TaxonomyError(f"{where}: deadline_days must be a whole number ≥ 1")
    if hours is not None and (not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0):
        raise TaxonomyError(f"{where}: deadline_hours must be a positive number")
    if days is not None and hours is not None:
        raise TaxonomyError(f"{where}: give deadline_days or deadline_hours, not both")
    if days is None and hours is None and parent is not None:
        days, hours = parent.deadline_days, parent.deadline_hours
    department = entry.get("department")
    if department is not None and not isinstance(department, str):
        raise TaxonomyError(f"{where}: department must be a string")
    if department is None and parent is not None:
        department = parent.department
    if days is None and hours is None:
        raise TaxonomyError(f"{where}: no deadline (deadline_days or deadline_hours, here or above)")
    node = Category(
        code=code,
        zh=_text(entry, "zh", where),
        en=_text(entry, "en", where),
        department=department,
        deadline_days=days,
        deadline_hours=None if hours is None else float(hours),
        parent=parent.code if parent else None,
    )
    by_code[code] = node
    children = entry.get("children", [])
    if not isinstance(children, list):
        raise TaxonomyError(f"{where}: children must be an array of tables")
    kids = tuple(_category(c, node, by_code, f"{where} child {i + 1}") for i, c in enumerate(children))
    node = Category(**{**{f: getattr(node, f) for f in node.__slots__}, "children": kids})
    by_code[code] = node
    return node


def parse(data: Mapping[str, Any]) -> Taxonomy:
    unknown = set(data) - {"categories", "districts", "urgent_deadline_hours"}
    if unknown:
        raise TaxonomyError(f"unknown top-level keys {sorted(unknown)}")
    by_code: dict[str, Category] = {}
    roots = tuple(
        _category(entry, None, by_code, f"category {i + 1}")
        for i, entry in enumerate(data.get("categories", []))
    )
    if not roots:
        raise TaxonomyError("no categories")
    districts = []
    for i, entry in enumerate(data.get("districts", [])):
        where = f"district {i + 1}"
        districts.append(
            District(_text(entry, "code", where), _text(entry, "zh", where), _text(entry, "en", where))
        )
    codes = [d.code for d in districts]
    if len(set(codes)) != len(codes):
        raise TaxonomyError("a district code is used twice")
    urgent = data.get("urgent_deadline_hours")
    if urgent is not None and (
        not isinstance(urgent, int | float) or isinstance(urgent, bool) or urgent <= 0
    ):
        raise TaxonomyError("urgent_deadline_hours must be a positive number")
    return Taxonomy(
        roots,
        tuple(districts),
        None if urgent is None else float(urgent),
        by_code,
        frozenset(codes),
    )


@cache
def load(path: str | None = None) -> Taxonomy:
    """The taxonomy from ``path`` (default: the example file); raises :class:`TaxonomyError`."""
    file = Path(path) if path else EXAMPLE_FILE
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TaxonomyError(f"{file}: {exc}") from None
    return parse(data)
