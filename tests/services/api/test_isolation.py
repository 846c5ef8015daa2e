"""One owner never sees or changes another's: owner A's token on each of B's resources, every
method, answers 404 (as for nothing at all) or 403, and the rows are the same before and after.
A revoked token is refused from the next request on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.access import revoke_token
from shared.alerts import Event, publish
from shared.db import Database
from shared.notify import SecretBox, parse_keys, parse_subscription
from shared.notify import add_subscription as subscribe
from shared.runtime import async_client
from shared.steam import Item
from tests.services.api.conftest import SECRET_KEY, Api, make_token, rows
from tests.steamwatch.test_tasks_cli import EXISTING, seed

TABLES = ("tasks", "subscriptions", "price_history", "api_tokens")


async def _bobs_world(db: Database, redis_url: str) -> tuple[int, int]:
    _, bob_task = await seed(db, *EXISTING)  # alice's, then bob's
    spec = parse_subscription(owner="bob", url="json://hooks.example.com/bob", kinds="all")
    async with db.session_scope() as session:
        sub = await subscribe(session, spec, SecretBox(parse_keys(SECRET_KEY)))
    client = async_client(redis_url)
    item = Item(appid=730, market_hash_name="AWP | Asiimov (Field-Tested)", currency=1)
    event = Event.about_task(
        "failed", task_id=bob_task, owner="bob", item=item, occasion="x", at=datetime.now(UTC)
    )
    await publish(client, [event])
    await client.aclose()
    return bob_task, sub.id


def matrix(task: int, sub: int) -> list[tuple[str, str, dict[str, Any], set[int]]]:
    watch = {"appid": 730, "item": "X", "kind": "lowest_price", "interval": 300, "max_price": 1}
    return [
        ("GET", f"/v1/watches/{task}", {}, {404}),
        ("PATCH", f"/v1/watches/{task}", {"json": {"interval": 600}}, {404}),
        ("POST", f"/v1/watches/{task}/pause", {}, {404}),
        ("POST", f"/v1/watches/{task}/resume", {}, {404}),
        ("DELETE", f"/v1/watches/{task}", {}, {404}),
        ("GET", f"/v1/watches/{task}/history", {}, {404}),
        ("GET", "/v1/watches", {"params": {"owner": "bob"}}, {403}),
        ("POST", "/v1/watches", {"json": {**watch, "owner": "bob"}}, {403}),
        ("POST", "/v1/watches/import", {"json": {"watches": [{**watch, "owner": "bob"}]}}, {422}),
        ("GET", f"/v1/subscriptions/{sub}", {}, {404}),
        ("POST", f"/v1/subscriptions/{sub}/pause", {}, {404}),
        ("POST", f"/v1/subscriptions/{sub}/resume", {}, {404}),
        ("DELETE", f"/v1/subscriptions/{sub}", {}, {404}),
        ("GET", "/v1/subscriptions", {"params": {"owner": "bob"}}, {403}),
        (
            "POST",
            "/v1/subscriptions",
            {"json": {"owner": "bob", "url": "json://h.example.com/a"}},
            {403},
        ),
        (
            "POST",
            "/v1/subscriptions",
            {"json": {"url": "json://h.example.com/a", "watch_id": task}},
            {422},
        ),
        ("GET", "/v1/events", {"params": {"owner": "bob"}}, {403}),
    ]


async def test_owner_a_on_each_of_bs_resources_is_refused_and_nothing_changes(
    api: Api, db: Database, redis_url: str
) -> None:
    bob_task, bob_sub = await _bobs_world(db, redis_url)
    alice = await make_token(db, "alice")
    before = {t: await rows(db, t) for t in TABLES}
    answers = []
    for method, path, kwargs, allowed in matrix(bob_task, bob_sub):
        answer = api.call(method, path, alice, **kwargs)
        answers.append((method, path, answer.status_code))
        assert answer.status_code in allowed, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "bob" not in answer.text or answer.status_code == 403  # 404s reveal nothing
    assert {t: await rows(db, t) for t in TABLES} == before
    assert len(answers) == 17
    # Nothing of bob's in alice's own lists either.
    assert api.call("GET", "/v1/watches", alice).json()["items"][0]["owner"] == "alice"
    assert len(api.call("GET", "/v1/watches", alice).json()["items"]) == 1
    assert api.call("GET", "/v1/subscriptions", alice).json()["items"] == []
    assert api.call("GET", "/v1/events", alice).json()["items"] == []
    # The same requests with bob's token reach bob's things: the refusals were about owners.
    bob = await make_token(db, "bob")
    assert api.call("GET", f"/v1/watches/{bob_task}", bob).status_code == 200
    assert api.call("GET", f"/v1/subscriptions/{bob_sub}", bob).status_code == 200
    assert len(api.call("GET", "/v1/events", bob).json()["items"]) == 1
    # Every answer counted by route template, never by the id in the path.
    metrics = api.call("GET", "/metrics").text
    assert 'method="GET",route="/v1/watches/{watch_id}",status="404"' in metrics
    assert 'method="DELETE",route="/v1/subscriptions/{subscription_id}",status="404"' in metrics
    assert f"/v1/watches/{bob_task}" not in metrics


async def test_an_unknown_id_and_anothers_id_answer_alike(
    api: Api, db: Database, redis_url: str
) -> None:
    bob_task, _ = await _bobs_world(db, redis_url)
    alice = await make_token(db, "alice")
    theirs = api.call("GET", f"/v1/watches/{bob_task}", alice)
    nobodys = api.call("GET", "/v1/watches/999999", alice)
    assert theirs.status_code == nobodys.status_code == 404
    assert theirs.json()["detail"].replace(str(bob_task), "N") == nobodys.json()["detail"].replace(
        "999999", "N"
    )


async def test_an_admin_token_sees_every_owner(api: Api, db: Database, redis_url: str) -> None:
    bob_task, bob_sub = await _bobs_world(db, redis_url)
    admin = await make_token(db, "ops", admin=True)
    owners = {w["owner"] for w in api.call("GET", "/v1/watches", admin).json()["items"]}
    assert owners == {"alice", "bob"}
    assert api.call("GET", f"/v1/subscriptions/{bob_sub}", admin).status_code == 200


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("Basic YWxpY2U6cHc=", "malformed"),
        ("Bearer swt_1_" + "A" * 43, "unknown"),
        ("Bearer not-a-token", "malformed"),
    ],
)
async def test_requests_without_a_live_token_are_refused(
    api: Api, db: Database, header: str | None, reason: str
) -> None:
    await seed(db, *EXISTING)
    before = _metric(api, reason)
    headers = {"Authorization": header} if header else {}
    answer = api.call("GET", "/v1/watches", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert _metric(api, reason) == before + 1


async def test_a_revoked_token_is_refused_at_once(api: Api, db: Database) -> None:
    await seed(db, *EXISTING)
    alice = await make_token(db, "alice")
    assert api.call("GET", "/v1/watches", alice).status_code == 200
    token_id = int(alice.split("_")[1])
    async with db.session_scope() as session:
        await revoke_token(session, token_id)
    refused = api.call("GET", "/v1/watches", alice)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the bearer token was revoked"


def _metric(api: Api, reason: str) -> float:
    text = api.call("GET", "/metrics").text
    line = f'steamwatch_api_auth_failures_total{{reason="{reason}"}}'
    for row in text.splitlines():
        if row.startswith(line):
            return float(row.split()[-1])
    raise AssertionError(f"no {line} in /metrics")
