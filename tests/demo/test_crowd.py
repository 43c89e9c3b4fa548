"""The simulated crowd (demo/crowd.py), a pure generator: deterministic, in range, skills that show."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from demo.crowd import HISTORY, QuestionSpec, simulate, whole_percents

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def resolved(key: int, outcome: int, *, weeks_ago: int = 10, days: int = 21) -> QuestionSpec:
    opens = NOW - dt.timedelta(weeks=weeks_ago)
    return QuestionSpec(key=key, opens_at=opens, closes_at=opens + dt.timedelta(days=days), outcome=outcome)


QUESTIONS = [
    *(resolved(i, i % 2) for i in range(12)),
    QuestionSpec(
        key=50,
        opens_at=NOW - dt.timedelta(weeks=8),
        closes_at=NOW - dt.timedelta(weeks=5),
        n_outcomes=3,
        labels=("Harbour", "Loop", "Spur"),
        outcome=1,
    ),
    QuestionSpec(key=60, opens_at=NOW - dt.timedelta(days=400), closes_at=NOW + dt.timedelta(days=200)),
    QuestionSpec(
        key=70,
        opens_at=NOW - dt.timedelta(days=3),
        closes_at=NOW + dt.timedelta(days=90),
        n_outcomes=4,
        labels=("a", "b", "c", "d"),
    ),
]


def test_the_same_seed_gives_the_same_crowd_and_another_seed_another():
    first = simulate(seed=11, questions=QUESTIONS, now=NOW, readers=60)
    assert simulate(seed=11, questions=QUESTIONS, now=NOW, readers=60) == first
    other = simulate(seed=12, questions=QUESTIONS, now=NOW, readers=60)
    assert other.readers != first.readers
    assert other.forecasts != first.forecasts
    assert first.forecasts and first.trades and first.comments


def test_readers_are_unique_demo_names_of_every_style():
    crowd = simulate(seed=3, questions=QUESTIONS, now=NOW, readers=300)
    names = [r.username for r in crowd.readers]
    assert len(set(names)) == len(names) == 300
    assert all(re.fullmatch(r"demo-[a-z]+-\d\d", name) for name in names)
    assert {r.style for r in crowd.readers} == {"skilled", "steady", "noisy", "overconfident"}


def test_forecasts_are_whole_percents_in_range_and_multiple_choice_sums_to_exactly_one():
    crowd = simulate(seed=5, questions=QUESTIONS, now=NOW, readers=120)
    specs = {q.key: q for q in QUESTIONS}
    multiple = 0
    for event in crowd.forecasts:
        spec = specs[event.question]
        values = [event.probability] if spec.binary else list(event.option_probabilities)
        assert (event.probability is None) != (event.option_probabilities is None)
        assert all(Decimal("0.01") <= v <= Decimal("0.99") and v == v.quantize(Decimal("0.01")) for v in values)
        if not spec.binary:
            multiple += 1
            assert len(values) == spec.n_outcomes
            assert sum(values) == Decimal(1)
    assert multiple > 20


def test_every_event_happens_while_its_question_is_open_and_before_now():
    crowd = simulate(seed=8, questions=QUESTIONS, now=NOW, readers=120)
    specs = {q.key: q for q in QUESTIONS}
    for event in (*crowd.forecasts, *crowd.trades):
        spec = specs[event.question]
        assert spec.opens_at <= event.at < min(spec.closes_at, NOW)
        assert event.at >= min(spec.closes_at, NOW) - HISTORY  # open questions: the last weeks only
    for comment in crowd.comments:
        assert specs[comment.question].opens_at <= comment.at <= NOW
        if comment.reply_to is not None:
            parent = crowd.comments[comment.reply_to]
            assert parent.reply_to is None and parent.question == comment.question and parent.at <= comment.at
    assert [f.at for f in crowd.forecasts] == sorted(f.at for f in crowd.forecasts)


def test_trades_buy_at_most_at_the_readers_belief():
    crowd = simulate(seed=9, questions=QUESTIONS, now=NOW, readers=120)
    buys = [t for t in crowd.trades if t.side == "buy"]
    sells = [t for t in crowd.trades if t.side == "sell"]
    assert buys and sells
    assert all(t.amount > 0 and 0 < t.limit_price < 1 for t in buys)
    assert all(0 < t.fraction <= 1 for t in sells)


def test_skilled_readers_score_better_than_noisy_and_overconfident_ones():
    questions = [resolved(i, int(i % 3 == 0)) for i in range(30)]
    crowd = simulate(seed=2024, questions=questions, now=NOW, readers=300)
    outcome = {q.key: q.outcome for q in questions}
    style = {r.username: r.style for r in crowd.readers}
    final = {}
    for event in crowd.forecasts:  # in time order: the last one stands at the close
        final[event.question, event.reader] = event
    brier: dict[str, list[float]] = {}
    for (question, reader), event in final.items():
        brier.setdefault(style[reader], []).append((float(event.probability) - outcome[question]) ** 2)
    mean = {name: statistics.mean(values) for name, values in brier.items()}
    assert mean["skilled"] < mean["steady"] < mean["noisy"]
    assert mean["skilled"] < mean["overconfident"]


def test_adding_a_question_leaves_the_others_forecasts_as_they_were():
    alone = simulate(seed=4, questions=QUESTIONS[:1], now=NOW, readers=50)
    together = simulate(seed=4, questions=QUESTIONS, now=NOW, readers=50)
    assert [f for f in together.forecasts if f.question == QUESTIONS[0].key] == list(alone.forecasts)


def test_a_question_that_has_not_opened_yet_gets_nothing():
    later = QuestionSpec(key=1, opens_at=NOW + dt.timedelta(days=1), closes_at=NOW + dt.timedelta(days=9))
    crowd = simulate(seed=1, questions=[later], now=NOW, readers=30)
    assert crowd.forecasts == () and crowd.trades == () and len(crowd.readers) == 30


@given(st.lists(st.floats(0, 1), min_size=2, max_size=8).filter(lambda xs: sum(xs) > 0), st.sampled_from([1, 5]))
def test_whole_percents_sum_to_exactly_one_in_range(weights, step):
    total = sum(weights)
    values = whole_percents([w / total for w in weights], step)
    assert sum(values) == Decimal(1)
    assert all(Decimal("0.01") <= v <= Decimal("0.99") for v in values)
