"""The flat-file forecast import: validation, the import service and the management command."""

import csv
import datetime as dt
import gzip
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from forecasting.io.import_rows import REQUIRED_COLUMNS, validate_rows
from forecasting.io.imports import ImportFileError, default_article_slug, forecasts_import
from forecasting.models import (
    AggregateSnapshot,
    Article,
    Prediction,
    Question,
    QuestionEvent,
    Resolution,
    Score,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC

# question q1 resolves YES, q2 resolves NO. alice forecasts q1 twice (0.6 then 0.7).
CLEAN_ROWS = [
    ["q1", "alice", "2020-01-01T00:00:00Z", "0.6", "1", "2020-03-01T00:00:00Z"],
    ["q1", "bob", "2020-01-02T12:00:00Z", "0.2", "1", "2020-03-01T00:00:00Z"],
    ["q2", "alice", "2020-02-01T00:00:00Z", "0", "0", "2020-02-15T00:00:00Z"],
    ["q1", "alice", "2020-01-10T00:00:00Z", "0.7", "1", "2020-03-01T00:00:00Z"],
    ["q2", "carol", "2020-02-03T00:00:00Z", "1", "0", "2020-02-15T00:00:00Z"],
]
GOOD_ROW = ["q1", "alice", "2020-01-01T00:00:00Z", "0.6", "1", "2020-03-01T00:00:00Z"]


def csv_text(rows, header=REQUIRED_COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_csv(tmp_path, rows, name="forecasts.csv", header=REQUIRED_COLUMNS):
    path = tmp_path / name
    path.write_text(csv_text(rows, header))
    return path


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("import_forecasts", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def as_raw(rows, header=REQUIRED_COLUMNS):
    """Rows as validate_rows takes them: (line, dict), the header being line 1."""
    return [(i, dict(zip(header, row, strict=True))) for i, row in enumerate(rows, start=2)]


def counts() -> dict[str, int]:
    return {
        "articles": Article.objects.count(),
        "questions": Question.objects.count(),
        "predictions": Prediction.objects.count(),
        "resolutions": Resolution.objects.count(),
        "events": QuestionEvent.objects.count(),
        "users": User.objects.count(),
        "scores": Score.objects.count(),
        "snapshots": AggregateSnapshot.objects.count(),
    }


# --- a clean import ----------------------------------------------------------------------------


def test_clean_import_creates_questions_forecasts_resolutions_and_users(tmp_path):
    path = write_csv(tmp_path, CLEAN_ROWS)

    report = forecasts_import(path=path)

    assert report.committed
    assert (report.rows_read, report.imported, report.already_imported, report.rejected) == (5, 5, 0, [])
    assert (report.questions_created, report.forecasters_created, report.questions_rescored) == (2, 3, 2)
    assert report.clipped == 2  # the 0 and the 1

    article = Article.objects.get()
    assert article.slug == "imported-forecasts"
    assert article.title == "Imported forecasts: forecasts.csv"
    assert "forecasts.csv" in article.body
    assert article.published_at == dt.datetime(2020, 1, 1, tzinfo=UTC)

    q1 = Question.objects.get(article=article, external_id="q1")
    assert q1.title == "Imported question q1"
    assert q1.is_binary
    assert q1.status == Question.Status.RESOLVED
    assert "forecasts.csv" in q1.resolution_criteria
    assert q1.opens_at == dt.datetime(2020, 1, 1, tzinfo=UTC)
    assert q1.closes_at == dt.datetime(2020, 3, 1, tzinfo=UTC)
    q2 = Question.objects.get(article=article, external_id="q2")

    importer = User.objects.get(username="importer")
    assert not importer.is_active
    assert not importer.has_usable_password()
    resolution = Resolution.objects.get(question=q1)
    assert (resolution.outcome, resolution.resolved_by, resolution.retracted_at) == ("yes", importer, None)
    assert resolution.resolved_at == dt.datetime(2020, 3, 1, tzinfo=UTC)
    assert Resolution.objects.get(question=q2).outcome == "no"
    event = QuestionEvent.objects.get(question=q1)
    assert (event.action, event.actor, event.to_status) == ("resolved", importer, "resolved")
    assert event.note == "imported from forecasts.csv"

    alice = User.objects.get(username="alice@imported-forecasts")  # the import's namespace
    assert not alice.has_usable_password()
    assert list(alice.groups.values_list("name", flat=True)) == ["Imported forecasters"]
    assert User.objects.filter(username__in=[f"{n}@imported-forecasts" for n in ("alice", "bob", "carol")]).count() == 3
    assert list(Prediction.objects.filter(question=q1, forecaster=alice).values_list("probability", flat=True)) == [
        Decimal("0.6"),
        Decimal("0.7"),
    ]
    assert Prediction.objects.get(question=q1, forecaster__username="bob@imported-forecasts").made_at == dt.datetime(
        2020, 1, 2, 12, tzinfo=UTC
    )
    # 0 and 1 are clipped into the range the site allows
    assert Prediction.objects.get(question=q2, forecaster=alice).probability == Decimal("0.01")
    assert Prediction.objects.get(question=q2, forecaster__username="carol@imported-forecasts").probability == Decimal(
        "0.99"
    )


def test_scores_and_aggregates_exist_after_import(tmp_path):
    forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))
    q1 = Question.objects.get(external_id="q1")
    q2 = Question.objects.get(external_id="q2")

    assert Score.objects.filter(question=q1).count() > 0
    assert Score.objects.filter(question=q2).count() > 0
    assert AggregateSnapshot.objects.filter(question=q1).count() > 0

    def spot_brier(question, username):
        return float(
            Score.objects.get(
                question=question, forecaster__username=f"{username}@imported-forecasts", kind="brier", method="spot"
            ).value
        )

    # alice's last forecast on q1 (YES) is 0.7; bob's is 0.2
    assert spot_brier(q1, "alice") == pytest.approx((0.7 - 1) ** 2)
    assert spot_brier(q1, "bob") == pytest.approx((0.2 - 1) ** 2)
    # on q2 (NO) carol said 1, stored as 0.99
    assert spot_brier(q2, "carol") == pytest.approx(0.99**2)


def test_probability_is_rounded_to_four_decimals(tmp_path):
    forecasts_import(path=write_csv(tmp_path, [["q1", "alice", "2020-01-01T00:00:00Z", "0.123456", "1", "2020-03-01"]]))
    assert Prediction.objects.get().probability == Decimal("0.1235")


def test_extra_columns_are_ignored_and_column_order_is_free(tmp_path):
    header = ["note", "outcome", "probability", "question_id", "resolved_at", "made_at", "forecaster_id"]
    rows = [["hello", "0", "0.25", "q9", "2020-03-01T00:00:00Z", "2020-01-01T00:00:00Z", "dave"]]
    report = forecasts_import(path=write_csv(tmp_path, rows, header=header))
    assert report.imported == 1
    prediction = Prediction.objects.get()
    assert (prediction.question.external_id, prediction.forecaster.username) == ("q9", "dave@imported-forecasts")
    assert prediction.probability == Decimal("0.25")
    assert Resolution.objects.get().outcome == "no"


def test_resolution_not_after_first_forecast_still_gives_a_valid_open_period(tmp_path):
    rows = [["q1", "alice", "2020-01-01T00:00:00Z", "0.6", "1", "2020-01-01T00:00:00Z"]]
    forecasts_import(path=write_csv(tmp_path, rows))
    question = Question.objects.get()
    assert question.closes_at == question.opens_at + dt.timedelta(seconds=1)
    assert Score.objects.filter(question=question, kind="brier", method="spot").exists()


def test_article_slug_option(tmp_path):
    path = write_csv(tmp_path, CLEAN_ROWS)
    run_command(path, "--article-slug", "pb-archive")
    assert Article.objects.get().slug == "pb-archive"
    assert Question.objects.filter(article__slug="pb-archive").count() == 2


def test_invalid_article_slug_is_refused(tmp_path):
    with pytest.raises(CommandError, match="not a valid slug"):
        run_command(write_csv(tmp_path, CLEAN_ROWS), "--article-slug", "no spaces please")
    assert counts()["articles"] == 0


def test_default_article_slug():
    assert default_article_slug("/data/predictionbook_dev.csv.gz") == "imported-predictionbook_dev"
    assert default_article_slug("My Forecasts.csv") == "imported-my-forecasts"


# --- idempotency ---------------------------------------------------------------------------------


def test_reimport_creates_nothing(tmp_path):
    path = write_csv(tmp_path, CLEAN_ROWS)
    forecasts_import(path=path)
    before = counts()
    scores = dict(Score.objects.values_list("id", "value"))

    report = forecasts_import(path=path)

    assert counts() == before
    assert dict(Score.objects.values_list("id", "value")) == scores
    assert (report.imported, report.already_imported, report.rejected) == (0, 5, [])
    assert (report.questions_created, report.forecasters_created, report.questions_rescored) == (0, 0, 0)
    output = run_command(path)
    assert "Already imported: 5" in output
    assert counts() == before


def test_reimport_of_a_grown_file_adds_only_the_new_rows(tmp_path):
    forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS[:3]))
    new_rows = [
        ["q1", "erin", "2019-12-01T00:00:00Z", "0.9", "1", "2020-03-01T00:00:00Z"],  # before q1 opened
        ["q3", "bob", "2020-04-01T00:00:00Z", "0.4", "0", "2020-05-01T00:00:00Z"],
    ]

    report = forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS + new_rows))

    assert (report.imported, report.already_imported) == (4, 3)
    assert (report.questions_created, report.forecasters_created) == (1, 2)  # q3; carol and erin
    assert Article.objects.count() == 1
    assert Question.objects.count() == 3
    assert Resolution.objects.count() == 3
    assert Prediction.objects.count() == 7
    q1 = Question.objects.get(external_id="q1")
    assert q1.opens_at == dt.datetime(2019, 12, 1, tzinfo=UTC)
    erin = Score.objects.get(question=q1, forecaster__username="erin@imported-forecasts", kind="brier", method="spot")
    assert float(erin.value) == pytest.approx((0.9 - 1) ** 2)


