"""A question's preview card (Open Graph / Twitter ``summary_large_image``, the oEmbed thumbnail):
a 1200x630 PNG drawn with Pillow from plain values. Pure: no Django, no models; the caller
(``forecasting/services/embeds.py``) turns a question into a ``Card`` and caches the bytes.

Layout: the site's name and the status along the top, the title (serif, wrapped, shrunk to fit
three lines), then the big number (or the leading options' bars) on the left and the community
line on the right, and the facts (forecasters, closing date) along the bottom. Fonts are Debian's
DejaVu when installed, else Pillow's built-in face, so the card draws on any machine.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1200, 630
MARGIN = 64
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/TTF"),  # other distributions' DejaVu
    Path("/usr/share/fonts/dejavu"),
)

# The design system's tokens (webapp/static/css/site.css), so the card looks like the site.
INK = (26, 32, 41)
INK_MUTED = (79, 89, 102)
ACCENT = (11, 92, 173)
LINE = (217, 222, 228)
SURFACE = (255, 255, 255)
CHART_BG = (249, 250, 251)
SERIES = (ACCENT, (196, 106, 0), (23, 112, 63), (179, 38, 30))  # accent, chart-2, yes, no
STATUS_COLOURS = {  # (text, background) as the site's badges
    "open": ((23, 112, 63), (229, 243, 234)),
    "resolved": (ACCENT, (231, 239, 249)),
    "annulled": ((179, 38, 30), (252, 235, 233)),
}
WARN = ((122, 82, 0), (253, 244, 220))

Point = tuple[float, float]  # (time, probability)


@dataclass(frozen=True)
class Card:
    """What a card shows, already worded: the caller formats numbers and dates."""

    title: str
    headline: str = ""  # the big number, "37%"; empty when there is none yet
    caption: str = ""  # under it: "chance of YES", "No forecasts yet"
    facts: str = ""  # "120 forecasters · closes 3 Mar 2026"
    status: str = ""  # "open", "closed", "resolved", "annulled", shown as a badge
    status_label: str = ""  # "Open", "Resolved: YES"
    options: Sequence[tuple[str, float]] = ()  # a multiple-choice question's leading options, drawn as bars
    lines: Sequence[Sequence[Point]] = field(default_factory=tuple)  # step series of the community history
    site_name: str = "Newsroom Forecasts"


@lru_cache(maxsize=32)
def font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu ``name`` (e.g. "DejaVuSans-Bold.ttf") at ``size`` px, or Pillow's default face."""
    for folder in FONT_DIRS:
        path = folder / name
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def wrap(text: str, face, width: float) -> list[str]:
    """Greedy word wrap to ``width`` px; a word longer than a line is cut where it must be."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if face.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while face.getlength(word) > width:  # a URL or a very long name
            cut = len(word)
            while cut > 1 and face.getlength(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def fit_title(text: str, width: float, max_lines: int = 3) -> tuple[list[str], object]:
    """The title's lines and face: the largest size that fits ``max_lines``, else the smallest, cut with '…'."""
    for size in (60, 54, 48, 42):
        face = font("DejaVuSerif-Bold.ttf", size)
        lines = wrap(text, face, width)
        if len(lines) <= max_lines:
            return lines, face
    lines = lines[:max_lines]
    last = lines[-1]
    while last and face.getlength(last + "…") > width:
        last = last[:-1].rstrip()
    lines[-1] = last + "…"
    return lines, face


