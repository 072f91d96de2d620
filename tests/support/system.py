"""Runs the whole system as real processes for end-to-end, fault and ops tests.

Each run gets throwaway databases, free ports, its own broker namespace and its own provider sandbox,
so tests never touch what `make run` uses. Provider and peer URLs are rewritten from the settings
classes' defaults (the sandbox's :8010/:8025, the services' :8000-:8003) to this run's ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic_settings import BaseSettings
from servicekit.alembic_env import upgrade
from servicekit.testing import ADMIN_DSN, database_url, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # also the database name stem
    module: str  # python -m <module>
    prefix: str  # settings env prefix
    default_port: int
    alembic_ini: Path | None


SERVICES: dict[str, ServiceSpec] = {
    "orders": ServiceSpec("orders", "orders", "ORDERS_", 8000, ROOT / "services/orders/alembic.ini"),
    "payments": ServiceSpec("payments", "payments", "PAYMENTS_", 8001, ROOT / "services/payments/alembic.ini"),
    "notifications": ServiceSpec(
        "notifications", "notifications", "NOTIFICATIONS_", 8002, ROOT / "services/notifications/alembic.ini"
    ),
    "migration-worker": ServiceSpec(
        "migrations", "migration_worker", "MIGRATIONS_", 8003, ROOT / "services/migration-worker/alembic.ini"
    ),
}
SANDBOX_HTTP, SANDBOX_SMTP = 8010, 8025
RETRY_DELAYS_MS = "[200, 1000, 3000]"


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


def _settings_class(module: str, name: str = "Settings") -> type[BaseSettings]:
    cls: type[BaseSettings] = getattr(importlib.import_module(f"{module}.settings"), name)
    return cls


def _env_name(prefix: str, name: str, info: Any) -> str | None:
    if info.validation_alias is not None:
        return None  # a shared setting: set explicitly by the system
    return f"{prefix}{name}".upper()


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if wait:
            wait_http(self.health_url, process=self.popen)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: a graceful stop. Returns the exit code."""
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class System:
    workdir: Path
    services: list[str]
    namespace: str = field(default_factory=lambda: f"e2e_{secrets.token_hex(3)}.")
    ports: dict[str, int] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def sandbox_url(self) -> str:
        return self.url("sandbox")

    def _port_map(self) -> dict[int, int]:
        mapping = {SANDBOX_HTTP: self.ports["sandbox"], SANDBOX_SMTP: self.ports["smtp"]}
        for name, spec in SERVICES.items():
            if name in self.ports:
                mapping[spec.default_port] = self.ports[name]
        return mapping

    def _rewrite(self, value: Any) -> str | None:
        mapping = self._port_map()
        if isinstance(value, int) and value in mapping:
            return str(mapping[value])
        if isinstance(value, str):
            for old, new in mapping.items():
                value = value.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
                value = value.replace(f"localhost:{old}", f"localhost:{new}")
            return value
        return None

    def _rewritten_settings(self, settings_cls: type[BaseSettings], prefix: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, info in settings_cls.model_fields.items():
            env_name = _env_name(prefix, name, info)
            default = info.default
            if env_name is None or default is None:
                continue
            if hasattr(default, "get_secret_value"):
                continue
            rewritten = self._rewrite(default)
            if rewritten is not None and str(default) != rewritten:
                env[env_name] = rewritten
        return env

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "PAYMENTS_", "NOTIFICATIONS_"))}
        env.update(
            BROKER_NAMESPACE=self.namespace,
            OTEL_EXPORTER="jsonl",
            LOG_JSON="true",
            RETRY_DELAYS_MS=RETRY_DELAYS_MS,
            OUTBOX_POLL_SECONDS="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def service_env(self, name: str, port: int | None = None) -> dict[str, str]:
        spec = SERVICES[name]
        env = self.base_env()
        env.update(self._rewritten_settings(_settings_class(spec.module), spec.prefix))
        env[f"{spec.prefix}DATABASE_URL"] = self.databases[name]
        env[f"{spec.prefix}HTTP_PORT"] = str(port or self.ports[name])
        env[f"{spec.prefix}HTTP_HOST"] = "127.0.0.1"
        env["OTEL_JSONL_PATH"] = str(self.workdir / f"traces-{name}.jsonl")
        return env

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ["sandbox", "smtp", *self.services]:
            self.ports[name] = free_port()
        self._create_databases()
        sandbox_env = self.base_env()
        sandbox_env.update(self._rewritten_settings(_settings_class("sandbox", "SandboxSettings"), "SANDBOX_"))
        sandbox_env.update(SANDBOX_PORT=str(self.ports["sandbox"]), SANDBOX_SMTP_PORT=str(self.ports["smtp"]))
        self.processes["sandbox"] = Process(
            "sandbox",
            [sys.executable, "-m", "sandbox"],
            sandbox_env,
            f"{self.sandbox_url}/_sandbox/health",
            self.workdir / "sandbox.log",
        )
        for name in self.services:
            self.processes[name] = self.service_process(name)
        for process in self.processes.values():
            process.start(wait=False)
        for process in self.processes.values():
            try:
                assert process.popen is not None
                wait_http(process.health_url, process=process.popen)
            except Exception as exc:
                raise RuntimeError(f"{process.name} did not start:\n{process.log_tail()}") from exc

    def service_process(self, name: str, *, replica: int = 0) -> Process:
        port = self.ports[name] if replica == 0 else free_port()
        return Process(
            name if replica == 0 else f"{name}-{replica}",
            [sys.executable, "-m", SERVICES[name].module],
            self.service_env(name, port),
            f"http://127.0.0.1:{port}/healthz",
            self.workdir / f"{name}-{replica}.log",
        )

    def restart(self, name: str, *, kill: bool = True) -> None:
        process = self.processes[name]
        if kill:
            process.kill()
        else:
            process.terminate()
        process.start()

    def _create_databases(self) -> None:
        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(ADMIN_DSN)
            try:
                for name in self.services:
                    db = f"{self.namespace.rstrip('.')}_{SERVICES[name].name}".replace("-", "_")
                    await conn.execute(f'CREATE DATABASE "{db}"')
                    self.databases[name] = database_url(db)
            finally:
                await conn.close()

        asyncio.run(create())
        for name in self.services:
            ini = SERVICES[name].alembic_ini
            if ini is not None and ini.exists():
                upgrade(ini, self.databases[name])

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.terminate(timeout=20)
        self._cleanup_broker_and_databases()

    def _cleanup_broker_and_databases(self) -> None:
        async def cleanup() -> None:
            import aio_pika
            import asyncpg
            from servicekit.testing import AMQP_URL

            connection = await aio_pika.connect(AMQP_URL)
            async with connection:
                for queue in _namespace_queues(self.namespace, self.services):
                    channel = await connection.channel()
                    with contextlib.suppress(Exception):
                        await channel.queue_delete(queue)
                for exchange in ("oneclass.events", "oneclass.dead-letter"):
                    channel = await connection.channel()
                    with contextlib.suppress(Exception):
                        await channel.exchange_delete(f"{self.namespace}{exchange}")
            conn = await asyncpg.connect(ADMIN_DSN)
            try:
                for url in self.databases.values():
                    await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(cleanup())

    def spans(self) -> list[dict[str, Any]]:
        spans: list[dict[str, Any]] = []
        for path in self.workdir.glob("traces-*.jsonl"):
            for line in path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    spans.append(json.loads(line))
        return spans


def _namespace_queues(namespace: str, services: list[str]) -> Iterator[str]:
    """Every queue the services declared in this namespace: main, delay and parking queues."""
    delays = json.loads(RETRY_DELAYS_MS)
    for name in services:
        spec = SERVICES[name]
        bootstrap = importlib.import_module(f"{spec.module}.bootstrap")
        settings = _settings_class(spec.module)(broker_namespace=namespace, otel_exporter="none")
        runtime = bootstrap.create_app(settings).state.runtime
        for queue in runtime.consumers.queue_names():
            yield queue
            yield f"{queue}.parking"
            yield from (f"{queue}.retry.{d}ms" for d in delays)


@contextlib.contextmanager
def running_system(workdir: Path, services: list[str] | None = None, **extra_env: str) -> Iterator[System]:
    system = System(workdir=workdir, services=services or list(SERVICES), extra_env=extra_env)
    try:
        system.start()
        yield system
    finally:
        system.stop()
