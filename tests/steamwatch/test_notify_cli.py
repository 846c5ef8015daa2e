"""`steamwatch notify add` refusing bad input: exit 2, the field named, the token never shown,
and nothing written; a good one written sealed and listed masked.

In-process through click's runner, in a thread (each command runs its own event loop), against
the session's real PostgreSQL, every table emptied first (the ``db`` fixture).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from shared.db import Database
from steamwatch.notify import notify
from tests.fixtures.notify import BOX, KEY

TOKEN = "123456789:AAH-very-secret"
TELEGRAM = f"tgram://{TOKEN}/-100123"


def _invoke(database_url: str, args: tuple[str, ...], env: dict[str, str]) -> tuple[int, str, str]:
    environ = {"STEAMWATCH_DATABASE_URL": database_url, "STEAMWATCH_SECRET_KEY": KEY, **env}
    result = CliRunner().invoke(notify, list(args), env=environ, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def run(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(_invoke, database_url, args, env)


BAD = [
    (["bogus://x"], "URL: uses scheme 'bogus', which Apprise does not know"),
    (["json://"], "URL: is not a valid json:// URL"),
    (["hooks.example.com/x"], "URL: is not an Apprise URL"),
    ([""], "URL: is empty"),
    (["syslog://"], "URL: uses syslog://, which notifies the notifier's own machine"),
    (["json://127.0.0.1:6379/x"], "URL: reaches 127.0.0.1, a loopback address"),
    (["json://10.0.0.7/x"], "URL: reaches 10.0.0.7, a private address"),
    (["json://169.254.169.254/latest/meta-data"], "URL: reaches 169.254.169.254, a link-local"),
    (["json://[::1]:5432/x"], "URL: reaches [::1], a loopback address"),
    (["json://localhost/x"], "URL: reaches localhost (127.0.0.1), a loopback address"),
    ([TELEGRAM, "--kinds", ""], "--kinds: is empty"),
    ([TELEGRAM, "--kinds", "price"], "--kinds: 'price' is not an event kind"),
    ([TELEGRAM, "--template", "{item.__class__}"], "--template: uses {item.__class__}"),
    ([TELEGRAM, "--template", "{"], "--template: is not a valid template"),
    ([TELEGRAM, "--task", "0"], "--task: 0 is not a watch id"),
    ([TELEGRAM, "--task", "999"], "--task: no watch 999 of owner 'alice'"),
]


@pytest.mark.parametrize(
    ("args", "says"), BAD, ids=[b[1].split(":")[0] + str(i) for i, b in enumerate(BAD)]
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    db: Database, database_url: str, args: list[str], says: str
) -> None:
    code, out, err = await run(database_url, "add", "--owner", "alice", *args)
    assert code == 2, (out, err)
    assert says in err
    assert TOKEN not in out + err
    code, out, err = await run(database_url, "list", "--json")
    assert (code, json.loads(out or "[]")) == (0, []), err


async def test_a_bad_owner_and_a_bad_key_are_refused(db: Database, database_url: str) -> None:
    code, _, err = await run(database_url, "add", "--owner", "a b", TELEGRAM)
    assert code == 2 and "--owner: 'a b' is not an owner name" in err
    code, _, err = await run(
        database_url, "add", "--owner", "alice", TELEGRAM, STEAMWATCH_SECRET_KEY="x"
    )
    assert code == 2 and "STEAMWATCH_SECRET_KEY: key 1 of 1 is not a Fernet key" in err
    assert "x" not in err.split("STEAMWATCH_SECRET_KEY")[1].split(":")[0]


async def test_a_good_subscription_is_written_sealed_listed_masked_and_refused_twice(
    db: Database, database_url: str
) -> None:
    code, out, err = await run(
        database_url, "add", "--owner", "alice", TELEGRAM, "--kinds", "new_listing"
    )
    assert code == 0, err
    assert out.startswith("subscription ") and "[Telegram], kinds: new_listing" in out
    assert TOKEN not in out
    async with db.session_scope() as session:
        [stored] = (await session.execute(text("SELECT * FROM subscriptions"))).mappings().all()
    assert TOKEN not in repr(dict(stored))
    assert BOX.open(stored["url_cipher"]) == TELEGRAM  # sealed, and opens with the key
    code, _, err = await run(database_url, "add", "--owner", "alice", TELEGRAM)
    assert code == 2 and "URL: 'alice' already sends to tgram://1...t/-100123/" in err
    code, out, _ = await run(database_url, "list", "--json")
    [listed] = json.loads(out)
    assert listed["destination"] == "tgram://1...t/-100123/"
    assert listed["kinds"] == ["new_listing"] and listed["status"] == "active"
    assert TOKEN not in out
    code, out, _ = await run(database_url, "pause", str(listed["id"]))
    assert (code, out.strip()) == (
        0,
        f"subscription {listed['id']} paused (tgram://1...t/-100123/)",
    )
    code, out, _ = await run(database_url, "rm", str(listed["id"]))
    assert code == 0
    code, _, err = await run(database_url, "rm", str(listed["id"]))
    assert (code, err.strip()) == (2, f"steamwatch: no such subscription: {listed['id']}")
