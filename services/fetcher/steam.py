"""The fetcher process's Steam access: one HTTP session, one proxy pool, one client.

Built on the worker's event loop in ``before_worker_boot``, after the pools (so the pool's
Redis client exists) and before any worker thread takes a message; closed at worker shutdown
before the pools are (``after_*`` hooks run in reverse order).
"""

from __future__ import annotations

from dramatiq import Broker, Middleware, Worker
from dramatiq.asyncio import get_event_loop_thread

from shared.bus import WorkerResources
from shared.config import Settings
from shared.steam import (
    ProxyPool,
    SteamClient,
    close_quietly,
    create_http_session,
    initialize_metrics,
)


class SteamResources(Middleware):
    """Add after :class:`WorkerResources`; actors use :attr:`client`."""

    def __init__(self, *, settings: Settings, resources: WorkerResources) -> None:
        self.settings = settings
        self.resources = resources
        self._client: SteamClient | None = None
        self.stopping = False  # set when the worker starts shutting down

    @property
    def client(self) -> SteamClient:
        if self._client is None:
            raise RuntimeError("the Steam client is used before before_worker_boot built it")
        return self._client

    async def _open(self) -> SteamClient:
        s = self.settings
        pool = ProxyPool.from_urls(
            self.resources.pools.redis,
            s.proxies,
            budgets=s.budgets,
            cooldowns=s.cooldowns,
            slack=s.budget_slack,
        )
        initialize_metrics(pool)
        return SteamClient(
            # Each thread checks the claims of one message at once, each with at most one
            # request out at a time.
            http=create_http_session(
                timeout=s.http_timeout,
                limit=s.fetcher_threads * s.scheduler_checks_per_message,
            ),
            pool=pool,
            base_url=s.steam_base_url,
            family=s.steam_family,
            language=s.steam_language,
            country=s.steam_country,
            # A 429 moves the request to another proxy for at most one request's time more.
            retry_within=s.http_timeout,
        )

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._client = get_event_loop_thread().run_coroutine(self._open())  # type: ignore[union-attr]

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self.stopping = True

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        client, self._client = self._client, None
        loop_thread = get_event_loop_thread()
        if client is not None and loop_thread is not None:
            loop_thread.run_coroutine(close_quietly(client.http))
