"""CSV formula injection: text cells that a spreadsheet would run as a formula are neutralised in CSV
(a leading ``'``, OWASP's advice); Parquet keeps the raw text; numbers stay numbers."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import pytest
from django.urls import reverse

from forecasting import services
from forecasting.io import exports
from forecasting.models import Score
from tests.factories import ArticleFactory, QuestionFactory, UserFactory
from tests.forecasting.io.export_helpers import (
    client_for,
    csv_tables,
    fetch,
    forecast,
    identities_permission,
    text_table,
    unzip,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

TITLE = '=HYPERLINK("http://evil","x")'
FORECASTER = "@SUM(1)"
CRITERIA = "+cmd|' /C calc'!A0"
ARTICLE_TITLE = "-2+3"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile(editor, analyst, django_capture_on_commit_callbacks):
    """A resolved question whose texts and forecaster's name start like formulas, with scores."""
    analyst.user_permissions.add(identities_permission())  # so usernames are exported too
    article = ArticleFactory(slug="hostile", title=ARTICLE_TITLE)
    question = QuestionFactory(article=article, title=TITLE, resolution_criteria=CRITERIA)
    mallory, bob = UserFactory(username=FORECASTER), UserFactory(username="bob")
    forecast(question, mallory, "0.9")
    forecast(question, bob, "0.2")
    with django_capture_on_commit_callbacks(execute=True):
        services.question_resolve(question=question, actor=editor, outcome="no")
    assert Score.objects.filter(question=question, value__lt=0).exists()  # negative numbers to export
    return {"question": question, "mallory": mallory}


def parquet_table(client, table: str) -> pd.DataFrame:
    response = fetch(client, reverse("download_all"), format="parquet", table=table)
    return pd.read_parquet(io.BytesIO(response.body))


def test_formula_like_text_is_neutralised_in_csv(hostile, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))

    question = tables["questions"].set_index("question_id").loc[str(hostile["question"].pk)]
    assert question["title"] == "'" + TITLE
    assert question["resolution_criteria"] == "'" + CRITERIA
    assert question["article_title"] == "'" + ARTICLE_TITLE
    for table in ("forecasts", "scores"):
        assert "'" + FORECASTER in set(tables[table]["forecaster_username"])
        assert FORECASTER not in set(tables[table]["forecaster_username"])
    # no text cell of any table starts like a formula
    for name, frame in tables.items():
        text_columns = [c.name for c in exports.TABLES[name].columns if c.type == "text"]
        for column in text_columns:
            assert not any(cell.startswith(TRIGGERS) for cell in frame[column]), (name, column)


def test_the_single_table_csv_download_is_neutralised_too(hostile, analyst):
    response = fetch(client_for(analyst), reverse("download_all"), table="questions")
    titles = list(text_table(response.body)["title"])
    assert titles == ["'" + TITLE]


def test_negative_numbers_stay_numbers_in_csv(hostile, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    scores = tables["scores"]
    stored = {
        (str(s.question_id), s.forecaster.username, s.kind, s.method): s
        for s in Score.objects.select_related("forecaster")
    }
    negatives = 0
    for row in scores.itertuples():
        score = stored[(row.question_id, row.forecaster_username.removeprefix("'"), row.kind, row.method)]
        assert Decimal(row.value) == score.value  # not quoted: a leading ' would not parse
        negatives += row.value.startswith("-")
    assert negatives > 0


def test_parquet_keeps_the_raw_text(hostile, analyst):
    client = client_for(analyst)
    questions = parquet_table(client, "questions").set_index("question_id").loc[hostile["question"].pk]
    assert (questions["title"], questions["resolution_criteria"], questions["article_title"]) == (
        TITLE,
        CRITERIA,
        ARTICLE_TITLE,
    )
    assert FORECASTER in set(parquet_table(client, "forecasts")["forecaster_username"])
    scores = parquet_table(client, "scores")
    assert (scores["value"] < 0).any()


def test_the_readmes_explain_both(hostile, analyst):
    client = client_for(analyst)
    _, csv_readme = csv_tables(fetch(client, reverse("download_all")))
    parquet_readme = unzip(fetch(client, reverse("download_all"), format="parquet"))["README.md"].decode()
    assert "starts with =, +, -, @, a tab or a carriage return" in csv_readme
    assert "formula" in csv_readme
    assert "exactly as stored" in parquet_readme and "formula" in parquet_readme


@pytest.mark.parametrize("text", ["=1+1", "+1", "-x", "@A1", "\tx", "\rx"])
def test_every_trigger_character_is_neutralised(text):
    assert exports.TYPES["text"].csv(text) == "'" + text


@pytest.mark.parametrize("text", ["plain", "a=b", "", "'already", "[1]", "0.5"])
def test_other_text_is_written_as_is(text):
    assert exports.TYPES["text"].csv(text) == text
