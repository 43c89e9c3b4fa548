"""The download views: a reader's own data, who may download what, bad input, and the analyst page."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from django.urls import reverse

from forecasting.io import exports
from forecasting.models import Prediction, Score
from tests.factories import UserFactory
from tests.forecasting.io.export_helpers import (
    client_for,
    csv_tables,
    documented_columns,
    fetch,
    key,
    text_table,
    unzip,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# --- a reader's own data --------------------------------------------------------------------------------


def test_a_reader_downloads_only_their_own_forecasts_and_scores(world):
    alice = world["users"]["alice"]
    response = fetch(client_for(alice), reverse("download_mine"))
    files = unzip(response)
    assert set(files) == {"questions.csv", "forecasts.csv", "scores.csv", "README.md"}
    tables, readme = csv_tables(response)
    assert set(tables["forecasts"]["forecaster_username"]) == {"alice"}
    assert set(tables["forecasts"]["forecaster"]) == {key(alice)}
    assert sorted(tables["forecasts"]["prediction_id"].astype(int)) == sorted(
        Prediction.objects.filter(forecaster=alice).values_list("pk", flat=True)
    )
    assert set(tables["scores"]["forecaster_username"]) == {"alice"}
    assert len(tables["scores"]) == Score.objects.filter(forecaster=alice).count() == 16
    assert len(tables["questions"]) == 3
    for other in ("bob", "carol", "dave"):
        for data in files.values():
            assert other.encode() not in data
    assert documented_columns(readme, "scores.csv") == list(tables["scores"].columns)
    assert "Aggregation methods" not in readme
    parquet = pd.read_parquet(
        io.BytesIO(fetch(client_for(alice), reverse("download_mine"), format="parquet", table="scores").body)
    )
    assert set(parquet["forecaster_username"]) == {"alice"} and len(parquet) == 16


def test_a_reader_without_forecasts_gets_empty_tables(world):
    newcomer = UserFactory(username="newcomer")
    tables, _ = csv_tables(fetch(client_for(newcomer), reverse("download_mine")))
    assert all(len(frame) == 0 for frame in tables.values())
    assert list(tables["forecasts"].columns) == [c for c, _ in exports.COLUMNS["forecasts"]]


# --- access and bad input --------------------------------------------------------------------------


ANALYST_URLS = [
    ("analyst_downloads", []),
    ("download_all", []),
    ("download_article", ["politics"]),
    ("download_question", None),
]


def _url(name, args, world):
    return reverse(name, args=[world["questions"][0].pk] if args is None else args)


def test_anonymous_users_are_sent_to_log_in(world, client):
    for name, args in [*ANALYST_URLS, ("download_mine", [])]:
        response = client.get(_url(name, args, world))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name


def test_readers_and_editors_may_not_download_the_newsroom_data(world, editor):
    for user in (world["users"]["alice"], editor):
        client = client_for(user)
        for name, args in ANALYST_URLS:
            assert client.get(_url(name, args, world)).status_code == 403, name
        assert client.get(reverse("download_mine")).status_code == 200


@pytest.mark.parametrize(
    ("url_name", "params", "status", "message"),
    [
        ("download_all", {"table": "users"}, 400, "Unknown table"),
        ("download_all", {"format": "xlsx"}, 400, "Unknown format"),
        ("download_all", {"from": "31/01/2025"}, 400, "is not a date"),
        ("download_all", {"to": "2025-02-30"}, 400, "is not a date"),
        ("download_all", {"from": "2025-03-01", "to": "2025-02-01"}, 400, "after"),
        ("download_all", {"status": "draft"}, 400, "Unknown question status"),
        ("download_all", {"status": "bogus"}, 400, "Unknown question status"),
        ("download_all", {"article": "no-such-article"}, 404, "no article"),
        ("download_article", {"from": "soon"}, 400, "is not a date"),
        ("download_question", {"format": "parquet", "table": "nope"}, 400, "Unknown table"),
        ("analyst_downloads", {"article": "no-such-article"}, 404, "no article"),
    ],
)
def test_bad_input_is_refused_clearly(world, analyst, url_name, params, status, message):
    url = _url(url_name, {"download_article": ["politics"], "download_question": None}.get(url_name, []), world)
    response = client_for(analyst).get(url, params)
    assert response.status_code == status
    assert message in response.content.decode()


def test_unknown_articles_and_questions_are_404(world, analyst):
    client = client_for(analyst)
    assert client.get(reverse("download_article", args=["nowhere"])).status_code == 404
    assert client.get(reverse("download_question", args=[999_999])).status_code == 404
    assert client.get(reverse("download_question", args=[world["draft"].pk])).status_code == 404


def test_a_reader_cannot_ask_for_tables_outside_their_data(world):
    response = client_for(world["users"]["alice"]).get(reverse("download_mine"), {"table": "aggregates"})
    assert response.status_code == 400 and "Unknown table" in response.content.decode()


def test_one_table_as_csv(world, analyst):
    response = fetch(client_for(analyst), reverse("download_all"), table="forecasts")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    frame = text_table(response.body)
    assert list(frame.columns) == [c for c, _ in exports.COLUMNS["forecasts"] if c != "forecaster_username"]
    assert len(frame) == 8


# --- the analyst page -----------------------------------------------------------------------------------


def test_the_analyst_page_lists_downloads_with_filters(world, analyst):
    client = client_for(analyst)
    response = client.get(reverse("analyst_downloads"))
    assert response.status_code == 200
    body = response.content.decode()
    q1, q2, q3 = world["questions"]
    for question in (q1, q2, q3):
        assert question.title in body
        assert reverse("download_question", args=[question.pk]) in body
    assert "Secret draft?" not in body
    assert reverse("download_article", args=["politics"]) in body
    assert f"{reverse('download_all')}?format=parquet" in body
    for name, columns in exports.COLUMNS.items():  # the page documents the same columns
        assert f"<code>{name}</code>" in body
        for column, _ in columns:
            assert f"<code>{column}</code>" in body
    filtered = client.get(reverse("analyst_downloads"), {"status": "open", "article": "sport"}).content.decode()
    assert q3.title in filtered and q1.title not in filtered
    assert f"{reverse('download_all')}?article=sport&amp;status=open" in filtered
    assert f"{reverse('download_article', args=['sport'])}?status=open" in filtered
    bad = client.get(reverse("analyst_downloads"), {"from": "yesterday"})
    assert bad.status_code == 400 and "is not a date" in bad.content.decode()
