"""FastAPI dependencies specific to payments (the shared ones come from servicekit.http)."""

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

if TYPE_CHECKING:
    from payments.bootstrap import PaymentsApp


async def get_payments(request: Request) -> "PaymentsApp":
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    payments: PaymentsApp = request.app.state.payments
    return payments


PaymentsDep = Annotated["PaymentsApp", Depends(get_payments)]
