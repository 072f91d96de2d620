"""Write the Procfile for `make run`: every service, N replicas where asked, and the sandbox."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def procfile(migration_workers: int, notification_workers: int) -> str:
    lines = [
        "sandbox: python -m sandbox",
        "orders: python -m orders",
        "payments: python -m payments",
    ]
    for i in range(notification_workers):
        port = 8002 if i == 0 else 8102 + i
        lines.append(f"notifications{i + 1}: env NOTIFICATIONS_HTTP_PORT={port} python -m notifications")
    for i in range(migration_workers):
        port = 8003 if i == 0 else 8103 + i
        env = f"MIGRATIONS_HTTP_PORT={port} MIGRATIONS_WORKER_NAME=worker{i + 1}"
        lines.append(f"worker{i + 1}: env {env} python -m migration_worker")
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    text = procfile(int(os.environ.get("MIGRATION_WORKERS", "1")), int(os.environ.get("NOTIFICATION_WORKERS", "1")))
    out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
