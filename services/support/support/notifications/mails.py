"""Mail texts, rendered from Jinja2 templates.

Each mail has two templates under `templates/`: `<name>.txt`, the plain-text
body, which also sets the subject line with `{% set subject %}…{% endset %}`,
and `<name>.html`, the HTML body, which extends `_layout.html` and is
autoescaped (a ticket's subject is the client's own text). Undefined names
are errors, so a template that names a missing value fails its test instead
of mailing a blank.
"""

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_templates = Environment(
    loader=PackageLoader("support.notifications", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(name: str, context: dict[str, Any]) -> RenderedMail:
    """The subject, text and HTML of mail `name` for `context`."""
    text_module = _templates.get_template(f"{name}.txt").make_module(context)
    # One line, whatever the ticket subject held: a header cannot break.
    subject = " ".join(str(text_module.subject).split())
    html = _templates.get_template(f"{name}.html").render(context)
    return RenderedMail(
        subject=subject, text=str(text_module).strip() + "\n", html=html
    )
