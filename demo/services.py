"""Seed the demo once: older articles with resolved questions, a simulated crowd, trades and comments.

Questions, resolutions, trades and comments go through the apps' own services (``question_create`` /
``open`` / ``resolve``, ``trade_execute`` with a past ``at``, ``comment_create``), so markets,
settlements and scores are exactly what the product computes; forecasts are checked by
``prediction_create``'s rules and written in bulk, then every aggregate history is rebuilt (the
importer's path; see ``_write_forecasts`` for the measurement). The question services stamp
their lifecycle with the real clock (they refuse to open a question whose close has passed), so
an older question is opened with a close in the future, replayed, resolved, and then its dates are
moved back to when the story happened; its scores are then recomputed from those dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from forecasting import services as forecasting
from forecasting.models import (
    MAX_PROBABILITY,
    MIN_PROBABILITY,
    RATIONALE_MAX_LENGTH,
    AggregateState,
    Article,
    Conditional,
    Prediction,
    Question,
    QuestionEvent,
    Resolution,
)
from forecasting.roles import EDITORS, ensure_role_groups
from market import services as market
from market.models import MICRO, LedgerTransaction, Market, Position, PricePoint

from . import content
from .crowd import HISTORY, Crowd, ForecastEvent, QuestionSpec, simulate
from .models import DEMO_READERS_GROUP, DemoRun
from .ranges import RangeForecastEvent, RangeSpec, simulate_ranges

DEFAULT_SEED = 20251204
DESK_EDITOR = "demo-desk-editor"
FRONT_PAGE_POPULARITY = 1.3  # the seed article is the front page: more readers forecast on it
OLDER_POPULARITY = 0.9


def demo_present() -> bool:
    """Whether this database holds the simulated demo (pages then say so)."""
    return DemoRun.objects.exists()


@transaction.atomic
def demo_seed(*, seed: int = DEFAULT_SEED, now: dt.datetime | None = None, readers: int = 300) -> DemoRun | None:
    """Seed the demo (deterministic for ``seed``); None, writing nothing, when a demo is already seeded.

    The seed article's open questions (loaded by ``seed_demo``) get the crowd's forecasts of the
    last weeks and trades; older demo articles are written with their questions, replayed and resolved.
    Raises ``ValidationError`` (writing nothing) when the demo's usernames or articles are taken.
    """
    now = now or timezone.now()
    if readers < 1:
        raise ValidationError({"readers": "The demo needs at least one reader."})
    if DemoRun.objects.exists():
        return None
    try:
        with transaction.atomic():  # a concurrent seeding waits here on the unique key, then stops
            run = DemoRun.objects.create(seed=seed, seeded_at=now)
    except IntegrityError:
        return None
    ensure_role_groups()
    desk = _desk_editor()
    _conditional_pair(desk=desk, now=now)
    front = list(
        Question.objects.filter(
            status=Question.Status.OPEN, published_at__isnull=False, opens_at__lt=now, closes_at__gt=now
        )
        .exclude(article__section=content.DEMO_SECTION)
        .select_related("article")
        .order_by("pk")
    )
    # Older articles are older than the front page's (the home page lists the newest first).
    anchor = min([now, *(q.article.published_at for q in front)])
    older = _older_articles(desk=desk, anchor=anchor, now=now)

    ranged = [q for q in front if q.is_continuous]  # numeric and date: medians and intervals
    front = [q for q in front if not q.is_continuous]
    specs = [_spec(q, FRONT_PAGE_POPULARITY) for q in front]
    specs += [_spec(q, OLDER_POPULARITY, outcome=o, closes_at=c) for q, o, c, _ in older]
    crowd = simulate(seed=seed, questions=specs, now=now, readers=readers)
    users = _create_readers(crowd)
    questions = {_key(q): q for q in front} | {_key(q): q for q, *_ in older}
    forecasts = _write_forecasts(crowd, questions, users)
    range_specs = [RangeSpec(_key(q), q.opens_at, q.closes_at, popularity=FRONT_PAGE_POPULARITY) for q in ranged]
    range_events = simulate_ranges(seed=seed, questions=range_specs, now=now, readers=crowd.readers)
    forecasts += _write_range_forecasts(range_events, {_key(q): q for q in ranged}, users)
    trades = _replay_trades(crowd, questions, users, seed)

    comments = seed_comments(crowd=crowd, questions=questions, users=users)  # before annulment closes threads
    for question, outcome, closes_at, resolved_at in older:
        _resolve_in_the_past(question, outcome=outcome, closes_at=closes_at, resolved_at=resolved_at, desk=desk)
    forecasting.aggregator_fits_refresh(now=now)
    # Every snapshot made with the fitted parameters, so stored aggregates equal a recompute.
    forecasting.aggregate_history_rebuild_many(question_ids=sorted(q.pk for q in [*questions.values(), *ranged]))
    # What a new forecast does next: queue the open yes/no questions' Bayesian update.
    for state in AggregateState.objects.filter(
        question__in=[q for q in front if q.is_binary], last_prediction__isnull=False
    ).select_for_update():
        forecasting.bayes_aggregate_schedule(state=state)

    run.summary = {
        "readers": len(users),
        "articles": len(content.ARTICLES),
        "questions": len(questions),
        "forecasts": forecasts,
        "trades": trades,
        "comments": comments,
    }
    run.save(update_fields=["summary"])
    return run


def demo_bayes_refit() -> int | None:
    """Fit the Bayesian model once on the demo's resolved questions (outside any transaction: the
    refit takes its own lease); returns the run's id, or None when a fit was not needed."""
    result = forecasting.bayes_refit_run(task_id="demo-seed")
    return result.pk if result is not None else None


