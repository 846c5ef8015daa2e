"""The Grafana "Prices" dashboard's SQL, run on a real migrated PostgreSQL with seeded history.

Grafana's macros are replaced as its PostgreSQL data source expands them ($__timeFilter: a
BETWEEN on the range; $__timeGroupAlias: the column binned and named "time"), so a column or
table renamed by a migration fails here, not on an operator's screen.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared.db import Database
from tests.fixtures.tasks import add_tasks

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "k8s" / "monitoring" / "steamwatch-prices-dashboard.json"
)


def expand(sql: str, watch: int) -> str:
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+), '1h'\)",
        r"date_bin('1 hour', \1, TIMESTAMPTZ '2000-01-01') AS " + '"time"',
        sql,
    )
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN :range_from AND :range_to", sql)
    return sql.replace("$watch", str(watch))


def queries(dashboard: dict[str, Any]) -> dict[str, str]:
    found = {p["title"]: p["targets"][0]["rawSql"] for p in dashboard["panels"]}
    for note in dashboard["annotations"]["list"]:
        found[f"annotation: {note['name']}"] = note["target"]["rawSql"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable: {variable['name']}"] = variable["query"]
    return found


async def test_every_query_of_the_prices_dashboard_answers_from_the_tables(db: Database) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"] and dashboard["annotations"]["list"]
    [watch] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "AK-47 | Redline (Field-Tested)",
                "kind": "lowest_price",
                "check_interval": 60,
            }
        ],
    )
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    event = {
        "id": f"{watch}:x:price",
        "kind": "price_at_or_below",
        "task_id": watch,
        "data": {"price_text": "10,00€"},
    }
    async with db.session_scope() as s:
        await s.execute(
            text("INSERT INTO price_rollups VALUES (:t, :h, 3, 60, 1000, 990, 1010, 1000, 5)"),
            {"t": watch, "h": hour - timedelta(hours=2)},
        )
        await s.execute(
            text(
                "INSERT INTO price_history (task_id, lease_token, currency, lowest_price) "
                "VALUES (:t, :l, 3, 1000)"
            ),
            {"t": watch, "l": uuid.uuid4()},
        )
        await s.execute(
            text(
                "INSERT INTO subscriptions (owner, scheme, url_cipher, url_masked, url_hash, kinds) "
                "VALUES ('alice', 'json', 'sealed', 'json://x', 'h', ARRAY['price_at_or_below'])"
            )
        )
        await s.execute(
            text(
                "INSERT INTO deliveries (event_id, subscription_id, owner, event, event_at) "
                "SELECT :id, id, 'alice', CAST(:event AS jsonb), :at FROM subscriptions"
            ),
            {"id": event["id"], "event": json.dumps(event), "at": now - timedelta(minutes=5)},
        )
    window = {"range_from": now - timedelta(days=7), "range_to": now + timedelta(minutes=1)}
    answered = {}
    async with db.session_scope() as s:
        for name, sql in queries(dashboard).items():
            rows = (await s.execute(text(expand(sql, watch)), window)).mappings().all()
            answered[name] = rows
    assert all(answered.values()), {k: len(v) for k, v in answered.items()}
    notes = next(rows for name, rows in answered.items() if name.startswith("annotation"))
    assert notes[0]["text"] == "price_at_or_below: 10,00€"
