"""Logs, metrics, health endpoints and secret masking: what a process shows its operator."""

from shared.observability._health import (
    CHECK_TIMEOUT,
    Alive,
    HealthSpec,
    Probe,
    Ready,
    health_app,
    probe_all,
    start_health_server,
)
from shared.observability._logs import configure_logging
from shared.observability._metrics import (
    MULTIPROC_ENV,
    multiprocess_env,
    prepare_multiprocess_dir,
    process_alive,
    render_metrics,
)
from shared.observability._secrets import MASK, SecretURL, redact_text, redact_url

__all__ = [
    "Alive",
    "CHECK_TIMEOUT",
    "HealthSpec",
    "MASK",
    "MULTIPROC_ENV",
    "Probe",
    "Ready",
    "SecretURL",
    "configure_logging",
    "health_app",
    "multiprocess_env",
    "prepare_multiprocess_dir",
    "probe_all",
    "process_alive",
    "redact_text",
    "redact_url",
    "render_metrics",
    "start_health_server",
]