# --- the parts ----------------------------------------------------------------------------------


def _desk_editor():
    User = get_user_model()
    editor, created = User.objects.get_or_create(username=DESK_EDITOR, defaults={"is_staff": False})
    if created:
        editor.set_unusable_password()
        editor.save(update_fields=["password"])
    editor.groups.add(Group.objects.get(name=EDITORS))
    return User.objects.get(pk=editor.pk)  # fresh: no stale permission cache


# The seed article's conditional pair: "if a ceasefire is agreed, will Putin and Trump meet?"
CONDITIONAL_PAIR = (
    "Will Russia and Ukraine agree a ceasefire before 1 July 2027?",
    "Will Vladimir Putin and Donald Trump meet in person before 1 April 2027?",
)


def _conditional_pair(*, desk, now: dt.datetime) -> None:
    """Make the seed article's conditional pair through ``conditional_create``, then date its branches'
    opening back (as the older questions' dates are) so the crowd has weeks to forecast them."""
    found = {q.title: q for q in Question.objects.filter(title__in=CONDITIONAL_PAIR, status=Question.Status.OPEN)}
    if len(found) != len(CONDITIONAL_PAIR) or Conditional.objects.exists():
        return
    pair = forecasting.conditional_create(
        actor=desk, condition=found[CONDITIONAL_PAIR[0]], outcome=found[CONDITIONAL_PAIR[1]]
    )
    opened = max(now - HISTORY, min(q.opens_at for q in found.values()))
    Question.objects.filter(pk__in=[pair.if_yes_id, pair.if_no_id]).update(opens_at=opened, published_at=opened)
    QuestionEvent.objects.filter(question_id__in=[pair.if_yes_id, pair.if_no_id]).update(created_at=opened)


def _key(question: Question) -> str:
    """The question's name for the crowd: the same in every database (row ids are not), so a seed
    reproduces the same crowd anywhere."""
    return f"{question.article.slug}/{question.title}"


def _spec(question: Question, popularity: float, *, outcome: int | None = None, closes_at=None) -> QuestionSpec:
    labels = () if question.is_binary else tuple(question.options.order_by("position").values_list("label", flat=True))
    return QuestionSpec(
        key=_key(question),
        opens_at=question.opens_at,
        closes_at=closes_at or question.closes_at,
        n_outcomes=2 if question.is_binary else len(labels),
        outcome=outcome,
        labels=labels,
        popularity=popularity,
    )


def _older_articles(
    *, desk, anchor: dt.datetime, now: dt.datetime
) -> list[tuple[Question, int | None, dt.datetime, dt.datetime]]:
    """The demo articles and their questions, opened; each with (outcome index, real close, resolution time).

    The questions close in the future for now (``question_open`` refuses a past close);
    ``_resolve_in_the_past`` moves the dates back once the crowd has forecast on them.
    """
    taken = Article.objects.filter(slug__in=[a["slug"] for a in content.ARTICLES]).values_list("slug", flat=True)
    if taken:
        raise ValidationError(f"These demo articles already exist: {', '.join(sorted(taken))}.")
    created = []
    for spec in content.ARTICLES:
        published = anchor - dt.timedelta(weeks=spec["weeks_before"])
        article = Article.objects.create(
            slug=spec["slug"],
            title=spec["title"],
            byline=content.DEMO_BYLINE,
            section=content.DEMO_SECTION,
            published_at=published,
            standfirst=content.DEMO_NOTE,
            body="\n\n".join(spec["paragraphs"]),
        )
        for row in content.questions_of(spec):
            opens_at = published + dt.timedelta(hours=1)
            closes_at = opens_at + dt.timedelta(days=row["days"])
            options = row["options"]
            question = forecasting.question_create(
                actor=desk,
                article=article,
                title=row["title"],
                resolution_criteria=f"Resolves by the demo's script: {row['outcome']}. {content.DEMO_NOTE}",
                opens_at=opens_at,
                closes_at=now + dt.timedelta(days=1),
                question_type=Question.Type.MULTIPLE_CHOICE if options else Question.Type.BINARY,
                options=options,
            )
            Question.objects.filter(pk=question.pk).update(paragraph=row["after"])
            question = forecasting.question_open(question=question, actor=desk)
            created.append(
                (question, _outcome_index(row["outcome"], options), closes_at, closes_at + dt.timedelta(hours=6))
            )
    return created


