"""``steamwatch queues``: what waits in each dramatiq queue, and its dead letters."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
def queues() -> None:
    """Ready, delayed, in-progress and dead-lettered messages per queue."""
