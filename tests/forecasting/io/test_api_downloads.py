"""The analysts' downloads through the API (/api/v1/downloads/...): token auth, the web's permissions,
the same tables, streamed, and the API's JSON errors."""

from __future__ import annotations

import io
import re

import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.forecasting.io.export_helpers import client_for, csv_tables, fetch, key, unzip

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _without_times(readme: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?\+00:00", "<time>", readme)


def test_an_analyst_with_a_token_gets_the_same_tables_as_on_the_web(world, analyst):
    api = fetch(token_client(analyst), reverse("api:download-all"))
    web = fetch(client_for(analyst), reverse("download_all"))
    api_tables, api_readme = csv_tables(api)
    web_tables, web_readme = csv_tables(web)
    assert set(api_tables) == {"questions", "forecasts", "aggregates", "scores", "market"}
    for name, table in web_tables.items():
        assert api_tables[name].equals(table), name
    assert _without_times(api_readme) == _without_times(web_readme)
    assert key(world["users"]["alice"]) in set(api_tables["forecasts"]["forecaster"])
    assert "alice" not in set(api_tables["forecasts"]["forecaster"])  # pseudonymous without the permission


def test_an_article_and_a_question_as_one_parquet_table(world, analyst):
    politics, _ = world["articles"]
    q1 = world["questions"][0]
    client = token_client(analyst)
    article = fetch(client, reverse("api:download-article", args=[politics.slug]), format="parquet", table="questions")
    titles = set(pq.read_table(io.BytesIO(article.body)).column("title").to_pylist())
    assert titles == {"Ceasefire by June?", "Who mediates?"}
    question = fetch(client, reverse("api:download-question", args=[q1.pk]), table="forecasts")
    assert question["Content-Type"].startswith("text/csv")
    assert question.body.count(b"\n") == 1 + 4  # header and q1's four forecasts (alice's update included)


def test_a_reader_downloads_their_own_data_only(world):
    alice = world["users"]["alice"]
    files = unzip(fetch(token_client(alice), reverse("api:download-mine")))
    assert "forecasts.csv" in files and "market.csv" not in files


@pytest.mark.parametrize("url_name", ["api:download-all", "api:download-mine"])
def test_anonymous_callers_get_401_in_the_api_error_shape(world, url_name):
    response = APIClient().get(reverse(url_name))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_readers_and_editors_may_not_download_the_newsroom_data(world, editor):
    for user in (world["users"]["alice"], editor):
        response = token_client(user).get(reverse("api:download-all"))
        assert response.status_code == 403
        assert "analysts" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("params", "message"),
    [({"format": "xlsx"}, "Unknown format"), ({"table": "secrets"}, "Unknown table"), ({"from": "May"}, "from")],
)
def test_bad_input_is_a_400_in_the_api_error_shape(world, analyst, params, message):
    response = token_client(analyst).get(reverse("api:download-all"), params)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_unknown_articles_and_drafts_are_404(world, analyst):
    client = token_client(analyst)
    assert client.get(reverse("api:download-article", args=["nope"])).status_code == 404
    draft = client.get(reverse("api:download-question", args=[world["draft"].pk]))
    assert draft.status_code == 404 and draft.json()["error"]["code"] == "not_found"
