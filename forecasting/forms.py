"""Web forms: validate at the edge, then hand plain values to the services."""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation

from django import forms

from forecasting.models import RATIONALE_MAX_LENGTH, Article, Question, Resolution


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


# --- numeric and date questions ------------------------------------------------------------------------
#
# A date is stored as epoch seconds (``Question.range_min``, a forecast's values, ``Resolution.value``);
# the web takes and shows whole days, each stored as its noon UTC: the same calendar day from UTC-11 to
# UTC+11, and a day read back from a forecast's percentiles (never exactly what was typed) stays that day.
DAY_TIME = dt.time(12, tzinfo=dt.UTC)
ISO_DATE = "%Y-%m-%d"
THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?")


def date_to_epoch(day: dt.date) -> float:
    """A day as the epoch seconds of its noon UTC."""
    return dt.datetime.combine(day, DAY_TIME).timestamp()


def epoch_to_date(seconds: float) -> dt.date:
    """The UTC day of an epoch time (what ``Question.format_value`` shows)."""
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).date()


def parse_number(raw: str, *, noun: str = "The value", unit: str = "") -> float:
    """A number typed by a reader or an editor: '1200', '1,200', '1 200', '12,5', '1200 violations' (the
    question's unit may follow it)."""
    text = (raw or "").strip()
    if unit and text.lower().endswith(unit.lower()):
        text = text[: -len(unit)].strip()
    text = text.replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    text = text.replace(",", "") if THOUSANDS.fullmatch(text) else text.replace(",", ".")
    try:
        if "_" in text:  # float() would read "1_0" as 10
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise forms.ValidationError(f"{noun} must be a number, like 120; you entered “{raw.strip()}”.") from None
    if not math.isfinite(value):
        raise forms.ValidationError(f"{noun} must be a finite number.")
    return value


class NumberField(forms.Field):
    """A number in the question's units (``parse_number``), or None when empty and not required."""

    widget = forms.TextInput
    MAX_LENGTH = 40

    def __init__(self, *, noun: str, unit: str = "", **kwargs) -> None:
        self.noun, self.unit = noun, unit
        kwargs.setdefault("error_messages", {"required": f"Give {noun[0].lower()}{noun[1:]}."})
        super().__init__(**kwargs)

    def widget_attrs(self, widget) -> dict:
        return {**super().widget_attrs(widget), "maxlength": str(self.MAX_LENGTH)}

    def to_python(self, value) -> float | None:
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        if len(text) > self.MAX_LENGTH:
            raise forms.ValidationError(f"{self.noun} is a number: at most {self.MAX_LENGTH} characters.")
        return parse_number(text, noun=self.noun, unit=self.unit)


def day_field(*, noun: str, **kwargs) -> forms.DateField:
    """A day picked in a date input (YYYY-MM-DD, which is what browsers send)."""
    return forms.DateField(
        input_formats=[ISO_DATE],
        widget=forms.DateInput(attrs={"type": "date"}, format=ISO_DATE),
        error_messages={
            "required": f"Give {noun[0].lower()}{noun[1:]}.",
            "invalid": f"{noun} must be a date, written like 2026-03-14.",
        },
        **kwargs,
    )


MAX_COMPONENTS = 3
COMPONENT_PARTS = ("median", "low", "high")


def component_names(k: int) -> dict[str, str]:
    """The form fields of component ``k`` (1 to 3): median, low, high, weight; "median", "median_2", ..."""
    suffix = "" if k == 1 else f"_{k}"
    return {part: f"{part}{suffix}" for part in (*COMPONENT_PARTS, "weight")}


