from decimal import Decimal

from django import template

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
