import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from demo.models import DemoRun
from forecasting.models import Article, ModelRun, Prediction, Question, QuestionOption
from forecasting.roles import ANALYSTS, EDITORS

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_article_and_accounts_once(tmp_path, capsys):
    credentials = tmp_path / "accounts.json"
    call_command("seed_demo", credentials_file=str(credentials), no_crowd=True)
    article = Article.objects.get()
    assert "Witkoff" in article.body and "Fabergé" in article.body
    questions = Question.objects.filter(article=article)
    assert questions.count() >= 6
    assert questions.filter(question_type="multiple_choice").exists()
    assert all(q.status == "open" and q.resolution_criteria and q.closes_at > q.opens_at for q in questions)
    for question in questions.filter(question_type="multiple_choice"):
        assert question.options.count() >= 2

    printed = capsys.readouterr().out
    passwords = json.loads(credentials.read_text())
    for username in ("reader", "editor", "analyst"):
        assert passwords[username] in printed
        assert User.objects.get(username=username).check_password(passwords[username])
    assert User.objects.get(username="editor").groups.filter(name=EDITORS).exists()
    assert User.objects.get(username="analyst").groups.filter(name=ANALYSTS).exists()
    assert User.objects.get(username="editor").has_perm("forecasting.resolve_question")
    assert not User.objects.get(username="reader").has_perm("forecasting.resolve_question")

    # An editor's change survives a second run, nothing is duplicated, passwords are kept.
    Question.objects.filter(pk=questions.first().pk).update(status="closed")
    counts = (Article.objects.count(), Question.objects.count(), QuestionOption.objects.count(), User.objects.count())
    call_command("seed_demo", credentials_file=str(credentials), no_crowd=True)
    assert (
        Article.objects.count(),
        Question.objects.count(),
        QuestionOption.objects.count(),
        User.objects.count(),
    ) == counts
    assert Question.objects.filter(status="closed").count() == 1
    assert json.loads(credentials.read_text()) == passwords


def test_seed_demo_seeds_the_crowd_once_and_fits_the_model(tmp_path, capsys):
    credentials = tmp_path / "accounts.json"
    call_command("seed_demo", credentials_file=str(credentials), readers=12)
    assert "Seeded the simulated crowd" in capsys.readouterr().out
    assert DemoRun.objects.get().summary["readers"] == 12
    assert ModelRun.objects.filter(status=ModelRun.Status.SUCCEEDED).exists()  # the Bayesian model has content
    seed_article = Article.objects.get(slug="ukraine-talks-kremlin-sees-no-us-breakthrough")
    assert Prediction.objects.filter(question__article=seed_article).exists()

    counts = (User.objects.count(), Prediction.objects.count(), Article.objects.count(), ModelRun.objects.count())
    call_command("seed_demo", credentials_file=str(credentials), readers=12)
    assert "already seeded" in capsys.readouterr().out
    assert (
        User.objects.count(),
        Prediction.objects.count(),
        Article.objects.count(),
        ModelRun.objects.count(),
    ) == counts
