"""dramatiq over Redis: keys, broker, messages, worker setup, hand-back, dead letters, stats."""

from shared.bus import deadletters, queues
from shared.bus._broker import (
    CHECK_ACTOR,
    CHECKS_QUEUE,
    HANDED_BACK,
    RESULT_ACTOR,
    RESULTS_QUEUE,
    UNDECODABLE,
    Broker,
    Consumer,
    create_broker,
)
from shared.bus._handback import HandBack
from shared.bus._keys import (
    NAMESPACE,
    acks_key,
    acks_prefix,
    dead_letter_key,
    dead_letter_messages_key,
    delayed_name,
    heartbeats_key,
    messages_key,
    queue_key,
)
from shared.bus._message_metrics import MessageMetrics
from shared.bus._messages import (
    MAX_CHECK_BATCH,
    REQUEUES_OPTION,
    BadMessage,
    CheckMessage,
    Claimed,
    guarded,
    send_check,
)
from shared.bus._worker import (
    WorkerHeartbeat,
    WorkerResources,
    WorkerSpec,
    declare_actor,
    setup_worker,
    worker_spec,
)

__all__ = [
    "BadMessage",
    "Broker",
    "CHECKS_QUEUE",
    "CHECK_ACTOR",
    "CheckMessage",
    "Claimed",
    "MAX_CHECK_BATCH",
    "Consumer",
    "HANDED_BACK",
    "HandBack",
    "MessageMetrics",
    "NAMESPACE",
    "REQUEUES_OPTION",
    "RESULTS_QUEUE",
    "RESULT_ACTOR",
    "UNDECODABLE",
    "WorkerHeartbeat",
    "WorkerResources",
    "WorkerSpec",
    "acks_key",
    "acks_prefix",
    "create_broker",
    "dead_letter_key",
    "dead_letter_messages_key",
    "deadletters",
    "declare_actor",
    "delayed_name",
    "guarded",
    "heartbeats_key",
    "messages_key",
    "queue_key",
    "queues",
    "send_check",
    "setup_worker",
    "worker_spec",
]
