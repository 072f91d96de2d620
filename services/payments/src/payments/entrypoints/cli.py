"""`payments-reconcile` (or `python -m payments.entrypoints.cli`): run reconciliation or the due checks once."""

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

from payments.bootstrap import build
from payments.service_layer.reconcile import reconcile
from payments.service_layer.schedule import run_due_checks
from payments.settings import Settings


async def _run(args: argparse.Namespace) -> int:
    app = build(Settings())
    try:
        if args.job == "reconcile":
            report = await reconcile(
                app.runtime.db, app.providers, older_than=timedelta(minutes=args.older_than_minutes)
            )
        else:
            report = await run_due_checks(app.runtime.db, datetime.now(UTC).date(), app.settings.overdue_grace_days)
        if report is None:
            print("another replica holds the lock; nothing done", file=sys.stderr)
            return 0
        print(json.dumps(report, indent=2, default=str))
        # Events written by the job go out with the next relay pass of a running service.
        return 1 if report.get("mismatches") else 0
    finally:
        await app.providers.close()
        await app.runtime.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="payments-reconcile", description=__doc__)
    parser.add_argument("job", choices=["reconcile", "due-checks"], nargs="?", default="reconcile")
    parser.add_argument(
        "--older-than-minutes",
        type=int,
        default=Settings().reconcile_after_minutes,
        help="open payments older than this",
    )
    sys.exit(asyncio.run(_run(parser.parse_args())))


if __name__ == "__main__":
    main()
