"""SIGTERM in the middle of a flow: the service finishes what it accepted, exits 0, and after a restart
every accepted order has exactly one payment plan — nothing lost, nothing doubled."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path

import pytest

from tests.ops.flow import (
    eventually,
    order_ids,
    place_order,
    plans_per_order,
    school_token,
    unpublished_outbox,
)
from tests.support.system import System, running_system

pytestmark = pytest.mark.e2e

ORDERS_PER_PHASE = 30
STOP_AFTER = 8  # terminate once this many orders of the phase were accepted: the rest are in flight


def _orders_while_terminating(system: System, victim: str, token: str) -> tuple[list[str], int | None]:
    """Place orders from four clients and SIGTERM `victim` part-way through; returns accepted ids, exit code."""
    accepted: list[str] = []
    exit_code: int | None = None
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: list[Future[str | None]] = [pool.submit(place_order, system, token) for _ in range(ORDERS_PER_PHASE)]
        for done, future in enumerate(as_completed(futures), start=1):
            if (order_id := future.result()) is not None:
                accepted.append(order_id)
            if done == STOP_AFTER:
                exit_code = system.processes[victim].terminate(timeout=40)
    return accepted, exit_code


def test_sigterm_mid_flow_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with running_system(tmp_path, services=["orders", "payments"]) as system:
        token = school_token()

        # The consumer is stopped while order_created events stream in.
        accepted, code = _orders_while_terminating(system, "payments", token)
        assert code == 0, system.processes["payments"].log_tail()
        assert len(accepted) == ORDERS_PER_PHASE  # orders itself kept running
        system.processes["payments"].start()

        # The HTTP service and its outbox relay are stopped while requests are in flight.
        more, code = _orders_while_terminating(system, "orders", token)
        assert code == 0, system.processes["orders"].log_tail()
        assert len(more) >= STOP_AFTER
        accepted += more
        system.processes["orders"].start()

        def every_order_planned() -> dict[str, int] | None:
            plans = plans_per_order(system)
            return plans if set(accepted) <= set(plans) else None

        plans = eventually(every_order_planned)
        assert {order_id: plans[order_id] for order_id in accepted} == dict.fromkeys(accepted, 1)
        assert set(plans) == set(accepted)  # no plan for an order that was never accepted
        assert order_ids(system) == set(accepted)  # a request cut off by the stop left no order behind
        assert unpublished_outbox(system, "orders") == 0
