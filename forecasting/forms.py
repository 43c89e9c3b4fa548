"""Web forms: validate at the edge, then hand plain values to the services."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms

from forecasting.models import RATIONALE_MAX_LENGTH, Article, Question


def parse_percent(raw: str, *, label: str = "The probability") -> Decimal:
    """A percentage typed by a reader ('37', '37.5', '37,5 %') as a probability in [0.01, 0.99]."""
    text = (raw or "").strip().rstrip("%").strip().replace(",", ".")
    if not text:
        raise forms.ValidationError(f"{label} is required.")
    try:
        percent = Decimal(text)
    except InvalidOperation:
        raise forms.ValidationError(f"{label} must be a number, not “{raw}”.") from None
    if not percent.is_finite():
        raise forms.ValidationError(f"{label} must be a finite number.")
    if not Decimal(1) <= percent <= Decimal(99):
        raise forms.ValidationError(f"{label} must be between 1% and 99%; you entered {raw.strip()}.")
    if percent != percent.quantize(Decimal("0.01")):
        raise forms.ValidationError(f"{label} can have at most two decimals.")
    return percent / 100


class ForecastForm(forms.Form):
    """What every forecast form has: an optional rationale (Markdown, stored as typed)."""

    rationale = forms.CharField(
        label="Why? (optional)",
        required=False,
        max_length=RATIONALE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"Your reasoning, in Markdown; at most {RATIONALE_MAX_LENGTH} characters. Only you see it here.",
        error_messages={"max_length": "A rationale has at most %(limit_value)d characters; yours has %(show_value)d."},
    )


class BinaryForecastForm(ForecastForm):
    probability = forms.CharField(label="Your probability of YES (%)", max_length=20)
    field_order = ["probability", "rationale"]

    def clean_probability(self) -> Decimal:
        return parse_percent(self.cleaned_data["probability"])


class MultipleChoiceForecastForm(ForecastForm):
    """One percentage per option; they must add up to 100."""

    def __init__(self, *args, question: Question, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.question_options = list(question.options.all())
        for option in self.question_options:
            self.fields[f"option_{option.pk}"] = forms.CharField(label=option.label, max_length=20)
        self.order_fields([*(f"option_{o.pk}" for o in self.question_options), "rationale"])

    def option_fields(self) -> list[forms.BoundField]:
        return [self[f"option_{option.pk}"] for option in self.question_options]

    def clean(self) -> dict:
        cleaned = super().clean()
        values = []
        for option in self.question_options:
            name = f"option_{option.pk}"
            if name in self.errors:
                continue
            try:
                values.append(parse_percent(cleaned.get(name, ""), label=f"“{option.label}”"))
            except forms.ValidationError as error:
                self.add_error(name, error)
        if len(values) == len(self.question_options) and sum(values) != 1:
            raise forms.ValidationError(
                f"The probabilities must add up to 100%; they add up to {(sum(values) * 100).normalize():f}%."
            )
        cleaned["option_probabilities"] = values
        return cleaned


class ResolveForm(forms.Form):
    outcome = forms.ChoiceField(choices=[])
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)

    def __init__(self, *args, question: Question, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if question.is_binary:
            self.fields["outcome"].choices = [("yes", "Yes"), ("no", "No")]
        else:
            self.fields["outcome"].choices = [(str(o.pk), o.label) for o in question.options.all()]


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class QuestionCreateForm(forms.Form):
    article = forms.ModelChoiceField(queryset=Article.objects.all())
    title = forms.CharField(max_length=300)
    resolution_criteria = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    question_type = forms.ChoiceField(choices=Question.Type.choices)
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Multiple choice only: one option per line.",
    )
    opens_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    closes_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    paragraph = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=32767,
        label="Show after paragraph",
        help_text="Where the question appears in the article: 1 = after the first paragraph; empty = after the text.",
    )
