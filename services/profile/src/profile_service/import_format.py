"""Bulk import file formats (pure): CSV and JSON Lines rows -> plain profile data or a rejection.

CSV: a header row naming columns from `CSV_COLUMNS`; `email` is required. List-valued cells use
`;` between items. An empty cell means "not given": a new profile gets the default, an existing
one keeps its value. JSON Lines: one object per line whose keys are profile fields (as in the
HTTP API), plus an optional `profile_id`. See services/profile/README.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .domain import IMPORTABLE_FIELDS, ProfileRuleViolation

LIST_SEPARATOR = ";"
_WINDOW = re.compile(r"^([0-6])\s+(\d{2}:\d{2})\s*-\s*(\d{2}:\d{2})$")
_SKILL = re.compile(r"^(.+?)(?::\s*(\S+))?$")


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str
    reason: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "field": self.field, "reason": self.reason}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(frozen=True)
class ImportRow:
    """One data row: its number (1 = first data row) and either its data or why it was refused."""

    row: int
    data: dict[str, Any] | None = None
    rejection: Rejection | None = None
    line: int | None = None

    def reject(self, field: str, reason: str) -> Rejection:
        return Rejection(self.row, field, reason, self.line)


class BadImportFile(ValueError):
    """The file as a whole cannot be read (bad header, wrong encoding)."""


def _items(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(LIST_SEPARATOR) if item.strip()]


def _integer(name: str) -> Callable[[str], int]:
    def parse(cell: str) -> int:
        try:
            return int(cell)
        except ValueError:
            raise ProfileRuleViolation(name, f"{cell[:40]!r} is not a whole number") from None

    return parse


def _skills(cell: str) -> list[dict[str, Any]]:
    skills = []
    for item in _items(cell):
        match = _SKILL.match(item)
        assert match  # the pattern matches any non-empty text
        name, level = match.group(1).strip(), match.group(2)
        skill: dict[str, Any] = {"name": name}
        if level is not None:
            if not level.isdigit():
                raise ProfileRuleViolation("skills", f"proficiency of {name[:40]!r} is not a number 1-5")
            skill["proficiency"] = int(level)
        skills.append(skill)
    return skills


def _availability(cell: str) -> list[dict[str, Any]]:
    windows = []
    for item in _items(cell):
        match = _WINDOW.match(item)
        if not match:
            raise ProfileRuleViolation(
                "availability", f"{item[:40]!r} is not 'WEEKDAY HH:MM-HH:MM' (weekday 0 = Monday)"
            )
        windows.append({"weekday": int(match.group(1)), "start": match.group(2), "end": match.group(3)})
    return windows


def _roles(cell: str) -> list[str]:
    return [r.lower() for r in _items(cell)]


# column -> (profile field, cell parser); mentoring columns fill one nested object.
CSV_COLUMNS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "profile_id": ("profile_id", str),
    "email": ("email", str),
    "display_name": ("display_name", str),
    "roles": ("roles", _roles),
    "job_title": ("job_title", str),
    "department": ("department", str),
    "manager_id": ("manager_id", str),
    "seniority": ("seniority", str.lower),
    "years_experience": ("years_experience", _integer("years_experience")),
    "skills": ("skills", _skills),
    "development_areas": ("development_areas", _items),
    "languages": ("languages", _items),
    "time_zone": ("time_zone", str),
    "availability": ("availability", _availability),
    "mentor_capacity": ("mentor_capacity", _integer("mentor_capacity")),
    "mentoring_topics": ("mentoring_preferences.topics", _items),
    "meeting_format": ("mentoring_preferences.meeting_format", str.lower),
}


def read_csv(text: str) -> tuple[list[str], Iterator[ImportRow]]:
    """Check the header at once (a bad header refuses the whole file), then yield rows lazily."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise BadImportFile("the file is empty; the first line must be a header row") from None
    except csv.Error as exc:
        raise BadImportFile(f"the header row is not valid CSV: {exc}") from None
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise BadImportFile(f"unknown column(s) {unknown}; known columns: {sorted(CSV_COLUMNS)}")
    if "email" not in header:
        raise BadImportFile("the header needs an 'email' column (the import is keyed by email)")
    if len(set(header)) != len(header):
        raise BadImportFile("a column is named twice in the header")
    return header, _csv_rows(reader, header)


def _csv_rows(reader: Any, header: list[str]) -> Iterator[ImportRow]:
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield ImportRow(number, rejection=Rejection(number, "row", f"not valid CSV: {exc}", reader.line_num))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank lines are not rows
        number += 1
        if len(cells) != len(header):
            yield ImportRow(
                number,
                rejection=Rejection(
                    number, "row", f"expected {len(header)} cells, found {len(cells)}", reader.line_num
                ),
            )
            continue
        try:
            yield ImportRow(number, data=_csv_data(header, cells), line=reader.line_num)
        except ProfileRuleViolation as exc:
            yield ImportRow(number, rejection=Rejection(number, exc.field, exc.message, reader.line_num))


def _csv_data(header: list[str], cells: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column, cell in zip(header, cells, strict=True):
        cell = cell.strip()
        if not cell:
            continue
        target, parse = CSV_COLUMNS[column]
        value = parse(cell)
        if "." in target:
            outer, inner = target.split(".", 1)
            data.setdefault(outer, {})[inner] = value
        else:
            data[target] = value
    return data


def read_jsonl(text: str) -> Iterator[ImportRow]:
    """Each non-blank line is one row; its number is its line number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield ImportRow(number, rejection=Rejection(number, "row", f"not valid JSON: {exc.msg}", number))
            continue
        if not isinstance(data, dict):
            yield ImportRow(number, rejection=Rejection(number, "row", "a row must be a JSON object", number))
            continue
        unknown = sorted(set(data) - IMPORTABLE_FIELDS - {"profile_id"})
        if unknown:
            yield ImportRow(number, rejection=Rejection(number, unknown[0], "unknown field", number))
            continue
        if not isinstance(data.get("email"), str):
            yield ImportRow(number, rejection=Rejection(number, "email", "required (a string)", number))
            continue
        yield ImportRow(number, data=data, line=number)
