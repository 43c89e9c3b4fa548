"""``{% question_share question community as share %}``: what the question page's Open Graph tags,
oEmbed discovery link and editors' embed code need (forecasting/services/embeds.py), absolute on
``SITE_URL`` because they are read by other sites."""

from __future__ import annotations

from django import template

from forecasting.models import Question
from forecasting.services import CommunityForecast, embeds

register = template.Library()


@register.simple_tag
def question_share(question: Question, community: CommunityForecast | None = None) -> dict:
    community = community or CommunityForecast(forecasters=0, probabilities=None)
    width, height = embeds.embed_size(question)
    return {
        **embeds.share_links(question),
        "summary": embeds.question_summary(question=question, community=community),
        "card_width": embeds.CARD_SIZE[0],
        "card_height": embeds.CARD_SIZE[1],
        "site_name": embeds.SITE_NAME,
        "embed_code": embeds.embed_code(question, width=width, height=height),
    }
