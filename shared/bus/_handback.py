"""Hand unfinished messages back to their queue when a worker stops (SIGTERM, a rollout).

On shutdown dramatiq waits ``--worker-shutdown-timeout`` for running messages, then requeues
only the ones it had prefetched and not started: a message still running when the wait ends
stays in the stopped worker's acknowledgement set until a maintenance pass notices the worker
is gone (a minute at least, at random). This middleware puts those back at once, so another
worker takes them while this one exits within the pod's grace period. Doing a check twice is
harmless: every write is conditional on the task's lease, so whichever finishes second changes
nothing.

Add it last: dramatiq runs ``after_worker_shutdown`` hooks in reverse order, so it runs first,
while the unfinished messages still run, before other middleware closes what they use (a check
cut short that way leaves its lease for the requeued copy). The cut-short message's late ack is
harmless: dramatiq deletes a message on ack only if it is still in the worker's ack set, and
the requeue took it out.
"""

from __future__ import annotations

import signal
import threading
from collections import defaultdict
from typing import Any

import structlog
from dramatiq import Broker, Middleware, Worker

from shared.bus._broker import HANDED_BACK

log = structlog.get_logger(__name__)


class HandBack(Middleware):
    """Tracks the messages being processed; requeues the unfinished ones at worker shutdown."""

    def __init__(self) -> None:
        self._running: dict[str, Any] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Broker, message: Any) -> None:
        with self._lock:
            self._running[message.message_id] = message

    def after_process_message(
        self, broker: Broker, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        with self._lock:
            self._running.pop(message.message_id, None)

    after_skip_message = after_process_message

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        """Let only the first stop signal through to dramatiq's handler in this process.

        dramatiq takes a second SIGTERM or SIGHUP as "kill now": it exits the process without
        stopping the worker, and with the AsyncIO middleware its threads then keep the process
        alive for good (a signal sent to the whole process group, or one that arrives twice,
        is enough). Repeats are logged and ignored; the worker goes on draining, and SIGKILL
        at the end of the grace period remains the hard stop.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread (a worker in a test)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            first = signal.getsignal(signum)
            if callable(first):
                signal.signal(signum, _once(first))

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        with self._lock:
            unfinished, self._running = list(self._running.values()), {}
        if not unfinished or not hasattr(broker, "do_requeue"):
            return
        by_queue: dict[str, list[str]] = defaultdict(list)
        for message in unfinished:
            by_queue[message.queue_name].append(message.options["redis_message_id"])
        for queue, ids in by_queue.items():
            try:
                broker.do_requeue(queue, *ids)
            except Exception:  # Redis gone too: the maintenance pass or the lease covers them
                log.exception("could not hand messages back", queue=queue, count=len(ids))
            else:
                HANDED_BACK.labels(queue=queue, why="shutdown").inc(len(ids))
                log.warning(
                    "unfinished messages handed back to the queue",
                    queue=queue,
                    count=len(ids),
                    redis_message_ids=ids,
                )


def _once(handler: Any) -> Any:
    """``handler`` for the first stop signal of this process; a log line for the others."""
    seen = threading.Event()

    def once(signum: int, frame: Any) -> Any:
        if seen.is_set():
            log.warning("stop signal repeated; still draining", signal=signal.Signals(signum).name)
            return None
        seen.set()
        return handler(signum, frame)

    return once
