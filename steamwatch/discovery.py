"""Where the running stores are, for commands started beside ``steamwatch dev``.

With embedded stores the Redis port is picked at start, so ``dev`` writes the URLs it handed its
children to ``<home>/stores.json`` and removes the file on the way out; ``steamwatch tail`` and
friends read it when no URL is configured. Embedded stores have no passwords to leak.
"""

from __future__ import annotations

import json
from pathlib import Path

FILE = "stores.json"


def write_stores(home: Path, *, database_url: str, redis_url: str) -> Path:
    path = home / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"database_url": database_url, "redis_url": redis_url}))
    path.chmod(0o600)
    return path


def read_stores(home: Path) -> dict[str, str] | None:
    try:
        data = json.loads((home / FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_stores(home: Path) -> None:
    (home / FILE).unlink(missing_ok=True)
