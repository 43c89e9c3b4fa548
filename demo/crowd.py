"""A simulated crowd of readers: who they are, what they forecast and when, what they trade and say.

Pure and deterministic: no Django, no database, no clock of its own. Given a seed, the questions
and ``now``, ``simulate`` returns the same crowd every time (``random.Random(seed)``; no global state).

The model: every question has a latent probability path, a random walk in log-odds bridged to end
at its outcome (for a question that has not resolved, at a hidden outcome drawn from the seed).
A reader looks at the path at a few random times and reports it through their own lens: a
persistent personal error per question (its size is the reader's noise), a lean towards YES or NO
(bias) and, for overconfident readers, log-odds stretched away from even. Skilled readers have
little noise, noisy ones a lot, so their scores on resolved questions differ measurably.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from decimal import Decimal

PERCENT = Decimal("0.01")
PATH_STEPS = 64  # grid points of each latent path; readers read it by linear interpolation
END_LOGIT = 3.5  # the latent path ends here (about 97%) on the outcome that happens
PUBLIC_SHARE = 0.8  # readers who make their track record public
SURPRISE_SHARE = 0.2  # questions whose outcome goes against the story until the end
HISTORY = dt.timedelta(weeks=6)  # open questions: the crowd's forecasts span the last weeks

FIRST_NAMES = (
    "ada", "alan", "amara", "anya", "bea", "bruno", "cai", "chen", "dara", "dev", "eli", "emeka", "esme",
    "farah", "finn", "gita", "hana", "ibra", "ines", "ivo", "jun", "kai", "kemi", "lars", "lea", "luca",
    "maya", "mo", "nadia", "nils", "noor", "olga", "omar", "pia", "quinn", "rafa", "rosa", "sami", "sana",
    "tariq", "tess", "uma", "vik", "wren", "xia", "yara", "yusuf", "zoe",
)  # fmt: skip

# style: (share of the crowd, noise in log-odds, spread of bias, overconfidence, mean updates, trader share)
STYLES: dict[str, tuple[float, float, float, float, float, float]] = {
    "skilled": (0.15, 0.25, 0.08, 1.0, 2.0, 0.5),
    "steady": (0.40, 0.65, 0.25, 1.0, 1.0, 0.3),
    "noisy": (0.30, 1.50, 0.50, 1.0, 0.6, 0.25),
    "overconfident": (0.15, 0.70, 0.30, 2.2, 0.8, 0.5),
}

REASONS_UP = (
    "officials sound more committed than they did a few weeks ago.",
    "the article's sourcing reads as solid to me.",
    "similar cases in the past mostly went this way.",
    "the latest reporting points towards it.",
    "the people who would have to agree have little reason to say no.",
)
REASONS_DOWN = (
    "nothing concrete has happened yet and time is running out.",
    "base rates for announcements like this are low.",
    "the timeline looks too short to me.",
    "the last update points the other way.",
    "too many parties would have to agree.",
)


@dataclass(frozen=True)
class QuestionSpec:
    """A question as the crowd sees it. ``outcome``: index in [NO, YES] or the option's position;
    None when unknown (the crowd then follows a hidden outcome drawn from the seed)."""

    key: int | str  # stable across databases (not a row id) when the crowd must be reproducible there
    opens_at: dt.datetime
    closes_at: dt.datetime
    n_outcomes: int = 2  # 2 for yes/no (index 1 is YES), else the number of options
    outcome: int | None = None
    labels: tuple[str, ...] = ()  # option labels, for rationales
    popularity: float = 1.0  # multiplies every reader's chance of forecasting on it

    @property
    def binary(self) -> bool:
        return self.n_outcomes == 2 and not self.labels


@dataclass(frozen=True)
class Reader:
    username: str
    style: str
    noise: float
    bias: float
    overconfidence: float
    activity: float  # chance of forecasting on a question of popularity 1
    updates: float  # mean number of revisions after the first forecast
    trader: bool
    public: bool  # shows their name and track record on the public pages (most demo readers do)


@dataclass(frozen=True)
class ForecastEvent:
    at: dt.datetime
    question: int | str
    reader: str
    probability: Decimal | None  # yes/no: P(YES), a whole percent in [0.01, 0.99]
    option_probabilities: tuple[Decimal, ...] | None  # multiple choice: sums to exactly 1
    rationale: str = ""


@dataclass(frozen=True)
class TradeIntent:
    """Buy ``amount`` play-money units of an outcome at no more than ``limit_price`` (the reader's
    own belief), or sell ``fraction`` of the shares held in it."""

    at: dt.datetime
    question: int | str
    reader: str
    outcome: int
    side: str  # "buy" | "sell"
    amount: int = 0
    limit_price: float = 1.0
    fraction: float = 0.0


@dataclass(frozen=True)
class CommentIntent:
    """A comment (``reply_to`` None) or a reply to the comment at that index of ``Crowd.comments``."""

    at: dt.datetime
    question: int | str
    reader: str
    body: str
    reply_to: int | None = None


@dataclass(frozen=True)
class Crowd:
    readers: tuple[Reader, ...]
    forecasts: tuple[ForecastEvent, ...]  # in time order
    trades: tuple[TradeIntent, ...]  # in time order
    comments: tuple[CommentIntent, ...]  # comments in time order, then the replies in time order


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    total = sum(exps)
    return [e / total for e in exps]


def whole_percents(probabilities: list[float], step: int = 1) -> tuple[Decimal, ...]:
    """Probabilities as whole percents (multiples of ``step`` where possible), each in [1%, 99%],
    summing to exactly 100%: rounded, then the remainder moved one point at a time."""
    raw = [p * 100 for p in probabilities]
    units = [min(99, max(1, round(r / step) * step)) for r in raw]
    diff = 100 - sum(units)
    order = sorted(range(len(units)), key=lambda i: raw[i] - units[i], reverse=diff > 0)
    while diff:
        for i in order:
            if diff > 0 and units[i] < 99:
                units[i], diff = units[i] + 1, diff - 1
            elif diff < 0 and units[i] > 1:
                units[i], diff = units[i] - 1, diff + 1
            if not diff:
                break
    return tuple(Decimal(u) * PERCENT for u in units)


def _end_logit(binary: bool, outcome: int, j: int) -> float:
    """Where the latent path of outcome ``j`` ends: yes/no on +-END_LOGIT, options on END_LOGIT or 0."""
    if binary:
        return END_LOGIT if outcome == 1 else -END_LOGIT
    return END_LOGIT if j == outcome else 0.0


class _Path:
    """A question's latent log-odds path (one per outcome): a random walk pinned at both ends, pulled
    from its start towards the outcome, on a time grid."""

    def __init__(self, rng: random.Random, spec: QuestionSpec, start: dt.datetime, end: dt.datetime) -> None:
        self.start, self.end = start, end
        outcome = spec.outcome if spec.outcome is not None else self._hidden_outcome(rng, spec)
        k = 1 if spec.binary else spec.n_outcomes  # yes/no: one log-odds of YES
        sigma = 1.4 / math.sqrt(PATH_STEPS)  # wanders about 1.4 units of log-odds over the life
        # One question in five is a surprise: the story leans the wrong way until the very end.
        surprise = rng.random() < SURPRISE_SHARE
        pull = 8.0 if surprise else 2.5
        self.values: list[list[float]] = []
        for j in range(k):
            x0 = rng.gauss(0.0, 0.9)
            target = _end_logit(spec.binary, outcome, j)
            if surprise and (spec.binary or j == outcome):
                x0 = -abs(x0) - 0.5 if target > 0 else abs(x0) + 0.5
            walk = [0.0]
            for _ in range(PATH_STEPS):
                walk.append(walk[-1] + rng.gauss(0.0, sigma))
            n = PATH_STEPS
            # The outcome shows late (the pull grows as (t/T)^pull): early on even a perfect reader can be wrong.
            self.values.append(
                [x0 + walk[i] - (i / n) * walk[n] + (i / n) ** pull * (target - x0) for i in range(n + 1)]
            )

    @staticmethod
    def _hidden_outcome(rng: random.Random, spec: QuestionSpec) -> int:
        return int(rng.random() < 0.4) if spec.binary else rng.randrange(spec.n_outcomes)

    def at(self, when: dt.datetime) -> list[float]:
        span = (self.end - self.start).total_seconds()
        position = min(max((when - self.start).total_seconds() / span, 0.0), 1.0) * PATH_STEPS
        i = min(int(position), PATH_STEPS - 1)
        frac = position - i
        return [v[i] + frac * (v[i + 1] - v[i]) for v in self.values]


def _make_readers(rng: random.Random, count: int) -> list[Reader]:
    styles = list(STYLES)
    weights = [STYLES[s][0] for s in styles]
    readers, taken = [], set()
    for _ in range(count):
        style = rng.choices(styles, weights)[0]
        _, noise, bias_spread, overconfidence, updates, trader_share = STYLES[style]
        while True:
            username = f"demo-{rng.choice(FIRST_NAMES)}-{rng.randint(10, 99)}"
            if username not in taken:
                taken.add(username)
                break
        readers.append(
            Reader(
                username=username,
                style=style,
                noise=noise * rng.uniform(0.8, 1.2),
                bias=rng.gauss(0.0, bias_spread),
                overconfidence=overconfidence,
                activity=min(0.9, rng.betavariate(1.3, 3.0)),
                updates=updates,
                trader=rng.random() < trader_share,
                public=rng.random() < PUBLIC_SHARE,
            )
        )
    return readers


def _belief(reader: Reader, latent: list[float], errors: list[float], binary: bool) -> list[float]:
    """The reader's probabilities: [P(YES)] for yes/no, one per option otherwise."""
    seen = [
        (x + e + (reader.bias if binary else 0.0)) * reader.overconfidence for x, e in zip(latent, errors, strict=True)
    ]
    return [_sigmoid(seen[0])] if binary else _softmax(seen)


