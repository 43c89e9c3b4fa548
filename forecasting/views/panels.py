"""The question page's extension point: other apps add panels to it, and forecasting never imports them.

An app registers its panel when Django starts (from its ``AppConfig.ready()``; the market's trade
panel is in market/panels.py). On every question page each registered panel's context function is
called with the request and the question; a function that returns ``None`` leaves its panel out
(a question without a market, say). The page renders the panel's ``template`` in its side column
and, when there is one, its ``headline_template`` under the community prediction; both see the
page's context plus the panel's own (``{% question_panel %}`` in templatetags/question_panels.py).
A panel registered with ``placement="below"`` is a full-width section under the page instead (the
comments' discussion): ``question_panels()`` lists the side panels, and its ``below`` those.
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
    placement: str = "side"


PLACEMENTS = ("side", "below")


@dataclass(frozen=True)
class ShownPanel:
    """A panel on one question page: its templates and the context they render with."""

    template: str
    headline_template: str | None
    context: dict[str, Any]


class ShownPanels(list):
    """The side panels of one question page (a list of ``ShownPanel``) and, in ``below``, its full-width sections."""

    def __init__(self, side: list[ShownPanel], below: list[ShownPanel]) -> None:
        super().__init__(side)
        self.below = below


_panels: dict[str, QuestionPanel] = {}


def register_question_panel(
    name: str,
    *,
    template: str,
    context: PanelContext,
    headline_template: str | None = None,
    placement: str = "side",
) -> QuestionPanel:
    """Add a panel to every question page; registering a name again replaces that panel."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, not {placement!r}")
    panel = QuestionPanel(
        name=name, template=template, context=context, headline_template=headline_template, placement=placement
    )
    _panels[name] = panel
    return panel


def question_panels(request: HttpRequest, question: Question) -> ShownPanels:
    """The panels this question page shows, in the order they were registered: the side ones, and the
    full-width ones in ``.below``."""
    shown: dict[str, list[ShownPanel]] = {placement: [] for placement in PLACEMENTS}
    for panel in _panels.values():
        context = panel.context(request, question)
        if context is not None:
            shown[panel.placement].append(ShownPanel(panel.template, panel.headline_template, context))
    return ShownPanels(shown["side"], shown["below"])
