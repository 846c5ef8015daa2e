"""``steamwatch queues``: what waits in each dramatiq queue, and what died there.

The counts are one atomic read of dramatiq's Redis layout per queue (``shared.queues``); the
dead letters are dramatiq's own ``<queue>.XQ`` sets (``shared.deadletters``). The watchdog
deals with dead letters on every pass; ``queues dlq`` is for a person who wants to look, retry
or drop them now (say, while the watchdog is down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import redis
import redis.asyncio
from rich.console import Console
from rich.table import Table

from shared.bus import create_broker, deadletters
from shared.bus.deadletters import DeadLetter
from shared.bus.queues import QUEUES, QueueStats, all_queue_stats
from shared.observability import redact_text
from shared.runtime import async_client
from steamwatch.common import echo_json, fail, redis_url_of, settings_or_exit

T = TypeVar("T")

_queue_option = click.option(
    "--queue",
    type=click.Choice(QUEUES),
    help="Only this queue (default: every queue).",
)


def duration(seconds: float | None) -> str:
    """A span read at a glance: ``3.2s``, ``4m10s``, ``2h05m``, ``3d4h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if round(seconds, 1) < 60:
        return f"{max(seconds, 0.0):.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def _with_redis(url: str, work: Callable[[redis.asyncio.Redis], Awaitable[T]]) -> T:
    """Run ``work`` with one Redis client on a fresh event loop; a Redis failure exits 1."""

    async def main() -> T:
        client = async_client(url)
        try:
            return await work(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except redis.RedisError as e:
        fail(f"cannot read Redis: {redact_text(str(e))}", code=1)


def _chosen(queue: str | None) -> tuple[str, ...]:
    return (queue,) if queue else QUEUES


def _per_queue(counts: dict[str, int]) -> str:
    return ", ".join(f"{queue} {n}" for queue, n in counts.items() if n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- steamwatch queues ---------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the counts as JSON: one object per queue."
)
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Ready, delayed, in-progress and dead-lettered messages per queue.

    \b
    ready         waiting for a worker
    delayed       retries and delayed sends, held until their time comes
    in progress   taken by a worker and not yet acknowledged
    dead          retries ran out (see `steamwatch queues dlq`)
    oldest ready  how long ago the message next in line was sent (or requeued)
    """
    if ctx.invoked_subcommand is not None:
        return
    url = redis_url_of(settings_or_exit())
    stats = _with_redis(url, all_queue_stats)
    if as_json:
        echo_json([s.to_dict() for s in stats])
        return
    Console(highlight=False).print(_stats_table(stats))


def _stats_table(stats: Sequence[QueueStats]) -> Table:
    table = Table(title="dramatiq queues", title_justify="left")
    table.add_column("queue")
    for heading in ("ready", "delayed", "in progress", "dead"):
        table.add_column(heading, justify="right")
    table.add_column("oldest ready", justify="right")
    for s in stats:
        dead = f"[red]{s.dead}[/red]" if s.dead else "0"
        table.add_row(
            s.queue,
            str(s.ready),
            str(s.delayed),
            str(s.in_progress),
            dead,
            duration(s.oldest_ready_age),
        )
    return table


# -- steamwatch queues dlq -----------------------------------------------------------------


@queues.group()
def dlq() -> None:
    """Dead letters: messages whose retries ran out. List, requeue or purge them.

    The watchdog handles dead letters on each pass (re-sends dead checks of live tasks, drops
    the rest); these commands act at once.
    """


async def _all_letters(client: redis.asyncio.Redis, queues: Sequence[str]) -> list[DeadLetter]:
    """Every dead letter of these queues, the longest dead first within each."""
    letters: list[DeadLetter] = []
    for queue in queues:
        depth = await deadletters.depth(client, queue)
        if depth:  # skip an empty queue: limit=0 would make ZRANGE read to the end
            letters += await deadletters.oldest(client, queue, limit=depth)
    return letters


def _last_line(text: str | None) -> str | None:
    """The last non-blank line of a traceback: the error that killed the message."""
    if text is None:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _entry(letter: DeadLetter, now: float) -> dict[str, Any]:
    """One dead letter as scripts (``--json``) and the listing see it."""
    message = letter.message
    options = message.options if message is not None and isinstance(message.options, dict) else {}
    kwargs = message.kwargs if message is not None else {}
    also = kwargs.get("also")  # a check batch's claims beyond the first
    # Tracebacks may quote a proxy or store URL: mask credentials like every log line does.
    traceback = redact_text(tb) if isinstance(tb := options.get("traceback"), str) else None
    return {
        "queue": letter.queue,
        "entry_id": letter.entry_id,
        "dead_at": letter.dead_at,
        "dead_for": round(max(now - letter.dead_at, 0.0), 3),
        "actor": message.actor_name if message is not None else None,
        "message_id": message.message_id if message is not None else None,
        "task_id": kwargs.get("task_id"),
        "more_task_ids": (
            [c.get("task_id") for c in also if isinstance(c, dict)]
            if isinstance(also, list)
            else []
        ),
        "retries": options.get("retries", 0) if message is not None else None,
        "error": _last_line(traceback),
        "traceback": traceback,
        "problem": letter.problem,
    }


@dlq.command("list")
@_queue_option
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most entries shown per queue (the longest dead first).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list, each entry with its traceback."
)
def list_(queue: str | None, limit: int, as_json: bool) -> None:
    """The dead letters, the longest dead first.

    Each shows its queue, its entry id (what `dlq requeue` takes), how long it has been dead,
    its actor, the task id it carries, how often it was retried and the last line of its
    traceback (the error that killed it). Entries that cannot be decoded are listed with why.
    """
    url = redis_url_of(settings_or_exit())

    async def read(client: redis.asyncio.Redis) -> tuple[list[DeadLetter], dict[str, int]]:
        shown: list[DeadLetter] = []
        depths: dict[str, int] = {}
        for q in _chosen(queue):
            depths[q] = await deadletters.depth(client, q)
            shown += await deadletters.oldest(client, q, limit=limit)
        return shown, depths

    letters, depths = _with_redis(url, read)
    now = time.time()
    entries = [_entry(letter, now) for letter in letters]
    if as_json:
        echo_json(entries)
        return
    if not entries:
        click.echo("no dead letters")
        return
    click.echo(f"{_plural(sum(depths.values()), 'dead letter')}, the longest dead first:")
    for line in _letter_lines(entries):
        click.echo(line)
    for q, depth in depths.items():
        shown = sum(1 for e in entries if e["queue"] == q)
        if depth > shown:
            click.echo(f"{q}: showing {shown} of {depth} (--limit shows more)")


def _letter_lines(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Two lines per dead letter: what it was, aligned in columns, then what killed it.

    Not a table: an entry id and a traceback line leave no room for columns in 80 characters.
    """
    rows: list[tuple[list[str], str]] = []
    for e in entries:
        head = [e["queue"], e["entry_id"], f"dead {duration(e['dead_for'])}"]
        if e["problem"] is not None:
            rows.append((head, f"unreadable: {e['problem']}"))
            continue
        task = "-" if e["task_id"] is None else str(e["task_id"])
        if e["more_task_ids"]:
            task += f" +{len(e['more_task_ids'])}"
        head += [str(e["actor"]), f"task {task}", f"retries {e['retries']}"]
        rows.append((head, e["error"] or "(no traceback recorded)"))
    widths = [max((len(h[i]) for h, _ in rows if i < len(h)), default=0) for i in range(6)]
    lines = []
    for head, detail in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(head, widths, strict=False)).rstrip())
        lines.append(f"    {detail}")
    return lines


