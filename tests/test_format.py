"""`ruff format` is the format and `ruff check` the lint: an unformatted or unclean file fails here.

The same checks as `make lint`, so `make test` (and CI) refuse a file that was never formatted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["shared", "services", "steamwatch", "simulator", "tests", "bench", "testbed"]


@pytest.mark.parametrize(
    "command", [["format", "--check"], ["check"]], ids=["ruff-format", "ruff-check"]
)
def test_the_tree_is_formatted_and_clean(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *LINTED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_formatter_escapes_remain() -> None:
    """No line opts out of the format with a skip comment: the formatter's layout is the layout."""
    marker = "fmt: " + "skip"  # spelt in two so this file does not match itself
    escaped = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in LINTED
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if marker in line
    ]
    assert escaped == []
