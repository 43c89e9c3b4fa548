"""The preview card (forecasting/cards.py): a pure drawing, tested without Django."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from forecasting import cards

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LINE = [(0.0, 0.5), (3600.0, 0.42), (7200.0, 0.37)]


def card(**changes) -> cards.Card:
    values = {
        "title": "Will a ceasefire be announced by March?",
        "headline": "37%",
        "caption": "chance of YES",
        "facts": "120 forecasters · closes 3 Mar 2026",
        "status": "open",
        "status_label": "Open",
        "lines": [LINE],
    }
    return cards.Card(**(values | changes))


def image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


def test_a_card_is_a_1200_by_630_png():
    png = cards.render_card(card())
    assert png.startswith(PNG_SIGNATURE)
    drawn = image(png)
    assert drawn.format == "PNG" and drawn.size == (1200, 630)


def test_the_same_values_draw_the_same_card_and_other_numbers_another():
    assert cards.render_card(card()) == cards.render_card(card())
    assert cards.render_card(card(headline="64%")) != cards.render_card(card())
    assert cards.render_card(card(lines=[[*LINE, (9000.0, 0.8)]])) != cards.render_card(card())
    assert cards.render_card(card(facts="121 forecasters · closes 3 Mar 2026")) != cards.render_card(card())


def test_the_number_is_drawn_in_the_accent_colour():
    drawn = image(cards.render_card(card())).convert("RGB")
    number_area = drawn.crop((60, 330, 560, 480))
    assert cards.ACCENT in {colour for _, colour in number_area.getcolors(maxcolors=100_000)}
    blank = image(cards.render_card(card(headline="", caption="No forecasts yet", lines=[]))).convert("RGB")
    assert cards.ACCENT not in {colour for _, colour in blank.crop((60, 330, 560, 480)).getcolors(maxcolors=100_000)}


@pytest.mark.parametrize(
    "title",
    [
        "Short?",
        "Will the negotiators of both delegations agree, before the end of the second quarter of 2026, on a "
        "written framework for a permanent ceasefire monitored by a third party, with a timetable for prisoner "
        "exchanges and the reopening of the border crossings?",
        "Willthisunbrokenstringofcharacterswithnospacesatallstillfitonthecardwithoutspillingoverits edges?",
        "Émile’s café: will «naïve» ünïcödé — and emoji-free punctuation — render?",
    ],
)
def test_any_title_fits_in_three_lines(title):
    lines, face = cards.fit_title(title, 1200 - 2 * cards.MARGIN)
    assert 1 <= len(lines) <= 3
    assert all(face.getlength(line) <= 1200 - 2 * cards.MARGIN for line in lines)
    assert image(cards.render_card(card(title=title))).size == (1200, 630)


def test_wrap_keeps_every_word_in_order():
    face = cards.font("DejaVuSans.ttf", 40)
    text = "one two three four five six seven eight nine ten eleven twelve"
    lines = cards.wrap(text, face, 300)
    assert len(lines) > 1 and " ".join(lines) == text


def test_a_multiple_choice_card_draws_its_options_and_a_line_each():
    png = cards.render_card(
        card(
            headline="",
            options=[("Oman", 0.52), ("Qatar", 0.31), ("Egypt", 0.17)],
            lines=[LINE, [(t, 1 - v) for t, v in LINE]],
        )
    )
    assert image(png).size == (1200, 630)


def test_a_card_without_history_or_number_still_draws():
    png = cards.render_card(
        card(headline="", caption="No forecasts yet", lines=[], status="draft", status_label="Draft")
    )
    assert png.startswith(PNG_SIGNATURE)


def test_step_points_hold_each_value_until_the_next():
    box = (0.0, 0.0, 100.0, 100.0)
    assert cards.step_points([(0.0, 0.5), (10.0, 1.0)], box) == [(0.0, 50.0), (100.0, 50.0), (100.0, 0.0)]


def test_without_dejavu_the_built_in_font_draws(monkeypatch, tmp_path):
    monkeypatch.setattr(cards, "FONT_DIRS", (tmp_path,))
    cards.font.cache_clear()
    try:
        png = cards.render_card(card())
    finally:
        cards.font.cache_clear()
    assert image(png).size == (1200, 630)
