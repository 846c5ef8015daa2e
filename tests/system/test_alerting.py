"""The alert rules in a real Prometheus scraping the running services (issue 19, must show).

Prometheus (Debian's package, put in .venv/tools by `make test` beside promtool) scrapes every
service each second and evaluates `k8s/monitoring/steamwatch-alerts.yaml` with its time scaled
by 1/30 through the rules' own parameters: every `for:` and every range window, and the hung
worker threshold set to the run's STEAMWATCH_WORKER_STALE_AFTER. No rule is skipped or
rewritten otherwise. A frozen fetcher worker and a frozen Steam must each make their alert fire.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio
import yaml

from shared.db import Database
from shared.runtime import HEARTBEAT_PREFIX
from steamwatch.dev import free_ports
from testbed.system import System
from tests.fixtures.pipeline import FAST, catalogue
from tests.fixtures.tasks import add_tasks
from tests.fixtures.waiting import until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s" / "monitoring" / "steamwatch-alerts.yaml"
SERVICES = ("scheduler", "fetcher", "publisher", "watchdog")
SCALE = 30  # every duration of the rules divided by this
STALE = 10  # seconds: STEAMWATCH_WORKER_STALE_AFTER for this run (45 in production)
_DURATION = re.compile(r"^(\d+)([smh])$")
_RANGE = re.compile(r"\[(\d+)([smh])\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


def scaled(text: str) -> str:
    """A duration divided by SCALE, at least 2 s (two scrapes in a window)."""
    match = _DURATION.match(text)
    assert match, text
    return f"{max(2, int(match.group(1)) * _SECONDS[match.group(2)] // SCALE)}s"


def scaled_rules() -> dict[str, Any]:
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = scaled(rule["for"])
            expr = _RANGE.sub(lambda m: f"[{scaled(m.group(1) + m.group(2))}]", rule["expr"])
            # The hung worker's threshold is STEAMWATCH_WORKER_STALE_AFTER, a rule parameter.
            rule["expr"] = expr.replace(
                "steamwatch_worker_progress_age_seconds) > 45",
                f"steamwatch_worker_progress_age_seconds) > {STALE}",
            )
    return rules


@pytest.fixture(scope="session")
def prometheus_bin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Prometheus from PATH or .venv/tools (`make test`), else fetched for this session."""
    found = shutil.which("prometheus") or shutil.which(
        "prometheus", path=str(ROOT / ".venv" / "tools")
    )
    if found:
        return found
    folder = tmp_path_factory.mktemp("prometheus")
    subprocess.run(
        [str(ROOT / "scripts" / "install-promtool"), str(folder / "promtool")], check=True
    )
    return str(folder / "prometheus")


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    async def firing(self) -> list[dict[str, str]]:
        """The labels of every firing alert."""
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}/api/v1/alerts") as r:
                body = await r.json()
        return [a["labels"] for a in body["data"]["alerts"] if a["state"] == "firing"]

    async def fires(self, alertname: str, **labels: str) -> bool:
        return any(
            a["alertname"] == alertname and all(a.get(k) == v for k, v in labels.items())
            for a in await self.firing()
        )

    async def up(self) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{self.url}/api/v1/query", params={"query": "sum(up)"}) as r:
                result = (await r.json())["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0


@pytest.fixture
def prometheus(
    prometheus_bin: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Prometheus, dict[str, int]]]:
    """A Prometheus scraping the four services on the ports it hands out, rules scaled."""
    *ports, web = free_ports(len(SERVICES) + 1)
    targets = dict(zip(SERVICES, ports, strict=True))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(scaled_rules(), sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": [
            {
                "job_name": "steamwatch",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}}
                    for service, port in targets.items()
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yaml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yaml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        yield Prometheus(f"http://127.0.0.1:{web}"), targets
    finally:
        process.terminate()
        process.wait(30)
        log.close()


async def _worker_pid(redis_url: str, service: str) -> int | None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{HEARTBEAT_PREFIX}{service}:*"):
            return int(key.decode().rsplit(":", 1)[1])
        return None
    finally:
        await client.aclose()


async def test_a_frozen_fetcher_worker_and_a_frozen_steam_each_fire_their_alert(
    db: Database,
    system: System,
    redis_url: str,
    prometheus: tuple[Prometheus, dict[str, int]],
) -> None:
    prom, ports = prometheus
    system.start_simulator("--no-limits")
    names = await catalogue(system, 20)
    await add_tasks(
        db,
        [
            {"market_hash_name": n, "kind": "lowest_price", "check_interval": 1}
            | {"conditions": {"max_price": 1}}
            for n in names
        ],
    )
    env = {
        **FAST,
        "STEAMWATCH_HTTP_TIMEOUT": "1",
        "STEAMWATCH_BACKOFF_FLOOR": "0.5",
        "STEAMWATCH_BACKOFF_CAP": "1",
        "STEAMWATCH_WORKER_STALE_AFTER": str(STALE),
        "STEAMWATCH_METRICS_HOST": "127.0.0.1",
    }
    for service in SERVICES:
        system.start(service, **env, STEAMWATCH_METRICS_PORT=str(ports[service]))
    assert await until(lambda: _equals(prom.up(), len(SERVICES)), within=60), system.logs()[-3000:]

    # Healthy for longer than every scaled window: nothing of these fires.
    await asyncio.sleep(10)
    quiet = {a["alertname"] for a in await prom.firing()}
    assert quiet.isdisjoint(
        {
            "SteamwatchWorkerHung",
            "SteamwatchChecksFailing",
            "SteamwatchSteamErrors",
            "SteamwatchNoChecks",
        }
    ), quiet

    # 1. A fetcher worker frozen: SteamwatchWorkerHung within the stale time and two minutes
    #    scaled (4 s), plus scrapes; liveness fails as well.
    pid = await _worker_pid(redis_url, "fetcher")
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        assert await until(
            lambda: prom.fires("SteamwatchWorkerHung", service="fetcher"), within=STALE + 30
        )
        took = time.monotonic() - frozen
    finally:
        os.kill(pid, signal.SIGCONT)
    assert took <= STALE + 30
    assert await until(lambda: _not(prom.fires("SteamwatchWorkerHung")), within=30)

    # 2. Steam frozen (the simulator and its proxies stopped): checks time out, and the failed
    #    share and the timeout class fire within three minutes scaled (6 s), plus timeouts.
    [sim] = [p for p in system.procs if p.name == "sim"]
    os.killpg(sim.process.pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        assert await until(lambda: prom.fires("SteamwatchChecksFailing"), within=40), (
            await prom.firing()
        )
        assert await until(
            lambda: prom.fires("SteamwatchSteamErrors", status_class="timeout"), within=20
        ), await prom.firing()
        took = time.monotonic() - frozen
    finally:
        os.killpg(sim.process.pid, signal.SIGCONT)
    print(f"\nhung worker alert after the freeze; Steam alerts {took:.0f}s after Steam froze")
    assert system.unexpected_exits() == []


async def _equals(value: Any, expected: int) -> bool:
    try:
        return bool(await value == expected)
    except aiohttp.ClientError:
        return False


async def _not(value: Any) -> bool:
    return not await value