def _outcome_index(outcome: str, options: Sequence[str]) -> int | None:
    if outcome == "annulled":
        return None
    if options:
        return list(options).index(outcome)
    return 1 if outcome == "yes" else 0


def _create_readers(crowd: Crowd) -> dict[str, object]:
    """The simulated readers: unusable passwords, in the "Demo readers" group, joined before their first forecast."""
    User = get_user_model()
    taken = set(
        User.objects.filter(username__in=[r.username for r in crowd.readers]).values_list("username", flat=True)
    )
    if taken:
        raise ValidationError(f"These demo usernames are already taken: {', '.join(sorted(taken))}.")
    first_seen: dict[str, dt.datetime] = {}
    for event in crowd.forecasts:
        first_seen.setdefault(event.reader, event.at)
    fallback = min(first_seen.values(), default=timezone.now())
    password = make_password(None)  # unusable: nobody logs in as a simulated reader
    made = User.objects.bulk_create(
        User(
            username=r.username,
            password=password,
            date_joined=first_seen.get(r.username, fallback) - dt.timedelta(hours=2),
        )
        for r in crowd.readers
    )
    group, _ = Group.objects.get_or_create(name=DEMO_READERS_GROUP)
    group.user_set.add(*made)
    users = {user.username: user for user in made}
    for reader in crowd.readers:
        if reader.public:  # so that track records and named leaderboard rows have content
            forecasting.profile_update(user=users[reader.username], is_public=True)
    return users


def _write_forecasts(crowd: Crowd, questions: dict[str, Question], users: dict[str, object]) -> int:
    """The crowd's forecasts, checked by ``prediction_create``'s rules and written in bulk.

    Measured: ``prediction_create`` one by one took 35-45 s for 300 readers on a 2-core machine,
    almost all of it in per-forecast aggregate updates that ``demo_seed`` then rebuilds anyway;
    in bulk, then ``aggregate_history_rebuild_many`` (the importer's path), the stored state and
    history are the same as the one-by-one path's, in a few seconds.
    """
    options = {key: q.options.count() for key, q in questions.items() if not q.is_binary}
    rows = []
    for event in crowd.forecasts:
        question = questions[event.question]
        _check_forecast(event, question, options.get(event.question))
        rows.append(
            Prediction(
                question=question,
                forecaster=users[event.reader],
                probability=event.probability,
                option_probabilities=[str(v) for v in event.option_probabilities]
                if event.option_probabilities
                else None,
                rationale=event.rationale,
                made_at=event.at,
            )
        )
    Prediction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _write_range_forecasts(
    events: Sequence[RangeForecastEvent], questions: dict[str, Question], users: dict[str, object]
) -> int:
    """The crowd's numeric and date forecasts: each median and interval (positions on the range) in the
    question's units, made into its CDF by ``cdf_from_components`` (the page's path), written in bulk."""
    rows = []
    for event in events:
        question = questions[event.question]
        if not question.accepts_forecasts(event.at):
            raise ValidationError(f"Question {question.pk} does not take forecasts at {event.at:%Y-%m-%d %H:%M}.")
        median, low, high = (float(question.scale.from_unit(u)) for u in (event.median, event.low, event.high))
        cdf = forecasting.cdf_from_components(
            question=question, components=[{"median": median, "low": low, "high": high}]
        )
        rows.append(
            Prediction(
                question=question,
                forecaster=users[event.reader],
                cdf=[round(x, 6) for x in cdf],
                made_at=event.at,
            )
        )
    Prediction.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _check_forecast(event: ForecastEvent, question: Question, n_options: int | None) -> None:
    """``prediction_create``'s checks: the question takes forecasts then, the probabilities are valid."""
    at, probability, option_probabilities = event.at, event.probability, event.option_probabilities
    if len(event.rationale) > RATIONALE_MAX_LENGTH:
        raise ValidationError({"rationale": f"A rationale has at most {RATIONALE_MAX_LENGTH} characters."})
    if not question.accepts_forecasts(at):
        raise ValidationError(f"Question {question.pk} does not take forecasts at {at:%Y-%m-%d %H:%M}.")
    values = [probability] if question.is_binary else list(option_probabilities or ())
    if question.is_binary and (probability is None or option_probabilities is not None):
        raise ValidationError({"probability": "A yes/no question takes one probability of YES."})
    if not question.is_binary and (probability is not None or len(values) != n_options or sum(values) != Decimal(1)):
        raise ValidationError({"option_probabilities": "One probability per option, adding up to exactly 1."})
    if any(not MIN_PROBABILITY <= v <= MAX_PROBABILITY for v in values):
        raise ValidationError({"probability": "Each probability must be between 1% and 99%."})


