"""Trade input as readers type it: units with up to two decimals, converted to micro-units."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from .models import MICRO

MAX_UNITS = 10**9  # the same bound as the API's (market/api/serializers.py)


def parse_units(raw: str, *, label: str) -> int:
    text = (raw or "").strip().replace(",", "")
    if not text:
        raise forms.ValidationError(f"Enter the {label}.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise forms.ValidationError(f"The {label} must be a number, not “{raw}”.") from None
    if not value.is_finite() or value <= 0:
        raise forms.ValidationError(f"The {label} must be a positive number.")
    # The bound before the rounding check: quantizing 1e30 overflows the decimal context.
    if value > MAX_UNITS:
        raise forms.ValidationError(f"The {label} is too large (at most {MAX_UNITS:,}).")
    if value != value.quantize(Decimal("0.01")):
        raise forms.ValidationError(f"The {label} can have at most two decimals.")
    return int(value * MICRO)


class TradeForm(forms.Form):
    outcome = forms.IntegerField(min_value=0)
    side = forms.ChoiceField(choices=[("buy", "Buy"), ("sell", "Sell")])
    amount = forms.CharField(required=False, max_length=20, help_text="Play money to spend (buy).")
    shares = forms.CharField(required=False, max_length=20, help_text="Shares to sell, or to buy.")
    idempotency_key = forms.CharField(max_length=80, required=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        amount, shares = cleaned.get("amount") or "", cleaned.get("shares") or ""
        if bool(amount.strip()) == bool(shares.strip()):
            raise forms.ValidationError("Give either an amount to spend or a number of shares.")
        try:
            cleaned["amount_micro"] = parse_units(amount, label="amount") if amount.strip() else None
            cleaned["shares_micro"] = parse_units(shares, label="number of shares") if shares.strip() else None
        except forms.ValidationError as error:
            raise forms.ValidationError(error.messages) from None
        return cleaned
