"""Account forms: sign-up, the public profile."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User


class SignupForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ProfileForm(forms.Form):
    """Whether the reader's name and track record appear on the public pages (private by default)."""

    visibility = forms.ChoiceField(
        label="Your track record",
        choices=[
            ("private", "Private: only you see your track record; leaderboards list you without your name."),
            ("public", "Public: anyone sees your name, your track record and your scores on each question."),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose public or private.", "invalid_choice": "Choose public or private."},
    )

    def clean_visibility(self) -> bool:
        return self.cleaned_data["visibility"] == "public"
