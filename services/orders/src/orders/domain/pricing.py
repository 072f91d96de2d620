"""Quotes: an itemised price and the installment schedule, in integer minor units that always add up."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from contracts.money import Currency, Money, percent_of, split_evenly
from contracts.orders import PaymentOption, ScheduledInstallment

from orders.domain.catalogue import AddOn, CarePackage
from orders.domain.errors import InvalidPaymentTerms, MissingExchangeRate

FULL_PAYMENT_DISCOUNT_BP = 500  # 5 %, in basis points
MIN_EXTENDED_MONTHS = 3
MAX_EXTENDED_MONTHS = 12
CATALOGUE_CURRENCY: Currency = "USD"


@dataclass(frozen=True)
class ExchangeRate:
    """Units of `currency` per one catalogue-currency unit, valid from `effective_date`."""

    currency: Currency
    rate: Decimal
    effective_date: date

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("an exchange rate must be positive")

    def convert_minor(self, catalogue_minor: int) -> int:
        converted = (Decimal(catalogue_minor) * self.rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(converted)


def rate_in_effect(rates: Sequence[ExchangeRate], currency: Currency, on: date) -> ExchangeRate:
    """The newest rate for `currency` whose effective date is not after `on`."""
    candidates = [r for r in rates if r.currency == currency and r.effective_date <= on]
    if not candidates:
        raise MissingExchangeRate(f"no {currency} exchange rate is in effect on {on.isoformat()}")
    return max(candidates, key=lambda r: r.effective_date)


LineKind = Literal["base", "add_on", "discount"]


@dataclass(frozen=True)
class QuoteLine:
    kind: LineKind
    code: str
    label: str
    amount: Money  # discounts are stated as a positive amount taken off
    version: int | None = None


@dataclass(frozen=True)
class Quote:
    package: CarePackage
    add_ons: tuple[AddOn, ...]
    payment_option: PaymentOption
    months: int | None
    currency: Currency
    exchange_rate: ExchangeRate | None
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    discount: Money
    total: Money
    installments: tuple[ScheduledInstallment, ...]


def add_months(start: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def validate_terms(payment_option: PaymentOption, months: int | None) -> None:
    if payment_option == "extended":
        if months is None or not MIN_EXTENDED_MONTHS <= months <= MAX_EXTENDED_MONTHS:
            raise InvalidPaymentTerms(
                f"extended payment needs between {MIN_EXTENDED_MONTHS} and {MAX_EXTENDED_MONTHS} monthly payments"
            )
    elif months is not None:
        raise InvalidPaymentTerms(f"months only apply to the extended payment option, not {payment_option}")


def schedule_installments(
    total: Money, payment_option: PaymentOption, months: int | None, signing_date: date
) -> tuple[ScheduledInstallment, ...]:
    """Installments that add up exactly to `total`; any rounding cent goes to the earliest ones."""
    validate_terms(payment_option, months)
    currency = total.currency
    if payment_option == "full":
        return (ScheduledInstallment(sequence=1, label="Full payment", amount=total, due="at_signing"),)
    if payment_option == "split":
        signing, go_live = split_evenly(total.amount_minor, 2)
        return (
            ScheduledInstallment(
                sequence=1,
                label="50% at signing",
                amount=Money(amount_minor=signing, currency=currency),
                due="at_signing",
            ),
            ScheduledInstallment(
                sequence=2,
                label="50% at go-live",
                amount=Money(amount_minor=go_live, currency=currency),
                due="at_go_live",
            ),
        )
    assert months is not None  # validate_terms guarantees it
    parts = split_evenly(total.amount_minor, months)
    return tuple(
        ScheduledInstallment(
            sequence=i + 1,
            label=f"Month {i + 1} of {months}",
            amount=Money(amount_minor=amount, currency=currency),
            # The first monthly payment is the signing payment; the rest fall due month by month.
            due="at_signing" if i == 0 else "on_date",
            due_date=signing_date if i == 0 else add_months(signing_date, i),
        )
        for i, amount in enumerate(parts)
    )


def price_quote(
    package: CarePackage,
    add_ons: Sequence[AddOn],
    payment_option: PaymentOption,
    currency: Currency,
    *,
    signing_date: date,
    months: int | None = None,
    exchange_rate: ExchangeRate | None = None,
) -> Quote:
    """Itemise the price. Each line is converted on its own, so the lines add up in the quoted currency too."""
    validate_terms(payment_option, months)
    if len({a.code for a in add_ons}) != len(add_ons):
        raise InvalidPaymentTerms("each add-on can be chosen only once")
    if currency != CATALOGUE_CURRENCY:
        if exchange_rate is None or exchange_rate.currency != currency:
            raise MissingExchangeRate(f"quoting in {currency} needs a {currency} exchange rate")
    else:
        exchange_rate = None
    rate = exchange_rate

    def convert(minor: int) -> int:
        return rate.convert_minor(minor) if rate is not None else minor

    def money(minor: int) -> Money:
        return Money(amount_minor=minor, currency=currency)

    lines = [QuoteLine("base", package.code, package.name, money(convert(package.price.amount_minor)), package.version)]
    lines += [QuoteLine("add_on", a.code, a.name, money(convert(a.price.amount_minor)), a.version) for a in add_ons]
    subtotal = money(sum(line.amount.amount_minor for line in lines))
    discount = money(percent_of(subtotal.amount_minor, FULL_PAYMENT_DISCOUNT_BP) if payment_option == "full" else 0)
    if discount.amount_minor:
        lines.append(QuoteLine("discount", "full_payment", "Full payment discount (5%)", discount))
    total = subtotal - discount
    return Quote(
        package=package,
        add_ons=tuple(add_ons),
        payment_option=payment_option,
        months=months,
        currency=currency,
        exchange_rate=exchange_rate,
        lines=tuple(lines),
        subtotal=subtotal,
        discount=discount,
        total=total,
        installments=schedule_installments(total, payment_option, months, signing_date),
    )
