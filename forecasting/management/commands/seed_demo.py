"""Load the seed article's fixture (once) and create the demo accounts, printing their passwords.

Safe to run on every ``make demo``: an existing database keeps its questions, forecasts and
resolutions, and the demo accounts keep the passwords first generated for them (stored in
``var/demo_accounts.json``, readable only by its owner).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from forecasting.models import Article, Question
from forecasting.roles import ANALYSTS, EDITORS, ensure_role_groups
from forecasting.signals import question_status_changed

SEED_FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "seed_article.json"
SEED_ARTICLE_SLUG = "ukraine-talks-kremlin-sees-no-us-breakthrough"
DEMO_ACCOUNTS = {"reader": None, "editor": EDITORS, "analyst": ANALYSTS}


class Command(BaseCommand):
    help = "Load the seed article and its questions (once) and create the demo reader, editor and analyst."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--credentials-file", default=str(Path(settings.VAR_DIR) / "demo_accounts.json"))

    @transaction.atomic
    def handle(self, *args, credentials_file: str, **options) -> None:
        ensure_role_groups()
        if Article.objects.filter(slug=SEED_ARTICLE_SLUG).exists():
            self.stdout.write("Seed article already loaded; keeping the database as it is.")
        else:
            call_command("loaddata", str(SEED_FIXTURE), verbosity=0)
            self.stdout.write(self.style.SUCCESS("Loaded the seed article and its questions."))
        # The fixture writes its questions directly, past the services: tell the apps that follow a
        # question's status (the market opens one per open question; receivers are idempotent).
        for question in Question.objects.select_for_update().filter(status=Question.Status.OPEN):
            question_status_changed.send(sender=Question, question=question)

        path = Path(credentials_file)
        stored = json.loads(path.read_text()) if path.exists() else {}
        for username, group_name in DEMO_ACCOUNTS.items():
            password = stored.get(username) or secrets.token_urlsafe(9)
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = group_name == EDITORS
            user.save()
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
            stored[username] = password
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        os.chmod(path, 0o600)

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo accounts (log in at http://127.0.0.1:8000/accounts/login/):"))
        for username, group_name in DEMO_ACCOUNTS.items():
            role = group_name or "Readers"
            self.stdout.write(f"  {username:<8} password: {stored[username]:<14} ({role})")
        self.stdout.write("")
