"""``steamwatch status``: which services are alive, tasks by status, the schedule's lag."""

from __future__ import annotations

import click


@click.command()
def status() -> None:
    """Services alive (heartbeats), tasks by status, current schedule lag."""
