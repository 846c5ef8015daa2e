"""What operators scrape and alert on: every service's /healthz, /readyz and /metrics, for real.

The four services run as processes against the test's PostgreSQL and Redis and the simulator;
promtool (Debian's `prometheus` package, put in .venv/tools by `make test`) checks the alert
rules and what each service serves, and every metric the dashboard and the rules name must be
served by a running service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from shared.db import Database, PriceSnapshot, Task, migrate
from shared.runtime import HEARTBEAT_PREFIX
from steamwatch.dev import free_ports
from steamwatch.embedded import EmbeddedPostgres, EmbeddedRedis
from testbed.system import SESSION_STATE_ERRORS, System
from tests.fixtures.notify import KEY
from tests.fixtures.pipeline import FAST, catalogue
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s" / "monitoring" / "steamwatch-alerts.yaml"
DASHBOARD = ROOT / "k8s" / "monitoring" / "steamwatch-dashboard.json"
METRIC = re.compile(r"\b((?:steamwatch|dramatiq)_[a-z0-9_]+)\b")
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog", "notifier")


@pytest.fixture(scope="session")
def promtool(tmp_path_factory: pytest.TempPathFactory) -> str:
    """promtool from PATH (`make test` puts .venv/tools there), else fetched for this session."""
    found = shutil.which("promtool") or shutil.which("promtool", path=str(ROOT / ".venv/tools"))
    if found:
        return found
    dest = tmp_path_factory.mktemp("promtool") / "promtool"
    subprocess.run([str(ROOT / "scripts" / "install-promtool"), str(dest)], check=True)
    return str(dest)


def referenced_metrics() -> set[str]:
    """Every steamwatch_/dramatiq_ series named by an alert rule or a dashboard panel."""
    exprs = [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs += [t["expr"] for p in panels for t in p.get("targets", [])]
    return {name for expr in exprs for name in METRIC.findall(expr)}


def served_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
            return r.status, await r.text()


def test_the_alert_rules_pass_promtool(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in done.stdout


def test_each_alert_fires_on_its_case_and_not_on_healthy_series(promtool: str) -> None:
    cases = RULES.with_name("steamwatch-alerts.test.yaml")
    done = subprocess.run(
        [promtool, "test", "rules", cases.name], cwd=cases.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    tested = set(re.findall(r"alertname: (\w+)", cases.read_text()))
    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert tested == rules  # every rule has its case


def test_the_dashboard_covers_what_operators_look_at() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "rate",
        "errors",
        "duration",
        "queue depth",
        "oldest",
        "lag percentiles",
        "429s per proxy",
        "stalled",
        "failed",
        "dead letters",
    ):
        assert topic in titles, topic
    assert {
        "steamwatch_schedule_lag_seconds_bucket",
        "steamwatch_checks_total",
        "dramatiq_message_duration_seconds_bucket",
    } <= referenced_metrics()


async def test_every_service_serves_health_and_metrics_promtool_accepts_covering_dashboard_and_rules(
    db: Database, system: System, redis_url: str, promtool: str
) -> None:
    system.start_simulator("--no-limits", "--latency-ms", "100")
    names = await catalogue(system, 30)
    ids = await add_tasks(
        db,
        [
            {
                "market_hash_name": n,
                "kind": "lowest_price",
                "check_interval": 3600,
                "conditions": {"max_price": 10**9},
            }
            for n in names
        ],
    )
    [unknown] = await add_tasks(
        db,
        [
            {
                "market_hash_name": "No Such Item (Factory New)",
                "kind": "lowest_price",
                "check_interval": 1,
                "conditions": {"max_price": 1},
            }
        ],
    )
    async with db.session_scope() as s:  # a check that was sent and never completed
        await s.execute(
            update(Task)
            .where(Task.id == ids[0])
            .values(
                lease_token=uuid.uuid4(), lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    client = redis.asyncio.Redis.from_url(redis_url)
    # A dead letter for the watchdog, dead since now: dramatiq's own maintenance would purge
    # one older than its dead-message TTL before the watchdog saw it.
    await client.zadd("steamwatch:checks.XQ", {"junk": int(time.time() * 1000)})
    await client.hset("steamwatch:checks.XQ.msgs", "junk", b"\x00 not a message")
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    env = {
        **FAST,
        "STEAMWATCH_WATCHDOG_TICK": "0.5",
        "STEAMWATCH_FETCHER_PROCESSES": "2",
        "STEAMWATCH_FETCHER_THREADS": "4",
        "STEAMWATCH_BACKOFF_FLOOR": "0.1",
        "STEAMWATCH_BACKOFF_CAP": "0.2",
        "STEAMWATCH_METRICS_HOST": "127.0.0.1",
        "STEAMWATCH_SECRET_KEY": KEY,  # the notifier's
    }
    procs = {s: system.start(s, **env, STEAMWATCH_METRICS_PORT=str(ports[s])) for s in SERVICES}

    async def settled() -> bool:
        async with db.session_scope() as s:
            checked = await s.scalar(select(func.count()).select_from(PriceSnapshot))
            failed = await s.scalar(select(Task.status).where(Task.id == unknown))
        logs = system.logs("watchdog")
        return (
            checked == len(ids)
            and failed == "failed"  # an item Steam confirms it does not know fails at once
            and "dead letter dropped" in logs
            and "check re-sent" in logs
        )

    assert await until(settled, within=90), system.logs()[-3000:]
    # Structured logs: every line the check handling wrote names its task and dramatiq message.
    lines = [
        json.loads(line) for line in system.logs("fetcher").splitlines() if line.startswith("{")
    ]
    handled = [x for x in lines if x.get("logger") == "services.fetcher.check"]
    assert handled and all(
        isinstance(x.get("task_id"), int)
        and re.fullmatch(r"[0-9a-f-]{36}", x.get("message_id", ""))
        for x in handled
    ), handled[:3]
    assert system.stop(procs["scheduler"]) == 0  # nothing new is claimed from here on
    base = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}

    async def every_check_counted() -> bool:
        # Two worker processes counted them; the fork serving /metrics sums both exactly.
        _, text = await get(f"{base['fetcher']}/metrics")
        return sample(text, "steamwatch_checks_total", outcome="ok") == len(ids)

    assert await until(every_check_counted, within=30)
    served: dict[str, str] = {}
    for service in SERVICES:
        if service == "scheduler":
            continue  # stopped above; checked on its own below
        status, body = await get(f"{base[service]}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok"), (service, body)
        status, body = await get(f"{base[service]}/readyz")
        assert status == 200 and json.loads(body)["checks"] == {"database": "ok", "redis": "ok"}
        status, served[service] = await get(f"{base[service]}/metrics")
        assert status == 200
    # The scheduler's endpoints, from a fresh one (the first stopped with its pass finished).
    procs["scheduler"] = system.start(
        "scheduler", **env, STEAMWATCH_METRICS_PORT=str(ports["scheduler"])
    )

    async def scheduler_serves() -> bool:
        try:
            status, text = await get(f"{base['scheduler']}/metrics")
        except aiohttp.ClientError:
            return False
        served["scheduler"] = text
        return status == 200 and "steamwatch_scheduler_tick_seconds_count" in text

    assert await until(scheduler_serves, within=30)
    assert (await get(f"{base['scheduler']}/readyz"))[0] == 200
    # The API serves the three on its own port, beside the API; its requests are counted.
    _, api = system.start_api(**env)
    status, body = await get(f"{api}/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")
    status, body = await get(f"{api}/readyz")
    assert status == 200 and json.loads(body)["checks"] == {"database": "ok", "redis": "ok"}
    status, served["api"] = await get(f"{api}/metrics")
    assert status == 200
    assert (
        sample(served["api"], "steamwatch_api_requests_total", route="/readyz", status="200") == 1
    )

    for service, text in served.items():
        done = await asyncio.to_thread(
            subprocess.run,
            [promtool, "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, (service, done.stdout, done.stderr)
    every = set().union(*(served_names(text) for text in served.values()))
    missing = referenced_metrics() - every
    assert missing == set(), f"named by the dashboard or the rules, served by no service: {missing}"
    counts = {s: len(served_names(t)) for s, t in served.items()}
    print(
        f"served series names per service: {counts}; dashboard and rules name "
        f"{len(referenced_metrics())}, all served"
    )
    assert sample(served["fetcher"], "steamwatch_task_transitions_total", to="failed") == 1
    assert (
        sample(served["watchdog"], "steamwatch_watchdog_resent_total", reason="lease_expired") >= 1
    )

    async def watchdog_sees_the_failed_task() -> bool:  # its gauges refresh with every pass
        _, text = await get(f"{base['watchdog']}/metrics")
        return (
            sample(text, "steamwatch_tasks", status="failed") == 1
            and sample(text, "steamwatch_tasks_stalled") == 0
        )

    assert await until(watchdog_sees_the_failed_task, within=10)
    await client.aclose()
    assert not SESSION_STATE_ERRORS.search(system.logs())
    assert system.unexpected_exits() == []


@pytest.mark.parametrize(
    ("service", "store"),
    # An asyncio service probes through its pools; a dramatiq one from its health fork, which
    # reaches PostgreSQL with asyncpg alone (shared/runtime/_health_fork.py).
    [("scheduler", "redis"), ("fetcher", "database")],
)
async def test_readiness_follows_a_store_while_liveness_stays(
    service: str, store: str, database_url: str, redis_url: str, system: System, tmp_path: Path
) -> None:
    own: EmbeddedRedis | EmbeddedPostgres
    if store == "redis":
        own = EmbeddedRedis(data_dir=tmp_path / "redis")
        env = {"STEAMWATCH_REDIS_URL": own.start(), "STEAMWATCH_SCHEDULER_TICK": "0.2"}
    else:
        own = EmbeddedPostgres(data_dir=tmp_path / "pg")
        env = {"STEAMWATCH_DATABASE_URL": own.start()}
        await asyncio.to_thread(migrate.upgrade, url=env["STEAMWATCH_DATABASE_URL"])
    try:
        [port] = free_ports(1)
        proc = system.start(
            service, **env, STEAMWATCH_METRICS_HOST="127.0.0.1", STEAMWATCH_METRICS_PORT=str(port)
        )
        base = f"http://127.0.0.1:{port}"

        async def readiness(expected: int) -> bool:
            try:
                return (await get(f"{base}/readyz"))[0] == expected
            except aiohttp.ClientError:
                return False

        assert await until(lambda: readiness(200), within=30), proc.text()
        own.stop()
        assert await until(lambda: readiness(503), within=15)
        status, body = await get(f"{base}/readyz")
        checks: dict[str, Any] = json.loads(body)["checks"]
        assert checks[store] != "ok" and all(v == "ok" for k, v in checks.items() if k != store)
        assert (await get(f"{base}/healthz"))[0] == 200  # not a reason to restart the process
        own.start()  # same folder, same port
        assert await until(lambda: readiness(200), within=30)
        assert proc.process.poll() is None
    finally:
        own.stop()


async def test_a_taken_metrics_port_stops_the_service_saying_why(
    database_url: str, system: System, redis_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        procs = [system.start(s, STEAMWATCH_METRICS_PORT=port) for s in ("scheduler", "fetcher")]
        for proc in procs:
            proc.stopped_on_purpose = True  # expected to stop by itself
            code = await asyncio.to_thread(proc.process.wait, 60)
            assert "cannot serve health and metrics" in proc.text(), proc.text()[-2000:]
            assert "address already in use" in proc.text()
        assert procs[0].process.returncode == 1  # the scheduler; dramatiq's main exits on SIGTERM
        assert code is not None


async def _worker_pid(client: redis.asyncio.Redis, service: str) -> int | None:
    """The pid of one of ``service``'s worker processes, from its heartbeat (host:pid)."""
    async for key in client.scan_iter(match=f"{HEARTBEAT_PREFIX}{service}:*"):
        return int(key.decode().rsplit(":", 1)[1])
    return None


