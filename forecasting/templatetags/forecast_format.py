from decimal import Decimal

import numpy as np
from django import template

from forecasting import continuous
from forecasting.models import Question

register = template.Library()


@register.filter
def percent(value, digits: int = 1) -> str:
    """0.3725 -> '37.3' (digits after the point, trailing zeros dropped); '' for None."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value)) * 100
    text = f"{number:.{int(digits)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.filter
def micro(value) -> str:
    """Micro-units as units with two decimals: 1234567 -> '1.23'."""
    if value is None or value == "":
        return ""
    return f"{Decimal(int(value)) / 1_000_000:,.2f}"


def describe_distribution(question: Question, cdf) -> dict | None:
    """A numeric or date question's distribution in words, in the question's units (``Question.format_value``):
    its median, its 80% interval ("a – b", the 10th to the 90th percentile), "median X (80%: a – b)", and
    the masses below and above the range. A percentile beyond an open bound reads "below <the low end>"
    ("before" for dates) or "above <the high end>" ("after"). ``None`` without a CDF."""
    if cdf is None or not question.is_continuous:
        return None
    values = np.asarray(cdf, dtype=float)
    scale = question.scale

    def text(position: float) -> str:
        if np.isfinite(position):
            return question.format_value(float(scale.from_unit(position)))
        if position < 0:
            return f"{'before' if question.is_date else 'below'} {question.format_value(question.range_min)}"
        return f"{'after' if question.is_date else 'above'} {question.format_value(question.range_max)}"

    low, median, high = (text(p) for p in continuous.quantile(values, [0.1, 0.5, 0.9]))
    # "50 – 200 violations": the unit once, after the interval
    unit = f" {question.unit}" if question.unit and not question.is_date else ""
    low_short = low.removesuffix(unit) if unit and high.endswith(unit) else low
    interval = f"{low_short} – {high}"
    return {
        "median": median,
        "low": low,
        "high": high,
        "interval": interval,
        "text": f"median {median} (80%: {interval})",
        "below": float(values[0]),
        "above": float(1.0 - values[-1]),
    }


@register.filter
def distribution_text(cdf, question: Question) -> str:
    """``{{ prediction.cdf|distribution_text:question }}``: "median X (80%: a – b)"; '' without a CDF."""
    described = describe_distribution(question, cdf)
    return described["text"] if described else ""


@register.filter
def format_value(value, question: Question) -> str:
    """``{{ question.range_min|format_value:question }}``: a value as the question shows it (a date, a number
    with its unit)."""
    if value is None or value == "":
        return ""
    return question.format_value(float(value))
