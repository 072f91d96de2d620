"""What the reliability tests do to a running system and how they count the result.

A workload thread drives real traffic (orders, card payments whose webhooks arrive duplicated, status
moves); cuttable proxies stand between the services and RabbitMQ / PostgreSQL so an outage hits only
this run's services; the ledger reads every service's database, the sandbox and the broker afterwards
and counts what was lost, doubled or left behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import httpx
from contracts.envelope import RawEnvelope
from notifications.domain.routing import ROUTES_BY_EVENT
from servicekit.auth import issue_token
from servicekit.settings import DEV_JWT_SECRET
from servicekit.tcp_proxy import TcpProxy

from tests.support.system import System

T = TypeVar("T")
ORDERS = "/api/v1/migration-services/orders"
ADMIN_TOKEN = issue_token(DEV_JWT_SECRET, sub="reliability-admin", role="platform_admin")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def say(text: str) -> None:
    """Each scenario prints what it injected and what it checked (visible with `pytest -s`)."""
    print(f"[reliability] {text}", flush=True)


def eventually(check: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:  # at least one look, even with no time left
        with contextlib.suppress(httpx.HTTPError):
            last = check()
            if last:
                return last
        if time.monotonic() + interval > deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s; last value: {last!r}")


def new_phone() -> str:
    return f"+26377{uuid4().int % 10**7:07d}"


def order_body(phone: str) -> dict[str, Any]:
    return {
        "package_code": "growth",
        "student_count": 300,
        "add_ons": [],
        "payment_option": "split",
        "currency": "USD",
        "contact": {"name": "Head", "phone": phone, "email": "head@school.example", "language": "en"},
    }


# --- proxies ---------------------------------------------------------------------------------------


class Proxies:
    """TcpProxy instances on one background event loop, so synchronous tests can cut and restore them."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="proxies", daemon=True)
        self._thread.start()
        self.proxies: dict[str, TcpProxy] = {}

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(30)

    def add(self, name: str, host: str, port: int) -> int:
        proxy = TcpProxy(host, port)
        self.proxies[name] = proxy
        return int(self._run(proxy.start()))

    def cut(self, name: str) -> None:
        self._run(self.proxies[name].cut())

    def restore(self, name: str) -> None:
        self._run(self.proxies[name].restore())

    def close(self) -> None:
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                self._run(proxy.cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def via(url: str, port: int) -> str:
    """The same URL with host and port replaced by the loopback proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


def route_database_through(system: System, service: str, proxy_port: int) -> None:
    """Point a service's database URL at the proxy; takes effect at its next start."""
    process = system.processes[service]
    for key, value in list(process.env.items()):
        if key.endswith("DATABASE_URL") and value == system.databases[service]:
            process.env[key] = via(value, proxy_port)


# --- workload ---------------------------------------------------------------------------------------


@dataclass
class Placed:
    order_id: str
    phone: str
    school_token: str
    paid_reference: str | None = None  # Stripe payment intent succeeded in the sandbox
    approved: bool = False


@dataclass
class Workload:
    """Mixed traffic from one thread: create, pay (webhooks duplicated by the provider), approve."""

    system: System
    pay_every: int = 2
    placed: list[Placed] = field(default_factory=list)
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    self.step(client, pay=n % self.pay_every == 0)
                except httpx.HTTPError as exc:
                    # a stopped service refuses the connection: the client knows nothing was accepted
                    self.refused[type(exc).__name__] += 1
                    time.sleep(0.2)

    def _check(self, response: httpx.Response, what: str) -> bool:
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append(f"{what}: {response.status_code} {response.text[:300]}")
        if response.status_code >= 400:
            self.refused[f"{what} {response.status_code}"] += 1
            return False
        return True

    def step(self, client: httpx.Client, *, pay: bool) -> None:
        phone = new_phone()
        token = issue_token(DEV_JWT_SECRET, sub="head@school", role="school_admin", school_id=uuid4())
        created = client.post(
            f"{self.system.url('orders')}{ORDERS}",
            json=order_body(phone),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": phone},
        )
        if not self._check(created, "create order"):
            return
        placed = Placed(created.json()["id"], phone, token)
        self.placed.append(placed)
        approved = client.patch(
            f"{self.system.url('orders')}{ORDERS}/{placed.order_id}/status", json={"status": "approved"}, headers=ADMIN
        )
        placed.approved = self._check(approved, "approve")
        if pay:
            self.pay(client, placed)

    def pay(self, client: httpx.Client, placed: Placed) -> None:
        headers = {"Authorization": f"Bearer {placed.school_token}"}
        plan_url = f"{self.system.url('payments')}/api/v1/payments/orders/{placed.order_id}/plan"
        deadline = time.monotonic() + 30
        plan = client.get(plan_url, headers=headers)
        while plan.status_code == 404 and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.3)
            plan = client.get(plan_url, headers=headers)
        if not self._check(plan, "get plan"):
            return
        first = plan.json()["installments"][0]
        checkout = client.post(
            f"{self.system.url('payments')}/api/v1/payments/installments/{first['id']}/checkout",
            json={"provider": "stripe"},
            headers={**headers, "Idempotency-Key": f"pay-{first['id']}"},
        )
        if not self._check(checkout, "checkout"):
            return
        reference = checkout.json()["provider_reference"]
        # the provider sends its webhook three times: the payment must be booked once
        succeeded = client.post(
            f"{self.system.sandbox_url}/_sandbox/stripe/payment_intents/{reference}/succeed", json={"duplicates": 2}
        )
        if self._check(succeeded, "sandbox succeed"):
            placed.paid_reference = reference


