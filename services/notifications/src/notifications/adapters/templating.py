"""Jinja2 templates, one file per (language, template) with one block per channel part.

Blocks: `sms` (SMS text, also WhatsApp's text and the e-mail's text part), `subject` and, optionally,
`html` (else the text is wrapped in the e-mail layout). Undefined variables raise: a message is
either rendered whole or not at all.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound, select_autoescape

TEMPLATES_DIR = Path(__file__).parents[1] / "templates"
FALLBACK_LANGUAGE = "en"
LANGUAGES = ("en", "sn", "nd")


class RenderError(Exception):
    """The template is missing, broken, or needs a variable the event did not carry."""


@dataclass(frozen=True)
class Rendered:
    language: str
    text: str
    subject: str
    html: str


class Templates:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=select_autoescape(default=False, default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._html_env = Environment(loader=FileSystemLoader(directory), undefined=StrictUndefined, autoescape=True)

    def exists(self, template: str, language: str = FALLBACK_LANGUAGE) -> bool:
        try:
            self._env.get_template(f"{language}/{template}.j2")
        except TemplateNotFound:
            return False
        return True

    def language_for(self, template: str, wanted: str | None) -> str:
        """The recipient's language when that translation exists, else English."""
        if wanted and wanted in LANGUAGES and self.exists(template, wanted):
            return wanted
        return FALLBACK_LANGUAGE

    def render(self, template: str, language: str | None, variables: dict[str, Any]) -> Rendered:
        lang = self.language_for(template, language)
        name = f"{lang}/{template}.j2"
        try:
            tpl = self._env.get_template(name)
            blocks = tpl.blocks
            context = tpl.new_context(dict(variables))
            text = "".join(blocks["sms"](context)).strip()
            subject = "".join(blocks["subject"](context)).strip() if "subject" in blocks else text[:60]
            if "html" in blocks:
                html = "".join(blocks["html"](tpl.new_context(dict(variables)))).strip()
            else:
                html = self._html_env.get_template("_layout.html.j2").render(
                    subject=subject, paragraphs=[p for p in text.split("\n") if p.strip()]
                )
        except TemplateNotFound as exc:
            raise RenderError(f"template {name} not found ({exc.name})") from None
        except (TemplateError, KeyError) as exc:
            raise RenderError(f"template {name} failed to render: {type(exc).__name__}: {exc}") from None
        if not text:
            raise RenderError(f"template {name} rendered an empty text")
        return Rendered(language=lang, text=text, subject=subject, html=html)