@dataclass
class _Requeued:
    """What a requeue did, or why it refused to do anything."""

    requeued: dict[str, int] = field(default_factory=dict)
    left_unreadable: int = 0
    refusal: str | None = None


@dlq.command()
@_queue_option
@click.option("--all", "everything", is_flag=True, help="Every dead letter (of --queue if given).")
@click.argument("entry_ids", nargs=-1, metavar="[ENTRY_ID]...")
def requeue(queue: str | None, everything: bool, entry_ids: tuple[str, ...]) -> None:
    """Send dead letters back to their queue with fresh retries.

    Name the entries by ENTRY_ID (as `dlq list` shows them) or pass --all. If any ENTRY_ID is
    not a dead letter (or cannot be decoded), that is an error naming them and nothing is
    requeued (exit code 1). With --all, undecodable entries stay where they are: `dlq purge`
    drops them. A requeued check whose task has moved on is dropped by the fetcher as stale.
    """
    if everything == bool(entry_ids):
        raise click.UsageError("name ENTRY_IDs or pass --all (one of the two)")
    url = redis_url_of(settings_or_exit())

    async def work(client: redis.asyncio.Redis) -> _Requeued:
        letters = await _all_letters(client, _chosen(queue))
        outcome = _Requeued()
        if entry_ids:
            by_id = {letter.entry_id: letter for letter in letters}
            unknown = [i for i in entry_ids if i not in by_id]
            unreadable = [i for i in entry_ids if i in by_id and by_id[i].message is None]
            if unknown or unreadable:
                where = f" in {queue}" if queue else ""
                problems = []
                if unknown:
                    problems.append(f"no dead letter{where} with entry id {', '.join(unknown)}")
                if unreadable:
                    why = ", ".join(f"{i} ({by_id[i].problem})" for i in unreadable)
                    problems.append(f"cannot requeue {why}")
                outcome.refusal = "; ".join(problems) + "; nothing requeued"
                return outcome
            letters = [by_id[i] for i in dict.fromkeys(entry_ids)]
        outcome.left_unreadable = sum(1 for letter in letters if letter.message is None)
        broker = create_broker(redis_url=url)
        try:
            done = await deadletters.requeue(client, broker, letters)
        finally:
            broker.client.connection_pool.disconnect()
        for letter in done:
            outcome.requeued[letter.queue] = outcome.requeued.get(letter.queue, 0) + 1
        return outcome

    outcome = _with_redis(url, work)
    if outcome.refusal is not None:
        fail(outcome.refusal, code=1)
    total = sum(outcome.requeued.values())
    detail = f" ({_per_queue(outcome.requeued)})" if total else ""
    click.echo(f"requeued {_plural(total, 'dead letter')}{detail}")
    if outcome.left_unreadable:
        click.echo(
            f"left {outcome.left_unreadable} undecodable in place "
            "(`steamwatch queues dlq purge` drops them)"
        )


@dlq.command()
@_queue_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def purge(queue: str | None, yes: bool) -> None:
    """Drop dead letters for good (asks first unless --yes)."""
    url = redis_url_of(settings_or_exit())
    chosen = _chosen(queue)

    async def depths(client: redis.asyncio.Redis) -> dict[str, int]:
        return {q: await deadletters.depth(client, q) for q in chosen}

    found = _with_redis(url, depths)
    if not sum(found.values()):
        click.echo("no dead letters")
        return
    if not yes:
        click.confirm(
            f"drop {_plural(sum(found.values()), 'dead letter')} ({_per_queue(found)}) for good?",
            abort=True,
        )

    async def drop(client: redis.asyncio.Redis) -> dict[str, int]:
        return {q: await deadletters.purge(client, q) for q in chosen}

    # The watchdog may have taken some since the question: report what was really dropped.
    dropped = _with_redis(url, drop)
    total = sum(dropped.values())
    detail = f" ({_per_queue(dropped)})" if total else ""
    click.echo(f"purged {_plural(total, 'dead letter')}{detail}")
