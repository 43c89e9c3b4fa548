"""The notification preferences form: for each kind, in the site and by e-mail, in the site only, or off."""

from __future__ import annotations

from django import forms

from .models import Kind, NotificationPreference

RESOLVE_PERMISSION = "forecasting.resolve_question"


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = list(Kind.values)
        labels = {kind.value: kind.label for kind in Kind}
        widgets = {kind: forms.RadioSelect for kind in Kind.values}

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not user.has_perm(RESOLVE_PERMISSION):  # the digest is for editors only
            del self.fields[Kind.OVERDUE_DIGEST]
        for field in self.fields.values():
            field.choices = [c for c in field.choices if c[0] != ""]  # no empty choice: always one of three
