"""Forecast submission on a crowded question, beside a bare insert (issue 23, hot paths).

Times the real submission service (``services.prediction_create``, which the web view and the API
call: the question's lock, the new row, the incremental aggregate update, the snapshots, the outbox)
on a yes/no question with 10,000 forecasters (``--quick``: 2,000), and on a numeric question (which
also reads the learnt pool's ``AggregatorFit``, with a skill record per forecaster) at 400 forecasters:
its update costs seconds a forecast at 1,000 (``quantile_average`` inverts every forecast's CDF in Python,
forecasting/continuous/aggregation.py), so 10,000 would not fit the bench's few minutes. The
baseline is a bare single-row INSERT of a forecast in its own transaction, from the same client in the
same run, interleaved with the submissions. Goal: p95 <= 2x the bare insert's p95.

    .venv/bin/python bench/forecast_submit.py [--quick] [--rows PATH] [--submissions 300] [--no-numeric]

Runs on DATABASE_URL if set (migrated first), else on a throw-away SQLite file; goals are for PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import rows  # noqa: E402


def _setup() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-submit-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _seed(n: int, *, numeric: bool):
    """A question with ``n`` forecasters (one forecast each) and its aggregate state."""
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    from django.contrib.auth.models import User
    from django.utils import timezone

    from forecasting import services
    from forecasting.continuous import build
    from forecasting.models import AggregatorFit, Article, Prediction, Question

    rng = np.random.default_rng(7)
    now = timezone.now()
    tag = f"{int(time.time() * 1000)}-{'n' if numeric else 'b'}"
    article = Article.objects.create(slug=f"bench-submit-{tag}", title="Bench", published_at=now, body="-")
    extra = {"question_type": Question.Type.NUMERIC, "range_min": 0.0, "range_max": 100.0} if numeric else {}
    question = Question.objects.create(
        article=article,
        title=f"Bench submission {tag}",
        resolution_criteria="-",
        opens_at=now - dt.timedelta(days=30),
        closes_at=now + dt.timedelta(days=30),
        status=Question.Status.OPEN,
        published_at=now - dt.timedelta(days=30),
        **extra,
    )
    users = User.objects.bulk_create([User(username=f"bs-{tag}-{i}") for i in range(n)], batch_size=2000)
    start = now - dt.timedelta(days=20)
    predictions = []
    for i, user in enumerate(users):
        values: dict = {}
        if numeric:
            median = float(rng.uniform(20, 80))
            cdf = build.cdf_from_components([(median, median - 10, median + 10, 1.0)], question.scale)
            values["cdf"] = [round(float(x), 6) for x in cdf]
        else:
            values["probability"] = Decimal(int(rng.integers(1, 100))) / 100
        predictions.append(
            Prediction(question=question, forecaster=user, made_at=start + dt.timedelta(seconds=i), **values)
        )
    Prediction.objects.bulk_create(predictions, batch_size=1000)
    if numeric:  # the learnt pool reads a skill record per forecaster
        records = {str(u.pk): round(float(rng.uniform(0.05, 0.3)), 6) for u in users}
        AggregatorFit.objects.create(
            method="learnt_pool", parameters={"factor": 1.0, "records": records}, questions_used=20
        )
    services.aggregate_state_rebuild(question_id=question.pk)
    return question, users


def _bare_insert(question, user, i: int) -> float:
    """One forecast row inserted with plain SQL in its own transaction: the floor of any submission."""
    from django.db import connection, transaction
    from django.utils import timezone

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO forecasting_prediction (question_id, forecaster_id, probability, made_at, rationale)"
            " VALUES (%s, %s, %s, %s, %s)",
            [question.pk, user.pk, "0.5", timezone.now(), ""],
        )
    return time.perf_counter() - t0


def _values(question, count: int, *, numeric: bool, seed: int) -> list[dict]:
    """What each submission sends: a probability, or a CDF built beforehand (the view builds it from the
    reader's components before it calls the service)."""
    from decimal import Decimal

    import numpy as np

    from forecasting.continuous import build

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(count):
        if numeric:
            m = float(rng.uniform(20, 80))
            values.append({"cdf": build.cdf_from_components([(m, m - 8, m + 12, 1.0)], question.scale).tolist()})
        else:
            values.append({"probability": Decimal(int(rng.integers(1, 100))) / 100})
    return values


def _submit(question, user, values: dict) -> float:
    from forecasting import services

    t0 = time.perf_counter()
    services.prediction_create(question=question, forecaster=user, **values)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--forecasters", type=int, help="default 10,000 (quick: 2,000)")
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--no-numeric", action="store_true", help="skip the numeric question")
    parser.add_argument("--numeric-forecasters", type=int, default=400, help="default 400 (quick: 100)")
    parser.add_argument("--numeric-submissions", type=int, default=10)
    args = parser.parse_args()
    sizes = {
        False: (args.forecasters or (2_000 if args.quick else 10_000), args.submissions if not args.quick else 200),
        True: (100 if args.quick else args.numeric_forecasters, args.numeric_submissions),
    }

    _setup()
    import numpy as np
    from django.db import connection

    results = []
    kinds = [("yes/no", False)] + ([] if args.no_numeric else [("numeric", True)])
    for label, numeric in kinds:
        n, count = sizes[numeric]
        rows.progress(f"{connection.vendor}: seeding a {label} question with {n:,} forecasters")
        question, users = _seed(n, numeric=numeric)
        for i in range(5):  # warm-up: connection, caches, numpy
            _bare_insert(question, users[i], i)
        values = _values(question, count + 5, numeric=numeric, seed=11)
        pick = np.random.default_rng(13).integers(len(users), size=count + 5)
        for i in range(5):
            _submit(question, users[int(pick[i])], values[i])
        rows.progress(f"{label}: {count} submissions interleaved with as many bare inserts")
        submit, bare = [], []
        for i in range(count):  # interleaved, so that a noisy neighbour weighs on both alike
            bare.append(_bare_insert(question, users[i % len(users)], i))
            submit.append(_submit(question, users[int(pick[i + 5])], values[i + 5]))
        p95_submit = float(np.percentile(np.array(submit) * 1000, 95))
        p95_bare = float(np.percentile(np.array(bare) * 1000, 95))
        rows.progress(
            f"{label}: submission p50 {np.percentile(submit, 50) * 1000:.2f} ms p95 {p95_submit:.2f} ms;"
            f" bare insert p50 {np.percentile(bare, 50) * 1000:.2f} ms p95 {p95_bare:.2f} ms"
        )
        results.append(
            rows.row(
                f"forecast submission p95, {label}, {n:,} forecasters",
                p95_submit,
                "ms",
                baseline="bare single-row INSERT p95",
                baseline_value=p95_bare,
                goal=rows.ratio_at_most(2),
            )
        )
    rows.write_rows(args.rows, results)


if __name__ == "__main__":
    main()
