"""Server time of the question and article pages at 10,000 forecasters (issue 23, hot paths).

With Django's test Client (the full middleware stack, templates and context processors), GETs the
question page, the article page, the embed and the chart's data (``history.json``) of a yes/no
question with 10,000 forecasters (``--quick``: 2,000) and a forecast history of as many snapshots,
as an anonymous reader and as a signed-in forecaster; reports each page's p95 and its query count.
The baseline is the same server's cheapest page (``/robots.txt`` if routed, else the login page)
in the same run. Goal: p95 <= 50 ms per page, and a query count that does not grow with the data
(tests/forecasting/test_query_counts.py asserts it; here the count at the small and full size).

    .venv/bin/python bench/page_latency.py [--quick] [--rows PATH] [--requests 60]

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
    tmp = tempfile.mkdtemp(prefix="bench-pages-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("VAR_DIR", tmp)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)


def _seed(n: int):
    """An article with a yes/no question: ``n`` forecasters, each forecast through the incremental path's
    state (rebuilt once) and a snapshot history of ``n`` steps, written in bulk."""
    import datetime as dt
    from decimal import Decimal

    import numpy as np
    from django.contrib.auth.models import User
    from django.utils import timezone

    from forecasting import services
    from forecasting.models import AggregateSnapshot, Article, Prediction, Question

    rng = np.random.default_rng(3)
    now = timezone.now()
    tag = f"{int(time.time() * 1000)}-{n}"
    article = Article.objects.create(
        slug=f"bench-pages-{tag}", title="Bench", published_at=now, body="First.\n\nSecond.\n\nThird."
    )
    question = Question.objects.create(
        article=article,
        title=f"Bench page {tag}",
        resolution_criteria="-",
        opens_at=now - dt.timedelta(days=30),
        closes_at=now + dt.timedelta(days=30),
        status=Question.Status.OPEN,
        published_at=now - dt.timedelta(days=30),
        paragraph=1,
    )
    users = User.objects.bulk_create([User(username=f"bp-{tag}-{i}") for i in range(n)], batch_size=2000)
    start = now - dt.timedelta(days=20)
    predictions = Prediction.objects.bulk_create(
        [
            Prediction(
                question=question,
                forecaster=user,
                probability=Decimal(int(rng.integers(1, 100))) / 100,
                made_at=start + dt.timedelta(seconds=60 * i),
            )
            for i, user in enumerate(users)
        ],
        batch_size=2000,
    )
    # The history a crowd leaves: one snapshot per method after each forecast (values need not be exact).
    snapshots = []
    for prediction in predictions:
        p = round(float(rng.uniform(0.3, 0.7)), 6)
        for method in services.aggregates.method_names(question):
            snapshots.append(
                AggregateSnapshot(
                    question=question,
                    method=method,
                    at=prediction.made_at,
                    probabilities=[round(1 - p, 6), p],
                    forecasters=len(snapshots) // 5 + 1,
                    prediction=prediction,
                )
            )
    AggregateSnapshot.objects.bulk_create(snapshots, batch_size=5000)
    services.aggregate_state_rebuild(question_id=question.pk)
    return article, question, users[0]


def _time(client, url: str, count: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    queries = len(captured.captured_queries)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - t0)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows.add_arguments(parser)
    parser.add_argument("--forecasters", type=int, help="default 10,000 (quick: 2,000)")
    parser.add_argument("--requests", type=int, default=60, help="GETs per page (after one warm-up)")
    args = parser.parse_args()
    n = args.forecasters or (2_000 if args.quick else 10_000)
    count = args.requests if not args.quick else min(args.requests, 30)

    _setup()
    import numpy as np
    from django.db import connection
    from django.test import Client
    from django.urls import NoReverseMatch, reverse

    rows.progress(f"{connection.vendor}: seeding a small question (20 forecasters) and one with {n:,}")
    small = _seed(20)
    article, question, reader = _seed(n)
    try:
        cheapest_url, cheapest = reverse("robots_txt"), "GET /robots.txt"
    except NoReverseMatch:
        cheapest_url, cheapest = reverse("login"), "GET the login page"

    def pages(article, question) -> dict[str, str]:
        return {
            "question page": question.get_absolute_url(),
            "article page": article.get_absolute_url(),
            "embed": reverse("question_embed", kwargs={"pk": question.pk}),
            "chart data": reverse("question_history", kwargs={"pk": question.pk}),
        }

    results = []
    for who in ("anonymous", "signed-in"):
        client, small_client = Client(), Client()
        if who == "signed-in":  # a forecaster of the question: their own forecast, history and chart points
            client.force_login(reader)
            small_client.force_login(small[2])
        base, _ = _time(client, cheapest_url, count)
        p95_base = float(np.percentile(np.array(base) * 1000, 95))
        small_pages = pages(small[0], small[1])
        for name, url in pages(article, question).items():
            _, small_queries = _time(small_client, small_pages[name], 1)
            times, queries = _time(client, url, count)
            p95 = float(np.percentile(np.array(times) * 1000, 95))
            rows.progress(
                f"{who} {name}: p50 {np.percentile(times, 50) * 1000:.1f} ms, p95 {p95:.1f} ms;"
                f" {queries} queries ({small_queries} with 20 forecasters); {cheapest} p95 {p95_base:.1f} ms"
            )
            results.append(
                rows.row(
                    f"{name} p95, {who}, {n:,} forecasters",
                    p95,
                    "ms",
                    baseline=f"{cheapest} p95",
                    baseline_value=p95_base,
                    goal=rows.at_most(50, "ms"),
                )
            )
            results.append(
                rows.row(
                    f"{name} queries, {who}, {n:,} forecasters",
                    queries,
                    "queries",
                    baseline="queries with 20 forecasters",
                    baseline_value=small_queries,
                    goal=rows.ratio_at_most(1),
                )
            )
    rows.write_rows(args.rows, results)


if __name__ == "__main__":
    main()
