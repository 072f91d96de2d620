"""Each running service's /metrics carries what the dashboard and the alert rules read."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.system import running_system

pytestmark = pytest.mark.e2e

EVERY_SERVICE = {
    "oneclass_outbox_backlog",
    "oneclass_outbox_oldest_age_seconds",
    "oneclass_messages_parked",
    "oneclass_messages_retried",
    "oneclass_inbox_duplicates",
}
CONSUMER = {"faststream_received_processed_messages", "faststream_received_processed_messages_duration_seconds"}
# Family names (a counter's without `_total`) agreed for deploy/observability, by the service that records them.
OWN = {
    "orders": set(),
    "payments": CONSUMER | {"oneclass_webhook_verification_failures", "oneclass_installments_overdue"},
    "notifications": CONSUMER | {"oneclass_provider_failovers"},
    "migration-worker": CONSUMER | {"oneclass_migration_rows_per_second"},
}


@pytest.mark.parametrize("service", list(OWN))
def test_metrics_endpoint_serves_what_dashboards_and_alerts_read(service: str, tmp_path: Path) -> None:
    with running_system(tmp_path, services=[service]) as system:
        response = httpx.get(f"{system.url(service)}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name for family in text_string_to_metric_families(response.text)}
    missing = sorted((EVERY_SERVICE | OWN[service]) - families)
    assert not missing, f"{service} /metrics lacks {missing}"
