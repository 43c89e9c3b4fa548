"""Data exports: complete, documented, exact, anonymised, scoped, and refused when they should be."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import uuid
import zipfile
from decimal import Decimal

import pandas as pd
import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from forecasting import exports, services
from forecasting.models import AggregateSnapshot, ModelRun, Prediction, Question, Resolution, Score
from market import services as market_services
from market.models import MICRO, PricePoint
from tests.factories import (
    ArticleFactory,
    QuestionFactory,
    UserFactory,
    analyst_user,
    multiple_choice_question,
)

pytestmark = pytest.mark.django_db

TABLES = ("questions", "forecasts", "aggregates", "scores", "market")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The factories set passwords; PBKDF2 would make each test's half-dozen users take seconds."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- data -------------------------------------------------------------------------------------------


def forecast(question, user, p):
    return services.prediction_create(question=question, forecaster=user, probability=Decimal(p))


@pytest.fixture
def world(editor, django_capture_on_commit_callbacks):
    """Two articles; a resolved yes/no question with a Bayesian aggregate, a resolved multiple-choice
    question, an open question with a market, and a draft that must never be exported."""
    alice, bob, carol, dave = (UserFactory(username=name) for name in ("alice", "bob", "carol", "dave"))
    politics = ArticleFactory(slug="politics", title="Ceasefire talks")
    sport = ArticleFactory(slug="sport", title="The final")
    q1 = QuestionFactory(article=politics, title="Ceasefire by June?")
    q2 = multiple_choice_question(article=politics, title="Who mediates?", labels=("Qatar", "Egypt", "Norway"))
    q3 = QuestionFactory(article=sport, title="Home win?")
    draft = QuestionFactory(article=politics, title="Secret draft?", status=Question.Status.DRAFT)

    forecast(q1, alice, "0.2")
    forecast(q1, bob, "0.65")
    forecast(q1, alice, "0.3725")  # an update: a new row
    forecast(q1, carol, "0.99")
    services.prediction_create(question=q2, forecaster=alice, option_probabilities=["0.6", "0.3", "0.1"])
    services.prediction_create(question=q2, forecaster=bob, option_probabilities=["0.25", "0.25", "0.5"])
    forecast(q3, alice, "0.55")
    forecast(q3, dave, "0.4")

    run = ModelRun.objects.create(method=ModelRun.Method.MAP, status=ModelRun.Status.SUCCEEDED)
    AggregateSnapshot.objects.create(
        question=q1,
        method="bayes",
        at=q1.opens_at + dt.timedelta(hours=1),
        probabilities=[0.412345, 0.587655],
        forecasters=3,
        low=0.401,
        high=0.7723,
        model_run=run,
        parameters={"model_run": run.pk, "method": "map"},
    )

    market = market_services.market_create(question=q3)
    market_services.trade_execute(
        user=dave, market_id=market.pk, outcome=1, side="buy", amount=10 * MICRO, idempotency_key=uuid.uuid4().hex
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.question_resolve(question=q1, actor=editor, outcome="yes")
        services.question_resolve(question=q2, actor=editor, outcome="option", option_id=q2.options.get(position=1).pk)
    assert Score.objects.filter(question=q1).count() == 3 * 8
    assert Score.objects.filter(question=q2).count() == 2 * 8
    return {
        "users": {"alice": alice, "bob": bob, "carol": carol, "dave": dave},
        "articles": (politics, sport),
        "questions": (q1, q2, q3),
        "draft": draft,
        "run": run,
        "market": market,
    }


@pytest.fixture
def analyst(db):
    return analyst_user(username="anna")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def identities_permission() -> Permission:
    """The permission the main code base declares (created here if its migration is not there yet)."""
    app_label, codename = exports.IDENTITIES_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    return permission or Permission.objects.create(
        codename=codename,
        name="Can see forecasters' identities in data exports",
        content_type=ContentType.objects.get_for_model(Prediction),
    )


# --- reading downloads ------------------------------------------------------------------------------


def fetch(client, url, expect=200, **params):
    response = client.get(url, params)
    assert response.status_code == expect, (response.status_code, getattr(response, "content", b"")[:300])
    if isinstance(response, StreamingHttpResponse):
        response.body = b"".join(response.streaming_content)
    return response


def unzip(response) -> dict[str, bytes]:
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def text_table(data: bytes) -> pd.DataFrame:
    """A CSV read as exact text (no type guessing, empty cells as "")."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def csv_tables(response) -> tuple[dict[str, pd.DataFrame], str]:
    files = unzip(response)
    return {
        name.removesuffix(".csv"): text_table(data) for name, data in files.items() if name.endswith(".csv")
    }, files["README.md"].decode()


