"""``steamwatch tasks``: add, list, show, pause, resume, remove and import watches."""

from __future__ import annotations

import click


@click.group()
def tasks() -> None:
    """Manage watches (tasks)."""
