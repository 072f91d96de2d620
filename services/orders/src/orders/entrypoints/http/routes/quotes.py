from typing import Any
from uuid import UUID

from fastapi import APIRouter, status

from orders.adapters.tables import QuoteRow
from orders.entrypoints.http.dependencies import TodayDep, UowDep
from orders.entrypoints.http.schemas import QuoteOut, problems
from orders.service_layer import quotes
from orders.service_layer.commands import RequestQuote

router = APIRouter(prefix="/api/v1/migration-services/quotes", tags=["quotes"])


def quote_out(row: QuoteRow) -> dict[str, Any]:
    return {**row.body, "id": row.id, "school_id": row.school_id, "created_at": row.created_at}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=QuoteOut,
    responses=problems(400, 403, 413, 422),
    summary="Price a package (or the one recommended for the student count) with add-ons and payment terms",
)
async def request_quote(body: RequestQuote, uow: UowDep, today: TodayDep) -> dict[str, Any]:
    return quote_out(await quotes.request_quote(uow, body, today=today))


@router.get("/{quote_id}", response_model=QuoteOut, responses=problems(404))
async def get_quote(quote_id: UUID, uow: UowDep) -> dict[str, Any]:
    return quote_out(await quotes.get_quote(uow, quote_id))
