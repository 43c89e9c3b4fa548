"""The comment, vote and moderation forms of the question page's discussion."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator

from .services import REASON_MAX_LENGTH

# A comment post that failed is rendered again on the question page (views.py): its bound form rides
# on the request, so that the panel (panels.py) shows the errors beside what the reader wrote.
FAILED_FORM_ATTRIBUTE = "comment_form_with_errors"


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Your comment",
        widget=forms.Textarea(attrs={"rows": 4}),
        strip=True,
        help_text="Markdown: *emphasis*, **strong**, `code`, > quotes, lists and [links](https://…).",
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Read at each form (not at import), so that a change of settings takes effect.
        body = self.fields["body"]
        body.max_length = settings.COMMENT_MAX_LENGTH
        body.widget.attrs["maxlength"] = str(settings.COMMENT_MAX_LENGTH)
        body.validators.append(MaxLengthValidator(settings.COMMENT_MAX_LENGTH))


class VoteForm(forms.Form):
    value = forms.TypedChoiceField(choices=[("1", "up"), ("-1", "down"), ("0", "withdraw")], coerce=int)


class HideForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH, strip=True, error_messages={"required": "Give the reason for hiding it."}
    )


class UnhideForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, strip=True, required=False)
