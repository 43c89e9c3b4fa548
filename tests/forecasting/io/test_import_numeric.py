"""The flat-file import of numeric and date questions (the numeric format: a ``cdf`` column)."""

import datetime as dt
import gzip
import io
import itertools
import json
import math

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting.continuous import validate_cdf
from forecasting.io.import_numeric import validate_numeric_rows
from forecasting.io.import_rows import NUMERIC_OPTIONAL_COLUMNS, NUMERIC_REQUIRED_COLUMNS
from forecasting.io.imports import ImportFileError, forecasts_import
from forecasting.models import AggregateSnapshot, Prediction, Question, Resolution, Score
from tests.forecasting.io.test_import import CLEAN_ROWS, counts, csv_text, run_command, write_csv

pytestmark = pytest.mark.django_db

UTC = dt.UTC
HEADER = (*NUMERIC_REQUIRED_COLUMNS, *NUMERIC_OPTIONAL_COLUMNS)
GRID = [k / 200 for k in range(201)]


def cdf(centre: float, *, below: float = 0.0, above: float = 0.0, spread: float = 0.1) -> list[float]:
    """A CDF on the unit grid, 6 decimals: half uniform, half a logistic bump at ``centre``, with ``below`` and
    ``above`` the masses beyond the bounds. Valid on the site's rules when the tails suit the bounds."""

    def logistic(u: float) -> float:
        return 1 / (1 + math.exp(-(u - centre) / spread))

    low, high = logistic(0.0), logistic(1.0)
    inside = 1 - below - above
    return [round(below + inside * (0.5 * u + 0.5 * (logistic(u) - low) / (high - low)), 6) for u in GRID]


def epoch(*args) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()


# n1: numeric on a log scale (zero point 0), 1 to 1000, closed below and open above; resolves 50.
# d1: a date question (its type read from the ISO dates of its range), open below; resolves below the range.
N1 = ("1", "1000", "false", "true", "50", "2020-03-01T00:00:00Z", "0", "numeric", "2020-02-01T00:00:00Z")
D1 = ("2030-01-01", "2031-01-01", "true", "false", "below_lower_bound", "2020-04-01T00:00:00Z", "", "", "")
ALICE_N1_FIRST, ALICE_N1 = cdf(0.3, above=0.01), cdf(0.55, above=0.02)
BOB_N1, CAROL_N1 = cdf(0.6, above=0.05), cdf(0.8, above=0.0)  # carol: nothing above an open bound
ALICE_D1, BOB_D1, CAROL_D1 = cdf(0.2, below=0.1), cdf(0.5, below=0.01), cdf(0.1, below=0.3)


def row(question_id, forecaster_id, made_at, values, fields=N1):
    return [question_id, forecaster_id, made_at, json.dumps(values), *fields]


CLEAN = [
    row("n1", "alice", "2020-01-01T00:00:00Z", ALICE_N1_FIRST),
    row("n1", "bob", "2020-01-02T00:00:00Z", BOB_N1),
    row("d1", "alice", "2020-02-01T00:00:00Z", ALICE_D1, D1),
    row("n1", "alice", "2020-01-10T00:00:00Z", ALICE_N1),
    row("n1", "carol", "2020-01-20T00:00:00Z", CAROL_N1),
    row("d1", "bob", "2020-02-02T00:00:00Z", BOB_D1, D1),
    row("d1", "carol", "2020-02-03T00:00:00Z", CAROL_D1, D1),
]


def write_numeric(tmp_path, rows, name="numeric.csv.gz"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(csv_text(rows, HEADER).encode()))
    return path


def as_raw(rows):
    return [(i, dict(zip(HEADER, r, strict=True))) for i, r in enumerate(rows, start=2)]


def stored_cdf(question, username) -> list[float]:
    return Prediction.objects.filter(question=question, forecaster__username=f"{username}@imported-numeric").last().cdf


# --- a clean import ------------------------------------------------------------------------------------


