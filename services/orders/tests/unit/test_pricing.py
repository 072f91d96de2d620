from datetime import date
from decimal import Decimal

import pytest
from contracts.money import Money
from hypothesis import given
from hypothesis import strategies as st
from orders.domain.catalogue import STANDARD_ADD_ONS, STANDARD_PACKAGES, AddOn, CarePackage
from orders.domain.errors import InvalidPaymentTerms, MissingExchangeRate
from orders.domain.pricing import ExchangeRate, add_months, price_quote, rate_in_effect

PACKAGES = {p.code: p for p in STANDARD_PACKAGES}
ADD_ONS = {a.code: a for a in STANDARD_ADD_ONS}
SIGNING = date(2026, 1, 31)


def test_reference_figure_growth_with_rush_split_in_usd() -> None:
    quote = price_quote(PACKAGES["growth"], [ADD_ONS["rush_migration"]], "split", "USD", signing_date=SIGNING)
    assert quote.total == Money(amount_minor=750_000, currency="USD")
    assert [i.amount.amount_minor for i in quote.installments] == [375_000, 375_000]
    assert [i.due for i in quote.installments] == ["at_signing", "at_go_live"]
    assert [(line.kind, line.code, line.amount.amount_minor) for line in quote.lines] == [
        ("base", "growth", 650_000),
        ("add_on", "rush_migration", 100_000),
    ]


def test_full_payment_takes_five_percent_off_as_its_own_line() -> None:
    quote = price_quote(PACKAGES["foundation"], [ADD_ONS["weekend_work"]], "full", "USD", signing_date=SIGNING)
    assert quote.subtotal.amount_minor == 330_000
    assert quote.discount.amount_minor == 16_500
    assert quote.total.amount_minor == 313_500
    assert quote.lines[-1].kind == "discount"
    assert len(quote.installments) == 1


def test_extended_monthly_installments_spread_the_rounding_and_fall_due_monthly() -> None:
    quote = price_quote(PACKAGES["foundation"], [], "extended", "USD", signing_date=SIGNING, months=3)
    amounts = [i.amount.amount_minor for i in quote.installments]
    assert amounts == [93_334, 93_333, 93_333]
    assert sum(amounts) == 280_000
    assert [i.due_date for i in quote.installments] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]
    assert quote.installments[0].due == "at_signing"


@pytest.mark.parametrize(("option", "months"), [("extended", 2), ("extended", 13), ("extended", None), ("split", 4)])
def test_payment_terms_outside_the_rules_are_refused(option: str, months: int | None) -> None:
    with pytest.raises(InvalidPaymentTerms):
        price_quote(PACKAGES["growth"], [], option, "USD", signing_date=SIGNING, months=months)  # type: ignore[arg-type]


def test_zwl_quote_states_its_rate_and_converts_every_line() -> None:
    rate = ExchangeRate(currency="ZWL", rate=Decimal("26.7534"), effective_date=date(2026, 1, 1))
    quote = price_quote(
        PACKAGES["growth"], [ADD_ONS["rush_migration"]], "full", "ZWL", signing_date=SIGNING, exchange_rate=rate
    )
    assert quote.exchange_rate == rate
    assert quote.lines[0].amount == Money(amount_minor=17_389_710, currency="ZWL")
    assert quote.lines[1].amount == Money(amount_minor=2_675_340, currency="ZWL")
    assert quote.total.amount_minor == quote.subtotal.amount_minor - quote.discount.amount_minor
    assert all(i.amount.currency == "ZWL" for i in quote.installments)


def test_zwl_without_a_rate_is_refused() -> None:
    with pytest.raises(MissingExchangeRate):
        price_quote(PACKAGES["growth"], [], "full", "ZWL", signing_date=SIGNING)


def test_the_newest_rate_not_after_the_day_is_in_effect() -> None:
    old = ExchangeRate("ZWL", Decimal("20"), date(2026, 1, 1))
    new = ExchangeRate("ZWL", Decimal("25"), date(2026, 2, 1))
    future = ExchangeRate("ZWL", Decimal("30"), date(2026, 3, 1))
    assert rate_in_effect([old, new, future], "ZWL", date(2026, 2, 15)) is new
    with pytest.raises(MissingExchangeRate):
        rate_in_effect([new], "ZWL", date(2025, 12, 31))


def test_duplicate_add_ons_are_refused() -> None:
    with pytest.raises(InvalidPaymentTerms):
        price_quote(PACKAGES["growth"], [ADD_ONS["weekend_work"]] * 2, "full", "USD", signing_date=SIGNING)


def test_a_revised_package_is_a_new_version_and_the_quote_records_it() -> None:
    revised = PACKAGES["growth"].revised(price=Money(amount_minor=700_000, currency="USD"))
    assert revised.version == 2
    assert PACKAGES["growth"].price.amount_minor == 650_000
    quote = price_quote(revised, [], "split", "USD", signing_date=SIGNING)
    assert quote.lines[0].version == 2
    assert quote.total.amount_minor == 700_000


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)


prices = st.integers(min_value=0, max_value=10_000_000_00)


@st.composite
def quotes(draw: st.DrawFn) -> tuple[object, ...]:
    package = CarePackage(
        code="growth",
        name="P",
        price=Money(amount_minor=draw(prices), currency="USD"),
        min_students=1,
        max_students=None,
        base_timeline_days=10,
    )
    codes = draw(st.lists(st.sampled_from(["rush_migration", "onsite_training", "weekend_work"]), unique=True))
    add_ons = [AddOn(code=c, name=c, price=Money(amount_minor=draw(prices), currency="USD")) for c in codes]
    option = draw(st.sampled_from(["full", "split", "extended"]))
    months = draw(st.integers(3, 12)) if option == "extended" else None
    currency = draw(st.sampled_from(["USD", "ZWL"]))
    rate = (
        ExchangeRate("ZWL", draw(st.decimals("0.0001", "100000", places=4)), date(2026, 1, 1))
        if currency == "ZWL"
        else None
    )
    signing = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)))
    return package, add_ons, option, currency, months, rate, signing


@given(quotes())
def test_lines_and_installments_always_add_up_to_the_total(case: tuple) -> None:  # type: ignore[type-arg]
    package, add_ons, option, currency, months, rate, signing = case
    quote = price_quote(package, add_ons, option, currency, signing_date=signing, months=months, exchange_rate=rate)
    charged = sum(line.amount.amount_minor for line in quote.lines if line.kind != "discount")
    assert charged == quote.subtotal.amount_minor
    assert quote.subtotal.amount_minor - quote.discount.amount_minor == quote.total.amount_minor
    assert sum(i.amount.amount_minor for i in quote.installments) == quote.total.amount_minor
    assert all(i.amount.currency == currency for i in quote.installments)
    assert [i.sequence for i in quote.installments] == list(range(1, len(quote.installments) + 1))
    amounts = [i.amount.amount_minor for i in quote.installments]
    assert max(amounts) - min(amounts) <= 1  # equal payments, differing by at most the rounding cent
    if option == "full":
        assert quote.discount.amount_minor == (quote.subtotal.amount_minor * 500 + 5000) // 10000
    else:
        assert quote.discount.amount_minor == 0