def documented_columns(readme: str, heading: str) -> list[str]:
    """The column names listed in the README's table under ``## heading``."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    types = "|".join(exports.TYPES)
    return re.findall(rf"^\| ([a-z_]+) \| (?:{types}) \| \S", section, flags=re.MULTILINE)


def key(user) -> str:
    return exports.forecaster_key(user.pk)


# --- completeness and documentation -------------------------------------------------------------------


def test_the_zip_holds_every_table_and_a_readme_documenting_every_column(world, analyst):
    response = fetch(client_for(analyst), reverse("download_all"))
    assert response.streaming
    assert 'attachment; filename="forecasts-all-' in response["Content-Disposition"]
    assert response["Cache-Control"] == "private, no-store"
    files = unzip(response)
    assert set(files) == {f"{t}.csv" for t in TABLES} | {"README.md"}
    tables, readme = csv_tables(response)
    for name in TABLES:
        header = list(tables[name].columns)
        assert header == [c for c, _ in exports.COLUMNS[name] if c != "forecaster_username"]
        assert set(header) <= {c for c, _ in exports.COLUMNS[name]}  # declared, so described
        assert documented_columns(readme, f"{name}.csv") == header  # and documented in the ZIP
        for column, description in exports.COLUMNS[name]:
            if column in header:
                assert description.strip() and description in readme.replace("\\|", "|")
    for method in tables["aggregates"]["method"].unique():  # every method in the data is described
        assert re.search(rf"^\| {method} \| \S", readme, flags=re.MULTILINE), method
    for kind in ("brier", "log", "baseline", "peer"):
        assert f"| {kind} |" in readme
    # the README counts the rows of each file
    for name in TABLES:
        assert f"| {name}.csv | {len(tables[name])} |" in readme
    assert "anonymised" in readme


def test_every_row_is_exported_and_drafts_never(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    q1, q2, q3 = world["questions"]
    assert sorted(tables["questions"]["question_id"].astype(int)) == sorted(q.pk for q in (q1, q2, q3))
    assert "Secret draft?" not in set(tables["questions"]["title"])
    assert len(tables["forecasts"]) == Prediction.objects.count() == 8
    assert len(tables["aggregates"]) == AggregateSnapshot.objects.count()
    assert len(tables["scores"]) == Score.objects.count() == 40
    assert len(tables["market"]) == PricePoint.objects.count() == 2


def test_questions_table_values(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    q1, q2, q3 = world["questions"]
    rows = tables["questions"].set_index("question_id")
    one = rows.loc[str(q1.pk)]
    assert one["article_slug"] == "politics" and one["title"] == "Ceasefire by June?"
    assert one["status"] == "resolved" and one["resolution"] == "yes"
    assert json.loads(one["outcomes"]) == ["No", "Yes"]
    assert one["resolution_index"] == "1" and one["resolution_label"] == "Yes"
    assert pd.Timestamp(one["closes_at"]) == pd.Timestamp(q1.closes_at)
    two = rows.loc[str(q2.pk)]
    assert json.loads(two["outcomes"]) == ["Qatar", "Egypt", "Norway"]
    assert (two["resolution"], two["resolution_index"], two["resolution_label"]) == ("option", "1", "Egypt")
    three = rows.loc[str(q3.pk)]
    assert three["status"] == "open" and three["resolution"] == "" and three["resolved_at"] == ""


def test_forecast_values_are_exact(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    rows = tables["forecasts"].set_index("prediction_id")
    for prediction in Prediction.objects.all():
        row = rows.loc[str(prediction.pk)]
        assert row["question_id"] == str(prediction.question_id)
        assert row["forecaster"] == key(prediction.forecaster)
        assert pd.Timestamp(row["made_at"]) == pd.Timestamp(prediction.made_at)
        if prediction.probability is not None:
            assert Decimal(row["probability_yes"]) == prediction.probability
            assert row["probability_yes"] == f"{prediction.probability:f}"
            p = prediction.probability
            assert [Decimal(str(x)) for x in json.loads(row["probabilities"], parse_float=Decimal)] == [1 - p, p]
        else:
            assert row["probability_yes"] == ""
            stored = [Decimal(x) for x in prediction.option_probabilities]
            assert json.loads(row["probabilities"], parse_float=Decimal) == stored
    alice_update = Prediction.objects.get(probability=Decimal("0.3725"))
    assert rows.loc[str(alice_update.pk)]["probabilities"] == "[0.6275,0.3725]"


def test_aggregates_are_exact_with_interval_and_model_run(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    rows = tables["aggregates"].set_index("snapshot_id")
    q1 = world["questions"][0]
    for snapshot in AggregateSnapshot.objects.all():
        row = rows.loc[str(snapshot.pk)]
        assert (row["question_id"], row["method"]) == (str(snapshot.question_id), snapshot.method)
        assert json.loads(row["probabilities"]) == snapshot.probabilities  # the stored floats, bit for bit
        assert row["forecasters"] == str(snapshot.forecasters)
        assert pd.Timestamp(row["at"]) == pd.Timestamp(snapshot.at)
        assert json.loads(row["parameters"]) == snapshot.parameters
        if snapshot.question.is_binary:
            assert float(row["probability_yes"]) == snapshot.probabilities[-1]
        else:
            assert row["probability_yes"] == ""
        assert row["prediction_id"] == ("" if snapshot.prediction_id is None else str(snapshot.prediction_id))
    bayes = rows[(rows["method"] == "bayes") & (rows["question_id"] == str(q1.pk))]
    assert len(bayes) == 1
    bayes = bayes.iloc[0]
    assert (float(bayes["low"]), float(bayes["high"])) == (0.401, 0.7723)
    assert bayes["model_run_id"] == str(world["run"].pk)
    assert json.loads(bayes["probabilities"]) == [0.412345, 0.587655]
    others = rows[rows["method"] != "bayes"]
    assert set(others["model_run_id"]) == {""} and set(others["low"]) == {""}
    # every method's time series is there for every question forecast on
    for question in world["questions"]:
        methods = set(rows[rows["question_id"] == str(question.pk)]["method"])
        assert set(services.aggregates_current(question=question)) <= methods


def test_scores_are_exact(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    rows = tables["scores"]
    exported = {
        (int(r.question_id), r.forecaster, r.kind, r.method): (Decimal(r.value), Decimal(r.coverage), r)
        for r in rows.itertuples()
    }
    assert len(exported) == Score.objects.count()
    for score in Score.objects.select_related("forecaster"):
        value, coverage, row = exported[(score.question_id, key(score.forecaster), score.kind, score.method)]
        assert value == score.value and coverage == score.coverage
        assert row.value == f"{score.value:f}"
        assert (int(row.prediction_id), int(row.resolution_id)) == (score.prediction_id, score.resolution_id)


def test_market_price_history(world, analyst):
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_all")))
    rows = tables["market"]
    q3 = world["questions"][2]
    points = list(PricePoint.objects.filter(market=world["market"]).order_by("at", "id"))
    assert list(rows["price_point_id"].astype(int)) == [p.pk for p in points]
    assert set(rows["question_id"]) == {str(q3.pk)}
    for (_, row), point in zip(rows.iterrows(), points, strict=True):
        assert json.loads(row["prices"]) == point.prices
        assert float(row["price_yes"]) == point.prices[-1]
        assert row["trade_id"] == ("" if point.trade_id is None else str(point.trade_id))
    assert rows.iloc[0]["trade_id"] == "" and rows.iloc[1]["trade_id"] != ""


# --- Parquet --------------------------------------------------------------------------------------


def test_parquet_tables_one_by_one_match_the_csv(world, analyst):
    client = client_for(analyst)
    csv, _ = csv_tables(fetch(client, reverse("download_all")))
    for name in TABLES:
        response = fetch(client, reverse("download_all"), format="parquet", table=name)
        assert response["Content-Type"] == "application/vnd.apache.parquet"
        assert f"-{name}-" in response["Content-Disposition"] and ".parquet" in response["Content-Disposition"]
        frame = pd.read_parquet(io.BytesIO(response.body))
        assert list(frame.columns) == list(csv[name].columns)
        assert len(frame) == len(csv[name])

    forecasts = pd.read_parquet(
        io.BytesIO(fetch(client, reverse("download_all"), format="parquet", table="forecasts").body)
    )
    forecasts = forecasts.set_index("prediction_id")
    for prediction in Prediction.objects.all():
        row = forecasts.loc[prediction.pk]
        assert row["forecaster"] == key(prediction.forecaster)
        assert row["made_at"] == pd.Timestamp(prediction.made_at)
        assert str(row["made_at"].tz) == "UTC"
        if prediction.probability is not None:
            assert row["probability_yes"] == prediction.probability  # Decimal, exact
            assert list(row["probabilities"]) == [1 - prediction.probability, prediction.probability]
        else:
            assert row["probability_yes"] is None
            assert list(row["probabilities"]) == [Decimal(x) for x in prediction.option_probabilities]

    scores = pd.read_parquet(io.BytesIO(fetch(client, reverse("download_all"), format="parquet", table="scores").body))
    stored = {
        (s.question_id, key(s.forecaster), s.kind, s.method): s for s in Score.objects.select_related("forecaster")
    }
    for row in scores.itertuples():
        score = stored[(row.question_id, row.forecaster, row.kind, row.method)]
        assert (row.value, row.coverage) == (score.value, score.coverage)

    aggregates = pd.read_parquet(
        io.BytesIO(fetch(client, reverse("download_all"), format="parquet", table="aggregates").body)
    ).set_index("snapshot_id")
    for snapshot in AggregateSnapshot.objects.all():
        row = aggregates.loc[snapshot.pk]
        assert list(row["probabilities"]) == snapshot.probabilities
        assert json.loads(row["parameters"]) == snapshot.parameters
    bayes = aggregates[aggregates["method"] == "bayes"].iloc[0]
    assert (bayes["low"], bayes["high"], bayes["model_run_id"]) == (0.401, 0.7723, world["run"].pk)


def test_a_zip_of_parquet_files_with_the_readme(world, analyst):
    response = fetch(client_for(analyst), reverse("download_all"), format="parquet")
    assert 'filename="forecasts-all-parquet-' in response["Content-Disposition"]
    files = unzip(response)
    assert set(files) == {f"{t}.parquet" for t in TABLES} | {"README.md"}
    readme = files["README.md"].decode()
    for name in TABLES:
        frame = pd.read_parquet(io.BytesIO(files[f"{name}.parquet"]))
        assert documented_columns(readme, f"{name}.parquet") == list(frame.columns)
    assert "Parquet" in readme


# --- anonymisation and identities ---------------------------------------------------------------------


def test_forecasters_are_anonymised_stably(world, analyst, settings):
    settings.EXPORT_FORECASTER_SALT = "pepper"
    client = client_for(analyst)
    first = fetch(client, reverse("download_all"))
    second = fetch(client, reverse("download_all"))
    one, _ = csv_tables(first)
    two, _ = csv_tables(second)
    assert list(one["forecasts"]["forecaster"]) == list(two["forecasts"]["forecaster"])
    users = world["users"]
    expected = {u.pk: hmac.new(b"pepper", str(u.pk).encode(), hashlib.sha256).hexdigest()[:16] for u in users.values()}
    for table in ("forecasts", "scores"):
        keys = set(one[table]["forecaster"])
        assert keys <= set(expected.values())
        assert all(re.fullmatch(r"[0-9a-f]{16}", k) for k in keys)
        assert "forecaster_username" not in one[table].columns
    by_question = one["forecasts"].groupby("question_id")["forecaster"].nunique()
    assert by_question[str(world["questions"][0].pk)] == 3  # alice's two forecasts share one key
    # no username anywhere in the download
    for data in unzip(first).values():
        for name in users:
            assert name.encode() not in data
    # the key is the same in forecasts and scores, so they join
    assert set(one["scores"]["forecaster"]) <= set(one["forecasts"]["forecaster"])


def test_the_salt_falls_back_to_the_secret_key(world, analyst, settings):
    settings.EXPORT_FORECASTER_SALT = ""
    alice = world["users"]["alice"]
    expected = hmac.new(settings.SECRET_KEY.encode(), str(alice.pk).encode(), hashlib.sha256).hexdigest()[:16]
    assert exports.forecaster_key(alice.pk) == expected
    settings.EXPORT_FORECASTER_SALT = "another salt"
    assert exports.forecaster_key(alice.pk) != expected


def test_identities_only_with_the_permission(world, analyst):
    analyst.user_permissions.add(identities_permission())
    response = fetch(client_for(analyst), reverse("download_all"))
    tables, readme = csv_tables(response)
    for table in ("forecasts", "scores"):
        header = list(tables[table].columns)
        assert header == [c for c, _ in exports.COLUMNS[table]]
        assert documented_columns(readme, f"{table}.csv") == header
        for row in tables[table].itertuples():
            user = world["users"][row.forecaster_username]
            assert row.forecaster == key(user)
    assert "identifies forecasters" in readme
    parquet = pd.read_parquet(
        io.BytesIO(fetch(client_for(analyst), reverse("download_all"), format="parquet", table="forecasts").body)
    )
    assert set(parquet["forecaster_username"]) == {"alice", "bob", "carol", "dave"}


# --- scope ----------------------------------------------------------------------------------------


def test_a_question_download_holds_only_that_question(world, analyst):
    q1, _, q3 = world["questions"]
    for question in (q1, q3):
        tables, readme = csv_tables(fetch(client_for(analyst), reverse("download_question", args=[question.pk])))
        for name in TABLES:
            assert set(tables[name]["question_id"]) <= {str(question.pk)}, name
        assert len(tables["questions"]) == 1
        assert len(tables["forecasts"]) == question.predictions.count()
        assert len(tables["aggregates"]) == question.aggregate_snapshots.count()
        assert len(tables["scores"]) == Score.objects.filter(question=question).count()
        assert f"Question {question.pk}" in readme
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_question", args=[q3.pk])))
    assert len(tables["market"]) == 2 and len(tables["scores"]) == 0


def test_an_article_download_holds_only_its_questions(world, analyst):
    q1, q2, q3 = world["questions"]
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_article", args=["politics"])))
    assert sorted(tables["questions"]["question_id"].astype(int)) == sorted([q1.pk, q2.pk])
    for name in TABLES:
        assert str(q3.pk) not in set(tables[name]["question_id"])
    assert len(tables["forecasts"]) == 6 and len(tables["market"]) == 0
    # the article's filters narrow it further
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_article", args=["politics"]), status="open"))
    assert len(tables["questions"]) == 0 and len(tables["forecasts"]) == 0


def test_filters_select_questions(world, analyst):
    _, q2, q3 = world["questions"]
    client = client_for(analyst)
    tables, readme = csv_tables(fetch(client, reverse("download_all"), status="open"))
    assert list(tables["questions"]["question_id"]) == [str(q3.pk)]
    assert set(tables["forecasts"]["question_id"]) == {str(q3.pk)}
    assert "status open" in readme
    tables, _ = csv_tables(fetch(client, reverse("download_all"), article="sport"))
    assert list(tables["questions"]["question_id"]) == [str(q3.pk)]
    # dates: questions whose forecasting window overlaps the period
    Question.objects.filter(pk=q2.pk).update(
        opens_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), closes_at=dt.datetime(2020, 2, 1, tzinfo=dt.UTC)
    )
    tables, _ = csv_tables(fetch(client, reverse("download_all"), **{"from": "2020-01-31", "to": "2020-03-01"}))
    assert list(tables["questions"]["question_id"]) == [str(q2.pk)]
    assert set(tables["forecasts"]["question_id"]) == {str(q2.pk)}
    tables, _ = csv_tables(fetch(client, reverse("download_all"), **{"from": "2020-02-01"}))
    assert str(q2.pk) not in set(tables["questions"]["question_id"])  # closed at midnight that day
    tables, _ = csv_tables(fetch(client, reverse("download_all"), **{"from": "0001-01-01", "to": "9999-12-31"}))
    assert len(tables["questions"]) == 3


def test_rows_added_after_the_export_started_are_left_out(world):
    q3 = world["questions"][2]
    export = exports.export_everything().freeze()
    forecast(q3, world["users"]["bob"], "0.5")
    forecasts = list(export.rows("forecasts"))
    aggregates = list(export.rows("aggregates"))
    assert len(forecasts) == 8
    assert len(aggregates) == AggregateSnapshot.objects.count() - len(services.aggregates_current(question=q3))


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


def test_the_download_streams_in_chunks(world, analyst, monkeypatch):
    monkeypatch.setattr(exports, "STREAM_CHUNK_BYTES", 1)
    monkeypatch.setattr(exports, "CSV_BATCH_ROWS", 2)
    response = client_for(analyst).get(reverse("download_all"))
    chunks = list(response.streaming_content)
    assert len(chunks) > 5
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert len(text_table(archive.read("forecasts.csv"))) == 8


def test_resolution_is_the_active_one(world, analyst, editor, django_capture_on_commit_callbacks):
    q1 = world["questions"][0]
    with django_capture_on_commit_callbacks(execute=True):
        services.question_unresolve(question=q1, actor=editor)
    assert Resolution.objects.filter(question=q1).count() == 1
    tables, _ = csv_tables(fetch(client_for(analyst), reverse("download_question", args=[q1.pk])))
    row = tables["questions"].iloc[0]
    assert (row["status"], row["resolution"], row["resolution_index"]) == ("closed", "", "")
    assert len(tables["scores"]) == 0