def test_numeric_and_date_questions_forecasts_and_resolutions(tmp_path):
    report = forecasts_import(path=write_numeric(tmp_path, CLEAN))

    assert report.committed and report.numeric
    assert (report.rows_read, report.imported, report.already_imported, report.rejected) == (7, 7, 0, [])
    assert (report.questions_created, report.forecasters_created, report.questions_rescored) == (2, 3, 2)
    assert report.standardised == 1  # carol's n1 forecast, with no mass above an open bound

    n1 = Question.objects.get(article__slug="imported-numeric", external_id="n1")
    assert (n1.question_type, n1.status) == (Question.Type.NUMERIC, Question.Status.RESOLVED)
    assert (n1.range_min, n1.range_max, n1.zero_point) == (1.0, 1000.0, 0.0)
    assert (n1.open_lower_bound, n1.open_upper_bound) == (False, True)
    assert n1.opens_at == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert n1.closes_at == dt.datetime(2020, 2, 1, tzinfo=UTC)  # the file's closes_at, before the resolution
    d1 = Question.objects.get(external_id="d1")
    assert d1.question_type == Question.Type.DATE
    assert (d1.range_min, d1.range_max, d1.zero_point) == (epoch(2030, 1, 1), epoch(2031, 1, 1), None)
    assert (d1.open_lower_bound, d1.open_upper_bound) == (True, False)
    assert d1.closes_at == dt.datetime(2020, 4, 1, tzinfo=UTC)  # no closes_at: the resolution

    r1 = Resolution.objects.get(question=n1)
    assert (r1.outcome, r1.value, r1.resolved_by.username) == (Resolution.Outcome.VALUE, 50.0, "importer")
    assert r1.resolved_at == dt.datetime(2020, 3, 1, tzinfo=UTC)
    assert "50" in n1.resolution_criteria and "numeric.csv.gz" in n1.resolution_criteria
    r2 = Resolution.objects.get(question=d1)
    assert (r2.outcome, r2.value) == (Resolution.Outcome.BELOW, None)
    assert d1.events.get().action == "resolved"

    # valid forecasts are stored as the file has them; alice's update is a second row
    assert [p.cdf for p in Prediction.objects.filter(question=n1, forecaster__username="alice@imported-numeric")] == [
        ALICE_N1_FIRST,
        ALICE_N1,
    ]
    assert stored_cdf(n1, "bob") == BOB_N1
    assert stored_cdf(d1, "carol") == CAROL_D1
    assert all(p.probability is None for p in Prediction.objects.all())
    # carol's is standardised: 0.1% above the open upper bound, as the site requires, and valid
    carol = stored_cdf(n1, "carol")
    assert len(carol) == 201 and carol != CAROL_N1
    assert carol[0] == 0.0 and 1 - carol[-1] == pytest.approx(0.001, abs=2e-6)
    assert all(b >= a for a, b in itertools.pairwise(carol))
    validate_cdf(carol, n1.scale)


def test_scores_are_continuous_and_crps_matches_a_trapezoid(tmp_path):
    forecasts_import(path=write_numeric(tmp_path, CLEAN))
    n1, d1 = Question.objects.get(external_id="n1"), Question.objects.get(external_id="d1")

    for question in (n1, d1):
        kinds = set(Score.objects.filter(question=question).values_list("kind", flat=True))
        assert kinds == {"log", "baseline", "peer", "crps"}
        crps = Score.objects.filter(question=question, kind="crps", method="spot")
        assert crps.count() == 3  # one per forecaster

    # bob on n1: the log scale's position of 50, by hand, and the trapezoid rule over the 201 points
    y = math.log(50 / 1) / math.log(1000 / 1)
    squares = [(f - (1.0 if u >= y else 0.0)) ** 2 for f, u in zip(BOB_N1, GRID, strict=True)]
    expected = sum((a + b) / 2 for a, b in itertools.pairwise(squares)) / 200
    bob = Score.objects.get(question=n1, forecaster__username="bob@imported-numeric", kind="crps", method="spot")
    assert float(bob.value) == pytest.approx(expected, abs=2e-6)
    # d1 resolved below the range: each CRPS is the integral of (1 - F)^2
    alice = Score.objects.get(question=d1, forecaster__username="alice@imported-numeric", kind="crps", method="spot")
    squares = [(1 - f) ** 2 for f in ALICE_D1]
    assert float(alice.value) == pytest.approx(sum((a + b) / 2 for a, b in itertools.pairwise(squares)) / 200, abs=2e-6)


def test_aggregates_include_the_learnt_and_linear_pools(tmp_path):
    forecasts_import(path=write_numeric(tmp_path, CLEAN))
    n1 = Question.objects.get(external_id="n1")

    snapshots = AggregateSnapshot.objects.filter(question=n1)
    assert {"learnt_pool", "linear_pool"} <= set(snapshots.values_list("method", flat=True))
    assert snapshots.filter(method="linear_pool").count() == 4  # one per forecast
    last = snapshots.filter(method="linear_pool").order_by("at").last()
    assert last.forecasters == 3
    mean = [sum(values) / 3 for values in zip(ALICE_N1, BOB_N1, stored_cdf(n1, "carol"), strict=True)]
    assert last.probabilities == pytest.approx(mean, abs=2e-6)
    assert len(snapshots.filter(method="learnt_pool").order_by("at").last().probabilities) == 201


