"""Every Redis key of dramatiq's Redis broker, in one place (dramatiq's own layout).

For a queue ``q`` in namespace ``ns``: ready message ids in the list ``ns:q``, every stored
message in the hash ``ns:q.msgs``; the delayed queue ``q.DQ`` (retries, ``delay=``) has the
same pair; dead letters are the sorted set ``ns:q.XQ`` with bodies in ``ns:q.XQ.msgs``.
A worker's fetched, unacknowledged ids sit in ``ns:__acks__.<worker>.q``, and every worker is
scored in ``ns:__heartbeats__``. Nothing else in steamwatch spells these out.
"""

from __future__ import annotations

NAMESPACE = "steamwatch"


def queue_key(queue: str, *, namespace: str = NAMESPACE) -> str:
    """The list of ``queue``'s ready message ids."""
    return f"{namespace}:{queue}"


def messages_key(queue: str, *, namespace: str = NAMESPACE) -> str:
    """The hash of every stored message of ``queue``, by id (ready and in progress)."""
    return f"{queue_key(queue, namespace=namespace)}.msgs"


def delayed_name(queue: str) -> str:
    """The name of ``queue``'s delayed queue (dramatiq's ``dq_name``)."""
    return f"{queue}.DQ"


def dead_letter_key(queue: str, *, namespace: str = NAMESPACE) -> str:
    """The sorted set of ``queue``'s dead-lettered message ids, scored by when they died."""
    return f"{queue_key(queue, namespace=namespace)}.XQ"


def dead_letter_messages_key(queue: str, *, namespace: str = NAMESPACE) -> str:
    """The hash of ``queue``'s dead-lettered messages, by id."""
    return f"{dead_letter_key(queue, namespace=namespace)}.msgs"


def acks_prefix(*, namespace: str = NAMESPACE) -> str:
    """What every worker's acknowledgement set's key starts with."""
    return f"{namespace}:__acks__."


def acks_key(worker: str, queue: str, *, namespace: str = NAMESPACE) -> str:
    """The set of ids ``worker`` fetched from ``queue`` and has not acknowledged yet."""
    return f"{acks_prefix(namespace=namespace)}{worker}.{queue}"


def heartbeats_key(*, namespace: str = NAMESPACE) -> str:
    """The sorted set of workers, scored by their last heartbeat (ms)."""
    return f"{namespace}:__heartbeats__"
