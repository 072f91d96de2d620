"""Status API (port 8003): job status, reports and a small live HTML page for operators."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from servicekit.problems import Problem

from migration_worker.adapters.jobstore import JobNotFound
from migration_worker.adapters.reports import render
from migration_worker.service_layer.handlers import MigrationService

log = logging.getLogger("migration_worker.http")
router = APIRouter(prefix="/api/v1/migrations", tags=["migrations"])
pages = APIRouter(tags=["pages"])


def _service(request: Request) -> MigrationService:
    service: MigrationService = request.app.state.migration_service
    return service


async def _job(request: Request, job_id: uuid.UUID) -> dict[str, Any]:
    try:
        return await _service(request).jobs.get(job_id)
    except JobNotFound as exc:
        raise Problem(404, "Job not found", str(exc)) from exc


@router.get("/jobs/{job_id}")
async def job_status(request: Request, job_id: uuid.UUID) -> dict[str, Any]:
    job = await _job(request, job_id)
    dry = job["dry_run"] or {}
    report = job["report"] or {}
    return {
        "job_id": str(job["id"]),
        "plan": job["plan_name"],
        "order_id": str(job["order_id"]) if job["order_id"] else None,
        "school_id": str(job["school_id"]) if job["school_id"] else None,
        "status": job["status"],
        "phase": job["phase"],
        "progress": job["progress"],
        "scheduled_for": job["scheduled_for"],
        "dry_run": {k: dry.get(k) for k in ("verdict", "rows_total", "errors", "warnings", "estimated_seconds")}
        if dry
        else None,
        "report": {k: report.get(k) for k in ("status", "rows_total", "rows_migrated", "rows_rejected", "success_rate")}
        if report
        else None,
        "workers": await _workers(request, job),
        "error": job["error"],
        "updated_at": job["updated_at"],
    }


async def _workers(request: Request, job: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per worker replica: batches and rows it committed (live from the checkpoints while running)."""
    if job["started_at"] is None:
        return {}
    if job["status"] in ("completed", "failed") and (job["report"] or {}).get("workers"):
        workers: dict[str, dict[str, int]] = job["report"]["workers"]
        return workers
    try:
        return await _service(request).batch_workers(job)
    except Exception:  # the target being unreachable must not make the job's status unreadable
        log.warning("batch counts of job %s unavailable", job["id"], exc_info=True)
        return {}


@router.get("/jobs/{job_id}/report")
async def job_report(
    request: Request,
    job_id: uuid.UUID,
    fmt: Annotated[Literal["json", "markdown", "html"], Query(alias="format")] = "json",
) -> Response:
    job = await _job(request, job_id)
    if not job["report"]:
        raise Problem(409, "No report yet", f"job {job_id} is {job['status']}; a report exists once it has run")
    body = render(job["report"], fmt)
    if fmt == "html":
        return HTMLResponse(body)
    if fmt == "markdown":
        return PlainTextResponse(body, media_type="text/markdown")
    return Response(body, media_type="application/json")


STATUS_PAGE = (Path(__file__).parent / "status.html").read_text(encoding="utf-8")


@pages.get("/migrations/jobs/{job_id}/status", response_class=HTMLResponse)
async def status_page(request: Request, job_id: uuid.UUID) -> HTMLResponse:
    await _job(request, job_id)
    return HTMLResponse(STATUS_PAGE)
