"""Logging for every process: structlog in front of the standard library, secrets redacted.

JSON lines when stderr is not a terminal (Kubernetes, CI, files), readable colour-free lines
on a terminal. Library loggers (dramatiq, apscheduler, sqlalchemy) go through the same
formatter, so their lines are JSON and redacted too. Bind ``task_id`` / ``message_id`` with
``structlog.contextvars.bound_contextvars`` and every line inside carries them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

from shared.observability._secrets import redact_text

QUIET_LIBRARIES = ("apscheduler", "pgserver", "alembic", "dramatiq", "asyncio", "aiohttp", "limits")
#: Libraries whose messages may carry a destination's token (Apprise's debug output shows the
#: URLs it posts to): only their errors are let through, whatever the level. The notifier logs
#: each send's outcome itself, with the destination masked.
SECRET_BEARING_LIBRARIES = ("apprise",)


def _redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask ``scheme://user:password@`` in every string value, whatever logged it."""
    for key, value in event_dict.items():
        if isinstance(value, str) and "@" in value:
            event_dict[key] = redact_text(value)
    return event_dict


def configure_logging(
    *,
    level: str = "INFO",
    fmt: Literal["auto", "json", "console"] = "auto",
    service: str | None = None,
    stream: Any = None,
) -> None:
    """Route structlog and the standard library through one redacting formatter."""
    stream = stream or sys.stderr
    json_lines = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        shared_processors.append(_add_service(service))
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries speak at WARNING and above unless DEBUG is asked for: at INFO they fill a
    # terminal with job runs, initdb output and worker boot chatter an operator does not need.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    for name in SECRET_BEARING_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _add_service(service: str) -> Any:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add
