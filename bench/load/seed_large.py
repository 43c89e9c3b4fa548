"""The load test's database: a newsroom of realistic size, built fast and kept between runs.

    DATABASE_URL=postgres://.../bench_load_seed_full .venv/bin/python bench/load/seed_large.py [--quick] [--force]

Full size: 10,000 readers, 200 yes/no questions across 40 articles, 1,000,000 forecasts, one question
(the "spike" question, resolved during the load) forecast by all 10,000 readers. ``--quick``: 2,000
readers, 50 questions, 100,000 forecasts, the spike question with 2,000 forecasters.

Raw rows go in fast (users with ``bulk_create``, forecasts with PostgreSQL ``COPY``); the state the
pages read is then derived through the project's own code so that it is consistent with the forecasts:

- each question's ``AggregateState`` (latest forecast per forecaster, oldest first) through
  ``services.latest.LatestForecasts``, and its aggregate history (``AggregateSnapshot``) through
  ``services.aggregates._snapshots`` (the function a live forecast calls): on the spike question one
  set of snapshots per forecast, as live forecasting leaves it (13,000 forecasts: 65,000 rows); on the
  others at 300 points (150 with ``--quick``) always including the latest forecast (every forecast's
  snapshots everywhere would be 5 million rows and an hour of seeding; the chart shows at most 400
  points anyway). The stored headline equals a full recompute (checked at the end with
  ``services.aggregates_recompute`` on the spike question);
- markets through ``market.services.market_create`` and a few trades per question through
  ``trade_execute``; comments through ``comments.services.comment_create``.

A marker table (``bench_load_seed``) records what was seeded; a second run with the same sizes finds it
and does nothing (``--force`` seeds again from an empty, migrated database).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rows  # noqa: E402

MARKER = "bench_load_seed"
EDITOR = "load-editor"
READER_PREFIX = "reader"
READER_PASSWORD = "load-test-reader-password"  # one hash shared by every reader (a login form works)


@dataclass(frozen=True)
class Size:
    name: str
    readers: int
    questions: int
    forecasts: int
    spike_forecasters: int
    history_points: int  # aggregate snapshots (x5 methods) per question; the spike question has one per forecast
    trades_per_question: int
    comments_per_question: int


SIZES = {
    "full": Size("full", 10_000, 200, 1_000_000, 10_000, 300, 10, 5),
    "quick": Size("quick", 2_000, 50, 100_000, 2_000, 150, 5, 3),
}
QUESTIONS_PER_ARTICLE = 5
PARAGRAPHS = [
    "Negotiators met again on Tuesday behind closed doors, according to two officials briefed on the talks.",
    "The central bank held rates steady but signalled that it could move before the end of the quarter.",
    "Analysts said the outcome would depend on turnout in three swing districts and on late-deciding voters.",
    "The ministry declined to comment on the figures, which were first reported by a regional newspaper.",
    "Markets moved little on the news; bond yields were flat and the currency edged up against the dollar.",
    "Observers cautioned that similar announcements in the past had not been followed by concrete steps.",
    "A spokesperson said the timetable was realistic, although several deadlines have already slipped.",
]


def marker_row(cursor) -> dict | None:
    cursor.execute("SELECT to_regclass(%s)", [MARKER])
    if cursor.fetchone()[0] is None:
        return None
    cursor.execute(
        f"SELECT size, readers, questions, forecasts, spike_question_id, spike_forecasters, details FROM {MARKER}"
    )
    found = cursor.fetchone()
    if found is None:
        return None
    keys = ("size", "readers", "questions", "forecasts", "spike_question_id", "spike_forecasters", "details")
    return dict(zip(keys, found, strict=True))


def _copy_predictions(raw, lines: list[str]) -> None:
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY forecasting_prediction (id, question_id, forecaster_id, probability, made_at, rationale) FROM STDIN"
        ) as copy,
    ):
        block = 50_000
        for i in range(0, len(lines), block):
            copy.write("".join(lines[i : i + block]))
    raw.commit()


def seed(size: Size) -> dict:
    import numpy as np
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone

    from comments import services as comments
    from forecasting.models import (
        AggregateSnapshot,
        AggregateState,
        Article,
        OutboxTask,
        Prediction,
        Question,
        QuestionEvent,
    )
    from forecasting.roles import EDITORS, ensure_role_groups
    from forecasting.services import aggregates
    from forecasting.services.latest import LatestForecasts
    from market import services as market
    from market.models import Market

    rng = np.random.default_rng(20261206)
    now = timezone.now().replace(microsecond=0)
    opens_at = now - dt.timedelta(days=60)
    closes_at = now + dt.timedelta(days=60)

    ensure_role_groups()
    password = make_password(READER_PASSWORD)
    editor = User.objects.create(username=EDITOR, email="editor@load.example", password=password)
    editor.groups.add(Group.objects.get(name=EDITORS))

    rows.progress(f"seed: {size.readers:,} readers")
    readers = User.objects.bulk_create(
        [
            User(
                username=f"{READER_PREFIX}{i:05d}",
                email=f"{READER_PREFIX}{i:05d}@load.example",
                password=password,
                date_joined=opens_at,
            )
            for i in range(size.readers)
        ],
        batch_size=2000,
    )
    reader_ids = np.array([u.pk for u in readers], dtype=np.int64)

    rows.progress(f"seed: {size.questions} questions in {size.questions // QUESTIONS_PER_ARTICLE} articles")
    n_articles = max(size.questions // QUESTIONS_PER_ARTICLE, 1)
    articles = Article.objects.bulk_create(
        [
            Article(
                slug=f"load-article-{a:03d}",
                title=f"Load test article {a}: talks, rates and elections",
                byline="Load Desk",
                section=["World", "Business", "Politics", "Science"][a % 4],
                published_at=opens_at + dt.timedelta(hours=a),
                standfirst="What our readers expect to happen next, and how sure they are.",
                body="\n\n".join(PARAGRAPHS[(a + k) % len(PARAGRAPHS)] for k in range(6)),
            )
            for a in range(n_articles)
        ]
    )
    questions = Question.objects.bulk_create(
        [
            Question(
                article=articles[q % n_articles],
                title=f"Will event {q} happen before the close date?",
                resolution_criteria="Resolves YES if the event is reported by two reputable outlets.",
                resolution_source="https://example.org/source",
                question_type=Question.Type.BINARY,
                opens_at=opens_at,
                closes_at=closes_at,
                status=Question.Status.OPEN,
                paragraph=(q // n_articles) + 1,
                published_at=opens_at,
                created_by=editor,
            )
            for q in range(size.questions)
        ]
    )
    QuestionEvent.objects.bulk_create(
        [
            QuestionEvent(question=q, actor=editor, action=action, from_status=src, to_status=dst, created_at=opens_at)
            for q in questions
            for action, src, dst in (("created", "", "draft"), ("opened", "draft", "open"))
        ]
    )
    spike = questions[0]

    # --- forecasts: generated with numpy, written with COPY ------------------------------------
    rows.progress(f"seed: generating {size.forecasts:,} forecasts")
    spike_count = int(size.spike_forecasters * 1.3)
    per_question = (size.forecasts - spike_count) // max(size.questions - 1, 1)
    counts = [spike_count] + [per_question] * (size.questions - 1)
    counts[-1] += size.forecasts - sum(counts)
    start_ts, end_ts = opens_at.timestamp(), (now - dt.timedelta(minutes=5)).timestamp()
    plan = []  # per question: (forecaster ids, made_at epoch, probability, prediction ids)
    next_id = 1
    lines: list[str] = []
    for q, n in zip(questions, counts, strict=True):
        if q is spike:
            people = reader_ids[: size.spike_forecasters]
        else:
            m = int(rng.integers(n // 4, n // 2 + 1))
            people = rng.choice(reader_ids, size=min(m, len(reader_ids)), replace=False)
        order = np.concatenate([rng.permutation(len(people)), rng.integers(0, len(people), n - len(people))])
        rng.shuffle(order)  # everyone forecasts at least once; some update, at any time
        forecasters = people[order]
        made = np.sort(rng.uniform(start_ts, end_ts, n))
        drift = np.cumsum(rng.normal(0, 0.02, n)) + rng.normal(0, 1.2)
        bias = rng.normal(0, 0.8, len(people))[order]
        logit = drift + bias + rng.normal(0, 0.3, n)
        prob = np.clip(np.round(1 / (1 + np.exp(-logit)), 2), 0.01, 0.99)
        ids = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        plan.append((q, forecasters, made, prob, ids))
        stamps = [dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat() for t in made.tolist()]
        qid = q.pk
        lines.extend(
            f"{i}\t{qid}\t{f}\t{p:.2f}\t{s}\t\n"
            for i, f, p, s in zip(ids.tolist(), forecasters.tolist(), prob.tolist(), stamps, strict=True)
        )
    rows.progress(f"seed: COPY {len(lines):,} forecasts")
    connection.ensure_connection()
    _copy_predictions(connection.connection, lines)
    del lines
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('forecasting_prediction', 'id'), %s)", [next_id - 1])

    # --- derived state: latest forecasts and aggregate history, through the project's code ------------
    rows.progress("seed: aggregate state and history (services.latest, services.aggregates)")
    parameters = aggregates.aggregator_parameters(continuous=False)
    states, snapshots = [], []
    written = 0
    for q, forecasters, made, prob, ids in plan:
        n = len(ids)
        if q is spike:  # as live forecasts leave it: every forecast's snapshots
            checkpoints = set(range(n))
        else:
            checkpoints = set(np.unique(np.linspace(0, n - 1, size.history_points).astype(int)).tolist())
        latest: dict[int, tuple[float, float]] = {}
        f_list, m_list, p_list = forecasters.tolist(), made.tolist(), prob.tolist()
        for j in range(n):
            latest.pop(f_list[j], None)  # re-inserted last: the dict stays oldest-first
            latest[f_list[j]] = (m_list[j], p_list[j])
            if j in checkpoints:
                ps = np.fromiter((v[1] for v in latest.values()), dtype=float, count=len(latest))
                state = LatestForecasts(
                    np.fromiter(latest.keys(), dtype=np.int64, count=len(latest)),
                    np.fromiter((v[0] for v in latest.values()), dtype=float, count=len(latest)),
                    np.column_stack([1.0 - ps, ps]),
                )
                at = dt.datetime.fromtimestamp(m_list[j], tz=dt.UTC)
                prediction = Prediction(pk=int(ids[j]), question=q, forecaster_id=f_list[j], made_at=at)
                snapshots.extend(aggregates._snapshots(q, prediction, state, parameters))
        row = AggregateState(question=q, outcomes=2, last_prediction_id=int(ids[-1]))
        state.store(row)
        states.append(row)
        if len(snapshots) >= 20_000:
            AggregateSnapshot.objects.bulk_create(snapshots, batch_size=5000)
            written += len(snapshots)
            snapshots = []
    AggregateSnapshot.objects.bulk_create(snapshots, batch_size=5000)
    written += len(snapshots)
    AggregateState.objects.bulk_create(states, batch_size=50)
    rows.progress(f"seed: {written:,} aggregate snapshots, {len(states)} states")

    # --- markets, trades, comments, through their services ----------------------------------------
    rows.progress("seed: markets, trades and comments (market and comments services)")
    for q in questions:
        market.market_create(question=q)
    markets = dict(Market.objects.values_list("question_id", "pk"))
    users_by_id = {u.pk: u for u in readers}
    for q in questions:
        for _ in range(size.trades_per_question):
            user = users_by_id[int(rng.choice(reader_ids))]
            market.trade_execute(
                user=user,
                market_id=markets[q.pk],
                outcome=int(rng.integers(0, 2)),
                side="buy",
                amount=int(rng.integers(1, 20)) * 1_000_000,
                idempotency_key=uuid.uuid4().hex,
            )
        for c in range(size.comments_per_question):
            user = users_by_id[int(rng.choice(reader_ids))]
            comments.comment_create(
                question=q,
                author=user,
                body=f"My reasoning, take {c}: the **base rate** for this kind of event is low, but the news moved.",
            )

    # Seed-time tasks (Bayesian updates, trades' price updates) went to an in-memory broker: none is due.
    OutboxTask.objects.all().delete()
    AggregateState.objects.update(bayes_pending=False)

    # The check: the stored headline equals a full recompute on the spike question.
    current = aggregates.aggregates_current(question=spike)
    recomputed = aggregates.aggregates_recompute(question=spike)
    mismatch = max(abs(current[m].probability_yes - float(v[-1])) for m, v in recomputed.items())
    if mismatch > 1e-5:
        raise SystemExit(f"seeded aggregates differ from a full recompute by {mismatch:.2e}")
    forecasters = Prediction.objects.filter(question=spike).values("forecaster").distinct().count()
    info = {
        "size": size.name,
        "readers": size.readers,
        "questions": size.questions,
        "forecasts": Prediction.objects.count(),
        "spike_question_id": spike.pk,
        "spike_forecasters": forecasters,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {MARKER} (size text, readers int, questions int, forecasts int,"
            " spike_question_id int, spike_forecasters int, details jsonb, created_at timestamptz DEFAULT now())"
        )
        cursor.execute(
            f"INSERT INTO {MARKER} (size, readers, questions, forecasts, spike_question_id, spike_forecasters,"
            " details) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)",
            [*info.values(), json.dumps(asdict(size))],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 readers, 50 questions, 100,000 forecasts")
    parser.add_argument("--force", action="store_true", help="seed again even if the marker says it is done")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]

    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("seed_large.py needs DATABASE_URL=postgres://... (it uses COPY)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ["CELERY_BROKER_URL"] = "memory://"  # tasks the services queue while seeding go nowhere
    os.environ.setdefault("BAYES_AUTO_REFIT", "0")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        found = marker_row(cursor)
    details = found and found["details"]
    if isinstance(details, str):  # Django's psycopg adapter leaves jsonb as text
        details = json.loads(details)
    if found and details == asdict(size) and not args.force:
        rows.progress(f"seed: already seeded ({found})")
        return 0
    if found or args.force:
        rows.progress("seed: emptying the database")
        call_command("flush", "--noinput", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {MARKER}")
    call_command("migrate", "--noinput", verbosity=0)
    started = time.monotonic()
    info = seed(size)
    rows.progress(f"seed: done in {time.monotonic() - started:.0f} s: {info}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