def test_reimport_creates_nothing(tmp_path):
    path = write_numeric(tmp_path, CLEAN)
    forecasts_import(path=path)
    before = counts()
    scores = dict(Score.objects.values_list("id", "value"))

    report = forecasts_import(path=path)

    assert counts() == before
    assert dict(Score.objects.values_list("id", "value")) == scores
    assert (report.imported, report.already_imported, report.rejected) == (0, 7, [])
    assert (report.questions_created, report.forecasters_created, report.questions_rescored) == (0, 0, 0)
    assert "Already imported: 7" in run_command(path)
    assert counts() == before


def test_reimport_of_a_grown_file_adds_only_the_new_rows(tmp_path):
    forecasts_import(path=write_numeric(tmp_path, CLEAN[:3]))
    grown = [*CLEAN, row("n1", "dave", "2019-12-20T00:00:00Z", cdf(0.4, above=0.01))]  # before n1 opened

    report = forecasts_import(path=write_numeric(tmp_path, grown))

    assert (report.imported, report.already_imported, report.forecasters_created) == (5, 3, 2)
    assert Question.objects.count() == 2 and Resolution.objects.count() == 2
    n1 = Question.objects.get(external_id="n1")
    assert n1.opens_at == dt.datetime(2019, 12, 20, tzinfo=UTC)
    assert Score.objects.filter(question=n1, kind="crps", method="spot").count() == 4


def test_rows_disagreeing_with_a_question_in_the_database_are_rejected(tmp_path):
    forecasts_import(path=write_numeric(tmp_path, CLEAN))
    other_outcome = (*N1[:4], "60", *N1[5:])
    other_range = ("1", "2000", *N1[2:])
    # each file agrees with itself; the rows of n1 disagree with the database, d1's row does not
    first = [row("n1", "dave", "2020-01-05T00:00:00Z", BOB_N1, other_outcome), CLEAN[2]]
    second = [row("n1", "erin", "2020-01-05T00:00:00Z", BOB_N1, other_range), CLEAN[2]]

    report = forecasts_import(path=write_numeric(tmp_path, first))
    again = forecasts_import(path=write_numeric(tmp_path, second))

    assert [r.line for r in report.rejected] == [r.line for r in again.rejected] == [2]
    assert report.rejected[0].reason == "question n1 is resolved as “50” in the database; the file says 60"
    assert again.rejected[0].reason.startswith(
        "question n1 has another range in the database (1 to 1000, closed/open bounds, log, zero point 0); "
        "the file says 1 to 2000"
    )
    assert report.already_imported == again.already_imported == 1
    assert Resolution.objects.get(question__external_id="n1").value == 50.0
    assert not Prediction.objects.filter(forecaster__username__in=["dave@imported-numeric", "erin@imported-numeric"])


def test_an_outcome_beyond_an_open_bound_resolves_below_or_above(tmp_path):
    fields = (*N1[:4], "5000", *N1[5:])  # above 1000, where the bound is open
    forecasts_import(path=write_numeric(tmp_path, [row("n9", "alice", "2020-01-01T00:00:00Z", BOB_N1, fields)]))
    resolution = Resolution.objects.get()
    assert (resolution.outcome, resolution.value) == (Resolution.Outcome.ABOVE, None)
    assert Score.objects.filter(kind="crps").count() == 2  # spot and time-averaged


# --- validation ----------------------------------------------------------------------------------------


