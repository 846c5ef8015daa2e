"""Watch definitions read from a file for `steamwatch tasks import`, each row with its line.

CSV with a header row, or a JSON array of objects. Every row remembers its line, so a bad one is
reported where the operator will look for it; validation itself is :mod:`shared.tasks`'s.
"""

from __future__ import annotations

import csv
import io
import json
import re

from shared.tasks import FIELD_NAMES, Row, field_key


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