async def test_a_frozen_fetcher_worker_fails_liveness_and_reports_its_age_then_recovers(
    database_url: str, system: System, redis_url: str
) -> None:
    """Issue 19's first finding: SIGSTOP one worker; the fork must stop answering "alive"."""
    stale = 10
    [port] = free_ports(1)
    proc = system.start(
        "fetcher",
        STEAMWATCH_METRICS_HOST="127.0.0.1",
        STEAMWATCH_METRICS_PORT=str(port),
        STEAMWATCH_WORKER_STALE_AFTER=str(stale),
    )
    base = f"http://127.0.0.1:{port}"
    client = redis.asyncio.Redis.from_url(redis_url)

    async def healthz(expected: int) -> bool:
        try:
            return (await get(f"{base}/healthz"))[0] == expected
        except aiohttp.ClientError:
            return False

    try:
        assert await until(lambda: healthz(200), within=60), proc.text()[-3000:]
        assert await until(lambda: _truthy(_worker_pid(client, "fetcher")), within=30)
        pid = await _worker_pid(client, "fetcher")
        assert pid is not None
        # Healthy for longer than the stale window: an idle worker proves progress each beat.
        healthy_until = asyncio.get_running_loop().time() + stale * 1.5
        while asyncio.get_running_loop().time() < healthy_until:
            assert await healthz(200), await get(f"{base}/healthz")
            await asyncio.sleep(1)
        os.kill(pid, signal.SIGSTOP)
        try:
            frozen_at = asyncio.get_running_loop().time()
            assert await until(lambda: healthz(503), within=stale + 15)
            assert asyncio.get_running_loop().time() - frozen_at <= stale + 15
            status, body = await get(f"{base}/healthz")
            assert f"worker {pid} made no progress for" in json.loads(body)["why"]
            assert (await get(f"{base}/readyz"))[0] == 200  # the stores are fine
            _, metrics = await get(f"{base}/metrics")
            assert sample(metrics, "steamwatch_worker_progress_age_seconds") > stale
        finally:
            os.kill(pid, signal.SIGCONT)
        assert await until(lambda: healthz(200), within=20)
        assert f'"why": "worker {pid} made no progress' in proc.text()  # the fork's log says so
        assert proc.process.poll() is None
    finally:
        await client.aclose()


async def _truthy(value: Any) -> bool:
    return bool(await value)
