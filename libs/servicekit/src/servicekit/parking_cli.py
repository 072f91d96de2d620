"""`servicekit-parking`: list and replay parked messages."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from servicekit.parking import list_parked, replay
from servicekit.settings import ServiceSettings

app = typer.Typer(help="Inspect and replay messages in parking queues.", no_args_is_help=True)
console = Console()
QueueArg = Annotated[str, typer.Argument(help="parking queue, e.g. payments.orders.order_created.v1.parking")]


@app.command("list")
def list_command(queue: QueueArg, limit: int = 50) -> None:
    """Show parked messages with the reason they were parked (nothing is removed)."""
    messages = asyncio.run(list_parked(ServiceSettings().amqp_url, queue, limit))
    table = Table("message id", "reason", "original queue", "body (start)")
    for m in messages:
        table.add_row(m.message_id or "-", m.reason, m.original_queue, m.body[:80].decode(errors="replace"))
    console.print(table)
    console.print(f"{len(messages)} parked message(s) shown")


@app.command("replay")
def replay_command(
    queue: QueueArg, limit: Annotated[int | None, typer.Option(help="at most this many")] = None
) -> None:
    """Send parked messages back to the queue they came from, with a fresh retry budget."""
    moved = asyncio.run(replay(ServiceSettings().amqp_url, queue, limit))
    console.print(f"replayed {moved} message(s) from {queue}")