def test_rejected_rows_are_reported_with_reasons_and_change_nothing(tmp_path):
    decreasing = list(BOB_N1)
    decreasing[120] = decreasing[119] - 0.01
    closed = ("1", "1000", "false", "true", "0.5", "2020-03-01T00:00:00Z", "", "numeric", "")
    bad = [
        row("n1", "dave", "2020-01-05T00:00:00Z", BOB_N1[:200]),  # line 9
        row("n1", "erin", "2020-01-05T00:00:00Z", decreasing),  # line 10
        row("n2", "frank", "2020-01-05T00:00:00Z", BOB_N1, closed),  # line 11: below the closed bound
        row("n1", "gina", "2020-01-05T00:00:00Z", BOB_N1, ("1", "2000", *N1[2:])),  # line 12
    ]

    report = forecasts_import(path=write_numeric(tmp_path, [*CLEAN, *bad]))

    reasons = {r.line: r.reason for r in report.rejected}
    assert sorted(reasons) == [9, 10, 11, 12]
    assert reasons[9] == "cdf has 200 values, not 201"
    assert reasons[10] == "cdf decreases after grid point 119: not a CDF"
    assert reasons[11] == "outcome 0.5 lies below the range (range_min 1), whose lower bound is closed"
    assert reasons[12] == "range_max 2000 conflicts with line 2 (range_max 1000 for question n1)"
    assert report.imported == 7
    assert not Question.objects.filter(external_id="n2").exists()
    assert not Prediction.objects.filter(
        forecaster__username__in=[f"{name}@imported-numeric" for name in ("dave", "erin", "frank", "gina")]
    ).exists()
    output = run_command(write_numeric(tmp_path, bad, name="bad.csv"))
    assert "line 2: cdf has 200 values, not 201" in output
    assert "Rejected: 3" in output  # alone in its file, gina's row has nothing to conflict with


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("cdf", "[0.1, 0.2", "cdf is not a JSON list of numbers"),
        ("cdf", "", "empty cdf"),
        ("cdf", json.dumps([0.0] * 100 + [1.5] * 101), "cdf has values outside [0, 1]"),
        ("cdf", "[" + ",".join(["NaN"] * 201) + "]", "cdf holds a value that is not a finite number"),
        ("range_min", "abc", "range_min “abc” is not a number"),
        ("range_max", "0.5", "the range is not valid"),
        ("zero_point", "10", "the range is not valid: zero_point (10.0) must lie outside the range"),
        ("open_upper_bound", "maybe", "open_upper_bound “maybe” is not true or false"),
        ("outcome", "lots", "outcome “lots” is not a number, below_lower_bound or above_upper_bound"),
        ("outcome", "below_lower_bound", "outcome below_lower_bound lies below the range"),
        ("question_type", "binary", "question_type “binary” is not numeric or date"),
        ("closes_at", "soon", "closes_at “soon” is not an ISO 8601 date-time"),
        ("made_at", "2020-03-02T00:00:00Z", "made after the question resolved"),
        ("made_at", "2020-02-02T00:00:00Z", "made after the question closed"),
    ],
)
def test_bad_field_is_rejected_with_its_reason(column, value, reason, django_assert_num_queries):
    bad = row("n1", "bob", "2020-01-05T00:00:00Z", BOB_N1)
    bad[HEADER.index(column)] = value
    with django_assert_num_queries(0):
        accepted, rejected = validate_numeric_rows(as_raw([CLEAN[0], bad]))
    assert [r.line for r in accepted] == [2]
    assert [r.line for r in rejected] == [3]
    assert reason in rejected[0].reason


def test_duplicates_and_conflicting_outcomes_name_the_first_row():
    rows = [
        CLEAN[0],
        row("n1", "alice", "2020-01-01T00:00:00Z", BOB_N1),
        row("n1", "bob", "2020-01-02T00:00:00Z", BOB_N1, (*N1[:4], "51", *N1[5:])),
        row("n1", "carol", "2020-01-02T00:00:00Z", BOB_N1, (*N1[:5], "2020-03-02T00:00:00Z", *N1[6:])),
    ]
    accepted, rejected = validate_numeric_rows(as_raw(rows))
    assert [r.line for r in accepted] == [2]
    assert [r.reason for r in rejected] == [
        "duplicate of line 2 (same question, forecaster and made_at)",
        "outcome 51 conflicts with line 2 (outcome 50 for question n1)",
        "resolved_at 2020-03-02T00:00:00Z conflicts with line 2 (resolved_at 2020-03-01T00:00:00Z for question n1)",
    ]


def test_date_values_and_type_inference():
    epoch_range = (str(epoch(2030, 1, 1)), str(epoch(2031, 1, 1)), "true", "false", "2030-06-01", *D1[5:])
    rows = [
        row("d1", "alice", "2020-02-01T00:00:00Z", ALICE_D1, D1),
        row("d2", "alice", "2020-02-01T00:00:00Z", ALICE_D1, (*epoch_range[:7], "date", "")),
        row("d3", "alice", "2020-02-01T00:00:00Z", ALICE_D1, epoch_range),  # only the outcome is a date
        row("d4", "alice", "2020-02-01T00:00:00Z", ALICE_D1, (*D1[:7], "numeric", "")),
    ]
    accepted, rejected = validate_numeric_rows(as_raw(rows))
    assert [(r.question_id, r.question_type) for r in accepted] == [("d1", "date"), ("d2", "date"), ("d3", "date")]
    assert accepted[0].outcome == "below_lower_bound"
    assert accepted[1].outcome == accepted[2].outcome == epoch(2030, 6, 1)
    assert accepted[1].range_min == epoch(2030, 1, 1)
    assert [r.line for r in rejected] == [5]
    assert "range_min “2030-01-01” is not a number" in rejected[0].reason


