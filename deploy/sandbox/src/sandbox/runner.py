"""Run a sandbox on ephemeral ports for a test session, in a background thread.

A thread rather than the caller's event loop: a test may call a blocking client (the Stripe SDK,
smtplib) and the sandbox must keep answering meanwhile.
"""

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import uvicorn

from sandbox.app import create_app
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox

STARTUP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RunningSandbox:
    base_url: str
    smtp_host: str
    smtp_port: int
    settings: SandboxSettings


@contextmanager
def sandbox_in_thread(settings: SandboxSettings | None = None, *, ephemeral: bool = True) -> Iterator[RunningSandbox]:
    """Start the sandbox (HTTP + SMTP); with ``ephemeral`` both listen on free ports the OS picks."""
    settings = settings or SandboxSettings()
    if ephemeral:
        settings = settings.model_copy(update={"port": 0, "smtp_port": 0})
    app = create_app(settings)
    sandbox: Sandbox = app.state.sandbox
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    )
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starting thread below
            errors.append(exc)

    thread = threading.Thread(target=serve, name=f"sandbox-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if errors or not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {errors[0] if errors else 'timed out'}")
            time.sleep(0.01)
        assert sandbox.smtp.port is not None
        yield RunningSandbox(
            base_url=f"http://{settings.host}:{port}",
            smtp_host=settings.smtp_host,
            smtp_port=sandbox.smtp.port,
            settings=settings,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()


@asynccontextmanager
async def running_sandbox(
    settings: SandboxSettings | None = None, *, ephemeral: bool = True
) -> AsyncIterator[RunningSandbox]:
    """``async with running_sandbox(settings) as sb: ... sb.base_url ...`` for async test fixtures."""
    manager = sandbox_in_thread(settings, ephemeral=ephemeral)
    running = await asyncio.to_thread(manager.__enter__)
    try:
        yield running
    finally:
        await asyncio.to_thread(manager.__exit__, None, None, None)
