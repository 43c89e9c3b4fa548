"""Scoring a resolved question with 10,000 forecasters, and the notification fan-out (issue 23, hot paths).

Times the real services a resolution runs on a worker: ``question_scores_recompute`` (read every
forecast, score, upsert the Score rows) and ``resolution_notify`` (one notification per forecaster
with their scores), on a yes/no question with 10,000 forecasters (``--quick``: 2,000) who forecast
twice each. The baselines, in the same run: the same scores computed with numpy only from the same
arrays (``scoring.time_averaged_scores`` and ``spot_scores``) plus one bulk insert (``COPY`` on
PostgreSQL, one ``executemany`` elsewhere) of as many rows into the same tables. Goal: <= 3x each.

    .venv/bin/python bench/scoring_fanout.py [--quick] [--rows PATH] [--repeats 3]

Runs on DATABASE_URL if set (migrated first), else on a throw-away SQLite file; goals are for PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import rows  # noqa: E402


def _setup() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-scoring-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _seed(n: int):
    """A resolved yes/no question: ``n`` forecasters with two forecasts each, closed and resolved YES."""
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    from django.contrib.auth.models import User
    from django.utils import timezone

    from forecasting.models import Article, Prediction, Question, QuestionEvent, Resolution

    rng = np.random.default_rng(5)
    now = timezone.now()
    tag = f"{int(time.time() * 1000)}"
    article = Article.objects.create(slug=f"bench-scoring-{tag}", title="Bench", published_at=now, body="-")
    opens = now - dt.timedelta(days=30)
    question = Question.objects.create(
        article=article,
        title=f"Bench scoring {tag}",
        resolution_criteria="-",
        opens_at=opens,
        closes_at=now - dt.timedelta(hours=1),
        status=Question.Status.RESOLVED,
        published_at=opens,
    )
    users = User.objects.bulk_create(
        [User(username=f"bsc-{tag}-{i}", email=f"bsc-{tag}-{i}@example.org") for i in range(n)], batch_size=2000
    )
    forecasts = []
    for i, user in enumerate(users):
        for k in range(2):
            forecasts.append(
                Prediction(
                    question=question,
                    forecaster=user,
                    probability=Decimal(int(rng.integers(1, 100))) / 100,
                    made_at=opens + dt.timedelta(seconds=100 * i + 86400 * 10 * k),
                )
            )
    forecasts.sort(key=lambda p: p.made_at)
    Prediction.objects.bulk_create(forecasts, batch_size=2000)
    editor = User.objects.create(username=f"bsc-{tag}-editor")
    QuestionEvent.objects.create(
        question=question,
        actor=editor,
        action=QuestionEvent.Action.RESOLVED,
        from_status=Question.Status.OPEN,
        to_status=Question.Status.RESOLVED,
    )
    Resolution.objects.create(question=question, outcome=Resolution.Outcome.YES, resolved_by=editor)
    return question


def _numpy_scores(question) -> tuple[float, int]:
    """The same scores from the same arrays with numpy only (the arrays read outside the timing)."""
    import numpy as np

    from forecasting import scoring
    from forecasting.models import Prediction

    rows_ = list(
        Prediction.objects.filter(question=question)
        .order_by("made_at", "id")
        .values_list("forecaster_id", "made_at", "probability")
    )
    ids = np.array([f for f, _, _ in rows_])
    made = np.array([m.timestamp() for _, m, _ in rows_])
    p = np.array([float(x) for _, _, x in rows_])
    t0 = time.perf_counter()
    forecasters, index = np.unique(ids, return_inverse=True)
    vectors = np.column_stack([1 - p, p])
    last = np.zeros(len(forecasters), dtype=int)
    last[index] = np.arange(len(index))  # the later row wins: rows are in time order
    period = {
        "opens_at": question.opens_at.timestamp(),
        "closes_at": question.closes_at.timestamp(),
        "ended_at": question.closes_at.timestamp(),
        "n_forecasters": len(forecasters),
    }
    averaged = scoring.time_averaged_scores(index, made, vectors, 1, **period)
    spot = scoring.spot_scores(vectors[last], 1)
    values = np.column_stack([*(spot[k] for k in scoring.SPOT_SCORES), *(averaged[k] for k in scoring.SPOT_SCORES)])
    return time.perf_counter() - t0, values.size


def _bulk_insert(table: str, columns: list[str], records: list[tuple]) -> float:
    """One COPY (PostgreSQL) or one executemany of ``records``, in a transaction, rolled back after timing."""
    from django.db import connection, transaction

    t0 = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for record in records:
                        copy.write_row(record)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", records)
            elapsed = time.perf_counter() - t0
            raise _Rollback
    except _Rollback:
        pass
    return elapsed


class _Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--forecasters", type=int, help="default 10,000 (quick: 2,000)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.forecasters or (2_000 if args.quick else 10_000)

    _setup()
    from django.db import connection
    from django.utils import timezone

    from forecasting import services
    from forecasting.models import Score
    from notifications.models import Notification
    from notifications.services import resolution_notify

    rows.progress(f"{connection.vendor}: seeding a resolved yes/no question with {n:,} forecasters")
    question = _seed(n)
    resolution = services.active_resolution(question)
    services.question_scores_recompute(question_id=question.pk)  # warm-up (and the rows to compare)
    score_rows = list(Score.objects.filter(question=question).values_list("forecaster_id", "prediction_id", "kind"))
    prediction_of = {f: p for f, p, _ in score_rows}

    scoring_times, numpy_times = [], []
    for _ in range(args.repeats):
        Score.objects.filter(question=question).delete()  # each run writes every row, as the first scoring does
        t0 = time.perf_counter()
        written = services.question_scores_recompute(question_id=question.pk)
        scoring_times.append(time.perf_counter() - t0)
        Notification.objects.filter(question=question).delete()  # the recompute queued none (no worker)
        seconds, _ = _numpy_scores(question)
        now = timezone.now()
        records = [
            (question.pk, f, resolution.pk, prediction_of[f], kind, method, 0.5, 1.0, now)
            for f, _, kind in score_rows
            for method in ("spot",)
        ][:written]
        columns = [
            "question_id",
            "forecaster_id",
            "resolution_id",
            "prediction_id",
            "kind",
            "method",
            "value",
            "coverage",
            "computed_at",
        ]
        # Other keys than the stored rows' (the unique constraint): a fresh question's first scoring.
        records = [(r[0], r[1], r[2], r[3], r[4], f"x{i % 1000}"[:14], *r[6:]) for i, r in enumerate(records)]
        numpy_times.append(seconds + _bulk_insert("forecasting_score", columns, records))
    rows.progress(
        f"scoring: {written:,} rows in {statistics.median(scoring_times):.2f} s;"
        f" numpy + COPY {statistics.median(numpy_times):.2f} s"
    )

    fanout_times, bulk_times = [], []
    for _ in range(args.repeats):
        Notification.objects.filter(question=question).delete()
        t0 = time.perf_counter()
        offered = resolution_notify(question_id=question.pk)
        fanout_times.append(time.perf_counter() - t0)
        stored = list(
            Notification.objects.filter(question=question).values_list(
                "recipient_id", "kind", "key", "title", "body", "url", "email_status"
            )
        )
        Notification.objects.filter(question=question).delete()
        now = timezone.now()
        bulk_times.append(
            _bulk_insert(
                "notifications_notification",
                ["recipient_id", "kind", "key", "question_id", "title", "body", "url", "created_at", "email_status"],
                [(r[0], r[1], r[2], question.pk, r[3], r[4], r[5], now, r[6]) for r in stored],
            )
        )
    rows.progress(
        f"fan-out: {offered:,} notifications in {statistics.median(fanout_times):.2f} s;"
        f" COPY of the same rows {statistics.median(bulk_times):.2f} s"
    )
    rows.write_rows(
        args.rows,
        [
            rows.row(
                f"scoring a resolved question, {n:,} forecasters ({written:,} score rows)",
                statistics.median(scoring_times),
                "s",
                baseline="numpy scores + one bulk insert",
                baseline_value=statistics.median(numpy_times),
                goal=rows.ratio_at_most(3),
            ),
            rows.row(
                f"resolution notification fan-out, {n:,} forecasters",
                statistics.median(fanout_times),
                "s",
                baseline="one bulk insert of the same rows",
                baseline_value=statistics.median(bulk_times),
                goal=rows.ratio_at_most(3),
            ),
        ],
    )


if __name__ == "__main__":
    main()
