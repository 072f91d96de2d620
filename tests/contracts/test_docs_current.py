"""The committed AsyncAPI and OpenAPI documents match what the code generates (`make docs`)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "deploy/local/gen_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_docs"] = module
    spec.loader.exec_module(module)
    return module


GENERATED = _generator().documents()


def test_every_service_is_documented() -> None:
    names = {p.stem for p in GENERATED if p.parent.name == "asyncapi"}
    assert names == {"orders", "payments", "notifications", "migration-worker"}


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_document_is_up_to_date(path: Path) -> None:
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run `make docs`"
    load = json.loads if path.suffix == ".json" else yaml.safe_load
    # Compared as data: the order channels are registered in carries no meaning.
    assert load(path.read_text()) == load(GENERATED[path]), f"{path.relative_to(ROOT)} is stale: run `make docs`"
