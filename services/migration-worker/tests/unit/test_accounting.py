from __future__ import annotations

from migration_worker.adapters.reports import build_report, render
from migration_worker.domain.accounting import EntityAccount, verdict


def test_every_row_is_accounted_for_or_the_entity_fails() -> None:
    ok = EntityAccount("payments", "payments", source=16_014, migrated=16_011, rejected=3)
    assert ok.unaccounted == 0
    assert ok.status == "ok_with_rejects"
    assert round(ok.success_rate, 2) == 99.98
    lost = EntityAccount("payments", "payments", source=10, migrated=8, rejected=1)
    assert lost.unaccounted == 1
    assert lost.status == "failed"


def test_merged_duplicates_count_as_success() -> None:
    users = EntityAccount("users", "users", source=100, migrated=60, merged=40)
    assert users.success_rate == 100.0
    assert users.status == "ok"


def test_verdict_threshold() -> None:
    assert verdict(1000, 5, 4, 1.0) == "go"
    assert verdict(1000, 6, 4, 1.0) == "no_go"
    assert verdict(0, 0, 0, 1.0) == "go"


def test_report_shapes() -> None:
    accounts = [EntityAccount("payments", "payments", source=16_014, migrated=16_011, rejected=3, seconds=2.0)]
    report = build_report({"id": "j1", "plan_name": "p"}, accounts)
    markdown = render(report, "markdown")
    assert "16,014 → 16,011" in markdown
    assert "99.98 %" in markdown
    assert "<td>16,014</td>" in render(report, "html")
    assert '"rows_rejected": 3' in render(report, "json")
