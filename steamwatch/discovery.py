"""Where the running stores are, for commands started beside ``steamwatch dev``.

With embedded stores the Redis port is picked at start, so ``dev`` writes the URLs it handed its
children to ``<home>/stores.json`` and removes the file on the way out; ``steamwatch tail`` and
friends read it when no URL is configured. Embedded stores have no passwords to leak.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "stores.json"


def write_stores(
    home: Path,
    *,
    database_url: str,
    redis_url: str,
    services: dict[str, str] | None = None,
    steam: dict[str, object] | None = None,
) -> Path:
    """Write where the stores are, each service's health and metrics base URL, and the Steam
    stand-in (``steam_base_url``, ``proxies``: the simulator and its local proxies) if any."""
    path = home / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, object] = {"database_url": database_url, "redis_url": redis_url}
    if services:
        data["services"] = services
    if steam:
        data.update(steam)
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path


def read_stores(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_stores(home: Path) -> None:
    (home / FILE).unlink(missing_ok=True)
