"""The plans shipped with the engine, each with its target schema and a dirty sample-data generator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class ShippedPlan:
    name: str
    folder: Path
    module: str

    @property
    def generate(self) -> Callable[..., dict[str, int]]:
        generator: Callable[..., dict[str, int]] = import_module(f"{self.module}.generate").generate
        return generator

    @property
    def plan_file(self) -> Path:
        return self.folder / "plan.yaml"

    @property
    def target_ddl(self) -> str:
        return (self.folder / "target.sql").read_text(encoding="utf-8")


SHIPPED: dict[str, ShippedPlan] = {
    p.name: p
    for p in (
        ShippedPlan("school-sis", HERE / "school_sis", f"{__name__}.school_sis"),
        ShippedPlan("bookings-to-users", HERE / "bookings_to_users", f"{__name__}.bookings_to_users"),
        ShippedPlan("legacy-notifications", HERE / "notifications", f"{__name__}.notifications"),
    )
}
