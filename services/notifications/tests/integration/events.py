"""Events as the other services publish them, for the notifications tests."""

from uuid import UUID, uuid4

from contracts.money import Money
from contracts.orders import Contact, OrderCreated
from contracts.payments import PaymentPlanCreated, PlannedInstallment

PHONE = "+263771234567"


def order_created(
    school_id: UUID,
    *,
    order_id: UUID | None = None,
    phone: str | None = PHONE,
    email: str | None = "head@school.example",
    language: str = "en",
    name: str = "Mrs Moyo",
) -> OrderCreated:
    return OrderCreated(
        order_id=order_id or uuid4(),
        school_id=school_id,
        package_code="growth",
        student_count=450,
        payment_option="split",
        total=Money(amount_minor=750_000, currency="USD"),
        contact=Contact(name=name, phone=phone, email=email, language=language),  # type: ignore[arg-type]
    )


def plan_created(order_id: UUID, school_id: UUID) -> PaymentPlanCreated:
    half = Money(amount_minor=375_000, currency="USD")
    return PaymentPlanCreated(
        plan_id=uuid4(),
        order_id=order_id,
        school_id=school_id,
        payment_option="split",
        total=Money(amount_minor=750_000, currency="USD"),
        installments=[
            PlannedInstallment(installment_id=uuid4(), sequence=1, label="At signing", amount=half, due="at_signing"),
            PlannedInstallment(installment_id=uuid4(), sequence=2, label="At go-live", amount=half, due="at_go_live"),
        ],
    )
