from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from servicekit.http import SessionDep, require_role
from sqlmodel import col, select

from payments.adapters.tables import WebhookRow
from payments.entrypoints.http.dependencies import PaymentsDep
from payments.service_layer import webhooks

router = APIRouter(prefix="/api/v1/payments", tags=["webhooks"])


@router.post(
    "/webhooks/{provider}",
    summary="Provider webhook intake: verified by the provider's signature, stored raw, applied asynchronously",
    responses={
        400: {"description": "signature, hash or timestamp refused (the delivery is kept)"},
        404: {"description": "no webhooks for that provider"},
    },
)
async def receive_webhook(
    # A plain string, so an unknown provider is the 404 of a path that does not exist, not a 422.
    provider: Annotated[str, Path(description=f"one of {', '.join(webhooks.WEBHOOK_PROVIDERS)}")],
    request: Request,
    payments: PaymentsDep,
) -> JSONResponse:
    with payments.worker.receiving():
        body = await request.body()
        received = await webhooks.receive(payments.inbox, payments.providers, provider, body, dict(request.headers))
    if received.status == "rejected":
        return JSONResponse(
            {
                "type": "https://errors.oneclass.example/webhook-rejected",
                "title": "Webhook rejected",
                "status": 400,
                "detail": received.reason,
                "webhook_id": received.id,
            },
            status_code=400,
            media_type="application/problem+json",
        )
    if received.id is not None:
        payments.worker.notify()
    return JSONResponse({"received": received.id, "status": received.status, "event_key": received.event_key})


@router.post("/noop", include_in_schema=False, summary="Unsigned no-op: the benchmark's baseline")
async def noop(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


@router.get("/webhooks/inbox", dependencies=[require_role("platform_admin")])  # type: ignore[list-item]
async def inbox(
    session: SessionDep,
    status: Literal["received", "applied", "ignored", "duplicate", "rejected", "quarantined", "failed"] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Every stored delivery, for inspection: what was refused or quarantined, and why."""
    query = select(WebhookRow).order_by(col(WebhookRow.id).desc()).limit(min(max(limit, 1), 1000))
    if status is not None:
        query = query.where(WebhookRow.status == status)
    rows = (await session.scalars(query)).all()
    return [
        {
            "id": r.id,
            "provider": r.provider,
            "event_key": r.event_key,
            "status": r.status,
            "reason": r.reason,
            "payment_id": str(r.payment_id) if r.payment_id else None,
            "received_at": r.received_at.isoformat(),
            "attempts": r.attempts,
            "body": r.body.decode("utf-8", errors="replace")[:4000],
        }
        for r in rows
    ]