def test_rows_disagreeing_with_the_resolution_in_the_database_are_rejected(tmp_path):
    forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))
    flipped = [
        ["q1", "dave", "2020-01-05T00:00:00Z", "0.5", "0", "2020-03-01T00:00:00Z"],
        ["q2", "dave", "2020-02-05T00:00:00Z", "0.5", "0", "2020-02-15T00:00:00Z"],
    ]

    report = forecasts_import(path=write_csv(tmp_path, flipped))

    assert [r.line for r in report.rejected] == [2]
    assert "resolved as “Yes” in the database" in report.rejected[0].reason
    assert report.imported == 1
    assert Resolution.objects.filter(question__external_id="q1").count() == 1
    assert not Prediction.objects.filter(
        question__external_id="q1", forecaster__username="dave@imported-forecasts"
    ).exists()


def test_rows_of_an_unresolved_question_in_the_database_are_rejected(tmp_path, editor):
    from forecasting import services

    forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))
    services.question_unresolve(question=Question.objects.get(external_id="q1"), actor=editor)

    report = forecasts_import(path=write_csv(tmp_path, [["q1", "dave", *GOOD_ROW[2:]]]))
    assert len(report.rejected) == 1
    assert "closed in the database, not resolved" in report.rejected[0].reason


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("probability", "NaN", "probability is NaN"),
        ("probability", "nan", "probability is NaN"),
        ("probability", "inf", "infinite"),
        ("probability", "-Infinity", "infinite"),
        ("probability", "1.5", "probability 1.5 is outside [0, 1]"),
        ("probability", "-0.1", "probability -0.1 is outside [0, 1]"),
        ("probability", "abc", "probability “abc” is not a number"),
        ("probability", "", "empty probability"),
        ("outcome", "yes", "outcome “yes” is not 0 or 1"),
        ("outcome", "2", "outcome “2” is not 0 or 1"),
        ("outcome", "0.5", "outcome “0.5” is not 0 or 1"),
        ("outcome", "", "empty outcome"),
        ("made_at", "2020-13-01T00:00:00Z", "made_at “2020-13-01T00:00:00Z” is not an ISO 8601 date-time"),
        ("made_at", "yesterday", "made_at “yesterday” is not an ISO 8601 date-time"),
        ("resolved_at", "01/03/2020", "resolved_at “01/03/2020” is not an ISO 8601 date-time"),
        ("question_id", "", "empty question_id"),
        ("forecaster_id", "  ", "empty forecaster_id"),
    ],
)
def test_bad_field_is_rejected_with_its_line_number(tmp_path, field, value, reason):
    bad = [*GOOD_ROW[:1], "bob", *GOOD_ROW[2:]]  # not a duplicate of the good row
    bad[REQUIRED_COLUMNS.index(field)] = value
    path = write_csv(tmp_path, [GOOD_ROW, [*GOOD_ROW[:1], "carol", *GOOD_ROW[2:]], bad])

    report = forecasts_import(path=path)

    assert len(report.rejected) == 1
    assert report.rejected[0].line == 4
    assert reason in report.rejected[0].reason
    assert report.imported == 2
    assert not Prediction.objects.filter(forecaster__username="bob@imported-forecasts").exists()


