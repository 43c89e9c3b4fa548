import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from forecasting.models import Article, Question, QuestionOption
from forecasting.roles import ANALYSTS, EDITORS

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_article_and_accounts_once(tmp_path, capsys):
    credentials = tmp_path / "accounts.json"
    call_command("seed_demo", credentials_file=str(credentials))
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
    call_command("seed_demo", credentials_file=str(credentials))
    assert (
        Article.objects.count(),
        Question.objects.count(),
        QuestionOption.objects.count(),
        User.objects.count(),
    ) == counts
    assert Question.objects.filter(status="closed").count() == 1
    assert json.loads(credentials.read_text()) == passwords
