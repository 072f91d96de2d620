from pathlib import Path

import pytest
from notifications.adapters.templating import LANGUAGES, RenderError, Templates

TEMPLATES = sorted(
    p.stem for p in (Path(__import__("notifications").__file__).parent / "templates" / "en").glob("*.j2")
)
VARIABLES = {
    "name": "Mrs Moyo",
    "order_ref": "AB12CD34",
    "package": "Growth",
    "total": "USD 7,500.00",
    "first_amount": "USD 3,750.00",
    "installments": 2,
    "status": "in progress",
    "reason": "card declined",
    "milestone": "Data migration",
    "progress": 50,
    "amount": "USD 3,750.00",
    "provider": "Paynow",
    "sequence": 2,
    "due_date": "2026-12-01",
    "days_overdue": 3,
    "percent": 50,
    "phase": "load",
    "rows_migrated": 1200,
    "rows_total": 1210,
    "subject": "Holiday notice",
    "text": "School closes on Friday.",
    "url": "https://hooks.example/oneclass",
    "since": "2026-11-01",
    "lead": "2 h",
    "starts_at": "01 Dec 2026 18:00 CAT",
}


def test_every_template_exists_in_every_language() -> None:
    templates = Templates()
    assert len(TEMPLATES) >= 15
    for name in TEMPLATES:
        for language in LANGUAGES:
            assert templates.exists(name, language), f"{language}/{name}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_in_each_language(template: str, language: str) -> None:
    rendered = Templates().render(template, language, VARIABLES)
    assert rendered.language == language
    assert rendered.text
    assert rendered.subject
    assert "{{" not in rendered.text
    assert "<html>" in rendered.html


def test_languages_differ() -> None:
    texts = {lang: Templates().render("payment_failed", lang, VARIABLES).text for lang in LANGUAGES}
    assert len(set(texts.values())) == 3
    assert texts["sn"].startswith("Mhoro")
    assert texts["nd"].startswith("Sawubona")


def test_unknown_language_falls_back_to_english() -> None:
    rendered = Templates().render("order_created", "fr", VARIABLES)
    assert rendered.language == "en"
    assert rendered.text.startswith("Hello Mrs Moyo")


def test_missing_variable_fails_the_whole_message() -> None:
    variables = {k: v for k, v in VARIABLES.items() if k != "amount"}
    with pytest.raises(RenderError, match="amount"):
        Templates().render("payment_succeeded", "sn", variables)


def test_html_part_escapes_values() -> None:
    rendered = Templates().render("order_created", "en", {**VARIABLES, "name": "<script>x</script>"})
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