class ContinuousForecastForm(ForecastForm):
    """A numeric or date question's forecast as people think of it: a median and an 80% interval (the 10th
    and the 90th percentile), optionally one or two more of them with weights (a mixture). Values are in
    the question's units, dates as days; ``cleaned_data["components"]`` is what ``prediction_create`` takes
    (dates as epoch seconds). Checks what a reader can get wrong, in words; the service checks the rest."""

    def __init__(self, *args, question: Question, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.question = question
        for k in range(1, MAX_COMPONENTS + 1):
            names = component_names(k)
            estimate = "" if k == 1 else f" of estimate {k}"
            labels = {
                "median": ("Median", f"the median{estimate}"),
                "low": ("Low end", f"the low end{estimate}"),
                "high": ("High end", f"the high end{estimate}"),
            }
            for part, (label, noun) in labels.items():
                self.fields[names[part]] = self._value_field(label, noun, required=k == 1)
            if k == 1:
                lower, higher = ("earlier", "later") if question.is_date else ("lower", "higher")
                self.fields["median"].help_text = f"As likely {lower} as {higher}."
                self.fields["low"].help_text = f"Only a 10% chance it is {lower}."
                self.fields["high"].help_text = f"Only a 10% chance it is {higher}."
            self.fields[names["weight"]] = NumberField(
                label="Weight" if k > 1 else "Weight of your main estimate",
                noun=f"The weight{estimate or ' of your main estimate'}",
                required=False,
            )
        self.order_fields([*(name for k in range(1, 4) for name in component_names(k).values()), "rationale"])

    def _value_field(self, label: str, noun: str, *, required: bool) -> forms.Field:
        noun = noun[0].upper() + noun[1:]
        q = self.question
        if q.is_date:
            field = day_field(noun=noun, label=label, required=required)
            # the picker stays inside a closed end of the range
            if not q.open_lower_bound:
                field.widget.attrs["min"] = epoch_to_date(q.range_min).isoformat()
            if not q.open_upper_bound:
                field.widget.attrs["max"] = epoch_to_date(q.range_max).isoformat()
            return field
        field = NumberField(label=label, noun=noun, unit=q.unit, required=required)
        # a phone's number pad: its decimal one has no minus sign, so only for ranges that cannot go negative
        field.widget.attrs |= {"autocomplete": "off", "inputmode": "decimal" if q.range_min >= 0 else "text"}
        return field

    def main_fields(self) -> list[forms.BoundField]:
        return [self[part] for part in COMPONENT_PARTS]

    def more_estimates_used(self) -> bool:
        weight = self["weight"]
        return bool(weight.errors) or weight.value() not in (None, "") or any(e["used"] for e in self.estimates())

    def range_ends(self) -> dict[str, str]:
        q = self.question
        return {"low": q.format_value(q.range_min), "high": q.format_value(q.range_max)}

    def estimates(self) -> list[dict]:
        """The optional second and third estimates' fields, and whether the reader gave any of them."""
        rows = []
        for k in range(2, MAX_COMPONENTS + 1):
            fields = [self[name] for name in component_names(k).values()]
            used = any(field.value() not in (None, "") or field.errors for field in fields)
            rows.append({"number": k, "fields": fields, "used": used})
        return rows

    def _real(self, value) -> float:
        return date_to_epoch(value) if self.question.is_date else float(value)

    def _shown(self, value: float) -> str:
        return self.question.format_value(value)

    def clean(self) -> dict:
        cleaned = super().clean()
        components = []
        for k in range(1, MAX_COMPONENTS + 1):
            component = self._clean_component(k, cleaned)
            if component is not None:
                components.append(component)
        cleaned["components"] = components
        return cleaned

    def _clean_component(self, k: int, cleaned: dict) -> dict | None:
        names = component_names(k)
        if any(names[part] in self.errors for part in COMPONENT_PARTS):
            return None
        raw = {part: cleaned.get(names[part]) for part in COMPONENT_PARTS}
        if k > 1 and all(value is None for value in raw.values()):
            return None  # an estimate left empty
        missing = [part for part, value in raw.items() if value is None]
        for part in missing:
            self.add_error(names[part], f"Give the {part} of estimate {k} too, or leave its three values empty.")
        if missing:
            return None
        median, low, high = (self._real(raw[part]) for part in COMPONENT_PARTS)
        below, above = ("before", "after") if self.question.is_date else ("below", "above")
        ok = True
        if not low < median:
            self.add_error(names["low"], f"The low end must be {below} the median ({self._shown(median)}).")
            ok = False
        if not median < high:
            self.add_error(names["high"], f"The high end must be {above} the median ({self._shown(median)}).")
            ok = False
        ok = self._check_range(names, low, high) and ok
        weight = cleaned.get(names["weight"])
        if weight is not None and weight <= 0:
            self.add_error(names["weight"], "A weight must be above 0 (1 = as much as the others by default).")
            ok = False
        if not ok:
            return None
        return {"median": median, "low": low, "high": high, "weight": 1.0 if weight is None else weight}

    def _check_range(self, names: dict[str, str], low: float, high: float) -> bool:
        """An interval wholly beyond a closed end, or past a log scale's zero point, cannot be drawn."""
        q = self.question
        below, above = ("before", "after") if q.is_date else ("below", "above")
        if q.zero_point is not None:
            if q.zero_point < q.range_min and low <= q.zero_point:
                self.add_error(names["low"], f"On this logarithmic scale values must be above {q.zero_point:g}.")
                return False
            if q.zero_point > q.range_max and high >= q.zero_point:
                self.add_error(names["high"], f"On this logarithmic scale values must be below {q.zero_point:g}.")
                return False
        if not q.open_lower_bound and high < q.range_min:
            self.add_error(
                names["high"],
                f"Your whole interval is {below} the range, which starts at {self._shown(q.range_min)}: "
                f"the outcome cannot be {below} that.",
            )
            return False
        if not q.open_upper_bound and low > q.range_max:
            self.add_error(
                names["low"],
                f"Your whole interval is {above} the range, which ends at {self._shown(q.range_max)}: "
                f"the outcome cannot be {above} that.",
            )
            return False
        return True

    @staticmethod
    def initial_for(question: Question, described: dict[str, float | None] | None) -> dict:
        """The form pre-filled with a summary (``continuous.summary``: median, low, high in real units)."""
        if not described:
            return {}
        initial = {}
        for part in COMPONENT_PARTS:
            value = described.get(part)
            if value is None:
                continue
            initial[part] = epoch_to_date(value) if question.is_date else round_for_input(value, question)
        return initial


def round_for_input(value: float, question: Question) -> str:
    """A value read back from a forecast, to about a thousandth of the question's range: '120', '0.35'."""
    span = question.range_max - question.range_min
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2
    if question.zero_point is not None:  # a log scale spans orders of magnitude: three significant digits
        digits = 3 - math.floor(math.log10(abs(value))) - 1 if value else 0
        decimals = max(0, digits)
        value = round(value, digits)
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


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
        self.question = question
        if question.is_binary:
            self.fields["outcome"].choices = [("yes", "Yes"), ("no", "No")]
        elif question.is_continuous:
            self._continuous_fields(question)
        else:
            self.fields["outcome"].choices = [(str(o.pk), o.label) for o in question.options.all()]

    def _continuous_fields(self, question: Question) -> None:
        """A value (a date) inside the range; past an open bound, "below" / "above" the range too."""
        Outcome = Resolution.Outcome
        noun = "The date" if question.is_date else "The value"
        low, high = question.format_value(question.range_min), question.format_value(question.range_max)
        below, above = ("before", "after") if question.is_date else ("under", "over")
        choices = [(Outcome.VALUE.value, f"{noun} given below")]
        if question.open_lower_bound:
            choices.append((Outcome.BELOW.value, f"{Outcome.BELOW.label} ({below} {low})"))
        if question.open_upper_bound:
            choices.append((Outcome.ABOVE.value, f"{Outcome.ABOVE.label} ({above} {high})"))
        outcome = self.fields["outcome"]
        outcome.choices = choices
        outcome.initial = Outcome.VALUE.value
        if len(choices) == 1:  # closed at both ends: the outcome is a value
            outcome.widget = forms.HiddenInput()
            outcome.required = False
        span = f"{low} to {high}"
        noun_lower = "date" if question.is_date else "value"
        # Required unless the outcome is below or above the range (``clean``); no browser-side "required",
        # which would block those.
        self.use_required_attribute = False
        if question.is_date:
            self.fields["value"] = day_field(noun=noun, label="Date", help_text=f"The range: {span}.")
        else:
            self.fields["value"] = NumberField(
                noun=noun,
                unit=question.unit,
                label=f"Value{f' ({question.unit})' if question.unit else ''}",
                help_text=f"The range: {span}.",
            )
        self.fields["value"].error_messages["required"] = f"Give the {noun_lower} the question resolves to."
        self.order_fields(["outcome", "value", "source", "note"])

    def clean(self) -> dict:
        cleaned = super().clean()
        if not self.question.is_continuous or "outcome" in self.errors:
            return cleaned
        outcome = cleaned.get("outcome") or Resolution.Outcome.VALUE
        cleaned["outcome"] = outcome
        if outcome != Resolution.Outcome.VALUE:
            self.errors.pop("value", None)  # below or above the range: no value
            cleaned["value"] = None
        elif cleaned.get("value") is not None:
            value = cleaned["value"]
            cleaned["value"] = date_to_epoch(value) if self.question.is_date else float(value)
        return cleaned


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
    # Numeric and date questions: the range readers forecast over (dates as days), its ends, its scale, a unit.
    range_min = NumberField(
        noun="The low end of the range", label="Low end of the range", required=False, help_text="Numeric only."
    )
    range_max = NumberField(
        noun="The high end of the range", label="High end of the range", required=False, help_text="Numeric only."
    )
    range_start = day_field(
        noun="The first day of the range", label="First day of the range", required=False, help_text="Date only."
    )
    range_end = day_field(
        noun="The last day of the range", label="Last day of the range", required=False, help_text="Date only."
    )
    open_lower_bound = forms.BooleanField(
        required=False, label="Open low end: the outcome may fall below (before) the range"
    )
    open_upper_bound = forms.BooleanField(
        required=False, label="Open high end: the outcome may fall above (after) the range"
    )
    zero_point = NumberField(
        noun="The zero point",
        label="Logarithmic scale: zero point",
        required=False,
        help_text="Numeric only, optional: for a range over orders of magnitude, a value just outside it "
        "(0 for 1 to 1,000,000). Empty: a linear scale.",
    )
    unit = forms.CharField(
        required=False,
        max_length=Question._meta.get_field("unit").max_length,
        help_text="Numeric only, optional: shown after values (“violations”, “%”, “km”).",
    )

    RANGE_FIELDS = ("range_min", "range_max", "range_start", "range_end", "open_lower_bound", "open_upper_bound")
    FIXED_ONCE_OPENED = ("question_type", "options", "opens_at", *RANGE_FIELDS, "zero_point")
    # A date question's range comes from the day fields: the service's errors about it go next to them.
    DATE_FIELDS = {"range_min": "range_start", "range_max": "range_end"}

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
        self.question = question
        self._range_checked = False
        if question is not None:
            self.fields["article"].disabled = True
            if question.status != Question.Status.DRAFT:
                for name in self.FIXED_ONCE_OPENED:
                    self.fields[name].disabled = True
                    self.fields[name].help_text = "Fixed once the question has been opened."

    def add_error(self, field: str | None, error) -> None:
        # After cleaning (the services' errors): a date question's range errors go next to its day fields.
        question_type = getattr(self, "cleaned_data", {}).get("question_type") if self._range_checked else None
        if field in self.DATE_FIELDS and question_type == Question.Type.DATE:
            field = self.DATE_FIELDS[field]
        super().add_error(field, error)

    # The fields each type uses; the others are hidden for it (question_form.js) and what they hold is dropped.
    TYPE_FIELDS = {
        Question.Type.NUMERIC: {"range_min", "range_max", "open_lower_bound", "open_upper_bound", "zero_point", "unit"},
        Question.Type.DATE: {"range_start", "range_end", "open_lower_bound", "open_upper_bound"},
    }

    def clean(self) -> dict:
        cleaned = super().clean()
        question_type = cleaned.get("question_type")
        used = self.TYPE_FIELDS.get(question_type, set())
        for name in {*self.RANGE_FIELDS, "zero_point", "unit"} - used:
            self.errors.pop(name, None)
        if question_type == Question.Type.NUMERIC:
            for name, noun in (("range_min", "low end"), ("range_max", "high end")):
                if cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, f"A numeric question needs the {noun} of its range.")
        elif question_type == Question.Type.DATE:
            for name, bound, noun in (("range_start", "range_min", "first"), ("range_end", "range_max", "last")):
                day = cleaned.get(name)
                if day is None:
                    if name not in self.errors:
                        super().add_error(name, f"A date question needs the {noun} day of its range.")
                    continue
                cleaned[bound] = self._day_value(day, bound)
            start, end = cleaned.get("range_start"), cleaned.get("range_end")
            if start and end and end <= start:
                super().add_error("range_end", "The last day must come after the first day.")
            cleaned |= {"zero_point": None, "unit": ""}  # a date question has neither (their fields are hidden)
        else:  # yes/no, multiple choice: a range typed before the type changed is dropped
            cleaned |= {"range_min": None, "range_max": None, "zero_point": None}
            cleaned |= {"open_lower_bound": False, "open_upper_bound": False, "unit": ""}
        self._range_checked = True
        return cleaned

    def _day_value(self, day: dt.date, bound: str) -> float:
        """A day as epoch seconds (its noon UTC), or the stored end of the range when that is the same day (a
        range set through the API keeps its exact time when the form is saved unchanged)."""
        stored = getattr(self.question, bound, None) if self.question is not None else None
        if stored is not None and epoch_to_date(stored) == day:
            return stored
        return date_to_epoch(day)

    def bound_checkboxes(self) -> list[forms.BoundField]:
        return [self["open_lower_bound"], self["open_upper_bound"]]

    def service_fields(self) -> dict:
        """The range fields as ``question_create`` / ``question_update`` take them (dates as epoch seconds)."""
        return {
            name: self.cleaned_data[name]
            for name in ("range_min", "range_max", "open_lower_bound", "open_upper_bound", "zero_point", "unit")
        }

    @staticmethod
    def initial_for(question: Question) -> dict:
        ranges = {}
        if question.is_date:
            ranges = {"range_start": epoch_to_date(question.range_min), "range_end": epoch_to_date(question.range_max)}
        elif question.is_continuous:
            ranges = {"range_min": f"{question.range_min:g}", "range_max": f"{question.range_max:g}"}
        if question.zero_point is not None:
            ranges["zero_point"] = f"{question.zero_point:g}"
        return {
            **ranges,
            "open_lower_bound": question.open_lower_bound,
            "open_upper_bound": question.open_upper_bound,
            "unit": question.unit,
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


class ConditionalForm(forms.Form):
    """An editor's conditional pair: two open yes/no questions."""

    condition = forms.ModelChoiceField(
        queryset=Question.objects.none(),
        label="If this question (the condition)",
        help_text="A yes/no question; readers forecast the outcome for each of its answers.",
    )
    outcome = forms.ModelChoiceField(
        queryset=Question.objects.none(), label="then this question (the outcome)", help_text="A yes/no question."
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        candidates = (
            Question.objects.filter(question_type=Question.Type.BINARY, status=Question.Status.OPEN)
            .filter(conditional_if_yes__isnull=True, conditional_if_no__isnull=True)
            .select_related("article")
            .order_by("article__title", "title")
        )
        for name in ("condition", "outcome"):
            self.fields[name].queryset = candidates
            self.fields[name].label_from_instance = lambda q: f"{q.title} ({q.article.title})"
