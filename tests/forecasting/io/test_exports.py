"""Data exports: complete, documented, exact, anonymised, scoped and consistent.

The download views' access rules, bad input, a reader's own data and the analyst page are in
test_export_downloads.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
import zipfile
from decimal import Decimal

import pandas as pd
import pytest
from django.urls import reverse

from forecasting import services
from forecasting.io import exports
from forecasting.io.exports import csv_zip
from forecasting.models import AggregateSnapshot, Prediction, Question, Resolution, Score
from market.models import PricePoint
from tests.factories import UserFactory, numeric_question
from tests.forecasting.io.export_helpers import (
    TABLES,
    client_for,
    csv_tables,
    documented_columns,
    fetch,
    forecast,
    identities_permission,
    key,
    text_table,
    unzip,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


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


def test_the_market_table_joins_the_exports_through_the_registry():
    """Forecasting owns the table registry; the market registers its table (forecasting never imports market)."""
    assert tuple(exports.ANALYST_TABLES) == exports.analyst_tables() == TABLES
    market = exports.TABLES["market"]
    assert market.rows.__module__ == "market.exports" and market.append_only is PricePoint
    assert exports.register_table(market) is market  # registering the same spec again changes nothing
    with pytest.raises(ValueError, match="registered already"):
        exports.register_table(exports.Table("market", "another", market.columns, rows=market.rows))
    assert exports.analyst_tables() == TABLES


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


def test_the_download_streams_in_chunks(world, analyst, monkeypatch):
    monkeypatch.setattr(csv_zip, "STREAM_CHUNK_BYTES", 1)
    monkeypatch.setattr(csv_zip, "CSV_BATCH_ROWS", 2)
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


# --- numeric and date questions -----------------------------------------------------------------------


def test_numeric_forecasts_and_aggregates_carry_their_cdfs_in_both_formats(analyst, editor):
    question = numeric_question(0, 500, open_upper=True, unit="violations", title="How many violations?")
    made = [
        services.prediction_create(
            question=question, forecaster=UserFactory(), components=[{"median": m, "low": m - 40, "high": m + 60}]
        )
        for m in (120, 200)
    ]
    services.question_resolve(question=question, actor=editor, outcome="value", value=172.0, source="OSCE")
    client = client_for(analyst)
    csv, _ = csv_tables(fetch(client, reverse("download_all")))
    questions = csv["questions"].set_index("question_id")
    row = questions.loc[str(question.pk)]
    assert (float(row["range_min"]), float(row["range_max"]), row["unit"]) == (0.0, 500.0, "violations")
    assert (row["resolution"], float(row["resolution_value"])) == ("value", 172.0)
    forecasts = csv["forecasts"].set_index("prediction_id")
    for prediction in made:
        exported = json.loads(forecasts.loc[str(prediction.pk), "cdf"])  # CSV: a JSON array
        assert len(exported) == 201 and exported == prediction.cdf
        assert forecasts.loc[str(prediction.pk), "probabilities"] == ""
    parquet = pd.read_parquet(
        io.BytesIO(fetch(client, reverse("download_all"), format="parquet", table="forecasts").body)
    ).set_index("prediction_id")
    for prediction in made:
        assert list(parquet.loc[prediction.pk, "cdf"]) == prediction.cdf  # Parquet: list<double>
    aggregates = pd.read_parquet(
        io.BytesIO(fetch(client, reverse("download_all"), format="parquet", table="aggregates").body)
    )
    headline = aggregates[aggregates["method"] == "learnt_pool"].iloc[-1]
    assert list(headline["cdf"]) == services.community_forecast(question=question).probabilities
