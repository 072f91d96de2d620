"""While orders are created, approved and paid (each provider webhook arriving three times) and
notifications go out: every service is SIGKILLed in turn and restarted, RabbitMQ is cut away from the
services and restored, PostgreSQL likewise. The outages go through loopback proxies between this
run's services and the shared servers, so other test runs on the machine are not disturbed.

Afterwards the ledger proves: every accepted order planned once, every payment booked once and seen
paid in orders, every SMS sent once per recipient and event, outboxes empty, no queue holding
messages outside the parking queues."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from servicekit.testing import ADMIN_DSN, AMQP_URL

from tests.support.system import running_system

from .harness import (
    Proxies,
    report_and_assert_nothing_lost,
    route_database_through,
    say,
    settle_and_check,
    via,
    workload_running,
)

# bounded by its own waits (progress between faults, the settle budget), which on a loaded 2-core
# machine can pass the suite's default per-test timeout
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SERVICES = ["orders", "payments", "notifications"]
OUTAGE_SECONDS = 4.0
LEASE_SECONDS = 10


def _grows(placed: Sequence[object], by: int, timeout: float = 90.0) -> None:
    """Let the workload make progress between faults (progress, not time, is what we wait for)."""
    target = len(placed) + by
    deadline = time.monotonic() + timeout
    while len(placed) < target:
        assert time.monotonic() < deadline, f"the workload made no progress ({len(placed)} of {target})"
        time.sleep(0.2)


def test_kill_every_service_and_cut_broker_and_database_under_load(tmp_path: Path) -> None:
    proxies = Proxies()
    amqp = urlsplit(AMQP_URL)
    pg = urlsplit(ADMIN_DSN)
    amqp_port = proxies.add("rabbitmq", amqp.hostname or "127.0.0.1", amqp.port or 5672)
    pg_port = proxies.add("postgresql", pg.hostname or "127.0.0.1", pg.port or 5432)
    injected: list[str] = []
    try:
        with running_system(
            tmp_path,
            SERVICES,
            AMQP_URL=via(AMQP_URL, amqp_port),
            # the SIGKILLed replica's claimed messages are sent again once this lease runs out
            NOTIFICATIONS_DISPATCH_LEASE_SECONDS=str(LEASE_SECONDS),
        ) as system:
            with workload_running(system, pay_every=2) as load:
                _grows(load.placed, 3)
                for service in SERVICES:
                    # the restart also moves the service's database connections behind the proxy
                    route_database_through(system, service, pg_port)
                    system.restart(service, kill=True)
                    injected.append(f"SIGKILL {service} + restart")
                    say(injected[-1])
                    _grows(load.placed, 2)

                proxies.cut("rabbitmq")
                injected.append(f"RabbitMQ unreachable for {OUTAGE_SECONDS:.0f} s")
                say(injected[-1])
                time.sleep(OUTAGE_SECONDS)  # orders keep accepting: events wait in the outbox
                proxies.restore("rabbitmq")
                _grows(load.placed, 2)

                proxies.cut("postgresql")
                injected.append(f"PostgreSQL unreachable for {OUTAGE_SECONDS:.0f} s")
                say(injected[-1])
                time.sleep(OUTAGE_SECONDS)
                proxies.restore("postgresql")
                _grows(load.placed, 3)
                say("workload stops; settling")

            ledger = settle_and_check(system, load.placed, timeout=240)
            report_and_assert_nothing_lost(system, SERVICES, ledger, load, injected)
            assert ledger.orders_accepted > 10, ledger.summary()
    finally:
        proxies.close()
