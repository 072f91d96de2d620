"""Accounting rules: every source row is migrated, rejected or merged into a duplicate — never lost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EntityAccount:
    entity: str
    target_table: str
    source: int = 0
    migrated: int = 0
    rejected: int = 0
    merged: int = 0
    warned: int = 0
    orphans: int = 0
    duplicate_keys: int = 0
    missing_in_target: int = 0
    spot_checked: int = 0
    spot_mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def unaccounted(self) -> int:
        return self.source - (self.migrated + self.rejected + self.merged)

    @property
    def success_rate(self) -> float:
        """Share of source rows that reached the target (directly or as a merged duplicate)."""
        return 100.0 if self.source == 0 else 100.0 * (self.migrated + self.merged) / self.source

    @property
    def fk_ok(self) -> bool:
        return self.orphans == 0

    @property
    def status(self) -> str:
        if self.unaccounted or self.orphans or self.duplicate_keys or self.missing_in_target or self.spot_mismatches:
            return "failed"
        return "ok" if self.rejected == 0 else "ok_with_rejects"

    @property
    def throughput(self) -> float:
        return self.source / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            unaccounted=self.unaccounted,
            success_rate=round(self.success_rate, 2),
            fk_ok=self.fk_ok,
            status=self.status,
            throughput=round(self.throughput, 1),
        )
        return data


def verdict(rows: int, errored: int, warned: int, threshold_pct: float) -> str:
    """Go when rows with errors or warnings stay under the threshold share of all rows."""
    if rows == 0:
        return "go"
    return "go" if 100.0 * (errored + warned) / rows < threshold_pct else "no_go"
