from uuid import UUID

from contracts.money import Money
from fastapi import APIRouter
from servicekit.http import CurrentPrincipal, SessionDep

from payments.entrypoints.http.schemas import InstallmentOut, PlanOut
from payments.service_layer import plans

router = APIRouter(prefix="/api/v1/payments", tags=["plans"])


@router.get("/orders/{order_id}/plan", response_model=PlanOut)
async def get_plan(order_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> PlanOut:
    plan, installments = await plans.get_plan(session, principal, order_id)

    def money(minor: int) -> Money:
        return Money(amount_minor=minor, currency=plan.currency)

    return PlanOut(
        id=plan.id,
        order_id=plan.order_id,
        school_id=plan.school_id,
        payment_option=plan.payment_option,
        status=plan.status,
        total=money(plan.total_minor),
        paid=money(sum(i.paid_minor for i in installments)),
        installments=[
            InstallmentOut(
                id=i.id,
                sequence=i.sequence,
                label=i.label,
                amount=money(i.amount_minor),
                paid=money(i.paid_minor),
                due=i.due,
                due_date=i.due_date,
                status=i.status,
            )
            for i in installments
        ],
        created_at=plan.created_at,
    )
