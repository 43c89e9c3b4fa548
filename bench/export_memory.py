"""Peak memory and time of the data exports with 1,000,000 forecasts, beside the naive approach.

Target (downloads issue): a full export (every table, as a ZIP of CSV files and as a ZIP of
Parquet files) of 1,000,000 forecasts peaks at <= 300 MB of memory, flat as the data grows.

    .venv/bin/python bench/export_memory.py [--forecasts 1000000] [--questions 200] [--forecasters 20000]

Builds a throw-away SQLite database (forecasts bulk-inserted with executemany, plus aggregate
history, scores and market prices), then runs each export in a fresh child process and reads
that process's peak resident memory (``VmHWM``, i.e. ``ru_maxrss``): what it held at its worst,
Python objects, pyarrow buffers and SQLite's page cache alike. The children write the ZIP to
a file as a web server would send it; the parent then checks the files (row counts).

The baseline, measured in the same run on the same database, is the naive export of the
forecasts table alone: ``pd.DataFrame(list(Prediction.objects.values()))``, ``to_csv`` and a
ZIP; it has less to do (one table, no anonymisation) and still holds everything at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODES = ("csv", "parquet", "baseline")


def _setup(db_path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    os.environ.setdefault("VAR_DIR", str(Path(db_path).parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def seed(args) -> dict:
    import datetime as dt
    import random

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from forecasting.models import (
        AggregateSnapshot,
        Article,
        ModelRun,
        Prediction,
        Question,
        QuestionOption,
        Resolution,
    )
    from market.models import Account, Market, PricePoint

    call_command("migrate", verbosity=0)
    rng = random.Random(42)
    now = timezone.now()
    opens = now - dt.timedelta(days=90)
    started = time.perf_counter()
    admin = User.objects.create(username="bench-editor")
    users = User.objects.bulk_create(
        [User(username=f"bench-{i}", password="!") for i in range(args.forecasters)], batch_size=5000
    )
    user_ids = [u.pk for u in users]
    articles = Article.objects.bulk_create(
        [Article(slug=f"bench-{i}", title=f"Bench article {i}", published_at=opens, body="-") for i in range(20)]
    )
    questions = []
    for i in range(args.questions):
        multiple = i % 10 == 9
        questions.append(
            Question(
                article=articles[i % len(articles)],
                title=f"Bench question {i}",
                resolution_criteria="-",
                question_type=Question.Type.MULTIPLE_CHOICE if multiple else Question.Type.BINARY,
                opens_at=opens,
                closes_at=now + dt.timedelta(days=30),
                status=Question.Status.OPEN,
                published_at=opens,  # exports carry published questions only
            )
        )
    questions = Question.objects.bulk_create(questions)
    QuestionOption.objects.bulk_create(
        QuestionOption(question=q, position=j, label=label)
        for q in questions
        if not q.is_binary
        for j, label in enumerate(("Red", "Green", "Blue"))
    )

    table = Prediction._meta.db_table
    sql = (
        f"INSERT INTO {table} (question_id, forecaster_id, probability, option_probabilities, made_at)"
        " VALUES (%s, %s, %s, %s, %s)"
    )
    span = (now - opens).total_seconds()
    batch, first_prediction = [], {}
    with transaction.atomic(), connection.cursor() as cursor:
        for n in range(args.forecasts):
            q = questions[rng.randrange(len(questions))]
            made_at = (opens + dt.timedelta(seconds=span * n / args.forecasts)).strftime("%Y-%m-%d %H:%M:%S.%f")
            if q.is_binary:
                row = (q.pk, rng.choice(user_ids), f"{rng.randint(1, 99) / 100:.4f}", None, made_at)
            else:
                row = (q.pk, rng.choice(user_ids), None, '["0.2000", "0.3000", "0.5000"]', made_at)
            batch.append(row)
            if len(batch) >= 50_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
    for q in questions:
        first_prediction[q.pk] = (
            Prediction.objects.filter(question=q).order_by("pk").values_list("pk", flat=True).first()
        )

    # aggregate history: every method after some of the forecasts, a Bayesian value with its interval
    run = ModelRun.objects.create(method="map", status="succeeded", finished_at=now)
    methods = ("mean", "median", "recency_weighted_median", "logodds_mean", "extremized_logodds")
    snapshot_table = AggregateSnapshot._meta.db_table
    sql = (
        f"INSERT INTO {snapshot_table} (question_id, method, at, probabilities, forecasters, prediction_id, parameters,"
        " low, high, model_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    rows = []
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(args.aggregates // (len(methods) + 1)):
            q = questions[i % len(questions)]
            at = (opens + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
            p = round(rng.random(), 6)
            vector = json.dumps([round(1 - p, 6), p] if q.is_binary else [0.2, 0.3, 0.5])
            for method in methods:
                rows.append((q.pk, method, at, vector, i % 500 + 1, None, "{}", None, None, None))
            if q.is_binary:
                rows.append((q.pk, "bayes", at, vector, i % 500 + 1, None, "{}", p / 2, (1 + p) / 2, run.pk))
            if len(rows) >= 50_000:
                cursor.executemany(sql, rows)
                rows.clear()
        if rows:
            cursor.executemany(sql, rows)

    # scores on the first questions (resolved), 8 per forecaster
    from forecasting.models import Score

    resolutions = {}
    for q in questions[: args.scored_questions]:
        if q.is_binary:
            resolutions[q.pk] = Resolution.objects.create(question=q, outcome="yes", resolved_by=admin).pk
    Question.objects.filter(pk__in=list(resolutions)).update(status=Question.Status.RESOLVED)
    score_table = Score._meta.db_table
    sql = (
        f"INSERT INTO {score_table} (question_id, forecaster_id, resolution_id, prediction_id, kind, method, value,"
        " coverage, computed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    per_question = max(1, args.scores // (8 * max(1, len(resolutions))))
    rows = []
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    with transaction.atomic(), connection.cursor() as cursor:
        for question_id, resolution_id in resolutions.items():
            for forecaster_id in user_ids[:per_question]:
                for kind in ("brier", "log", "baseline", "peer"):
                    for method in ("spot", "time_averaged"):
                        value = f"{rng.uniform(-100, 100):.6f}"
                        rows.append(
                            (
                                question_id,
                                forecaster_id,
                                resolution_id,
                                first_prediction[question_id],
                                kind,
                                method,
                                value,
                                "0.500000",
                                stamp,
                            )
                        )
        cursor.executemany(sql, rows)

    # market price history
    markets = []
    for q in questions[: args.markets]:
        maker = Account.objects.create(kind=Account.Kind.MAKER)
        k = 2 if q.is_binary else 3
        markets.append(Market.objects.create(question=q, maker=maker, subsidy=100, liquidity=144.0, shares=[0] * k))
    price_table = PricePoint._meta.db_table
    rows = []
    for i in range(args.prices):
        market = markets[i % len(markets)]
        p = round(rng.random(), 9)
        prices = [1 - p, p] if len(market.shares) == 2 else [0.25, 0.25, 0.5]
        rows.append((market.pk, (opens + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"), json.dumps(prices)))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {price_table} (market_id, at, prices) VALUES (%s, %s, %s)", rows)
    connection.close()
    return {
        "forecasts": Prediction.objects.count(),
        "aggregates": AggregateSnapshot.objects.count(),
        "scores": Score.objects.count(),
        "market": PricePoint.objects.count(),
        "questions": len(questions),
        "forecasters": len(user_ids),
        "seconds": time.perf_counter() - started,
    }


def child(mode: str, db_path: str, out_path: str) -> None:
    """One export in a fresh process; prints its time and memory as JSON."""
    _setup(db_path)
    import pandas as pd  # imported before the measurement starts, like the exports' pyarrow

    from forecasting.io import exports
    from forecasting.models import Prediction

    rss_start = _status_kb("VmRSS")
    started = time.perf_counter()
    if mode == "baseline":
        frame = pd.DataFrame(list(Prediction.objects.values()))
        with zipfile.ZipFile(out_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("forecasts.csv", frame.to_csv(index=False))
    else:
        export = exports.export_everything()
        with open(out_path, "wb") as out:
            for chunk in exports.stream_zip(export, mode):
                out.write(chunk)
    seconds = time.perf_counter() - started
    peak = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "mode": mode,
                "seconds": seconds,
                "rss_start_mb": rss_start / 1024,
                "peak_rss_mb": peak / 1024,
                "peak_delta_mb": (peak - rss_start) / 1024,
                "bytes": os.path.getsize(out_path),
            }
        )
    )


def check(mode: str, path: str) -> dict[str, int]:
    """Rows per file of an export (streamed: the check itself holds little)."""
    import pyarrow.parquet as pq

    counts = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".csv"):
                with archive.open(name) as f:
                    counts[name] = sum(1 for _ in f) - 1
            elif name.endswith(".parquet"):
                with archive.open(name) as f:
                    counts[name] = pq.ParquetFile(f).metadata.num_rows
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forecasts", type=int, default=1_000_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--forecasters", type=int, default=20_000)
    parser.add_argument("--aggregates", type=int, default=120_000, help="aggregate snapshots (all methods)")
    parser.add_argument("--scores", type=int, default=100_000)
    parser.add_argument("--scored-questions", type=int, default=40)
    parser.add_argument("--prices", type=int, default=20_000)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--keep", action="store_true", help="keep the database and the exports")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.out)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    db_path = str(tmp / "bench.sqlite3")
    _setup(db_path)
    print(f"seeding {args.forecasts:,} forecasts in {db_path} …", flush=True)
    seeded = seed(args)
    print(
        f"seeded in {seeded.pop('seconds'):.1f} s: "
        + ", ".join(f"{value:,} {name}" for name, value in seeded.items())
        + f"; database {os.path.getsize(db_path) / 2**20:.0f} MB",
        flush=True,
    )
    results = []
    for mode in args.modes.split(","):
        out = str(tmp / f"export-{mode}.zip")
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--db", db_path, "--out", out],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"{mode} export failed")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["rows"] = check(mode, out)
        results.append(result)
        if not args.keep:
            os.remove(out)

    print()
    print(f"{'export':<34} {'time':>8} {'peak RSS':>10} {'peak - start':>13} {'size':>9}")
    labels = {
        "csv": "streamed ZIP of CSV (all tables)",
        "parquet": "streamed ZIP of Parquet (all)",
        "baseline": "naive pandas (forecasts only)",
    }
    for r in results:
        print(
            f"{labels[r['mode']]:<34} {r['seconds']:>6.1f} s {r['peak_rss_mb']:>7.0f} MB {r['peak_delta_mb']:>10.0f} MB"
            f" {r['bytes'] / 2**20:>6.1f} MB"
        )
    print()
    for r in results:
        print(f"{r['mode']}: rows " + ", ".join(f"{name} {n:,}" for name, n in r["rows"].items()))
    streamed = [r for r in results if r["mode"] != "baseline"]
    if streamed:
        worst = max(r["peak_rss_mb"] for r in streamed)
        print(f"\nworst streamed peak: {worst:.0f} MB (target <= 300 MB): {'OK' if worst <= 300 else 'OVER'}")
        for r in streamed:
            forecasts = r["rows"].get(f"forecasts.{r['mode']}")
            assert forecasts == seeded["forecasts"], (r["mode"], forecasts)
    if args.keep:
        print(f"kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
