"""Time and peak memory of the data exports with 1,000,000 forecasts, beside the naive approach.

Goals (issue 23): a full export (every table, as a ZIP of CSV files and as a ZIP of Parquet
files) of 1,000,000 forecasts on PostgreSQL (production) takes at most a third of "today"'s
time (``TODAY_SECONDS``: the code before the COPY fast path, ``forecasting/io/exports/pg_copy.py``,
measured with this script on this machine when quiet: 21.8 s CSV, 15.6 s Parquet, peaks 177 MB /
264 MB; under load 27.8-36.1 s / 19.6-28.6 s; on SQLite 33 s / 26 s at 190 / 243 MB) and peaks
at <= 256 MB. The time of the naive export in the same run tells how loaded the machine was.

    DATABASE_URL=postgres://…/bench_export .venv/bin/python bench/export_memory.py [--quick] [--rows PATH]
        [--forecasts N] [--reuse]

With ``DATABASE_URL`` pointing at PostgreSQL, the bench empties that database (a fresh schema:
it refuses a database whose name lacks "bench"), migrates it and seeds it with COPY; ``--reuse``
keeps data already seeded at the same size. Without it, a throw-away SQLite database (the demo;
the generic path only: its rows carry no time goal). Then each export runs in a fresh child
process, which reads its own peak resident memory (``VmHWM``, i.e. ``ru_maxrss``): what it held
at its worst, Python objects and pyarrow buffers alike (PostgreSQL's server processes are not
counted; SQLite's page cache is). Django and pyarrow are imported before the measurement starts
(about 165 MB); pandas only in the naive export's process. The children write the ZIP to a file
as a web server would send it; the parent then checks the files (row counts).

The baseline, measured in the same run on the same database, is the naive export of the
forecasts table alone: ``pd.DataFrame(list(Prediction.objects.values()))``, ``to_csv`` and a
ZIP; it has less to do (one table, no anonymisation) and still holds everything at once.

``--quick`` exports 200,000 forecasts (the other tables shrink alike), same rows named with the
size; its time goal is a third of today's code measured at that size (5.6 s CSV, 4.0 s Parquet,
one run), not a linear scaling of the 1M figure: fixed costs (queries, README) do not scale.
The machine is shared and noisy: run twice.
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
sys.path.insert(0, str(ROOT / "bench"))
import rows  # noqa: E402  (bench/rows.py: the shape every benchmark reports in)

MODES = ("csv", "parquet", "baseline")
FULL_FORECASTS = 1_000_000
QUICK_FORECASTS = 200_000
PEAK_MB = 256  # issue 23: peak resident memory of one export
# Issue 23's "today": the code before the PostgreSQL fast path (pg_copy.py), measured with this
# script on this machine while it was quiet (load ~1.5; naive export 13.3 s): 21.8 s CSV, 15.6 s
# Parquet at 1M. Under other helpers' load it measured 27.8 / 19.6 s and 36.1 / 28.6 s (naive
# 21 s). The goal is a third of the quiet figure. SQLite (the demo, generic path) measured 33 / 26 s.
# The quick figures were measured under load (naive 4.6 s): a lenient goal.
TODAY_SECONDS = {
    ("PostgreSQL", FULL_FORECASTS): {"csv": 21.8, "parquet": 15.6},
    ("PostgreSQL", QUICK_FORECASTS): {"csv": 5.6, "parquet": 4.0},
}


def _setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("VAR_DIR", tempfile.gettempdir())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres://", "postgresql://"))


def _reset_postgres() -> None:
    """Empty the bench database (a fresh schema): refuses a database whose name lacks "bench"."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if "bench" not in name:
        raise SystemExit(f"refusing to wipe database {name!r}: the bench only wipes a database named *bench*")
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


def _insert(cursor, sql: str, rows: list[tuple]) -> None:
    """Bulk insert: COPY on PostgreSQL (seconds for 1M rows), executemany elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        cursor.executemany(sql, rows)
        return
    head = sql.split(" VALUES ", 1)[0].removeprefix("INSERT INTO ")
    with cursor.cursor.copy(f"COPY {head} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


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
        f"INSERT INTO {table} (question_id, forecaster_id, probability, option_probabilities, made_at, rationale)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
    )
    span = (now - opens).total_seconds()
    batch, first_prediction = [], {}
    with transaction.atomic(), connection.cursor() as cursor:
        for n in range(args.forecasts):
            q = questions[rng.randrange(len(questions))]
            made_at = (opens + dt.timedelta(seconds=span * n / args.forecasts)).strftime("%Y-%m-%d %H:%M:%S.%f")
            if q.is_binary:
                row = (q.pk, rng.choice(user_ids), f"{rng.randint(1, 99) / 100:.4f}", None, made_at, "")
            else:
                row = (q.pk, rng.choice(user_ids), None, '["0.2000", "0.3000", "0.5000"]', made_at, "")
            batch.append(row)
            if len(batch) >= 50_000:
                _insert(cursor, sql, batch)
                batch.clear()
        if batch:
            _insert(cursor, sql, batch)
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
                _insert(cursor, sql, rows)
                rows.clear()
        if rows:
            _insert(cursor, sql, rows)

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
        _insert(cursor, sql, rows)

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
        _insert(cursor, f"INSERT INTO {price_table} (market_id, at, prices) VALUES (%s, %s, %s)", rows)
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


def child(mode: str, database_url: str, out_path: str) -> None:
    """One export in a fresh process; prints its time and memory as JSON."""
    _setup(database_url)
    # Imported before the measurement starts: pyarrow (the exports') always, pandas (the naive
    # export's) only in the process that uses it, so neither export is charged the other's libraries.
    import pyarrow  # noqa: F401

    if mode == "baseline":
        import pandas as pd

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


def _seeded_already(args) -> bool:
    """--reuse: the PostgreSQL bench database holds this size's data already (seeding 1M rows takes minutes)."""
    from django.db import connection
    from django.db.utils import DatabaseError

    from forecasting.models import Prediction

    try:
        return Prediction.objects.count() == args.forecasts
    except DatabaseError:
        connection.close()
        return False


