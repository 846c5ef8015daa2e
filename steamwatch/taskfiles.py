"""Watch definitions read from a file for `steamwatch tasks import`, each row with its line.

CSV with a header row, or a JSON array of objects. Every row remembers its line, so a bad one is
reported where the operator will look for it; validation itself is :mod:`shared.tasks`'s.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.tasks import FIELD_NAMES, TaskSpec, TaskSpecError, field_key, parse_task

WATCH_FIELDS = "duplicate watch (owner, appid, item, kind)"


@dataclass(frozen=True, slots=True)
class Row:
    """One definition read from a file, and where it was."""

    where: str
    line: int
    fields: Any  # a mapping, unless a JSON file holds something else
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot be imported: where it is and what is wrong (field: reason)."""

    where: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class ImportFileError(ValueError):
    """Raised when a file cannot be read as rows at all."""


def csv_rows(content: str) -> list[Row]:
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("is empty; expected a header row")
        names = [field_key(name) for name in header]
        for name in names:
            if name not in FIELD_NAMES:
                known = ", ".join(sorted(FIELD_NAMES))
                raise ImportFileError(f"line 1: unknown column {name!r} (known: {known})")
            if names.count(name) > 1:
                raise ImportFileError(f"line 1: column {name!r} appears twice")
        rows = []
        end = reader.line_num
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            problem = None
            if len(cells) != len(names):
                problem = f"row: has {len(cells)} cells, the header has {len(names)}"
            fields = dict(zip(names, cells, strict=False))
            rows.append(Row(f"line {start}", start, fields, problem))
    except csv.Error as e:
        raise ImportFileError(f"line {reader.line_num}: {e}") from e
    return rows


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def json_rows(content: str) -> list[Row]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as e:
        raise ImportFileError(f"line {e.lineno} column {e.colno}: {e.msg}") from e
    except ValueError as e:  # e.g. an integer with thousands of digits
        raise ImportFileError(str(e)) from e
    if not isinstance(data, list):
        raise ImportFileError("must be a JSON array of task objects")
    lines = _element_lines(content)
    return [
        Row(f"line {line} (index {index})", line, item)
        for index, (item, line) in enumerate(zip(data, lines, strict=True))
    ]


def _element_lines(content: str) -> list[int]:
    """The line each element of a (valid) JSON array starts on."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    at = _skip_space(content, 0) + 1  # past "["
    line, counted = 1, 0
    while (at := _skip_space(content, at)) < len(content) and content[at] != "]":
        line, counted = line + content.count("\n", counted, at), at
        lines.append(line)
        _, at = decoder.raw_decode(content, at)
        at = _skip_space(content, at)
        if content.startswith(",", at):
            at += 1
    return lines


def _skip_space(content: str, at: int) -> int:
    match = _JSON_SPACE.match(content, at)
    return match.end() if match else at


def validate_rows(
    rows: Sequence[Row], *, min_interval: int
) -> tuple[list[tuple[Row, TaskSpec]], list[BadRow]]:
    """Valid rows with their specs, and bad ones; a watch given twice is bad the second time."""
    good: list[tuple[Row, TaskSpec]] = []
    bad: list[BadRow] = []
    first: dict[tuple[str, int, str, str], Row] = {}
    for row in rows:
        if row.problem is not None:
            bad.append(BadRow(row.where, row.line, row.problem))
            continue
        try:
            spec = parse_task(row.fields, min_interval=min_interval)
        except TaskSpecError as e:
            bad.append(BadRow(row.where, row.line, str(e)))
            continue
        if (earlier := first.get(spec.watch)) is not None:
            bad.append(BadRow(row.where, row.line, f"{WATCH_FIELDS}: same as {earlier.where}"))
            continue
        first[spec.watch] = row
        good.append((row, spec))
    return good, bad