@pytest.mark.parametrize("value", ["0", "1", "0.0", "1.0", " 1 "])
def test_accepted_outcome_spellings(value):
    row = list(GOOD_ROW)
    row[REQUIRED_COLUMNS.index("outcome")] = value
    accepted, rejected = validate_rows(as_raw([row]))
    assert rejected == []
    assert accepted[0].outcome == int(float(value))


def test_validate_rows_parses_and_clips_without_the_database(django_assert_num_queries):
    rows = as_raw(
        [
            ["q1", "alice", "2020-01-01T00:00:00Z", "0", "1", "2020-03-01T00:00:00+00:00"],
            ["q1", "bob", "2020-01-01T02:00:00+02:00", "0.995", "1", "2020-03-01T00:00:00"],
        ]
    )
    with django_assert_num_queries(0):
        accepted, rejected = validate_rows(rows)
    assert rejected == []
    assert [(r.line, r.probability, r.clipped) for r in accepted] == [
        (2, Decimal("0.01"), True),
        (3, Decimal("0.99"), True),
    ]
    assert accepted[1].made_at == dt.datetime(2020, 1, 1, tzinfo=UTC)  # +02:00 converted to UTC
    assert accepted[1].resolved_at == dt.datetime(2020, 3, 1, tzinfo=UTC)  # no offset means UTC


