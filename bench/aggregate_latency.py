"""Latency from a new forecast to the stored, updated aggregates, on one question with many forecasters.

Target (issue 3): with 10,000 forecasters on one question, p95 <= 100 ms, printed beside the
time of a full recompute (re-reading every forecast) measured in the same run.

    .venv/bin/python bench/aggregate_latency.py [--quick] [--rows PATH] [--forecasters 10000] [--updates 300]

Rows: the p95 of the incremental update (goal <= 100 ms) beside the median full recompute.

Runs on a throw-away SQLite database unless DATABASE_URL is set (e.g. to PostgreSQL; the
database is migrated first; the bench adds its own article, question and users).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--forecasters", type=int, help="default 10,000 (quick: 2,000)")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--full-recomputes", type=int, default=5)
    args = parser.parse_args()
    args.forecasters = args.forecasters or (2_000 if args.quick else 10_000)

    tmp = tempfile.mkdtemp(prefix="bench-aggregates-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from forecasting import services
    from forecasting.models import AggregateSnapshot, Article, Prediction, Question

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(42)
    now = timezone.now()
    article = Article.objects.create(slug=f"bench-{int(time.time())}", title="Bench", published_at=now, body="-")
    question = Question.objects.create(
        article=article,
        title="Bench question",
        resolution_criteria="-",
        opens_at=now - dt.timedelta(days=30),
        closes_at=now + dt.timedelta(days=30),
        status=Question.Status.OPEN,
    )
    rows.progress(f"database: {django.db.connection.vendor}; seeding {args.forecasters:,} forecasters")
    users = User.objects.bulk_create(
        [User(username=f"bench-{article.pk}-{i}") for i in range(args.forecasters)], batch_size=2000
    )
    start = now - dt.timedelta(days=20)
    Prediction.objects.bulk_create(
        [
            Prediction(
                question=question,
                forecaster=user,
                probability=Decimal(int(rng.integers(1, 100))) / 100,
                made_at=start + dt.timedelta(seconds=i),
            )
            for i, user in enumerate(users)
        ],
        batch_size=2000,
    )
    services.aggregate_state_rebuild(question_id=question.pk)

    full = []
    for _ in range(args.full_recomputes):
        t0 = time.perf_counter()
        services.aggregate_state_rebuild(question_id=question.pk)
        full.append(time.perf_counter() - t0)

    rows.progress(f"{args.updates} new forecasts")
    latencies = []
    for _ in range(args.updates):
        user = users[int(rng.integers(len(users)))]
        p = Decimal(int(rng.integers(1, 100))) / 100
        t0 = time.perf_counter()
        prediction = services.prediction_create(question=question, forecaster=user, probability=p)
        latencies.append(time.perf_counter() - t0)
    stored = AggregateSnapshot.objects.filter(question=question, prediction=prediction).count()
    check = services.aggregates_recompute(question=question)
    current = services.aggregates_current(question=question)
    mismatch = max(abs(current[m].probability_yes - float(v[1])) for m, v in check.items())

    ms = np.array(latencies) * 1000
    p95 = float(np.percentile(ms, 95))
    full_ms = statistics.median(full) * 1000
    rows.progress(
        f"incremental p50 {np.percentile(ms, 50):.1f} ms, p95 {p95:.1f} ms; full recompute {full_ms:.1f} ms;"
        f" {stored} snapshots for the last forecast; incremental vs full recompute, max diff {mismatch:.2e}"
    )
    if mismatch >= 1e-5:
        raise SystemExit(f"the incremental aggregates differ from a full recompute by {mismatch:.2e}")
    rows.write_rows(
        args.rows,
        [
            rows.row(
                f"new forecast -> stored aggregates p95, {args.forecasters:,} forecasters",
                p95,
                "ms",
                baseline="full recompute (median)",
                baseline_value=full_ms,
                goal=rows.at_most(100, "ms"),
            )
        ],
    )


if __name__ == "__main__":
    main()
