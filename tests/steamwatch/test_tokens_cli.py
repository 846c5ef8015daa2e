"""`steamwatch tokens` as a real process: a token is printed once and stored only as a hash;
listed without it; revoked by id; bad input refused naming the option, nothing written."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from shared.access import BadToken, authenticate
from shared.db import Database

ROOT = Path(__file__).resolve().parents[2]


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STEAMWATCH_")}
    environ["STEAMWATCH_DATABASE_URL"] = database_url
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "steamwatch", "tokens", *args],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def dump(db: Database) -> str:
    async with db.session_scope() as session:
        rows = await session.execute(text("SELECT * FROM api_tokens ORDER BY id"))
        return repr([dict(r) for r in rows.mappings()])


async def test_a_token_is_shown_once_kept_hashed_listed_without_it_and_revoked(
    db: Database, database_url: str
) -> None:
    made = await cli(database_url, "create", "--owner", "alice", "--note", "grafana")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("swt_1_") and len(token) == len("swt_1_") + 43
    assert "shown only now" in made.stderr
    stored = await dump(db)
    assert token.split("_", 2)[2] not in stored  # only its hash is kept
    async with db.session_scope() as session:
        who = await authenticate(session, token)
    assert (who.owner, who.admin) == ("alice", False)

    admin = await cli(database_url, "create", "--owner", "ops", "--admin", "--json")
    assert json.loads(admin.stdout)["admin"] is True

    listed = await cli(database_url, "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["owner"], r["admin"], r["note"]) for r in rows] == [
        (1, "alice", False, "grafana"),
        (2, "ops", True, None),
    ]
    assert token not in listed.stdout

    revoked = await cli(database_url, "revoke", "1")
    assert revoked.returncode == 0 and "revoked 1 (alice)" in revoked.stdout
    async with db.session_scope() as session:
        with pytest.raises(BadToken, match="revoked"):
            await authenticate(session, token)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create"], "Missing option '--owner'"),
        (["create", "--owner", "   "], "--owner: '   ' is not an owner name"),
        (["create", "--owner", "o" * 65], "is not an owner name (1-64"),
        (["create", "--owner", "a\x07b"], "is not an owner name"),
        (["create", "--owner", "alice", "--note", "n" * 201], "--note: at most 200"),
        (["revoke", "7"], "no such token: 7"),
        (["revoke", "zero"], "'zero' is not a valid integer"),
    ],
)
async def test_bad_input_is_refused_naming_it_and_writes_nothing(
    db: Database, database_url: str, args: list[str], message: str
) -> None:
    before = await dump(db)
    done = await cli(database_url, *args)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert done.stdout == ""
    assert await dump(db) == before
