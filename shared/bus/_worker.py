"""A dramatiq worker process: its pools, heartbeat, middleware order and actor options.

Dramatiq workers get their pools from :class:`WorkerResources`, a middleware that builds them on the
worker's own event loop and disposes of them at shutdown (a warm-up with ``asyncio.run()``
would bind them to a loop that is gone by the first message). It builds in
``before_worker_boot``, not ``after_worker_boot``: dramatiq starts the worker threads between
the two, so a message could arrive before an ``after`` hook ran, and ``after_*`` hooks run in
reverse middleware order. ``before_*`` hooks run in order, after ``AsyncIO`` made the loop;
``after_worker_shutdown`` runs in reverse, so whatever was built on the pools closes first.
:func:`setup_worker` fixes the middleware order; :func:`declare_actor` the shared options.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import dramatiq
import structlog
from dramatiq import Broker, Middleware, Worker
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import CurrentMessage

from shared.bus._broker import create_broker
from shared.bus._handback import HandBack
from shared.bus._keys import queue_key
from shared.bus._message_metrics import MessageMetrics
from shared.config import Settings
from shared.runtime import (
    LOOP_TIMEOUT,
    STALE_AFTER,
    Heart,
    HeartbeatThread,
    Pools,
    PoolSpec,
    Progress,
    close_pools,
    sync_client,
)

log = structlog.get_logger(__name__)


class WorkerResources(Middleware):
    """Builds a worker process's pools on its event loop thread and closes them at shutdown.

    Add it after ``AsyncIO``. Actors reach the pools through :attr:`pools`.
    """

    def __init__(self, spec: PoolSpec) -> None:
        self.spec = spec
        self._pools: Pools | None = None

    @property
    def pools(self) -> Pools:
        if self._pools is None:
            raise RuntimeError("worker pools are used before before_worker_boot built them")
        return self._pools

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._pools = get_event_loop_thread().run_coroutine(self.spec.open())  # type: ignore[union-attr]
        log.info("worker pools ready", pool_limit=self._pools.db.pool_limit)

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        # Everything made so far (modules, pools, actors) lives as long as the process: out of
        # the collector's sight, a full collection walks only what checks make.
        gc.freeze()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._pools is None:
            return
        pools, self._pools = self._pools, None
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(close_pools(pools))


class WorkerHeartbeat(Middleware):
    """Marks a dramatiq worker process ready once it has booted, and gone when it stops.

    With ``progress_dir`` (the folder its health fork reads), it also proves on every beat
    that the process makes progress (:class:`shared.runtime.Progress`): its event loop
    answers, and it takes messages while messages wait in ``queues``.
    """

    def __init__(
        self,
        *,
        service: str,
        redis_url: str,
        queues: tuple[str, ...] = (),
        progress_dir: str | None = None,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.service = service
        self.redis_url = redis_url
        self.queues = queues
        self.progress_dir = progress_dir
        self.stale_after = stale_after
        self._thread: HeartbeatThread | None = None
        self._progress: Progress | None = None

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        heart = Heart(service=self.service)
        heart.state = "ready"
        client = sync_client(self.redis_url)
        if self.progress_dir is not None:
            keys = [queue_key(q) for q in self.queues]

            def waiting() -> bool:
                return any(int(client.llen(key)) > 0 for key in keys)

            self._progress = Progress(
                folder=self.progress_dir,
                waiting=waiting,
                loop_answers=_loop_answers,
                stale_after=self.stale_after,
            )
            self._progress.beat()  # booted: progress from the first probe on
        also = self._progress.beat if self._progress is not None else None
        self._thread = HeartbeatThread(heart, client, also=also)
        self._thread.start()
        log.info("worker ready", worker_threads=worker.worker_threads)

    def before_process_message(self, broker: Broker, message: Any) -> None:
        if self._progress is not None:
            self._progress.took_message()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        log.info("worker stopping")
        if self._thread is not None:
            self._thread.heart.state = "stopping"

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        if self._progress is not None:
            self._progress.remove()
            self._progress = None
        log.info("worker stopped")


def _loop_answers() -> bool:
    """Whether this worker's event loop (dramatiq's ``AsyncIO`` thread) runs a no-op in time."""
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        return True  # no loop to block
    future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop_thread.loop)
    try:
        future.result(timeout=LOOP_TIMEOUT)
    except TimeoutError:
        future.cancel()
        return False
    return True


@dataclass(frozen=True)
class WorkerSpec:
    """What a dramatiq worker process of ``service`` is built from (its composition root says)."""

    service: str
    redis_url: str
    queues: tuple[str, ...]
    progress_dir: str | None = None  # the health fork's folder (see WorkerHeartbeat)
    stale_after: float = STALE_AFTER  # seconds without progress that count as hung


def worker_spec(
    settings: Settings,
    *,
    service: str,
    redis_url: str,
    queues: tuple[str, ...],
    progress_dir: str | None,
) -> WorkerSpec:
    """The worker spec of ``service`` from a :class:`shared.config.Settings` (as ``pool_spec``)."""
    return WorkerSpec(
        service=service,
        redis_url=redis_url,
        queues=queues,
        progress_dir=progress_dir,
        stale_after=settings.worker_stale_after,
    )


def setup_worker(
    spec: WorkerSpec, *, resources: WorkerResources, middleware: Iterable[Middleware] = ()
) -> Broker:
    """The broker of a dramatiq worker process, set as dramatiq's global broker.

    The order is the contract: ``AsyncIO``, the current message (its id on every log line),
    message metrics, the pools (``resources``, built first on the worker's loop), the
    heartbeat, the service's own ``middleware``, and :class:`HandBack` last of all, so that
    it hands messages back while the others still run.
    """
    broker = create_broker(
        redis_url=spec.redis_url,
        middleware=[
            CurrentMessage(),
            MessageMetrics(),
            resources,
            WorkerHeartbeat(
                service=spec.service,
                redis_url=spec.redis_url,
                queues=spec.queues,
                progress_dir=spec.progress_dir,
                stale_after=spec.stale_after,
            ),
            *middleware,
            HandBack(),
        ],
    )
    for queue in spec.queues:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    return broker


def declare_actor(
    broker: Broker, fn: Callable[..., None], *, name: str, queue: str, time_limit_ms: int
) -> None:
    """Register a steamwatch actor with the options every one shares.

    Retries are for outages (a store down): every message is safe to handle twice.
    """
    dramatiq.actor(
        actor_name=name,
        queue_name=queue,
        broker=broker,
        max_retries=5,
        min_backoff=1_000,
        max_backoff=30_000,
        time_limit=time_limit_ms,
    )(fn)
