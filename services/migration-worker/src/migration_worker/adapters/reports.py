"""Migration reports in JSON, Markdown and HTML, shaped like the ones schools are shown."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from jinja2 import Environment, select_autoescape

from migration_worker.domain.accounting import EntityAccount


def build_report(
    job: dict[str, Any],
    accounts: list[EntityAccount],
    seconds: float | None = None,
    workers: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    entities = [a.as_dict() for a in accounts]
    source = sum(a.source for a in accounts)
    migrated = sum(a.migrated for a in accounts)
    rejected = sum(a.rejected for a in accounts)
    merged = sum(a.merged for a in accounts)
    return {
        "job_id": str(job["id"]),
        "plan": job["plan_name"],
        "status": "failed" if any(a.status == "failed" for a in accounts) else "ok",
        "rows_total": source,
        "rows_migrated": migrated,
        "rows_rejected": rejected,
        "rows_merged": merged,
        "unaccounted": sum(a.unaccounted for a in accounts),
        "success_rate": round(100.0 * (migrated + merged) / source, 2) if source else 100.0,
        "seconds": round(seconds if seconds is not None else sum(a.seconds for a in accounts), 2),
        "entities": entities,
        "workers": workers or {},  # worker replica -> batches and rows it committed
    }


def _n(value: int) -> str:
    return f"{value:,}"


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Migration report — {report['plan']}",
        "",
        f"Job `{report['job_id']}`: **{report['status']}**. {_n(report['rows_total'])} source rows, "
        f"{_n(report['rows_migrated'])} migrated, {_n(report['rows_rejected'])} rejected, "
        f"{_n(report['rows_merged'])} merged duplicates, {report['unaccounted']} unaccounted "
        f"({report['success_rate']:.2f} %).",
        "",
        "| entity | source → migrated | rejected | merged | success | status | FK integrity | duration | rows/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in report["entities"]:
        fk = "ok" if e["fk_ok"] else f"{e['orphans']} orphans"
        lines.append(
            f"| {e['entity']} | {_n(e['source'])} → {_n(e['migrated'])} | {_n(e['rejected'])} | {_n(e['merged'])} "
            f"| {e['success_rate']:.2f} % | {e['status']} | {fk} "
            f"| {e['seconds']:.1f} s | {_n(int(e['throughput']))} |"
        )
    reasons = [(e["entity"], r, n) for e in report["entities"] for r, n in e["reasons"].items()]
    if reasons:
        lines += ["", "## Rejections by reason", "", "| entity | reason | rows |", "|---|---|---|"]
        lines += [f"| {entity} | `{reason}` | {_n(n)} |" for entity, reason, n in reasons]
    if report.get("workers"):
        lines += ["", "## Batches per worker", "", "| worker | batches | rows |", "|---|---|---|"]
        lines += [f"| {w} | {_n(c['batches'])} | {_n(c['rows'])} |" for w, c in report["workers"].items()]
    return "\n".join(lines) + "\n"


_HTML = Environment(autoescape=select_autoescape(default=True)).from_string(
    """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Migration report {{ r.plan }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;
padding:.3rem .6rem;text-align:right}td:first-child,th:first-child{text-align:left}.failed{color:#b00}.ok{color:#070}
</style></head><body><h1>Migration report — {{ r.plan }}</h1>
<p>Job <code>{{ r.job_id }}</code>: <strong class="{{ r.status }}">{{ r.status }}</strong>.
{{ "{:,}".format(r.rows_total) }} source rows, {{ "{:,}".format(r.rows_migrated) }} migrated,
{{ "{:,}".format(r.rows_rejected) }} rejected, {{ "{:,}".format(r.rows_merged) }} merged,
{{ r.unaccounted }} unaccounted ({{ "%.2f"|format(r.success_rate) }} %).</p>
<table><tr><th>entity</th><th>source</th><th>migrated</th><th>rejected</th><th>merged</th><th>success</th>
<th>status</th><th>FK integrity</th><th>duration</th><th>rows/s</th></tr>
{% for e in r.entities %}<tr><td>{{ e.entity }}</td><td>{{ "{:,}".format(e.source) }}</td>
<td>{{ "{:,}".format(e.migrated) }}</td><td>{{ "{:,}".format(e.rejected) }}</td><td>{{ "{:,}".format(e.merged) }}</td>
<td>{{ "%.2f"|format(e.success_rate) }} %</td><td class="{{ e.status }}">{{ e.status }}</td>
<td>{{ "ok" if e.fk_ok else e.orphans ~ " orphans" }}</td><td>{{ "%.1f"|format(e.seconds) }} s</td>
<td>{{ "{:,}".format(e.throughput|int) }}</td></tr>{% endfor %}</table>
{% for e in r.entities if e.reasons %}<h3>{{ e.entity }}: rejections</h3><ul>
{% for reason, n in e.reasons.items() %}<li><code>{{ reason }}</code>: {{ n }}</li>{% endfor %}</ul>{% endfor %}
{% if r.workers %}<h3>Batches per worker</h3><table><tr><th>worker</th><th>batches</th><th>rows</th></tr>
{% for w, c in r.workers.items() %}<tr><td>{{ w }}</td><td>{{ "{:,}".format(c.batches) }}</td>
<td>{{ "{:,}".format(c.rows) }}</td></tr>{% endfor %}</table>{% endif %}
</body></html>"""
)


def to_html(report: dict[str, Any]) -> str:
    return _HTML.render(r=report)


class ReportFormat(StrEnum):
    json = "json"
    markdown = "markdown"
    md = "md"
    html = "html"


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == ReportFormat.json:
        return json.dumps(report, indent=2, default=str)
    if fmt in (ReportFormat.md, ReportFormat.markdown):
        return to_markdown(report)
    if fmt == ReportFormat.html:
        return to_html(report)
    raise ValueError(f"unknown report format {fmt!r} (json, markdown, html)")