def _rationale(rng: random.Random, spec: QuestionSpec, belief: list[float], previous: list[float] | None) -> str:
    if spec.binary:
        p = belief[0]
        if previous is None:
            reasons = REASONS_UP if p >= 0.5 else REASONS_DOWN
            return f"Starting at {p:.0%}: {rng.choice(reasons)}"
        verb, reasons = ("Up", REASONS_UP) if p > previous[0] else ("Down", REASONS_DOWN)
        return f"{verb} to {p:.0%}: {rng.choice(reasons)}"
    best = max(range(len(belief)), key=belief.__getitem__)
    label = spec.labels[best] if best < len(spec.labels) else f"Option {best + 1}"
    if previous is not None and max(range(len(previous)), key=previous.__getitem__) != best:
        return f"Switching my top pick to {label} ({belief[best]:.0%}): {rng.choice(REASONS_UP)}"
    return f"{label} looks most likely to me ({belief[best]:.0%}): {rng.choice(REASONS_UP)}"


def _times(rng: random.Random, start: dt.datetime, end: dt.datetime, revisions: int) -> list[dt.datetime]:
    """A first forecast soon after the start (most readers come early), then revisions after it."""
    span = (end - start).total_seconds()
    first = start + dt.timedelta(seconds=int(span * rng.random() ** 1.8))
    later = sorted(
        first + dt.timedelta(seconds=int(rng.uniform(60, max(61.0, (end - first).total_seconds() - 60))))
        for _ in range(revisions)
    )
    return [t for t in [first, *later] if start <= t < end - dt.timedelta(seconds=30)]


