"""Questions in other sites' pages: the words the embed, the oEmbed answer, the Open Graph tags and the
preview card share, the embed code, and the card's PNG.

Reads only. The card is drawn by the pure ``forecasting.cards`` and kept in Django's cache (Redis in
production), keyed by the question's latest headline snapshot, so it is redrawn when the number moves
and never written to the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html

from .. import cards
from ..models import AggregateSnapshot, Question
from . import history
from .aggregates import HEADLINE_METHOD, CommunityForecast
from .questions import active_resolution

SITE_NAME = "Newsroom Forecasts"
EMBED_WIDTH = 480  # px: fits a phone column and an article's body column
# px: a three-line title (the most the embed shows), the number or three options, facts, link, measured
# from 300 px (a phone's article column) to EMBED_WIDTH, so the frame never scrolls.
EMBED_HEIGHT = {"binary": 245, "multiple_choice": 320}
NARROW_WIDTH = 300  # narrower still, the facts wrap too
NARROW_EXTRA_HEIGHT = 40
CACHE_SECONDS = 300  # how long browsers, proxies and oEmbed consumers may keep an answer
CARD_CACHE_SECONDS = 24 * 3600  # the key changes with the number, so the image may stay long
CARD_SIZE = (cards.WIDTH, cards.HEIGHT)
CARD_POINTS = 160  # the card's chart is 520 px wide
TOP_OPTIONS = 3


def absolute_url(path: str) -> str:
    """``path`` on the site's public address (``SITE_URL``): shared links and embed code leave the site."""
    return settings.SITE_URL + path


def whole_percent(probability: float) -> str:
    """37% in words a headline can carry: never "0%" or "100%" for a forecast that is not certain."""
    value = round(probability * 100)
    if value == 0 and probability > 0:
        return "<1%"
    if value == 100 and probability < 1:
        return ">99%"
    return f"{value}%"


def _day(value: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(value), "j M Y")


class Option(NamedTuple):
    index: int  # the option's position: its colour in the charts
    label: str
    probability: float


@dataclass(frozen=True)
class Summary:
    """A question's community forecast in words, as a shared link, the card and the embed say it."""

    number: str  # "37%", or the leading option's share; "" before the first forecast
    caption: str  # "chance of YES", "Oman leads", "No forecasts yet"
    top_options: list[Option]  # multiple choice: the leading options, most likely first
    forecasters: int
    status_label: str  # "Open", "Closed", "Resolved: YES", "Annulled"
    when: str  # "closes 3 Mar 2026", "closed 3 Mar 2026"
    description: str  # og:description: "Readers give it 37% · 120 forecasters · closes 3 Mar 2026"


def top_options(question: Question, community: CommunityForecast, limit: int = TOP_OPTIONS) -> list[Option]:
    """A multiple-choice question's most likely options by the community, ties in the question's order."""
    if question.is_binary or community.probabilities is None:
        return []
    labelled = [Option(i, option.label, community.probabilities[i]) for i, option in enumerate(question.options.all())]
    return sorted(labelled, key=lambda option: -option.probability)[:limit]


def question_summary(*, question: Question, community: CommunityForecast, now: dt.datetime | None = None) -> Summary:
    """What a shared link, the card and the embed say of the question (one more query when resolved)."""
    now = now or timezone.now()
    status = question.status
    if status == Question.Status.RESOLVED:
        resolution = active_resolution(question)
        status_label = f"Resolved: {resolution.describe()}" if resolution else question.get_status_display()
    else:
        status_label = question.get_status_display()
    is_open = status == Question.Status.OPEN and question.closes_at > now
    when = f"closes {_day(question.closes_at)}" if is_open else f"closed {_day(question.closes_at)}"
    leading = top_options(question, community)
    if community.probabilities is None:
        number, caption, lead = "", "No forecasts yet", "No forecasts yet"
    elif question.is_binary:
        number = whole_percent(community.probability_yes)
        caption = "chance of YES" if is_open else "final chance of YES"
        lead = f"Readers {'give' if is_open else 'gave'} it {number}"
    else:
        _, label, probability = leading[0]
        number = whole_percent(probability)
        caption = f"{label} {'leads' if is_open else 'led'}"
        lead = f"Readers {'favour' if is_open else 'favoured'} {label} ({number})"
    count = f"{community.forecasters} forecaster{'' if community.forecasters == 1 else 's'}"
    parts = [lead, count, when]
    if status in (Question.Status.RESOLVED, Question.Status.ANNULLED):
        parts = [status_label, lead, count]
    return Summary(
        number=number,
        caption=caption,
        top_options=leading,
        forecasters=community.forecasters,
        status_label=status_label,
        when=when,
        description=" · ".join(parts),
    )


