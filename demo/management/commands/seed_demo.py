"""``make demo``: load the seed article (once), create the demo accounts, then seed the simulated crowd (once).

Safe to run on every ``make demo``: an existing database keeps its questions, forecasts and
resolutions, the demo accounts keep the passwords first generated for them (stored in
``var/demo_accounts.json``, readable only by its owner), and the crowd is seeded only the first
time (``demo.services.demo_seed``; ``--no-crowd`` skips it).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from forecasting.models import Article, Question
from forecasting.roles import ANALYSTS, EDITORS, ensure_role_groups
from forecasting.signals import question_status_changed

from ...services import DEFAULT_SEED, demo_bayes_refit, demo_seed

SEED_FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "seed_article.json"
SEED_ARTICLE_SLUG = "ukraine-talks-kremlin-sees-no-us-breakthrough"
DEMO_ACCOUNTS = {"reader": None, "editor": EDITORS, "analyst": ANALYSTS}


class Command(BaseCommand):
    help = (
        "Load the seed article and its questions (once), create the demo reader, editor and analyst, "
        "and seed the simulated crowd (once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-file", default=str(Path(settings.VAR_DIR) / "demo_accounts.json"))
        parser.add_argument("--no-crowd", action="store_true", help="Skip the simulated crowd.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="The crowd's random seed.")
        parser.add_argument("--readers", type=int, default=300, help="How many simulated readers.")
        parser.add_argument("--no-bayes", action="store_true", help="Skip the Bayesian model's first fit.")

    def handle(
        self, *args, credentials_file: str, no_crowd: bool, seed: int, readers: int, no_bayes: bool, **options
    ) -> None:
        with transaction.atomic():
            stored = self._seed_article_and_accounts(Path(credentials_file))
        if not no_crowd:
            self._crowd(seed=seed, readers=readers, bayes=not no_bayes)

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo accounts (log in at http://127.0.0.1:8000/accounts/login/):"))
        for username, group_name in DEMO_ACCOUNTS.items():
            role = group_name or "Readers"
            self.stdout.write(f"  {username:<8} password: {stored[username]:<14} ({role})")
        self.stdout.write("")

    def _seed_article_and_accounts(self, path: Path) -> dict[str, str]:
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
        return stored

    def _crowd(self, *, seed: int, readers: int, bayes: bool) -> None:
        started = time.perf_counter()
        run = demo_seed(seed=seed, readers=readers)
        if run is None:
            self.stdout.write("Demo crowd already seeded; keeping it as it is.")
            return
        counts = ", ".join(f"{value:,} {name}" for name, value in run.summary.items())
        self.stdout.write(
            self.style.SUCCESS(f"Seeded the simulated crowd: {counts} ({time.perf_counter() - started:.0f} s).")
        )
        if bayes:
            started = time.perf_counter()
            fitted = demo_bayes_refit()
            if fitted is not None:
                self.stdout.write(
                    f"Fitted the Bayesian model on the resolved questions ({time.perf_counter() - started:.0f} s)."
                )