def test_several_problems_in_one_row_are_all_named():
    _, rejected = validate_rows(as_raw([["q1", "alice", "nope", "abc", "yes", "2020-03-01T00:00:00Z"]]))
    assert len(rejected) == 1
    reason = rejected[0].reason
    assert "probability “abc”" in reason and "outcome “yes”" in reason and "made_at “nope”" in reason


def test_forecast_made_after_resolution_is_rejected():
    rows = [GOOD_ROW, ["q1", "bob", "2020-03-01T00:00:01Z", "0.6", "1", "2020-03-01T00:00:00Z"]]
    accepted, rejected = validate_rows(as_raw(rows))
    assert [r.line for r in accepted] == [2]
    assert [r.line for r in rejected] == [3]
    assert "made after the question resolved" in rejected[0].reason


def test_forecast_made_at_the_resolution_time_is_accepted():
    rows = [["q1", "bob", "2020-03-01T00:00:00Z", "0.6", "1", "2020-03-01T00:00:00Z"]]
    accepted, rejected = validate_rows(as_raw(rows))
    assert (len(accepted), rejected) == (1, [])


def test_duplicate_row_is_rejected_naming_the_first():
    rows = [GOOD_ROW, ["q2", "alice", *GOOD_ROW[2:]], GOOD_ROW, ["q1", "alice", GOOD_ROW[2], "0.9", *GOOD_ROW[4:]]]
    accepted, rejected = validate_rows(as_raw(rows))
    assert [r.line for r in accepted] == [2, 3]
    assert [(r.line, r.reason.split(" (")[0]) for r in rejected] == [
        (4, "duplicate of line 2"),
        (5, "duplicate of line 2"),
    ]


