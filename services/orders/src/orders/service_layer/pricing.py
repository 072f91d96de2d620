"""Price a request against the current catalogue and rates: shared by quotes and orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from contracts.money import Currency
from contracts.orders import AddOnCode, PackageCode, PaymentOption
from sqlalchemy.ext.asyncio import AsyncSession

from orders.adapters import catalogue_repository as catalogue
from orders.domain.assessment import RequirementsAssessment, TimelineEstimate, estimate_timeline
from orders.domain.catalogue import CarePackage
from orders.domain.errors import UnknownAddOn, UnknownPackage
from orders.domain.pricing import CATALOGUE_CURRENCY, Quote, price_quote, rate_in_effect
from orders.domain.recommendation import ensure_package_fits, recommend_package


@dataclass(frozen=True)
class PricedRequest:
    quote: Quote
    recommended: CarePackage
    timeline: TimelineEstimate


async def price_request(
    session: AsyncSession,
    *,
    package_code: PackageCode | None,
    student_count: int,
    add_on_codes: list[AddOnCode],
    payment_option: PaymentOption,
    months: int | None,
    currency: Currency,
    assessment: RequirementsAssessment | None,
    today: date,
) -> PricedRequest:
    packages = await catalogue.current_packages(session)
    add_ons_by_code = {a.code: a for a in await catalogue.current_add_ons(session)}
    recommended = recommend_package(student_count, packages)
    if package_code is None:
        package = recommended
    else:
        chosen = next((p for p in packages if p.code == package_code), None)
        if chosen is None:
            raise UnknownPackage(package_code)
        ensure_package_fits(chosen, student_count, packages)
        package = chosen
    unknown = [code for code in add_on_codes if code not in add_ons_by_code]
    if unknown:
        raise UnknownAddOn(unknown[0])
    add_ons = [add_ons_by_code[code] for code in add_on_codes]
    rate = None
    if currency != CATALOGUE_CURRENCY:
        rate = rate_in_effect(await catalogue.exchange_rates(session, currency), currency, today)
    quote = price_quote(
        package, add_ons, payment_option, currency, signing_date=today, months=months, exchange_rate=rate
    )
    needs = assessment or RequirementsAssessment(school_name="", student_count=student_count)
    timeline = estimate_timeline(needs, package, add_ons, today)
    return PricedRequest(quote=quote, recommended=recommended, timeline=timeline)


def quote_body(priced: PricedRequest) -> dict[str, Any]:
    """The quote as the API shows and stores it."""
    quote, timeline = priced.quote, priced.timeline
    rate = quote.exchange_rate
    return {
        "package": {"code": quote.package.code, "name": quote.package.name, "version": quote.package.version},
        "recommended_package": priced.recommended.code,
        "add_ons": [a.code for a in quote.add_ons],
        "payment_option": quote.payment_option,
        "months": quote.months,
        "currency": quote.currency,
        "exchange_rate": None
        if rate is None
        else {"currency": rate.currency, "rate": str(rate.rate), "effective_date": rate.effective_date.isoformat()},
        "lines": [
            {
                "kind": line.kind,
                "code": line.code,
                "label": line.label,
                "amount": line.amount.model_dump(),
                "version": line.version,
            }
            for line in quote.lines
        ],
        "subtotal": quote.subtotal.model_dump(),
        "discount": quote.discount.model_dump(),
        "total": quote.total.model_dump(),
        "installments": [i.model_dump(mode="json") for i in quote.installments],
        "timeline": {
            "working_days": timeline.working_days,
            "estimated_go_live": timeline.estimated_go_live.isoformat(),
            "rush": timeline.rush,
            "meets_preferred_go_live": timeline.meets_preferred_go_live,
            "notes": list(timeline.notes),
        },
    }
