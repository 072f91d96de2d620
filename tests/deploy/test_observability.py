"""Alert rules, dashboard and collector config: well formed, and about metrics that exist or are agreed."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.manifests import DEPLOY, ROOT

OBSERVABILITY = DEPLOY / "observability"
# Exported today by servicekit (servicekit.metrics) and FastStream's Prometheus middleware.
SERVICEKIT = {
    "oneclass_outbox_backlog",
    "oneclass_outbox_oldest_age_seconds",
    "oneclass_messages_parked_total",
    "oneclass_messages_retried_total",
    "oneclass_inbox_duplicates_total",
}
FASTSTREAM = {
    "faststream_received_processed_messages_total",
    "faststream_received_processed_messages_duration_seconds_bucket",
}
# Names agreed with the services that record them (provider failover, webhook verification, migrations).
AGREED = {
    "oneclass_provider_failovers_total",
    "oneclass_webhook_verification_failures_total",
    "oneclass_migration_rows_per_second",
    "oneclass_installments_overdue_total",
}
EXTERNAL = {"up", "rabbitmq_detailed_queue_messages"}
KNOWN = SERVICEKIT | FASTSTREAM | AGREED | EXTERNAL
PROMQL_FUNCTIONS = {
    "sum", "max", "min", "rate", "increase", "deriv", "histogram_quantile", "by", "and", "or", "offset",
    "label_values", "avg", "count",
}  # fmt: skip


def _metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b\d+[smhdwy]\b", "", without_strings)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_labels))
    grouping = set(re.findall(r"by \(([^)]*)\)", without_strings))
    labels = {label.strip() for group in grouping for label in group.split(",")}
    return {w for w in words if w not in PROMQL_FUNCTIONS and w not in labels and not w.startswith("__")}


def _alerts() -> list[dict[str, Any]]:
    data = yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_alert_rules_cover_the_issue_and_link_a_runbook_section() -> None:
    rules = _alerts()
    names = {r["alert"] for r in rules}
    assert {"OutboxBacklogGrowing", "ParkingQueueNotEmpty", "ProviderFailoverStorm", "InstallmentOverdueSpike"} <= names
    runbook = (ROOT / "docs" / "operations.md").read_text().lower()
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        heading = anchor.replace("-", " ")
        assert f"## {heading}" in runbook or f'id="{anchor}"' in runbook, f"{rule['alert']}: no section {anchor}"


def test_alerts_and_dashboard_use_only_known_metrics() -> None:
    expressions = [r["expr"] for r in _alerts()]
    dashboard = json.loads((OBSERVABILITY / "grafana" / "oneclass-services.json").read_text())
    expressions += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = set().union(*(_metric_names(e) for e in expressions))
    assert not used - KNOWN, f"unknown metric names {sorted(used - KNOWN)}"
    assert used >= AGREED  # the dashboard shows each metric the services agreed to record


def test_servicekit_still_exports_what_alerts_rely_on() -> None:
    from prometheus_client import REGISTRY
    from servicekit import metrics  # noqa: F401 - registers the collectors

    # A counter's family drops the `_total` suffix its samples carry; a gauge's keeps its full name.
    families = {family.name for family in REGISTRY.collect()}
    for name in SERVICEKIT:
        assert name.removesuffix("_total") in families, name


def test_dashboard_panels_have_unique_ids_and_a_datasource() -> None:
    dashboard = json.loads((OBSERVABILITY / "grafana" / "oneclass-services.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]


def test_collector_pipelines_reference_defined_components() -> None:
    config = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline.get(kind, []):
                assert name in config[kind], f"{kind} {name} is not defined"
    prometheus = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    assert {"orders", "payments", "notifications", "migration-worker"} <= jobs
