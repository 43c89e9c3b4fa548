from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Readers' accounts: sign-up with e-mail, password reset, the profile page, account deletion.

    Built on Django's auth; depends on forecasting (the forecaster profile, scores kept anonymised)
    and notifications (the preferences on the profile page). Nothing depends on it.
    """

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts"
