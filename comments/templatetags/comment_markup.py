"""``{{ text|markdown }}``: readers' Markdown as sanitised HTML (``comments.markup``); and
``{% forecast_label ... %}``: the author's forecast beside a comment or rationale."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from comments.markup import render_markdown
from comments.services import describe_forecast

register = template.Library()


@register.filter
def markdown(source: str) -> SafeString:
    # Safe to mark: render_markdown's output went through nh3's allow-list (comments/markup.py).
    return mark_safe(render_markdown(source or ""))


@register.simple_tag
def forecast_pairs(probability, options, labels) -> list[tuple[str, float]]:
    return describe_forecast(probability, options, labels)
