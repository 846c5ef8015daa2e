"""The publisher's health process, forked by dramatiq beside its workers (see the CLI).

It imports nothing of the publisher itself: :mod:`shared.worker_health` says why.
"""

from __future__ import annotations

from shared.worker_health import serve_worker_health


def serve() -> int:
    """Serve the publisher's /healthz, /readyz and /metrics until SIGTERM."""
    return serve_worker_health(service="publisher")
