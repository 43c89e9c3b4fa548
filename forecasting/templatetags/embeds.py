"""``{% question_share question community as share %}``: what the question page's Open Graph tags,
oEmbed discovery link and editors' embed code need (forecasting/services/embeds.py), absolute on
``SITE_URL`` because they are read by other sites."""

from __future__ import annotations

import dataclasses

from django import template

from forecasting.models import Question
from forecasting.services import CommunityForecast, embeds

from .forecast_format import describe_distribution

register = template.Library()


def question_summary(question: Question, community: CommunityForecast) -> embeds.Summary:
    """``services.embeds.question_summary``; for a numeric or date question, in its words: the community's
    median as the number, "median (80%: a – b)" as the caption. (The service speaks of probabilities.)"""
    if not question.is_continuous:
        return embeds.question_summary(question=question, community=community)
    plain = CommunityForecast(forecasters=community.forecasters, probabilities=None, method=community.method)
    summary = embeds.question_summary(question=question, community=plain)
    described = describe_distribution(question, community.probabilities)
    if described is None:
        return summary
    is_open = question.accepts_forecasts()
    lead = f"Readers' median: {described['median']} (80%: {described['interval']})"
    count = f"{community.forecasters} forecaster{'' if community.forecasters == 1 else 's'}"
    parts = [lead, count, summary.when]
    if question.status in (Question.Status.RESOLVED, Question.Status.ANNULLED):
        parts = [summary.status_label, lead, count]
    return dataclasses.replace(
        summary,
        number=described["median"],
        caption=f"{'median' if is_open else 'final median'} (80%: {described['interval']})",
        description=" · ".join(parts),
    )


@register.simple_tag
def question_share(question: Question, community: CommunityForecast | None = None) -> dict:
    community = community or CommunityForecast(forecasters=0, probabilities=None)
    width, height = embeds.embed_size(question)
    return {
        **embeds.share_links(question),
        "summary": question_summary(question, community),
        "card_width": embeds.CARD_SIZE[0],
        "card_height": embeds.CARD_SIZE[1],
        "site_name": embeds.SITE_NAME,
        "embed_code": embeds.embed_code(question, width=width, height=height),
    }