def step_points(points: Sequence[Point], box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """A step line of ``points`` (each value stands until the next) in pixel coordinates of ``box``."""
    left, top, right, bottom = box
    start, end = points[0][0], points[-1][0]
    span = max(end - start, 1e-9)
    xy: list[tuple[float, float]] = []
    previous = None
    for t, value in points:
        x = left + (t - start) / span * (right - left)
        y = bottom - min(max(value, 0.0), 1.0) * (bottom - top)
        if previous is not None:
            xy.append((x, previous))
        xy.append((x, y))
        previous = y
    return xy


def _chart(lines: Sequence[Sequence[Point]], size: tuple[int, int], scale: int = 3) -> Image.Image:
    """The history chart, drawn ``scale`` times larger and shrunk: Pillow's lines are not antialiased."""
    w, h = size[0] * scale, size[1] * scale
    image = Image.new("RGB", (w, h), CHART_BG)
    draw = ImageDraw.Draw(image)
    pad = 6 * scale
    box = (pad, pad, w - pad, h - pad)
    for y in (box[1], (box[1] + box[3]) / 2, box[3]):  # 100%, 50%, 0%
        dash = 10 * scale
        for x in range(int(box[0]), int(box[2]), dash * 2):
            draw.line([(x, y), (min(x + dash, box[2]), y)], fill=LINE, width=scale)
    for i, line in enumerate(lines):
        if len(line) >= 2:
            draw.line(step_points(line, box), fill=SERIES[i % len(SERIES)], width=5 * scale, joint="curve")
    return image.resize(size, Image.Resampling.LANCZOS)


def _badge(draw: ImageDraw.ImageDraw, status: str, label: str, right: int, top: int) -> None:
    face = font("DejaVuSans-Bold.ttf", 24)
    text_colour, background = STATUS_COLOURS.get(status, WARN)
    width = face.getlength(label)
    box = (right - width - 36, top, right, top + 44)
    draw.rounded_rectangle(box, radius=22, fill=background)
    draw.text((box[0] + 18, top + 22), label, font=face, fill=text_colour, anchor="lm")


def _bars(draw: ImageDraw.ImageDraw, options: Sequence[tuple[str, float]], left: int, top: int, width: int) -> None:
    """A multiple-choice question's leading options: label, percentage and a bar each."""
    label_face = font("DejaVuSans.ttf", 30)
    value_face = font("DejaVuSans-Bold.ttf", 34)
    y = top
    for i, (label, probability) in enumerate(options[:3]):
        value = f"{round(probability * 100)}%"
        value_width = value_face.getlength(value)
        shown = label
        while shown and label_face.getlength(shown) > width - value_width - 24:
            shown = shown[:-1]
        if shown != label:
            shown = shown[:-1].rstrip() + "…"
        draw.text((left, y), shown, font=label_face, fill=INK, anchor="la")
        draw.text((left + width, y), value, font=value_face, fill=SERIES[i % len(SERIES)], anchor="ra")
        bar_top = y + 44
        draw.rounded_rectangle((left, bar_top, left + width, bar_top + 12), radius=6, fill=LINE)
        filled = max(12, round(width * min(max(probability, 0.0), 1.0)))
        draw.rounded_rectangle((left, bar_top, left + filled, bar_top + 12), radius=6, fill=SERIES[i % len(SERIES)])
        y += 76


def render_card(card: Card) -> bytes:
    """The card as PNG bytes (1200x630, RGB)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), SURFACE)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 12), fill=ACCENT)

    # The site's name as the header shows it: "Newsroom" in ink, the rest in the accent.
    brand_face, brand_bold = font("DejaVuSerif.ttf", 30), font("DejaVuSerif-Bold.ttf", 30)
    first, _, rest = card.site_name.partition(" ")
    draw.text((MARGIN, 62), first, font=brand_face, fill=INK, anchor="ls")
    if rest:
        draw.text((MARGIN + brand_face.getlength(first + " "), 62), rest, font=brand_bold, fill=ACCENT, anchor="ls")
    if card.status_label:
        _badge(draw, card.status, card.status_label, WIDTH - MARGIN, 32)

    lines, title_face = fit_title(card.title, WIDTH - 2 * MARGIN)
    line_height = round(title_face.size * 1.22)
    y = 104
    for line in lines:
        draw.text((MARGIN, y), line, font=title_face, fill=INK, anchor="la")
        y += line_height

    # The lower band: the number (or the options) on the left, the chart on the right.
    band_top = max(y + 28, 330)
    chart_size = (520, HEIGHT - 96 - band_top)
    if card.options:
        _bars(draw, card.options, MARGIN, band_top, WIDTH - 2 * MARGIN - chart_size[0] - 48)
    else:
        big = font("DejaVuSans-Bold.ttf", 132 if band_top < 360 else 104)
        if card.headline:
            draw.text((MARGIN - 6, band_top - 10), card.headline, font=big, fill=ACCENT, anchor="la")
            caption_y = band_top - 10 + big.size + 8
        else:
            caption_y = band_top + 20
        caption_face = font("DejaVuSans.ttf", 32 if card.headline else 40)
        draw.text((MARGIN, caption_y), card.caption, font=caption_face, fill=INK_MUTED, anchor="la")
    if any(len(line) >= 2 for line in card.lines) and chart_size[1] >= 80:
        chart = _chart(card.lines, chart_size)
        image.paste(chart, (WIDTH - MARGIN - chart_size[0], band_top))

    draw.line([(MARGIN, HEIGHT - 72), (WIDTH - MARGIN, HEIGHT - 72)], fill=LINE, width=2)
    draw.text((MARGIN, HEIGHT - 34), card.facts, font=font("DejaVuSans.ttf", 28), fill=INK_MUTED, anchor="ls")

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
