"""dramatiq's own message metrics, for the dramatiq services' health server to serve.

Imported only inside a worker's ``setup``: importing dramatiq's Prometheus middleware creates
its folder, and it must see ``PROMETHEUS_MULTIPROC_DIR`` (set before the exec) when it does.
"""

from __future__ import annotations

from typing import Any

from dramatiq import Broker
from dramatiq.common import current_millis
from dramatiq.middleware.prometheus import Prometheus
from prometheus_client import CollectorRegistry, Histogram


class MessageMetrics(Prometheus):
    """dramatiq's own message metrics, served by the service's health server.

    The same counters and gauges as dramatiq's middleware (``dramatiq_messages_total``,
    ``…_errors_total``, ``…_retries_total``, ``…_rejects_total``, ``…_inprogress``), with two
    changes: no exposition fork of its own on port 9191 (the service's health server serves
    them), and durations in seconds, the base unit ``promtool check metrics`` requires.
    """

    @property
    def forks(self) -> list[Any]:
        return []

    def after_process_boot(self, broker: Broker) -> None:
        super().after_process_boot(broker)
        self.message_durations = Histogram(
            "dramatiq_message_duration_seconds",
            "The time spent processing messages.",
            ["queue_name", "actor_name"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=CollectorRegistry(),  # values live in the multiprocess files
        )
        # Every actor's counters exist from the start, at 0: rates and alerts need no first
        # error or dead letter. Actors are declared by the time the process has booted.
        counters = (
            self.total_messages,
            self.total_errored_messages,
            self.total_retried_messages,
            self.total_rejected_messages,
        )
        for name in broker.get_declared_actors():
            labels = (broker.get_actor(name).queue_name, name)
            for counter in counters:
                counter.labels(*labels)

    def after_process_message(
        self,
        broker: Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        labels = (message.queue_name, message.actor_name)
        started = self.message_start_times.pop(message.message_id, current_millis())
        self.message_durations.labels(*labels).observe((current_millis() - started) / 1000)
        self.inprogress_messages.labels(*labels).dec()
        self.total_messages.labels(*labels).inc()
        if exception is not None:
            self.total_errored_messages.labels(*labels).inc()

    after_skip_message = after_process_message
