"""The ``steamwatch`` command: run the system, one service, migrations, the simulator.

Each command builds the settings once from ``STEAMWATCH_*`` and passes what is needed down;
a bad setting stops it at once with the variable named (exit code 2).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, NoReturn

import click

from shared.config import Settings
from shared.observability import configure_logging
from shared.runtime import SERVICES
from steamwatch.common import fail, redis_url_of, settings_or_exit

SETTINGS_HELP = """
\b
Settings come from the environment (STEAMWATCH_<NAME>):
  DATABASE_URL   postgresql://user:password@host:5432/db; unset: embedded PostgreSQL
  REDIS_URL      redis://host:6379/0; unset: embedded Redis
  HOME           data folder for the embedded stores (default ./.steamwatch)
  STEAM_BASE_URL Steam, or the simulator (default https://steamcommunity.com)
  PROXIES        comma-separated proxy URLs, or "direct" (default)
  SECRET_KEY     Fernet key(s) sealing notification destinations (`steamwatch notify keygen`)
  LOG_LEVEL, LOG_FORMAT, DB_POOL_SIZE, DB_MAX_OVERFLOW, SCHEDULER_TICK, ...
  (README.md has the full table.)
"""


class LazyGroup(click.Group):
    """A group whose commands from other modules are imported only when chosen.

    Click's documented pattern for lazily loaded subcommands: ``steamwatch run fetcher`` or
    ``steamwatch tasks list`` no longer imports the simulator, the status board and every
    other command first (1.8 s of imports for each start, of each service too).
    """

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy  # command name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy[cmd_name]} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    lazy={
        "sim": "simulator.cli:sim",
        "tasks": "steamwatch.tasks:tasks",
        "notify": "steamwatch.notify:notify",
        "tokens": "steamwatch.tokens:tokens",
        "queues": "steamwatch.queues:queues",
        "status": "steamwatch.status:status",
        "probe": "steamwatch.probe:probe_command",
        "history": "steamwatch.history:history_command",
    },
    epilog=SETTINGS_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="steamwatch")
def main() -> None:
    """Watch Steam Community Market items and publish what changes to Redis."""


@main.command()
@click.option(
    "--ready-timeout",
    default=90.0,
    show_default=True,
    help="Seconds to wait for every service to report ready.",
)
@click.option(
    "--stop-timeout",
    default=8.0,
    show_default=True,
    help="Seconds a service gets to exit after SIGTERM before SIGKILL.",
)
@click.option("--no-demo", is_flag=True, help="Do not add demo watches to an empty database.")
def dev(ready_timeout: float, stop_timeout: float, no_demo: bool) -> None:
    """Run everything on this machine: stores (embedded if no URLs), migrations, all services.

    Without STEAMWATCH_STEAM_BASE_URL it also runs the Steam simulator with two local proxies
    and, on an empty database, twenty demo watches. Shows the live event feed and a status
    line; Ctrl-C (or SIGTERM) stops every service, then the embedded stores.
    """
    from steamwatch.dev import run_dev

    settings = settings_or_exit()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service="dev")
    code = run_dev(
        settings, ready_timeout=ready_timeout, stop_timeout=stop_timeout, demo=not no_demo
    )
    raise SystemExit(code)


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def run(service: str) -> None:
    """Run one service in the foreground (what each Kubernetes Deployment runs).

    Needs STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL: a lone service never starts
    embedded stores (`steamwatch dev` does, and hands the URLs to its children).
    """
    settings = settings_or_exit()
    if settings.database_url is None or settings.redis_url is None:
        fail(
            f"run {service}: set STEAMWATCH_DATABASE_URL and STEAMWATCH_REDIS_URL "
            "(or use `steamwatch dev`, which starts embedded stores)"
        )
    if service == "fetcher":
        _exec_dramatiq(service, settings)
    if service == "scheduler":
        from services.scheduler.main import main as service_main
    elif service == "publisher":
        from services.publisher.main import main as service_main
    elif service == "notifier":
        from services.notifier.main import main as service_main
    elif service == "api":
        from services.api.main import main as service_main
    else:
        from services.watchdog.main import main as service_main
    service_main()  # the service's composition root reads the settings (validated above)


def _exec_dramatiq(service: str, settings: Settings) -> NoReturn:
    """Replace this process with the dramatiq CLI, so signals reach dramatiq's main process.

    Its worker processes write metrics to a fresh folder of this process (prometheus_client
    reads the variable when first imported, so it is set before the exec), and a fork serves
    them with /healthz and /readyz on STEAMWATCH_METRICS_PORT.
    """
    from shared.observability import multiprocess_env, prepare_multiprocess_dir

    folder = prepare_multiprocess_dir(service, pid=os.getpid())
    os.environ.update(multiprocess_env(folder))
    processes = getattr(settings, f"{service}_processes")
    threads = getattr(settings, f"{service}_threads")
    # dramatiq's consumer fetches only while fewer messages than its prefetch are unfinished,
    # and otherwise backs off (at most 100 ms: shared.bus.CONSUMER_BACKOFF_MS). With prefetch
    # equal to the threads, a thread that finished waited for that back-off: a default fetcher
    # did 59 checks/s of 80 at 200 ms Steam latency (`make bench SCENARIO=throughput`). A
    # quarter more (at least 8) keeps the threads busy (75 of 80), while a wave of checks still
    # spreads over the processes and replicas instead of waiting in the first one's memory
    # (dramatiq's default prefetch is twice the threads).
    os.environ.setdefault("dramatiq_queue_prefetch", str(threads + max(8, threads // 4)))
    # dramatiq pipes its workers' output through its main process, so a worker never sees a
    # terminal: decide the format here, where the terminal is, for one format on screen.
    if settings.log_format == "auto":
        os.environ["STEAMWATCH_LOG_FORMAT"] = "console" if sys.stderr.isatty() else "json"
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        f"services.{service}.main:setup",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--fork-function",
        f"services.{service}.main:health",
        "--skip-logging",
        # Align with the Kubernetes grace period: finish or hand back in-flight messages.
        "--worker-shutdown-timeout",
        str(int(settings.worker_shutdown_timeout * 1000)),
    ]
    os.execv(sys.executable, argv)


@main.group()
def db() -> None:
    """Database schema: migrations."""


@db.command()
@click.option("--revision", default="head", show_default=True)
def upgrade(revision: str) -> None:
    """Migrate the database to REVISION (the embedded one if no URL is set)."""
    _migrate("upgrade", revision)


@db.command()
@click.option("--revision", default="-1", show_default=True)
def downgrade(revision: str) -> None:
    """Undo migrations down to REVISION ("base" removes every table)."""
    _migrate("downgrade", revision)


@db.command()
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait at most.")
@click.option("--every", default=2.0, show_default=True, help="Seconds between two looks.")
def wait(timeout: float, every: float) -> None:
    """Wait until the database is reachable and migrated to head; exit 1 if not in time.

    What a service's init container runs, so pods start only once the migration Job is done.
    """
    import asyncio
    import time

    from shared.db import migrate

    settings = settings_or_exit()
    if settings.database_url is None:
        fail("db wait: set STEAMWATCH_DATABASE_URL (it waits for a server, never starts one)")
    url, head = settings.database_url.reveal(), set(migrate.heads())
    deadline = time.monotonic() + timeout
    while True:
        try:
            at = asyncio.run(migrate.current(url))
            problem = None if at == head else f"at {sorted(at) or 'no revision'}, not at head"
        except Exception as e:  # not reachable yet: keep waiting, say why
            problem = f"not reachable ({type(e).__name__})"
        if problem is None:
            click.echo(f"database at {', '.join(sorted(head))}", err=True)
            return
        if time.monotonic() >= deadline:
            fail(f"db wait: gave up after {timeout:g}s: the database is {problem}", code=1)
        click.echo(f"waiting: the database is {problem}", err=True)
        time.sleep(every)


def _migrate(direction: str, revision: str) -> None:
    from shared.db import migrate
    from steamwatch.embedded import stores

    settings = settings_or_exit()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service="db")
    url = settings.database_url.reveal() if settings.database_url else None
    with stores(home=settings.home, database_url=url, redis_url="unused") as urls:
        click.echo(f"{direction} to {revision} ...", err=True)
        getattr(migrate, direction)(url=urls.database_url, revision=revision)
    click.echo(f"database at {revision}", err=True)


@main.command()
@click.option("--from-start", is_flag=True, help="Replay the whole stream first.")
@click.option("--task", "task_id", type=int, help="Only this task's events.")
@click.option("--owner", help="Only this owner's events.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object a line (the stream's own form)."
)
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many events.")
def tail(
    from_start: bool, task_id: int | None, owner: str | None, as_json: bool, count: int | None
) -> None:
    """Print events as they are published (Ctrl-C stops)."""
    import asyncio

    from steamwatch.tail import follow

    settings = settings_or_exit()
    url = redis_url_of(settings)
    try:
        asyncio.run(
            follow(
                url,
                emit=lambda line: click.echo(line),
                from_start=from_start,
                task_id=task_id,
                owner=owner,
                as_json=as_json,
                limit=count,
            )
        )
    except KeyboardInterrupt:
        pass


@main.command()
@click.option(
    "--show-secrets",
    is_flag=True,
    help="Print URLs with their passwords (masked otherwise, and left out of the exports).",
)
def env(show_secrets: bool) -> None:
    """Print `export` lines for the stores of a running `make run`, for `eval "$(steamwatch env)"`.

    Then `steamwatch tail`, `redis-cli -u "$STEAMWATCH_REDIS_URL"` and `psql` work from any
    folder. Also lists each service's /metrics, /healthz and /readyz. Exit 1 when no
    `make run` is running under STEAMWATCH_HOME.
    """
    import shlex
    from urllib.parse import urlsplit

    from shared.observability import SecretURL
    from steamwatch.discovery import read_stores

    settings = settings_or_exit()
    home = settings.home.resolve()
    stores = read_stores(home) or {}
    urls = {
        "STEAMWATCH_DATABASE_URL": settings.database_url or stores.get("database_url"),
        "STEAMWATCH_REDIS_URL": settings.redis_url or stores.get("redis_url"),
    }
    if not stores and not all(urls.values()):
        fail(
            f"no running `make run` found in {home} (its stores.json); run this in the folder "
            "`make run` runs in, or set STEAMWATCH_HOME to its .steamwatch folder",
            code=1,
        )
    click.echo(f"export STEAMWATCH_HOME={shlex.quote(str(home))}")
    for name, value in urls.items():
        if value is None:
            continue
        url = value if isinstance(value, SecretURL) else SecretURL(str(value))
        if urlsplit(url.reveal()).password is not None and not show_secrets:
            click.echo(f"# {name}={url.masked}  (has a password: --show-secrets prints it)")
        else:
            click.echo(f"export {name}={shlex.quote(url.reveal())}")
    for service, base in (stores.get("services") or {}).items():
        click.echo(f"# {service}: {base}/metrics {base}/healthz {base}/readyz")


if __name__ == "__main__":
    main()
