"""The PostgreSQL fast path of the exports (``pg_copy``: COPY for forecasts, aggregates and scores)
writes exactly what the generic path writes, table by table, CSV and Parquet, byte for byte.

The data covers what the SQL re-implements: formula-injection escaping of text (usernames), the
pseudonyms, NULLs (multiple choice has no P(YES), only bayes has an interval), timestamps, decimal
vectors, CDFs of numeric questions (values Python prints with an exponent, whole floats), float
vectors and intervals, parameters (sorted keys, unicode, control characters).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from forecasting.io import exports
from forecasting.io.exports import pg_copy
from forecasting.models import AggregateSnapshot, Prediction
from tests.factories import UserFactory, numeric_question

FAST_TABLES = ("forecasts", "aggregates", "scores")

# A CDF as a forecaster may store it (6 decimals): tiny values (1e-06, printed with an exponent by
# Python), whole floats (0.0, 1.0) and ordinary ones.
CDF = [0.0, 1e-06, 5e-05, 0.0001] + [round(0.0001 + k * 0.0049, 6) for k in range(1, 196)] + [0.99999, 1.0]


def _both_paths(monkeypatch, export_factory, table: str) -> tuple[tuple, tuple]:
    """(CSV bytes, Parquet bytes, README row count) through the fast path, then the generic one."""
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(pg_copy, "ENABLED", enabled)
        export = export_factory()
        csv = b"".join(exports.csv_chunks(export, table))
        parquet = b"".join(exports.stream_table(export, table, "parquet"))
        results.append((csv, parquet, export.row_counts.get(table)))
    return results[0], results[1]


@pytest.fixture
def tricky(world):
    """The export fixture's newsroom, plus what the SQL formatting has to get right."""
    q1, _, _ = world["questions"]
    formula = UserFactory(username="=cmd")  # a spreadsheet would run it as a formula
    dash = UserFactory(username="-dash")
    at = UserFactory(username="@handle")
    for user, p in ((formula, "0.01"), (dash, "0.99"), (at, "0.5")):
        Prediction.objects.create(question=q1, forecaster=user, probability=p)
    numeric = numeric_question(article=q1.article, title="How many?")
    Prediction.objects.create(question=numeric, forecaster=formula, cdf=CDF)
    Prediction.objects.create(question=numeric, forecaster=dash, cdf=[round(x / 2, 6) for x in CDF[:-1]] + [1])
    base = numeric.opens_at + dt.timedelta(hours=2)
    AggregateSnapshot.objects.create(
        question=numeric,
        method="learnt_pool",
        at=base,
        probabilities=CDF,
        forecasters=2,
        parameters={"factor": 1.25, "zeta": 'ünïcode\n\t"quoted"', "alpha": 3, "none": None, "ok": True},
    )
    AggregateSnapshot.objects.create(
        question=q1,
        method="mean",
        at=base,
        probabilities=[1e-05, 0.99999],
        forecasters=3,
        parameters={"scale": 2.0},
    )
    AggregateSnapshot.objects.create(
        question=q1, method="median", at=base, probabilities=[0, 1], forecasters=1, low=0.0, high=1.0
    )
    return world


pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's")
class TestFastPathEqualsGenericPath:
    @pytest.mark.parametrize("identities", [False, True])
    @pytest.mark.parametrize("table", FAST_TABLES)
    def test_everything(self, tricky, monkeypatch, table, identities):
        assert pg_copy.available(exports.export_everything(), table)
        fast, generic = _both_paths(monkeypatch, lambda: exports.export_everything(identities=identities), table)
        assert fast[2] == generic[2] > 0
        assert fast[0] == generic[0]
        assert fast[1] == generic[1]

    def test_escaping_and_pseudonyms_are_there(self, tricky, monkeypatch):
        fast, _ = _both_paths(monkeypatch, lambda: exports.export_everything(identities=True), "forecasts")
        text = fast[0].decode()
        assert ",'=cmd," in text and ",'-dash," in text and ",'@handle," in text
        assert exports.forecaster_key(tricky["users"]["alice"].pk) in text
        assert "1e-06" in text and ",1.0]" in text

    @pytest.mark.parametrize("table", ["forecasts", "scores"])
    def test_own_data(self, tricky, monkeypatch, table):
        alice = tricky["users"]["alice"]
        fast, generic = _both_paths(monkeypatch, lambda: exports.export_own_data(alice), table)
        assert fast == generic and fast[2] > 0

    def test_one_question_and_filters(self, tricky, monkeypatch):
        q1 = tricky["questions"][0]
        filters = exports.QuestionFilters(statuses=("resolved",))
        for factory in (
            lambda: exports.export_question(q1),
            lambda: exports.export_everything(filters=filters),
        ):
            for table in FAST_TABLES:
                fast, generic = _both_paths(monkeypatch, factory, table)
                assert fast == generic

    def test_rows_added_after_the_export_starts_are_left_out(self, tricky, monkeypatch):
        export = exports.export_everything().freeze()
        q1 = tricky["questions"][0]
        Prediction.objects.create(question=q1, forecaster=tricky["users"]["bob"], probability="0.42")

        def frozen_before():
            later = exports.export_everything()
            later.as_of, later.marks = export.as_of, dict(export.marks)
            return later

        fast, generic = _both_paths(monkeypatch, frozen_before, "forecasts")
        assert fast == generic
        assert fast[2] == Prediction.objects.count() - 1

    def test_an_empty_table(self, world, monkeypatch):
        q3 = world["questions"][2]  # open: no scores
        fast, generic = _both_paths(monkeypatch, lambda: exports.export_question(q3), "scores")
        assert fast == generic and fast[2] == 0

    def test_unusual_stored_values_take_the_generic_path(self, tricky, monkeypatch):
        # option probabilities stored as JSON numbers (the services store strings): Python writes Decimal(float)
        q2 = tricky["questions"][1]
        Prediction.objects.create(
            question=q2, forecaster=tricky["users"]["carol"], option_probabilities=[0.1, 0.2, 0.7]
        )
        AggregateSnapshot.objects.create(
            question=q2,
            method="mean",
            at=q2.opens_at,
            probabilities=[0.1, 0.2, 0.7],
            forecasters=1,
            parameters={"nested": {"b": 1, "a": [1, 2]}},
        )
        fast, generic = _both_paths(monkeypatch, exports.export_everything, "aggregates")
        assert fast == generic
        csv = []
        for enabled in (True, False):  # CSV only: Parquet refuses Decimal(0.1) as decimal128(5, 4) either way
            monkeypatch.setattr(pg_copy, "ENABLED", enabled)
            csv.append(b"".join(exports.csv_chunks(exports.export_everything(), "forecasts")))
        assert csv[0] == csv[1]
        assert b"0.1000000000000000055511151231257827021181583404541015625" in csv[0]

    def test_the_zip(self, tricky, monkeypatch):
        """The whole ZIP's members (README with its row counts included) are the same."""
        import io
        import zipfile

        for fmt in ("csv", "parquet"):
            members = []
            for enabled in (True, False):
                monkeypatch.setattr(pg_copy, "ENABLED", enabled)
                export = exports.export_everything()
                data = b"".join(exports.stream_zip(export, fmt))
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    members.append({name: archive.read(name) for name in archive.namelist()})
            assert members[0].keys() == members[1].keys()
            for name in members[0]:
                if name == "README.md":  # the moment of the export differs
                    strip = lambda text: [line for line in text.decode().splitlines() if "Exported at" not in line]  # noqa: E731
                    assert strip(members[0][name]) == strip(members[1][name])
                else:
                    assert members[0][name] == members[1][name], name


def test_sqlite_keeps_the_generic_path(world, monkeypatch):
    # runs on either database: the choice is made on the connection's vendor, which this sets to SQLite's
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert not any(pg_copy.available(exports.export_everything(), table) for table in FAST_TABLES)