@contextlib.contextmanager
def workload_running(system: System, **options: Any) -> Iterator[Workload]:
    workload = Workload(system, **options)
    workload.start()
    try:
        yield workload
    finally:
        workload.stop()


# --- ledger -----------------------------------------------------------------------------------------


def query(system: System, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(system.databases[service].replace("+asyncpg", ""))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def namespace_queue_depths(system: System) -> dict[str, tuple[int, int]]:
    """(ready, unacked) of every queue of this run, through rabbitmqctl (the management API may be off)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    depths: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(system.namespace) and parts[1].isdigit():
            depths[parts[0]] = (int(parts[1]), int(parts[2]))
    return depths


@dataclass
class Ledger:
    orders_accepted: int = 0
    plans_missing: list[str] = field(default_factory=list)
    plans_doubled: list[str] = field(default_factory=list)
    payments_expected: int = 0
    payments_missing: list[str] = field(default_factory=list)
    payments_doubled: list[str] = field(default_factory=list)
    read_model_unpaid: list[str] = field(default_factory=list)
    sms_missing: list[str] = field(default_factory=list)
    sms_doubled: list[str] = field(default_factory=list)
    # WhatsApp per order (by phone) and e-mail in total: provider-side count against notifications' sends
    other_channels_missing: list[str] = field(default_factory=list)
    other_channels_doubled: list[str] = field(default_factory=list)
    message_rows_doubled: int = 0
    unpublished_outbox: dict[str, int] = field(default_factory=dict)
    unacked_outside_parking: dict[str, tuple[int, int]] = field(default_factory=dict)
    parked: dict[str, int] = field(default_factory=dict)
    # phases of the settle that ran out of time: what they waited for is counted as it stood then
    unsettled: list[str] = field(default_factory=list)
    # notifications' message rows still due or claimed when counted: a shortfall of SMS with many of
    # these is a backlog that had not drained, not necessarily a loss
    messages_unfinished: int = 0

    @property
    def lost(self) -> int:
        return sum(
            map(
                len,
                (
                    self.plans_missing,
                    self.payments_missing,
                    self.sms_missing,
                    self.other_channels_missing,
                    self.read_model_unpaid,
                ),
            )
        )

    @property
    def doubled(self) -> int:
        return (
            len(self.plans_doubled)
            + len(self.payments_doubled)
            + len(self.sms_doubled)
            + len(self.other_channels_doubled)
            + self.message_rows_doubled
        )

    @property
    def leaked(self) -> int:
        return sum(self.unpublished_outbox.values()) + sum(r + u for r, u in self.unacked_outside_parking.values())

    def summary(self) -> str:
        return (
            f"orders accepted {self.orders_accepted}, payments expected {self.payments_expected}; "
            f"lost {self.lost}, doubled {self.doubled}, leaked {self.leaked}, parked {sum(self.parked.values())}"
            + (f"; did not settle in time: {', '.join(self.unsettled)}" if self.unsettled else "")
            + (f"; {self.messages_unfinished} messages still to send" if self.messages_unfinished else "")
        )

    def details(self) -> str:
        """The first few cases of every non-zero count, to find the cause."""
        parts = {
            "plans missing": self.plans_missing,
            "plans doubled": self.plans_doubled,
            "payments missing": self.payments_missing,
            "payments doubled": self.payments_doubled,
            "read model unpaid": self.read_model_unpaid,
            "sms missing": self.sms_missing,
            "sms doubled": self.sms_doubled,
            "whatsapp/e-mail missing": self.other_channels_missing,
            "whatsapp/e-mail doubled": self.other_channels_doubled,
        }
        lines = [f"{k} ({len(v)}): {v[:5]}" for k, v in parts.items() if v]
        lines += [f"message rows doubled: {self.message_rows_doubled}"] if self.message_rows_doubled else []
        lines += [f"unpublished outbox: {self.unpublished_outbox}"] if self.unpublished_outbox else []
        lines += [f"queues not drained: {self.unacked_outside_parking}"] if self.unacked_outside_parking else []
        return "\n".join(lines) or "nothing lost, doubled or leaked"


def sandbox_sms_count(system: System, phone: str) -> int:
    found = httpx.get(f"{system.sandbox_url}/_sandbox/sms", params={"to": phone}, timeout=10).json()
    return len(found)


class Budget:
    """One deadline for the whole settle phase: every wait takes what is left of it, so the phase ends
    in bounded time however many orders there are and whatever is stuck."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        remaining = max(0.0, self.deadline - time.monotonic())
        return remaining if cap is None else min(cap, remaining)

    def wait(self, ledger: Ledger, phase: str, check: Callable[[], T | None], cap: float | None = None) -> None:
        """Wait for `check` within the budget; a phase that runs out is named in the ledger, not raised."""
        say(f"settle: {phase}")
        deadline = time.monotonic() + self.left(cap)
        last: object = None
        while True:  # at least one look, even with no time left
            try:
                if last := check():
                    return
            except Exception as exc:  # a server still coming back is retried, not fatal
                last = exc
            if time.monotonic() + 1.0 > deadline:
                break
            time.sleep(1.0)
        ledger.unsettled.append(phase)
        say(f"settle: {phase}: not reached ({str(last)[:200]}); {self.left():.0f} s of {self.seconds:.0f} s left")


def report_and_assert_nothing_lost(
    system: System, services: list[str], ledger: Ledger, workload: Workload, injected: list[str]
) -> None:
    """Print what was injected and counted, then hold the promise: every service still running and
    nothing lost, doubled, leaked, unsettled, parked or answered with a 5xx other than 503."""
    say(f"injected: {'; '.join(injected)}")
    say(f"refused while down (the client was told): {dict(workload.refused)}")
    say(f"checked: {ledger.summary()}")
    say(ledger.details())
    say(f"5xx answers: {workload.server_errors[:5]}")
    for name in services:
        assert system.processes[name].running, system.processes[name].log_tail()
    assert ledger.lost == 0, ledger.details()
    assert ledger.doubled == 0, ledger.details()
    assert ledger.leaked == 0, ledger.details()
    assert not ledger.unsettled, ledger.summary()
    assert not workload.server_errors, workload.server_errors
    assert not ledger.parked, ledger.parked
    assert ledger.payments_expected > 0, ledger.summary()


def settle_and_check(system: System, placed: list[Placed], *, timeout: float = 120.0) -> Ledger:
    """Wait until every accepted effect has arrived, or the budget of `timeout` seconds (the whole
    phase, not each step) says it never will, then count."""
    budget = Budget(timeout)
    ledger = Ledger(orders_accepted=len(placed))
    paid = [p for p in placed if p.paid_reference]
    ledger.payments_expected = len(paid)
    order_ids = [p.order_id for p in placed]

    def plans() -> dict[str, int]:
        rows = query(system, "payments", "SELECT order_id::text AS id, count(*) AS n FROM payment_plans GROUP BY 1")
        return {r["id"]: r["n"] for r in rows}

    def booked() -> dict[str, int]:
        rows = query(
            system,
            "payments",
            "SELECT provider_reference AS ref, count(*) AS n FROM payments WHERE status = 'succeeded' GROUP BY 1",
        )
        return {r["ref"]: r["n"] for r in rows}

    budget.wait(ledger, "every order planned", lambda: set(order_ids) <= set(plans()))
    budget.wait(ledger, "every payment booked", lambda: {p.paid_reference for p in paid} <= set(booked()))
    budget.wait(ledger, "outboxes published", lambda: all(_unpublished(system, s) == 0 for s in system.services))

    plan_counts, booked_counts = plans(), booked()
    ledger.plans_missing = [o for o in order_ids if plan_counts.get(o, 0) == 0]
    ledger.plans_doubled = [o for o in order_ids if plan_counts.get(o, 0) > 1]
    ledger.payments_missing = [p.order_id for p in paid if booked_counts.get(p.paid_reference or "", 0) == 0]
    ledger.payments_doubled = [p.order_id for p in paid if booked_counts.get(p.paid_reference or "", 0) > 1]

    def unpaid() -> set[str]:
        rows = query(
            system,
            "orders",
            "SELECT order_id::text AS id FROM installment_payments WHERE sequence = 1 AND status = 'paid'",
        )
        return {p.order_id for p in paid} - {r["id"] for r in rows}

    budget.wait(ledger, "orders' read model shows every payment", lambda: not unpaid())
    missing = unpaid()
    # what a user sees: the order detail of the first paid orders agrees with the read model's table
    with httpx.Client(timeout=10) as client:
        seen = [p.order_id for p in paid if p.order_id not in missing][:API_SAMPLE]
        missing |= {o for o in seen if not _read_model_paid(client, system, o)}
    ledger.read_model_unpaid = sorted(missing)

    if "notifications" in system.services:
        _check_sms(system, placed, ledger, budget)
        _check_whatsapp_and_email(system, placed, ledger)
        ledger.messages_unfinished = _unfinished_messages(system)
        ledger.message_rows_doubled = int(
            query(
                system,
                "notifications",
                "SELECT count(*) AS n FROM (SELECT 1 FROM messages GROUP BY event_id, recipient_hash, channel "
                "HAVING count(*) > 1) d",
            )[0]["n"]
        )

    ledger.unpublished_outbox = {s: _unpublished(system, s) for s in system.services}
    ledger.unpublished_outbox = {s: n for s, n in ledger.unpublished_outbox.items() if n}
    budget.wait(ledger, "queues drained", lambda: _settled_depths(system))
    depths = namespace_queue_depths(system)
    ledger.unacked_outside_parking = {
        q: d for q, d in depths.items() if not q.endswith(".parking") and not _is_retry(q) and sum(d) > 0
    }
    ledger.parked = {q: d[0] + d[1] for q, d in depths.items() if q.endswith(".parking") and sum(d) > 0}
    return ledger


API_SAMPLE = 50


def _read_model_paid(client: httpx.Client, system: System, order_id: str) -> bool:
    try:
        detail = client.get(f"{system.url('orders')}{ORDERS}/{order_id}", headers=ADMIN).json()
    except (httpx.HTTPError, ValueError):
        return False
    return any(x.get("sequence") == 1 and x.get("status") == "paid" for x in detail.get("payments", []))


def _is_retry(queue: str) -> bool:
    return ".retry" in queue


def _settled_depths(system: System) -> dict[str, tuple[int, int]] | None:
    depths = namespace_queue_depths(system)
    busy = [q for q, d in depths.items() if not q.endswith(".parking") and sum(d) > 0]
    return depths if not busy else None


def _unpublished(system: System, service: str) -> int:
    return int(query(system, service, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0]["n"])


def _unfinished_messages(system: System) -> int:
    """Message rows still to be sent: due, retrying, or claimed by a replica (live or dead)."""
    rows = query(system, "notifications", "SELECT count(*) AS n FROM messages WHERE status IN ('pending', 'sending')")
    return int(rows[0]["n"])


def _notifications_settled(system: System) -> bool:
    """Nothing for notifications in flight: its queues drained, every planned message sent or failed."""
    return _settled_depths(system) is not None and _unfinished_messages(system) == 0


def _check_sms(system: System, placed: list[Placed], ledger: Ledger, budget: Budget) -> None:
    """Every order's SMS reached the provider exactly as often as notifications logged it and as the
    producers published events that call for one: fewer is a lost message, more a doubled one.

    Expected counts come from the producers' outboxes read through notifications' own routing, not
    from what other orders got: reminders (installment due) are time-driven and differ per order.
    """

    def counts() -> dict[str, tuple[int, int, int]]:
        expected = _sms_events(system)
        sent = collections.Counter(
            str(m["to"]) for m in httpx.get(f"{system.sandbox_url}/_sandbox/sms", timeout=30).json()
        )
        logged = _logged_sms(system)
        return {p.order_id: (sent[p.phone], logged[p.order_id], expected[p.order_id]) for p in placed}

    def settled() -> dict[str, tuple[int, int, int]] | None:
        # A killed replica's claimed messages wait for their lease to run out before anyone sends
        # them, and late events (reminders) may still be on their way: compare once nothing is moving.
        if not _notifications_settled(system):
            return None
        now = counts()
        return now if all(s == log == want for s, log, want in now.values()) else None

    budget.wait(ledger, "every SMS sent as often as logged and expected", settled)
    by_order = {p.order_id: p for p in placed}
    for order_id, (sent, log, want) in counts().items():
        line = f"{order_id}: sent {sent}, logged {log}, expected {want}"
        if sent < want or sent < log or want == 0:
            ledger.sms_missing.append(line)
        elif sent > want or sent > log:
            ledger.sms_doubled.append(line)
    # the cause of the first few cases only: each trail reads whole tables, and a soak has thousands
    for cases in (ledger.sms_missing, ledger.sms_doubled):
        for i, line in enumerate(cases[:DETAILED_CASES]):
            cases[i] = line + _why(system, by_order[line.split(":", 1)[0]])


DETAILED_CASES = 5


def _check_whatsapp_and_email(system: System, placed: list[Placed], ledger: Ledger) -> None:
    """WhatsApp and e-mail reached the provider exactly as often as notifications recorded a send (run
    after `_check_sms`, which waits until nothing is in flight). WhatsApp is counted per order by its phone;
    every order of the workload writes to the same address, so e-mail is counted in total and only for a
    shortfall (the SMTP sink keeps one copy per Message-ID, so a resend is no extra mail; doubled sends are
    the message-row check's)."""
    rows = query(
        system,
        "notifications",
        "SELECT channel, order_id::text AS id, count(*) AS n FROM messages "
        "WHERE channel IN ('whatsapp', 'email') AND status IN ('sent', 'delivered', 'read') GROUP BY 1, 2",
    )
    logged = {(r["channel"], r["id"]): int(r["n"]) for r in rows}
    whatsapp = collections.Counter(
        str(m["to"]).lstrip("+") for m in httpx.get(f"{system.sandbox_url}/_sandbox/whatsapp", timeout=30).json()
    )
    for p in placed:
        sent, log = whatsapp[p.phone.lstrip("+")], logged.get(("whatsapp", p.order_id), 0)
        if sent != log:
            target = ledger.other_channels_missing if sent < log else ledger.other_channels_doubled
            target.append(f"{p.order_id}: whatsapp at the provider {sent}, sends logged {log}")
    address = str(order_body("")["contact"]["email"])
    mails = len(httpx.get(f"{system.sandbox_url}/_sandbox/emails", params={"to": address}, timeout=30).json())
    mails_logged = sum(logged.get(("email", p.order_id), 0) for p in placed)
    if mails < mails_logged:
        ledger.other_channels_missing.append(f"e-mail at the provider {mails}, sends logged {mails_logged}")
    say(f"whatsapp: {sum(whatsapp.values())} at the provider; e-mail: {mails} at the provider, {mails_logged} logged")


def _sms_events(system: System) -> collections.Counter[str]:
    """Per order: the producers' events that notifications' routing turns into an SMS."""
    wanted: collections.Counter[str] = collections.Counter()
    for service in ("orders", "payments"):
        if service not in system.services:
            continue
        for row in query(system, service, "SELECT body::text AS body FROM outbox"):
            raw = RawEnvelope.model_validate(json.loads(row["body"]))
            route = ROUTES_BY_EVENT.get(raw.event_type)
            if route is None or "sms" not in route.channels:
                continue
            payload = raw.decode(route.message).data
            order_id = getattr(payload, "order_id", None)
            if order_id is not None and route.template(payload) is not None:
                wanted[str(order_id)] += 1
    return wanted


def _logged_sms(system: System) -> collections.Counter[str]:
    rows = query(
        system,
        "notifications",
        "SELECT order_id::text AS id, count(*) AS n FROM messages WHERE channel = 'sms' GROUP BY 1",
    )
    return collections.Counter({r["id"]: int(r["n"]) for r in rows})


def _why(system: System, p: Placed) -> str:
    """The order's message rows (template, status) and what the sandbox received, to find a cause."""
    rows = query(
        system,
        "notifications",
        "SELECT template, status FROM messages WHERE order_id::text = $1 AND channel = 'sms' ORDER BY created_at",
        p.order_id,
    )
    found = httpx.get(f"{system.sandbox_url}/_sandbox/sms", params={"to": p.phone}, timeout=10).json()
    texts = [str(m.get("text", ""))[:40] for m in found]
    return f"; rows {[(r['template'], r['status']) for r in rows]}; received {texts}; events {_trail(system, p)}"


def _trail(system: System, p: Placed) -> list[tuple[str, str, bool]]:
    """Every event the producers published about the order, and whether notifications' inbox took it."""
    inbox = {r["id"] for r in query(system, "notifications", "SELECT event_id::text AS id FROM inbox")}
    trail = []
    for service in ("orders", "payments"):
        if service not in system.services:
            continue
        rows = query(
            system,
            service,
            "SELECT routing_key, event_id::text AS id, published_at IS NOT NULL AS published FROM outbox "
            "WHERE body::text LIKE '%' || $1 || '%' ORDER BY id",
            p.order_id,
        )
        trail += [(r["routing_key"], "published" if r["published"] else "unpublished", r["id"] in inbox) for r in rows]
    return trail
