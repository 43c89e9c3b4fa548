"""One account per e-mail address, whatever its case: the sign-up form checks it, and this index holds
it when two sign-ups with one address race (accounts.services.account_create turns the refusal into
the form's error). Accounts without an address (deleted ones, old ones) are left out of it."""

from django.db import migrations

INDEX = "accounts_user_email_ci_unique"


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE UNIQUE INDEX {INDEX} ON auth_user (lower(email)) WHERE email <> ''",
            reverse_sql=f"DROP INDEX {INDEX}",
        )
    ]