def test_duplicate_of_a_rejected_row_is_not_a_duplicate():
    bad = ["q1", "alice", GOOD_ROW[2], "abc", *GOOD_ROW[4:]]
    accepted, rejected = validate_rows(as_raw([bad, GOOD_ROW]))
    assert [r.line for r in accepted] == [3]
    assert [r.line for r in rejected] == [2]


def test_conflicting_outcome_is_rejected_naming_the_first_row():
    rows = [
        GOOD_ROW,
        ["q2", "bob", "2020-01-01T00:00:00Z", "0.5", "0", "2020-03-01T00:00:00Z"],
        ["q1", "bob", "2020-01-02T00:00:00Z", "0.5", "0", "2020-03-01T00:00:00Z"],
    ]
    accepted, rejected = validate_rows(as_raw(rows))
    assert [r.line for r in accepted] == [2, 3]
    assert [r.line for r in rejected] == [4]
    assert "outcome 0 conflicts with line 2" in rejected[0].reason


def test_conflicting_resolution_time_is_rejected_naming_the_first_row():
    rows = [GOOD_ROW, ["q1", "bob", "2020-01-02T00:00:00Z", "0.5", "1", "2020-03-02T00:00:00Z"]]
    _, rejected = validate_rows(as_raw(rows))
    assert [r.line for r in rejected] == [3]
    assert "conflicts with line 2" in rejected[0].reason
    assert rejected[0].reason.startswith("resolved_at")


def test_first_accepted_row_fixes_the_outcome():
    # line 2 is rejected (made after resolution), so line 3 decides the outcome of q1
    rows = [
        ["q1", "alice", "2020-04-01T00:00:00Z", "0.5", "0", "2020-03-01T00:00:00Z"],
        [*GOOD_ROW[:1], "bob", *GOOD_ROW[2:]],
        [*GOOD_ROW[:1], "carol", *GOOD_ROW[2:4], "0", *GOOD_ROW[5:]],
    ]
    accepted, rejected = validate_rows(as_raw(rows))
    assert [r.line for r in accepted] == [3]
    assert [(r.line, "made after" in r.reason) for r in rejected] == [(2, True), (4, False)]
    assert "conflicts with line 3" in rejected[1].reason


