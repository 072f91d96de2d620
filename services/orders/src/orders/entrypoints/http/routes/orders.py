from uuid import UUID

from contracts.money import Money
from fastapi import APIRouter, status
from servicekit.http import CurrentPrincipal, SessionDep

from orders.adapters.tables import OrderRow
from orders.entrypoints.http.schemas import CreateOrder, OrderOut
from orders.service_layer import handlers

router = APIRouter(prefix="/api/v1/migration-services/orders", tags=["orders"])


def _out(order: OrderRow) -> OrderOut:
    return OrderOut.model_validate(
        {**order.model_dump(), "total": Money(amount_minor=order.total_minor, currency=order.currency)}
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def create_order(body: CreateOrder, principal: CurrentPrincipal, session: SessionDep) -> OrderOut:
    return _out(await handlers.create_order(session, principal, body))


@router.get("/{order_id}", response_model=OrderOut)
async def get_order(order_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> OrderOut:
    return _out(await handlers.get_order(session, principal, order_id))
