"""`make docs`: regenerate the committed API documents.

- docs/asyncapi/<service>.yaml from each service's FastStream broker (what it consumes and publishes),
- docs/openapi/<service>.json from each service's FastAPI app,
- contract snapshots for message types that have none yet (existing ones are never rewritten:
  they are what the compatibility test compares against).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from contracts.schemas import all_schemas
from faststream.specification import AsyncAPI

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "orders": "orders",
    "payments": "payments",
    "notifications": "notifications",
    "migration-worker": "migration_worker",
}
TITLES = {
    "orders": "OneClass orders gateway",
    "payments": "OneClass payments",
    "notifications": "OneClass notifications",
    "migration-worker": "OneClass migration worker",
}


def build(package: str) -> tuple[Any, Any]:
    """The service's runtime and app, through its one composition root, without starting anything."""
    bootstrap = importlib.import_module(f"{package}.bootstrap")
    settings = importlib.import_module(f"{package}.settings").Settings(otel_exporter="none", broker_namespace="")
    app = bootstrap.create_app(settings)
    return app.state.runtime, app


def documents() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for name, package in SERVICES.items():
        try:
            runtime, app = build(package)
        except (ModuleNotFoundError, AttributeError) as exc:
            print(f"{name}: not documented ({exc})", file=sys.stderr)
            continue
        spec = AsyncAPI(runtime.broker, title=TITLES[name], version="1.0.0", schema_version="3.0.0")
        # Keys sorted: the order subscriptions are registered in must not churn the committed file.
        document = yaml.safe_load(spec.to_specification().to_yaml())
        out[ROOT / f"docs/asyncapi/{name}.yaml"] = yaml.safe_dump(document, sort_keys=True, allow_unicode=True)
        out[ROOT / f"docs/openapi/{name}.json"] = json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    return out


def record_new_snapshots() -> list[Path]:
    folder = ROOT / "tests/contracts/snapshots"
    written = []
    for key, schema in all_schemas().items():
        path = folder / f"{key}.json"
        if not path.exists():
            path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
            written.append(path)
    return written


def main() -> None:
    for path, text in documents().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    for path in record_new_snapshots():
        print(f"recorded new contract snapshot {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
