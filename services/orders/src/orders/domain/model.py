"""The Order aggregate: status, team, what has been paid and the milestones, with the events each change raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from contracts.envelope import Payload
from contracts.money import Currency, Money
from contracts.orders import (
    AddOnCode,
    Contact,
    MilestoneCompleted,
    OrderCancelled,
    OrderCreated,
    OrderStatus,
    OrderStatusChanged,
    PackageCode,
    PaymentOption,
    ScheduledInstallment,
    TeamAssigned,
)

from orders.domain.errors import DomainError
from orders.domain.lifecycle import GuardFacts, Override, allowed_moves, check_transition
from orders.domain.milestones import Milestone, progress_percent, standard_milestones


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Order:
    id: UUID
    school_id: UUID
    package_code: PackageCode
    package_version: int
    student_count: int
    add_ons: list[AddOnCode]
    payment_option: PaymentOption
    months: int | None
    currency: Currency
    total: Money
    installments: list[ScheduledInstallment]
    contact: Contact
    created_by: str
    timeline_days: int
    status: OrderStatus = "pending"
    held_from: OrderStatus | None = None
    team: list[str] = field(default_factory=list)
    team_lead: str | None = None
    paid_sequences: set[int] = field(default_factory=set)
    milestones: list[Milestone] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    events: list[Payload] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def place(
        cls,
        *,
        school_id: UUID,
        package_code: PackageCode,
        package_version: int,
        student_count: int,
        add_ons: list[AddOnCode],
        payment_option: PaymentOption,
        months: int | None,
        total: Money,
        installments: list[ScheduledInstallment],
        contact: Contact,
        created_by: str,
        timeline_days: int,
        order_id: UUID | None = None,
    ) -> Order:
        if sum(i.amount.amount_minor for i in installments) != total.amount_minor:
            raise DomainError("the installments do not add up to the order total")
        order = cls(
            id=order_id or uuid4(),
            school_id=school_id,
            package_code=package_code,
            package_version=package_version,
            student_count=student_count,
            add_ons=list(add_ons),
            payment_option=payment_option,
            months=months,
            currency=total.currency,
            total=total,
            installments=list(installments),
            contact=contact,
            created_by=created_by,
            timeline_days=timeline_days,
        )
        order.events.append(
            OrderCreated(
                order_id=order.id,
                school_id=school_id,
                package_code=package_code,
                student_count=student_count,
                add_ons=list(add_ons),
                payment_option=payment_option,
                months=months,
                total=total,
                installments=list(installments),
                contact=contact,
            )
        )
        return order

    # --- facts the guards need -------------------------------------------------------------

    @property
    def signing_paid(self) -> bool:
        signing = [i.sequence for i in self.installments if i.due == "at_signing"]
        return bool(signing) and all(s in self.paid_sequences for s in signing)

    @property
    def all_installments_paid(self) -> bool:
        return all(i.sequence in self.paid_sequences for i in self.installments)

    @property
    def guard_facts(self) -> GuardFacts:
        return GuardFacts(
            has_team=bool(self.team), signing_paid=self.signing_paid, all_installments_paid=self.all_installments_paid
        )

    @property
    def allowed_moves(self) -> frozenset[OrderStatus]:
        return allowed_moves(self.status, self.held_from)

    @property
    def progress_percent(self) -> int:
        return progress_percent(self.milestones)

    # --- behaviour -------------------------------------------------------------------------

    def change_status(
        self,
        target: OrderStatus,
        *,
        changed_by: str,
        reason: str | None = None,
        override: Override | None = None,
        today: date | None = None,
    ) -> None:
        check_transition(self.status, target, self.guard_facts, held_from=self.held_from, override=override)
        previous = self.status
        self.held_from = previous if target == "on_hold" else None
        self.status = target
        if target == "approved" and not self.milestones:
            self.milestones = standard_milestones(today or utcnow().date(), self.timeline_days)
        stated_reason = override.reason if override is not None and target == "in_progress" else reason
        self.events.append(
            OrderStatusChanged(
                order_id=self.id,
                school_id=self.school_id,
                from_status=previous,
                to_status=target,
                reason=stated_reason,
                changed_by=changed_by,
                contact=self.contact,
            )
        )
        if target == "cancelled":
            self.events.append(
                OrderCancelled(order_id=self.id, school_id=self.school_id, reason=reason, contact=self.contact)
            )

    def assign_team(self, members: list[str], lead: str | None = None) -> None:
        unique = list(dict.fromkeys(m.strip() for m in members if m.strip()))
        if not unique:
            raise DomainError("a team needs at least one member")
        if lead is not None and lead not in unique:
            raise DomainError("the team lead must be one of the members")
        self.team = unique
        self.team_lead = lead
        self.events.append(
            TeamAssigned(order_id=self.id, school_id=self.school_id, members=unique, lead=lead, contact=self.contact)
        )

    def record_installment_paid(self, sequence: int) -> None:
        self.paid_sequences.add(sequence)

    def complete_milestone(self, milestone_id: UUID, at: datetime | None = None) -> Milestone:
        for index, milestone in enumerate(self.milestones):
            if milestone.id == milestone_id:
                done = milestone.complete(at or utcnow())
                self.milestones[index] = done
                self.events.append(
                    MilestoneCompleted(
                        order_id=self.id,
                        school_id=self.school_id,
                        milestone_id=done.id,
                        name=done.name,
                        sequence=done.sequence,
                        progress_percent=self.progress_percent,
                        contact=self.contact,
                    )
                )
                return done
        raise DomainError(f"order {self.id} has no milestone {milestone_id}")