def _comment_body(rng: random.Random, rationale: str) -> str:
    lead = rng.choice(("My reasoning: ", "For what it's worth: ", "", "Quick take: "))
    return f"{lead}{rationale}"


REPLIES = (
    "Fair point, but I think you're underrating how long these things take.",
    "Agreed. I moved a few points your way.",
    "What would change your mind here?",
    "I read the same reporting and came out lower.",
    "Good catch; I hadn't considered that.",
)


def simulate(*, seed: int, questions: list[QuestionSpec], now: dt.datetime, readers: int = 300) -> Crowd:
    """The crowd for ``seed``: readers, their forecasts, trade intents and comments, all before ``now``.

    A question's forecasts fall in ``[opens_at, closes_at)`` and before ``now``; an open question
    gets them over the last ``HISTORY`` at most. Probabilities are whole percents in [1%, 99%],
    and a multiple-choice forecast's sum to exactly 1.
    """
    rng = random.Random(seed)
    crowd = _make_readers(rng, readers)
    forecasts: list[ForecastEvent] = []
    trades: list[TradeIntent] = []
    comments: list[CommentIntent] = []
    for spec in questions:
        # Each question draws from its own generator: adding a question leaves the others' crowds as they were.
        qrng = random.Random(f"{seed}/{spec.key}")
        start = max(spec.opens_at, min(now, spec.closes_at) - HISTORY)
        end = min(spec.closes_at, now)
        if end <= start:
            continue
        path = _Path(qrng, spec, start, spec.closes_at)
        k = 1 if spec.binary else spec.n_outcomes
        for reader in crowd:
            if qrng.random() >= min(0.95, reader.activity * spec.popularity):
                continue
            errors = [qrng.gauss(0.0, reader.noise) for _ in range(k)]
            revisions = min(6, int(qrng.expovariate(1.0 / reader.updates))) if reader.updates else 0
            previous: list[float] | None = None
            held: int | None = None
            for at in _times(qrng, start, end, revisions):
                jitter = [e + qrng.gauss(0.0, reader.noise * 0.3) for e in errors]
                belief = _belief(reader, path.at(at), jitter, spec.binary)
                step = 5 if reader.style == "noisy" else 1  # noisy readers like round numbers
                if spec.binary:
                    probability = whole_percents([1.0 - belief[0], belief[0]], step)[1]
                    options = None
                else:
                    probability, options = None, whole_percents(belief, step)
                shown = [float(probability)] if options is None else [float(x) for x in options]
                moved = previous is None or max(abs(a - b) for a, b in zip(shown, previous, strict=True)) > 0.08
                rationale = ""
                if moved and qrng.random() < (0.25 if previous is None else 0.35):
                    rationale = _rationale(qrng, spec, shown, previous)
                forecasts.append(ForecastEvent(at, spec.key, reader.username, probability, options, rationale))
                if rationale and qrng.random() < 0.1:
                    comments.append(CommentIntent(at, spec.key, reader.username, _comment_body(qrng, rationale)))
                if reader.trader and qrng.random() < 0.6:
                    trade_at = min(at + dt.timedelta(minutes=qrng.randint(1, 30)), end - dt.timedelta(seconds=1))
                    vector = [1.0 - belief[0], belief[0]] if spec.binary else belief
                    best = max(range(len(vector)), key=vector.__getitem__)
                    if held is not None and held != best:
                        trades.append(TradeIntent(trade_at, spec.key, reader.username, held, "sell", fraction=0.5))
                    confidence = vector[best] - 1.0 / len(vector)
                    amount = max(2, int(qrng.uniform(10, 60) * confidence * 2))
                    trades.append(
                        TradeIntent(trade_at, spec.key, reader.username, best, "buy", amount, round(vector[best], 4))
                    )
                    held = best
                previous = shown
    comments = _with_replies(rng, comments, [r.username for r in crowd], now)
    return Crowd(
        readers=tuple(crowd),
        forecasts=tuple(sorted(forecasts, key=lambda f: (f.at, f.question, f.reader))),
        trades=tuple(sorted(trades, key=lambda t: (t.at, t.question, t.reader))),
        comments=tuple(comments),
    )


def _with_replies(
    rng: random.Random, comments: list[CommentIntent], usernames: list[str], now: dt.datetime
) -> list[CommentIntent]:
    """Comments in time order, a third of them answered by another reader an hour or two later (by ``now``)."""
    ordered = sorted(comments, key=lambda c: (c.at, c.question, c.reader))
    replies = []
    for index, comment in enumerate(ordered):
        if rng.random() < 0.35:
            other = rng.choice([u for u in usernames if u != comment.reader] or usernames)
            later = min(comment.at + dt.timedelta(minutes=rng.randint(20, 180)), now)
            replies.append(CommentIntent(later, comment.question, other, rng.choice(REPLIES), reply_to=index))
    return ordered + sorted(replies, key=lambda c: (c.at, c.question, c.reader))