def embed_size(question: Question, maxwidth: int | None = None, maxheight: int | None = None) -> tuple[int, int]:
    """The iframe's width and height, within the consumer's limits (oEmbed maxwidth/maxheight)."""
    width = min(EMBED_WIDTH, maxwidth) if maxwidth else EMBED_WIDTH
    height = EMBED_HEIGHT["binary" if question.is_binary else "multiple_choice"]
    if width < NARROW_WIDTH:
        height += NARROW_EXTRA_HEIGHT
    return width, min(height, maxheight) if maxheight else height


def embed_url(question: Question, *, theme: str = "") -> str:
    path = reverse("question_embed", kwargs={"pk": question.pk})
    return absolute_url(path + ("?theme=dark" if theme == "dark" else ""))


def embed_code(question: Question, *, width: int, height: int, theme: str = "") -> str:
    """The iframe another site pastes: lazy, titled for screen readers, no border."""
    return format_html(
        '<iframe src="{}" width="{}" height="{}" title="{}" loading="lazy" '
        'style="border:0;max-width:100%" referrerpolicy="strict-origin-when-cross-origin"></iframe>',
        embed_url(question, theme=theme),
        width,
        height,
        f"Forecast: {question.title}",
    )


def share_links(question: Question) -> dict[str, str]:
    """The question's absolute addresses: page, embed, oEmbed (for discovery) and card image."""
    page = absolute_url(question.get_absolute_url())
    oembed = reverse("oembed")
    return {
        "page": page,
        "embed": embed_url(question),
        "oembed": absolute_url(f"{oembed}?{urlencode({'url': page, 'format': 'json'})}"),
        "card": absolute_url(reverse("question_card_image", kwargs={"pk": question.pk})),
    }


def _card_key(question: Question, snapshot_id: int | None) -> str:
    # The snapshot moves with every forecast; updated_at and the status with edits and status changes.
    stamp = question.updated_at.timestamp() if question.updated_at else 0
    return f"embeds:card:v1:{question.pk}:{snapshot_id or 0}:{question.status}:{stamp}"


def card_png(*, question: Question) -> bytes:
    """The question's 1200x630 preview card, from the cache when the number has not moved."""
    latest = (
        AggregateSnapshot.objects.filter(question=question, method=HEADLINE_METHOD)
        .order_by("-at", "-id")
        .values_list("id", "probabilities", "forecasters")
        .first()
    )
    key = _card_key(question, latest[0] if latest else None)
    png = cache.get(key)
    if png is not None:
        return png
    community = (
        CommunityForecast(forecasters=latest[2], probabilities=list(latest[1]))
        if latest
        else CommunityForecast(forecasters=0, probabilities=None)
    )
    summary = question_summary(question=question, community=community)
    series = history.community_series(question=question, max_points=CARD_POINTS) if latest else []
    lines = [list(zip(s.times, s.values, strict=True)) for s in series]
    if not question.is_binary:  # the leading options' lines, in the bars' colours (by rank)
        lines = [lines[option.index] for option in summary.top_options if option.index < len(lines)]
    card = cards.Card(
        title=question.title,
        headline=summary.number if question.is_binary else "",
        caption=summary.caption,
        facts=f"{summary.forecasters} forecaster{'' if summary.forecasters == 1 else 's'} · {summary.when}",
        status=question.status,
        status_label=summary.status_label,
        options=[(option.label, option.probability) for option in summary.top_options],
        lines=lines,
        site_name=SITE_NAME,
    )
    png = cards.render_card(card)
    cache.set(key, png, CARD_CACHE_SECONDS)
    return png
