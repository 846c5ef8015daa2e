"""schemathesis against the live API from its own OpenAPI document: requests generated from the
schema (valid and not), answers checked against it. No server error, no answer that breaks the
document (status, content type, headers, body), no request accepted that the document forbids,
no operation that works without its token.

The one check left out, ``positive_data_acceptance``, expects every schema-valid body to be
accepted; a watch's rules (a price in its currency's format, a float range, a known currency)
are the shared validation's, beyond what a JSON schema says, and answered with a 422 naming
the field, which the tests of the bad-input table hold.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from shared.db import Database
from shared.notify import SecretBox, parse_keys, parse_subscription
from shared.notify import add_subscription as subscribe
from tests.services.api.conftest import SECRET_KEY, Api, make_token
from tests.steamwatch.test_tasks_cli import EXISTING, seed

CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


async def schemathesis(
    api: Api, token: str, folder: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        *extra,
        "run",
        f"{api.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "25",
        "--workers",
        "2",
        "--report-dir",
        str(folder),
        *CHECKS,
    ]
    # In the test's folder: schemathesis keeps its cache in ./.schemathesis.
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=600, cwd=folder.parent
    )


@pytest.mark.parametrize("admin", [False, True], ids=["owner", "admin"])
async def test_the_api_keeps_to_its_own_openapi_document(
    api: Api, db: Database, tmp_path: Path, admin: bool
) -> None:
    task_ids = await seed(db, *EXISTING)
    spec = parse_subscription(owner="alice", url="json://hooks.example.com/a", kinds="all")
    async with db.session_scope() as session:
        sub = await subscribe(session, spec, SecretBox(parse_keys(SECRET_KEY)))
    token = await make_token(db, "ops" if admin else "alice", admin=admin)
    # Once with ids drawn at random (mostly unknown: 404s, and every kind of bad input) ...
    free = await schemathesis(api, token, tmp_path / "free")
    assert free.returncode == 0, free.stdout[-6000:]
    assert "passed" in free.stdout
    # ... and once with the ids of real rows, so the operations on one watch or subscription
    # run through to their end (a DELETE among them removes it: later cases answer 404).
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"path.watch_id" = {task_ids[0]}\n"path.subscription_id" = {sub.id}\n'
    )
    known = await schemathesis(api, token, tmp_path / "known", "--config-file", str(config))
    assert known.returncode == 0, known.stdout[-6000:]
    assert "passed" in known.stdout
    assert "Server error" not in free.stdout + known.stdout
    api_log = api.system.logs("api")
    assert "request failed" not in api_log, api_log[-4000:]