def test_line_numbers_count_blank_lines_and_multiline_fields(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text(
        ",".join(REQUIRED_COLUMNS)
        + ",comment\n"
        + ",".join(GOOD_ROW)
        + ",ok\n"
        + "\n"
        + 'q1,bob,2020-01-01T00:00:00Z,0.5,1,2020-03-01T00:00:00Z,"two\nlines"\n'
        + "q1,carol,2020-01-01T00:00:00Z,abc,1,2020-03-01T00:00:00Z,bad\n"
    )
    report = forecasts_import(path=path)
    assert [(r.line, r.reason) for r in report.rejected] == [(6, "probability “abc” is not a number")]
    assert report.rows_read == 3
    assert report.imported == 2


def test_short_row_is_rejected(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text(",".join(REQUIRED_COLUMNS) + "\n" + ",".join(GOOD_ROW) + "\nq1,bob,2020-01-01T00:00:00Z\n")
    report = forecasts_import(path=path)
    assert [r.line for r in report.rejected] == [3]
    assert "empty probability" in report.rejected[0].reason


# --- the command: report, --strict, --dry-run, file formats -------------------------------------------


def test_command_reports_rejections_and_totals(tmp_path):
    bad = ["q1", "bob", "2020-01-01T00:00:00Z", "1.5", "1", "2020-03-01T00:00:00Z"]
    output = run_command(write_csv(tmp_path, [*CLEAN_ROWS, bad]))
    assert "line 7: probability 1.5 is outside [0, 1]" in output
    for total in ("Rows read: 6", "Imported: 5", "Already imported: 0", "Rejected: 1"):
        assert total in output
    assert "Questions created: 2" in output
    assert "Forecasters created: 3" in output
    assert Prediction.objects.count() == 5


def test_command_lists_the_first_50_rejections_and_counts_the_rest(tmp_path):
    bad = [["q1", f"f{i}", "2020-01-01T00:00:00Z", "abc", "1", "2020-03-01T00:00:00Z"] for i in range(60)]
    output = run_command(write_csv(tmp_path, [GOOD_ROW, *bad]))
    assert "line 3: probability “abc” is not a number" in output
    assert "line 52:" in output
    assert "line 53:" not in output
    assert "and 10 more rejected rows" in output
    assert "Rejected: 60" in output
    assert Prediction.objects.count() == 1


def test_strict_imports_nothing_when_a_row_is_bad(tmp_path):
    bad = ["q1", "bob", "2020-01-01T00:00:00Z", "NaN", "1", "2020-03-01T00:00:00Z"]
    path = write_csv(tmp_path, [*CLEAN_ROWS, bad])
    before = counts()

    out = io.StringIO()
    with pytest.raises(CommandError, match="1 rows rejected"):
        call_command("import_forecasts", str(path), "--strict", stdout=out)

    assert "line 7: probability is NaN" in out.getvalue()
    assert "nothing was imported" in out.getvalue()
    assert counts() == before


def test_strict_imports_nothing_when_a_row_disagrees_with_the_database(tmp_path):
    forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS[:2]))
    before = counts()
    rows = [*CLEAN_ROWS, ["q1", "dave", "2020-01-05T00:00:00Z", "0.5", "0", "2020-03-01T00:00:00Z"]]
    report = forecasts_import(path=write_csv(tmp_path, rows), strict=True)
    assert report.failed_strict and not report.committed
    assert report.imported == 0
    assert [r.line for r in report.rejected] == [7]
    assert counts() == before


def test_strict_imports_a_clean_file(tmp_path):
    output = run_command(write_csv(tmp_path, CLEAN_ROWS), "--strict")
    assert "Imported 5 forecasts." in output
    assert Prediction.objects.count() == 5


def test_dry_run_writes_nothing(tmp_path):
    bad = ["q1", "bob", "2020-01-01T00:00:00Z", "-0.1", "1", "2020-03-01T00:00:00Z"]
    path = write_csv(tmp_path, [*CLEAN_ROWS, bad])
    before = counts()

    output = run_command(path, "--dry-run")

    assert counts() == before
    assert "Imported: 5" in output  # what the import would do
    assert "line 7: probability -0.1 is outside [0, 1]" in output
    assert "Dry run" in output
    report = forecasts_import(path=path, dry_run=True)
    assert (report.imported, report.questions_created, report.committed) == (5, 2, False)
    assert counts() == before


def test_gzip_file_by_suffix(tmp_path):
    path = tmp_path / "forecasts.csv.gz"
    path.write_bytes(gzip.compress(csv_text(CLEAN_ROWS).encode()))
    run_command(path)
    assert Article.objects.get().slug == "imported-forecasts"
    assert Prediction.objects.count() == 5


def test_gzip_file_by_magic_bytes(tmp_path):
    path = tmp_path / "forecasts.csv"
    path.write_bytes(gzip.compress(csv_text(CLEAN_ROWS).encode()))
    report = forecasts_import(path=path)
    assert report.imported == 5


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(CLEAN_ROWS).encode())
    assert forecasts_import(path=path).imported == 5


def test_missing_column_is_an_error_naming_it(tmp_path):
    header = [c for c in REQUIRED_COLUMNS if c != "resolved_at"]
    path = write_csv(tmp_path, [row[:5] for row in CLEAN_ROWS], header=header)
    before = counts()
    with pytest.raises(CommandError, match="resolved_at"):
        run_command(path)
    with pytest.raises(ImportFileError, match="lacks the required column resolved_at"):
        forecasts_import(path=path)
    assert counts() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\xff\xfe\x00bad", "not UTF-8"), (b"\x1f\x8bnot really gzip", "Cannot read")],
)
def test_unreadable_file_is_an_error(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        run_command(path)
    assert counts()["articles"] == 0


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run_command(tmp_path / "nope.csv")