def _replay_trades(crowd: Crowd, questions: dict[str, Question], users: dict[str, object], seed: int) -> int:
    """Trades in time order; one the market refuses (above the reader's limit price, out of money) is skipped."""
    by_pk = {question.pk: key for key, question in questions.items()}
    markets = {
        by_pk[q]: m for q, m in Market.objects.filter(question_id__in=list(by_pk)).values_list("question_id", "pk")
    }
    made = 0
    for i, intent in enumerate(crowd.trades):
        market_id = markets.get(intent.question)
        if market_id is None:
            continue
        user = users[intent.reader]
        if intent.side == "sell":
            held = (
                Position.objects.filter(market_id=market_id, user=user, outcome=intent.outcome)
                .values_list("shares", flat=True)
                .first()
            )
            shares = int((held or 0) * intent.fraction)
            if shares <= 0:
                continue
            size = {"shares": shares}
        else:
            size = {"amount": intent.amount * MICRO, "limit_price": intent.limit_price}
        try:
            market.trade_execute(
                user=user,
                market_id=market_id,
                outcome=intent.outcome,
                side=intent.side,
                idempotency_key=f"demo-{seed}-{i}",
                at=intent.at,
                **size,
            )
        except ValidationError:
            continue
        made += 1
    return made


def _resolve_in_the_past(
    question: Question, *, outcome: int | None, closes_at: dt.datetime, resolved_at: dt.datetime, desk
) -> None:
    """Resolve (or annul) through the services, then date the lifecycle to when the story happened."""
    if outcome is None:
        forecasting.question_annul(
            question=question, actor=desk, note="Demo: the referendum rules changed mid-question."
        )
    elif question.is_binary:
        forecasting.question_resolve(question=question, actor=desk, outcome="yes" if outcome == 1 else "no")
    else:
        option = question.options.get(position=outcome)
        forecasting.question_resolve(
            question=question, actor=desk, outcome=Resolution.Outcome.OPTION, option_id=option.pk
        )
    Question.objects.filter(pk=question.pk).update(closes_at=closes_at, published_at=question.opens_at)
    events = QuestionEvent.objects.filter(question=question)
    events.filter(action=QuestionEvent.Action.CREATED).update(created_at=question.opens_at - dt.timedelta(hours=1))
    events.filter(action=QuestionEvent.Action.OPENED).update(created_at=question.opens_at)
    events.exclude(action__in=[QuestionEvent.Action.CREATED, QuestionEvent.Action.OPENED]).update(
        created_at=resolved_at
    )
    Resolution.objects.filter(question=question).update(resolved_at=resolved_at)
    market_row = Market.objects.filter(question=question).first()
    if market_row is not None:
        Market.objects.filter(pk=market_row.pk).update(created_at=question.opens_at)
        PricePoint.objects.filter(market=market_row, trade__isnull=True).update(at=question.opens_at)
        LedgerTransaction.objects.filter(market=market_row, kind=LedgerTransaction.Kind.SUBSIDY).update(
            created_at=question.opens_at
        )
        LedgerTransaction.objects.filter(
            market=market_row, kind__in=[LedgerTransaction.Kind.PAYOUT, LedgerTransaction.Kind.REFUND]
        ).update(created_at=resolved_at)
    # The resolution's own scoring task (after commit) computes the same rows from the same dates.
    forecasting.question_scores_recompute(question_id=question.pk)


def seed_comments(*, crowd: Crowd, questions: dict[str, Question], users: dict[str, object]) -> int:
    """The crowd's comments and replies, through the comments app's ``comment_create`` (if it is installed),
    dated when the crowd wrote them. Returns how many were written."""
    if not apps.is_installed("comments"):
        return 0
    from comments.models import Comment
    from comments.services import comment_create

    written: dict[int, Comment] = {}
    for index, intent in enumerate(crowd.comments):
        parent = written.get(intent.reply_to) if intent.reply_to is not None else None
        if intent.reply_to is not None and parent is None:
            continue  # its parent was refused
        try:
            comment = comment_create(
                question=questions[intent.question], author=users[intent.reader], body=intent.body, parent=parent
            )
        except (ValidationError, PermissionDenied):
            continue
        Comment.objects.filter(pk=comment.pk).update(created_at=intent.at)
        written[index] = comment
    return len(written)
