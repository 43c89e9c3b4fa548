"""The question page's extension point: other apps add panels to it, and forecasting never imports them.

An app registers its panel when Django starts (from its ``AppConfig.ready()``; the market's trade
panel is in market/panels.py). On every question page each registered panel's context function is
called with the request and the question; a function that returns ``None`` leaves its panel out
(a question without a market, say). The page renders the panel's ``template`` in its side column
and, when there is one, its ``headline_template`` under the community prediction; both see the
page's context plus the panel's own (``{% question_panel %}`` in templatetags/question_panels.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from forecasting.models import Question

PanelContext = Callable[[HttpRequest, Question], dict[str, Any] | None]


@dataclass(frozen=True)
class QuestionPanel:
    name: str
    template: str
    context: PanelContext
    headline_template: str | None = None


@dataclass(frozen=True)
class ShownPanel:
    """A panel on one question page: its templates and the context they render with."""

    template: str
    headline_template: str | None
    context: dict[str, Any]


_panels: dict[str, QuestionPanel] = {}


def register_question_panel(
    name: str, *, template: str, context: PanelContext, headline_template: str | None = None
) -> QuestionPanel:
    """Add a panel to every question page; registering a name again replaces that panel."""
    panel = QuestionPanel(name=name, template=template, context=context, headline_template=headline_template)
    _panels[name] = panel
    return panel


def question_panels(request: HttpRequest, question: Question) -> list[ShownPanel]:
    """The panels this question page shows, in the order they were registered."""
    shown = []
    for panel in _panels.values():
        context = panel.context(request, question)
        if context is not None:
            shown.append(ShownPanel(panel.template, panel.headline_template, context))
    return shown
