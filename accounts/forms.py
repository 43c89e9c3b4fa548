"""Account forms: sign-up, the public profile, the e-mail address, deleting the account.

The forms check the shape of what was typed; the rules that need the database (one account per
e-mail address, display names, the password) are the services' (``accounts.services``,
``forecasting.services.profiles``), and the views put their errors next to the fields.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from forecasting.services.profiles import DISPLAY_NAME_MAX_LENGTH, is_deleted_username

from . import services


class SignupForm(UserCreationForm):
    """Username, e-mail address (required: it is how a forgotten password is reset), password twice."""

    email = forms.EmailField(
        label="E-mail address",
        max_length=254,
        help_text="For resetting a forgotten password; never shown to other readers.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_username(self) -> str:
        username = super().clean_username()
        if username and is_deleted_username(username.casefold()):
            raise forms.ValidationError("Usernames may not start with “deleted-”.")
        return username

    def clean_email(self) -> str:
        # Checked here for a friendly error before the passwords are, and again by the service.
        email = services.email_normalise(self.cleaned_data["email"])
        if services.email_in_use(email):
            raise forms.ValidationError(services.EMAIL_TAKEN)
        return email


class ProfileForm(forms.Form):
    """The reader's display name, and whether their name and track record appear on the public pages."""

    display_name = forms.CharField(
        label="Display name",
        required=False,
        max_length=DISPLAY_NAME_MAX_LENGTH,
        help_text=(
            "Shown instead of your username on the leaderboards and your track record while your profile "
            "is public. Empty: your username. Not another reader's username, nor a role (editor, admin…)."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )
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


class EmailChangeForm(forms.Form):
    """A new e-mail address, confirmed with the current password."""

    email = forms.EmailField(
        label="New e-mail address", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Your current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class AccountDeleteForm(forms.Form):
    """The password, and the username typed out: deleting an account cannot be undone."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.CharField(
        label="Type your username to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["confirm"].help_text = f"Your username is “{user.get_username()}”."

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"] != self.user.get_username():
            raise forms.ValidationError("That is not your username: type it exactly as shown.")
        return self.cleaned_data["confirm"]