def _run_child(mode: str, database_url: str, out: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--db", database_url, "--out", out],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"{mode} export failed")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rows"] = check(mode, out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forecasts", type=int, default=None, help="default 1,000,000 (200,000 with --quick)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--forecasters", type=int, default=20_000)
    parser.add_argument("--aggregates", type=int, default=120_000, help="aggregate snapshots (all methods)")
    parser.add_argument("--scores", type=int, default=100_000)
    parser.add_argument("--scored-questions", type=int, default=40)
    parser.add_argument("--prices", type=int, default=20_000)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--keep", action="store_true", help="keep the SQLite database and the exports")
    parser.add_argument("--reuse", action="store_true", help="PostgreSQL: keep data already seeded at this size")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    rows.add_arguments(parser)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.db, args.out)
        return
    if args.forecasts is None:
        args.forecasts = QUICK_FORECASTS if args.quick else FULL_FORECASTS
    if args.quick:  # every table shrinks with the forecasts, so the mix stays that of the full run
        scale = args.forecasts / FULL_FORECASTS
        for name in ("aggregates", "scores", "prices"):
            setattr(args, name, max(1, int(getattr(args, name) * scale)))

    tmp = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    database_url = os.environ.get("DATABASE_URL", "")
    postgres = _is_postgres(database_url)
    if not postgres:
        database_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    _setup(database_url)
    where = "PostgreSQL" if postgres else "SQLite"
    if postgres and args.reuse and _seeded_already(args):
        rows.progress(f"reusing the {args.forecasts:,} forecasts already in the {where} bench database")
    else:
        if postgres:
            _reset_postgres()
        rows.progress(f"seeding {args.forecasts:,} forecasts ({where}) …")
        seeded = seed(args)
        rows.progress(
            f"seeded in {seeded.pop('seconds'):.1f} s: "
            + ", ".join(f"{value:,} {name}" for name, value in seeded.items())
        )
    if postgres:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # a production database is vacuumed and analysed
        connection.close()

    results = {}
    for mode in args.modes.split(","):
        rows.progress(f"{mode} export …")
        out = str(tmp / f"export-{mode}.zip")
        results[mode] = _run_child(mode, database_url, out)
        rows.progress(
            f"{mode}: {results[mode]['seconds']:.1f} s, peak {results[mode]['peak_rss_mb']:.0f} MB, "
            + ", ".join(f"{name} {n:,}" for name, n in results[mode]["rows"].items())
        )
        if not args.keep:
            os.remove(out)
        if mode != "baseline":
            forecasts = results[mode]["rows"].get(f"forecasts.{mode}")
            assert forecasts == args.forecasts, (mode, forecasts)
    if args.keep:
        print(f"kept in {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    rows.write_rows(args.rows, _rows(results, args.forecasts, where))


def _rows(results: dict, forecasts: int, where: str) -> list[dict]:
    """Seconds and peak memory of each export beside the naive export's; goals as in the module docstring."""
    naive = results.get("baseline")
    baseline = "naive pandas export (forecasts only)"
    size = f"{forecasts:,} forecasts, {where}"
    today = TODAY_SECONDS.get((where, forecasts))
    out = []
    for mode, label in (("csv", "CSV ZIP"), ("parquet", "Parquet ZIP")):
        if mode not in results:
            continue
        r = results[mode]
        goal = rows.at_most(round(today[mode] / 3, 2), "s") if today else None
        out.append(
            rows.row(
                f"{label} export seconds ({size})",
                r["seconds"],
                "s",
                baseline=baseline,
                baseline_value=naive and naive["seconds"],
                goal=goal,
            )
        )
        out.append(
            rows.row(
                f"{label} export peak memory ({size})",
                r["peak_rss_mb"],
                "MB",
                baseline=baseline,
                baseline_value=naive and naive["peak_rss_mb"],
                goal=rows.at_most(PEAK_MB, "MB"),
            )
        )
    return out


if __name__ == "__main__":
    main()