def test_missing_numeric_column_is_an_error(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("question_id,forecaster_id,made_at,cdf,outcome,resolved_at\n")
    with pytest.raises(ImportFileError, match="range_min, range_max, open_lower_bound, open_upper_bound"):
        forecasts_import(path=path)


# --- strict, dry run, and yes/no files beside numeric ones ---------------------------------------------


def test_strict_imports_nothing_when_a_row_is_bad(tmp_path):
    path = write_numeric(tmp_path, [*CLEAN, row("n1", "dave", "2020-01-05T00:00:00Z", BOB_N1[:10])])
    before = counts()
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 rows rejected"):
        call_command("import_forecasts", str(path), "--strict", stdout=out)
    assert "line 9: cdf has 10 values, not 201" in out.getvalue()
    assert counts() == before
    report = forecasts_import(path=path, strict=True)
    assert report.failed_strict and not report.committed and report.imported == 0
    assert counts() == before


def test_strict_imports_nothing_when_a_row_disagrees_with_the_database(tmp_path):
    forecasts_import(path=write_numeric(tmp_path, CLEAN[:2]))
    before = counts()
    rows = [CLEAN[2], row("n1", "dave", "2020-01-05T00:00:00Z", BOB_N1, ("1", "999", *N1[2:]))]
    report = forecasts_import(path=write_numeric(tmp_path, rows), strict=True)
    assert report.failed_strict and [r.line for r in report.rejected] == [3]
    assert "another range in the database" in report.rejected[0].reason
    assert report.questions_created == 0
    assert counts() == before


def test_dry_run_writes_nothing(tmp_path):
    before = counts()
    output = run_command(write_numeric(tmp_path, CLEAN), "--dry-run")
    assert counts() == before
    assert "numeric and date questions" in output
    assert "Imported: 7" in output and "CDFs standardised to the site's rules: 1" in output
    assert "Dry run" in output


def test_yes_no_and_numeric_files_import_side_by_side(tmp_path):
    binary = forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))
    numeric = forecasts_import(path=write_numeric(tmp_path, CLEAN))
    assert (binary.imported, binary.numeric, numeric.imported, numeric.numeric) == (5, False, 7, True)
    assert sorted(Question.objects.values_list("external_id", "question_type")) == [
        ("d1", "date"),
        ("n1", "numeric"),
        ("q1", "binary"),
        ("q2", "binary"),
    ]
    assert Score.objects.filter(question__external_id="q1", kind="brier").exists()
    assert "Probabilities clipped" in run_command(write_csv(tmp_path, CLEAN_ROWS))


def test_queries_do_not_grow_with_the_rows(tmp_path):
    """Bulk writes, as the yes/no path: 80 rows of 40 forecasters take the queries 7 rows of 3 take."""
    many = [
        row(question, f"f{i}", f"2020-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", values, fields)
        for i in range(40)
        for question, values, fields in (("n1", BOB_N1, N1), ("d1", BOB_D1, D1))
    ]
    forecasts_import(path=write_numeric(tmp_path, CLEAN, name="first.csv"))  # creates the importer and group
    with CaptureQueriesContext(connection) as few_rows:
        forecasts_import(path=write_numeric(tmp_path, CLEAN, name="few.csv"))
    with CaptureQueriesContext(connection) as many_rows:
        report = forecasts_import(path=write_numeric(tmp_path, many, name="many.csv"))
    assert (report.imported, report.rejected) == (80, [])
    assert _statements(many_rows) == _statements(few_rows)


def _statements(captured: CaptureQueriesContext) -> int:
    """Queries, counting a bulk insert split into batches as one: SQLite caps a statement's parameters
    (999), so there more rows take more batches (and savepoints around them); PostgreSQL sends one."""
    count, previous = 0, ""
    for query in captured.captured_queries:
        sql = query["sql"]
        if "SAVEPOINT" in sql[:20]:
            continue
        # a batch has many rows of VALUES: an insert per row still counts once per row
        insert = sql[: sql.find("(")] if sql.startswith("INSERT") and "), (" in sql else None
        count += not (insert and insert == previous)
        previous = insert or ""
    return count
