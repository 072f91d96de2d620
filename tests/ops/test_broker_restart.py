"""RabbitMQ restarted under the running services: consumers really consume again (not just reconnect),
and what was written during the outage is published from the outbox afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.ops.flow import eventually, place_order, plans_per_order, school_token, unpublished_outbox
from tests.support.system import running_system

pytestmark = pytest.mark.e2e


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def test_consumers_consume_again_after_rabbitmq_restart(tmp_path: Path) -> None:
    with running_system(tmp_path, services=["orders", "payments"]) as system:
        token = school_token()
        before = place_order(system, token)
        assert before is not None
        eventually(lambda: before in plans_per_order(system))

        try:
            rabbitmqctl("stop_app")
            # The broker is gone: orders still accepts the order (the event waits in its outbox).
            during = place_order(system, token)
            assert during is not None
            assert httpx.get(f"{system.url('orders')}/readyz", timeout=10).status_code == 503
        finally:
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")

        for service in ("orders", "payments"):
            eventually(lambda s=service: httpx.get(f"{system.url(s)}/readyz", timeout=5).status_code == 200)
        after = place_order(system, token)
        assert after is not None

        def both_planned() -> dict[str, int] | None:
            plans = plans_per_order(system)
            return plans if {during, after} <= set(plans) else None

        plans = eventually(both_planned)
        assert plans == {before: 1, during: 1, after: 1}
        assert unpublished_outbox(system, "orders") == 0
        for name in ("orders", "payments"):
            assert system.processes[name].running, system.processes[name].log_tail()
