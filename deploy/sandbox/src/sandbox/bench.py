"""Measure SMS acceptance against the ``/_sandbox/noop`` baseline in the same run.

``uv run python -m sandbox.bench --messages 10000 --concurrency 50`` starts a sandbox process on free
ports, sends the requests over real HTTP and prints requests per second for both.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from sandbox.settings import SandboxSettings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(
    client: httpx.AsyncClient, total: int, concurrency: int, send: Callable[[int], Awaitable[httpx.Response]]
) -> float:
    counter = iter(range(total))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for n in counter:
            response = await send(n)
            if response.status_code >= 400:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{failures} requests failed")
    return total / elapsed


async def _bench(base_url: str, total: int, concurrency: int) -> None:
    key = SandboxSettings().telone_api_key
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await client.post("/_sandbox/reset")
        noop = await _run(client, total, concurrency, lambda n: client.post("/_sandbox/noop"))
        sms = await _run(
            client,
            total,
            concurrency,
            lambda n: client.post(
                "/telone/v1/sms",
                json={"to": f"+26377{n:07d}", "message": f"Bench message {n}"},
                headers={"X-API-Key": key},
            ),
        )
        stored = (await client.get("/_sandbox/sms/count")).json()["count"]
    print(f"noop baseline : {noop:8.0f} req/s ({total} requests, concurrency {concurrency})")
    print(f"sms accept    : {sms:8.0f} req/s ({stored} messages stored)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--reports", action="store_true", help="also send delivery reports (to the default URL)")
    args = parser.parse_args()
    port = _free_port()
    env = {
        **os.environ,
        "SANDBOX_PORT": str(port),
        "SANDBOX_SMTP_PORT": str(_free_port()),
        "SANDBOX_SMS_DELIVERY_REPORTS": "true" if args.reports else "false",
    }
    server = subprocess.Popen([sys.executable, "-m", "sandbox"], env=env, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(500):
            try:
                httpx.get(f"{base_url}/_sandbox/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.02)
        asyncio.run(_bench(base_url, args.messages, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
