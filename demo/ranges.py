"""The simulated crowd's forecasts on numeric and date questions. Pure and deterministic: no Django.

Each reader of ``crowd.simulate`` who takes part gives a median and an 80% interval (the way the
page asks for them), as positions on the question's scaled range (0 = its low end, 1 = its high
end); ``demo.services`` turns them into the question's units and its CDF. Beliefs drift from a
noisy start towards the question's hidden outcome as the close nears, and over-confident readers
give narrower intervals, so the aggregates and scores have something to tell apart.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .crowd import HISTORY, Reader, _times

# Where beliefs may sit: inside the range, with room for an interval on each side.
LOWEST, HIGHEST = 0.04, 0.96


@dataclass(frozen=True)
class RangeSpec:
    """A numeric or date question as the crowd sees it. ``truth``: where the outcome lies on [0, 1]
    (None: drawn from the seed)."""

    key: int | str
    opens_at: dt.datetime
    closes_at: dt.datetime
    truth: float | None = None
    popularity: float = 1.0


@dataclass(frozen=True)
class RangeForecastEvent:
    at: dt.datetime
    question: int | str
    reader: str
    median: float  # positions on the question's scaled range; low < median < high
    low: float
    high: float


def _clamp(x: float) -> float:
    return min(max(x, LOWEST), HIGHEST)


def simulate_ranges(
    *, seed: int, questions: Sequence[RangeSpec], now: dt.datetime, readers: Sequence[Reader]
) -> tuple[RangeForecastEvent, ...]:
    """The readers' median-and-interval forecasts on ``questions``, in time order, all before ``now``."""
    events: list[RangeForecastEvent] = []
    for spec in questions:
        # Its own generator: adding a question leaves the other questions' forecasts as they were.
        rng = random.Random(f"{seed}/range/{spec.key}")
        truth = spec.truth if spec.truth is not None else rng.uniform(0.25, 0.75)
        start = max(spec.opens_at, min(now, spec.closes_at) - HISTORY)
        end = min(spec.closes_at, now)
        if end <= start:
            continue
        life = (spec.closes_at - start).total_seconds()
        for reader in readers:
            if rng.random() >= min(0.95, reader.activity * spec.popularity):
                continue
            offset = rng.gauss(0.0, 0.06 + 0.15 * reader.noise) + 0.05 * reader.bias
            # An honest reader's interval is wide enough to hold the truth about 80% of the time.
            spread = (0.07 + 0.15 * reader.noise) / max(reader.overconfidence, 0.5)
            skew = math.exp(rng.gauss(0.0, 0.25))  # intervals are rarely symmetric
            revisions = min(4, int(rng.expovariate(1.0 / reader.updates))) if reader.updates else 0
            for at in _times(rng, start, end, revisions):
                progress = min(max((at - start).total_seconds() / life, 0.0), 1.0)
                median = _clamp(truth + offset * (1.0 - 0.6 * progress) + rng.gauss(0.0, 0.01))
                width = spread * (1.0 - 0.4 * progress)
                low = max(median - width / skew, 0.005)
                high = min(median + width * skew, 0.995)
                events.append(RangeForecastEvent(at, spec.key, reader.username, median, low, high))
    return tuple(sorted(events, key=lambda e: (e.at, str(e.question), e.reader)))
