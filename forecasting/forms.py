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
    outcome = forms.ChoiceField(choices=[], error_messages={"required": "Choose the outcome."})
    source = forms.CharField(
        max_length=500,
        label="Source",
        help_text="Where you read the outcome: a link, or a citation (“AP, 3 March”). Readers see it.",
        error_messages={"required": "Give the source of the outcome: a link or a citation."},
    )
    note = forms.CharField(
        required=False, label="Note (optional)", widget=forms.Textarea(attrs={"rows": 2}), max_length=2000
    )

    def __init__(self, *args, question: Question, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if question.is_binary:
            self.fields["outcome"].choices = [("yes", "Yes"), ("no", "No")]
        else:
            self.fields["outcome"].choices = [(str(o.pk), o.label) for o in question.options.all()]


class NoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class ConfirmForm(forms.Form):
    """Annulling or un-resolving: why (kept in the audit log), and a tick that the editor means it."""

    reason = forms.CharField(
        max_length=2000,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the question's history.",
        error_messages={"required": "Give the reason: it is kept in the question's history."},
    )
    confirm = forms.BooleanField(
        label="I understand what this changes.",
        error_messages={"required": "Tick the box to confirm."},
    )


def paragraph_choices(paragraphs: list[str], current: int | None = None) -> list[tuple[str, str]]:
    """The article's paragraphs as choices ("after ¶2: first words…"), plus "after the text"."""
    choices = [("", "After the text (the end of the article)")]
    for number, text in enumerate(paragraphs, start=1):
        excerpt = text if len(text) <= 70 else text[:69].rstrip() + "…"
        choices.append((str(number), f"After paragraph {number}: {excerpt}"))
    if current and current > len(paragraphs):
        choices.append((str(current), f"After paragraph {current} (beyond the text: shown at the end)"))
    return choices


DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _datetime_field(label: str, help_text: str = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        help_text=help_text,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )


class QuestionForm(forms.Form):
    """Create or edit a question. Editing fixes the article; once opened, the type, options and open date
    are fixed too (shown, disabled). ``paragraphs``: the article's, when known, to choose the placement."""

    article = forms.ModelChoiceField(queryset=Article.objects.all())
    title = forms.CharField(max_length=300)
    resolution_criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), help_text="What makes it resolve YES (or each option)."
    )
    fine_print = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: edge cases and definitions, shown under the criteria.",
    )
    resolution_source = forms.CharField(
        required=False,
        max_length=500,
        help_text="Optional: where the outcome will be read (a named source or a URL).",
    )
    question_type = forms.ChoiceField(label="Type", choices=Question.Type.choices)
    options = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Multiple choice only: one option per line.",
    )
    opens_at = _datetime_field("Opens at (UTC)")
    closes_at = _datetime_field("Closes at (UTC)", "Forecasts stop then; the question closes by itself.")
    paragraph = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=32767,
        label="Show after paragraph",
        help_text="Where the question appears in the article: 1 = after the first paragraph; empty = after the text.",
    )

    def __init__(self, *args, paragraphs: list[str] | None = None, question: Question | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if paragraphs is not None:
            current = question.paragraph if question else None
            self.fields["paragraph"] = forms.TypedChoiceField(
                required=False,
                label="Show after paragraph",
                choices=paragraph_choices(paragraphs, current),
                coerce=int,
                empty_value=None,
                help_text="Where the question's card appears in the article.",
            )
        if question is not None:
            self.fields["article"].disabled = True
            if question.status != Question.Status.DRAFT:
                for name in ("question_type", "options", "opens_at"):
                    self.fields[name].disabled = True
                    self.fields[name].help_text = "Fixed once the question has been opened."

    @staticmethod
    def initial_for(question: Question) -> dict:
        return {
            "article": question.article_id,
            "title": question.title,
            "resolution_criteria": question.resolution_criteria,
            "fine_print": question.fine_print,
            "resolution_source": question.resolution_source,
            "question_type": question.question_type,
            "options": "\n".join(o.label for o in question.options.all()),
            "opens_at": question.opens_at,
            "closes_at": question.closes_at,
            "paragraph": question.paragraph,
        }
