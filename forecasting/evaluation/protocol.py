"""The causal walk-forward protocol: which questions are scored, when the learners refit and on what,
at which instant each aggregate is taken, and the scores (Brier, log, calibration; optionally
averaged over each question's life). The rules are in ``forecasting.evaluation``'s docstring.
Pure numpy/pandas: no Django import.

The protocol is a sweep along one timeline. Fits are made after resolutions (``refit_times``);
every aggregate the scores need is a *job* at an instant (a question's end, or a forecast on it)
and uses the last fit made strictly before that instant. Jobs run grouped by fit, fits in time
order, so each fit is made once and only the current one is held.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from forecasting import aggregation, scoring

from .data import SECONDS_PER_DAY, QuestionHistory, build_histories, clean_forecasts
from .learners import AGGREGATE_HOOK, HOOK_ONLY_METHODS, LEARNERS, STACKED

LOG_CLIP = (0.001, 0.999)
ECE_BINS = 10
DEFAULT_MIN_FORECASTERS = 5
DEFAULT_REFIT_EVERY_DAYS = 0.0  # refit after every resolution, as the product does
MIN_TRAINING_FORECASTERS = 2
CAUSAL_RULE = (
    "Each question is scored as it stood while open: forecasts made after its close (or resolution) "
    "are dropped; its lead times run to its close date (to its newest forecast when the close is "
    "unknown), never to its resolution; its final aggregate is the one standing at its close (or "
    "resolution, if earlier); every aggregate, final or within the time average, uses only forecasts "
    "made up to its instant and parameters fitted on questions resolved strictly before that instant."
)

Progress = Callable[[int, int], None]


def aggregate(name: str, history: QuestionHistory, parameters: dict) -> np.ndarray:
    """Method ``name``'s aggregate of the question's latest forecasts, given its learnt parameters."""
    hook = parameters.get(AGGREGATE_HOOK)
    if callable(hook):
        return np.asarray(hook(history), dtype=float)
    return np.asarray(aggregation.AGGREGATORS[name](history.probabilities, **parameters), dtype=float)


def refit_times(resolved_at: np.ndarray, every_days: float) -> np.ndarray:
    """The instants after which the learners refit: every distinct resolution time, or with
    ``every_days`` > 0 the first resolution at least that long after the previous refit."""
    times = np.unique(np.asarray(resolved_at, dtype=float))
    if every_days <= 0 or len(times) == 0:
        return times
    gap = every_days * SECONDS_PER_DAY
    chosen = [times[0]]
    for t in times[1:]:
        if t >= chosen[-1] + gap:
            chosen.append(t)
    return np.array(chosen)


def fit_index(refits: np.ndarray, instant: float) -> int:
    """The last fit made strictly before ``instant`` (-1: none, the learners' defaults)."""
    return int(np.searchsorted(refits, instant, side="left")) - 1


@dataclass(frozen=True)
class _Job:
    """One aggregate to take, for ``methods``: ``key`` says which (``("final", id)``, ``("input", id)``:
    a stack's training value, ``("step", id, duration)``: a time-average step, whose ``history`` is
    truncated to the forecasts made so far)."""

    key: tuple
    history: QuestionHistory
    methods: tuple[str, ...]


def _standing_steps(history: QuestionHistory) -> list[tuple[int, float, float]]:
    """The time-average's steps: (forecast count, instant, duration) while the question is open."""
    log = history.all_forecasts
    end = history.ends_at
    ends = np.r_[log.made_at[1:], end]
    return [
        (j + 1, float(log.made_at[j]), float(ends[j] - log.made_at[j]))
        for j in range(len(log.made_at))
        if ends[j] - log.made_at[j] > 0
    ]


def _summary(p_yes: np.ndarray, outcomes: np.ndarray) -> dict[str, float]:
    if len(p_yes) == 0:
        return {"brier": math.nan, "log": math.nan, "ece": math.nan}
    p_outcome = np.where(outcomes == 1, p_yes, 1.0 - p_yes)
    return {
        "brier": float(np.mean((p_yes - outcomes) ** 2)),
        "log": float(np.mean(np.log(np.clip(p_outcome, *LOG_CLIP)))),
        "ece": scoring.expected_calibration_error(np.clip(p_yes, 0.0, 1.0), outcomes, bins=ECE_BINS),
    }


def resolve_methods(methods: Iterable[str] | None) -> list[str]:
    """The method names to run: every registered aggregator and the hook-only methods (``bayes``
    included) by default, or those named (deduplicated, in order); ``ValueError`` on an unknown one."""
    known = list(aggregation.AGGREGATORS)
    if methods is None:
        return [*known, *HOOK_ONLY_METHODS]
    chosen = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    unknown = [m for m in chosen if m not in aggregation.AGGREGATORS and m not in HOOK_ONLY_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s): {', '.join(unknown)}; known: {', '.join([*known, *HOOK_ONLY_METHODS])}")
    if not chosen:
        raise ValueError(f"no method given; known: {', '.join(known)}")
    return chosen


def _timestamp_seconds(since: str | date | datetime | pd.Timestamp) -> float:
    stamp = pd.Timestamp(since)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return (stamp - pd.Timestamp(0, tz="UTC")).total_seconds()


class _Sweep:
    """The learners' current fits along the timeline, and the out-of-sample final aggregates that
    stacked methods learn from."""

    def __init__(self, names: list[str], training: list[QuestionHistory]):
        self.training = training
        self.training_resolved = np.array([h.resolved_at for h in training])
        stacked = [n for n in names if n in STACKED]
        self.inputs = list(dict.fromkeys(i for n in stacked for i in STACKED[n].inputs))
        self.computed = list(dict.fromkeys([*self.inputs, *(n for n in names if n not in STACKED)]))
        self.stacked = stacked
        self.parameters: dict[str, dict] = {}
        self.out_of_sample: dict[str, dict[str, float]] = {name: {} for name in self.inputs}

    def refit(self, until: float) -> None:
        known = self.training[: int(np.searchsorted(self.training_resolved, until, side="right"))]
        for name in self.computed:
            learner = LEARNERS.get(name)
            self.parameters[name] = dict(learner(known)) if learner else {}
        for name in self.stacked:
            spec = STACKED[name]
            rows = [h for h in known if all(h.question_id in self.out_of_sample[i] for i in spec.inputs)]
            p = np.array([[self.out_of_sample[i][h.question_id] for i in spec.inputs] for h in rows]).reshape(
                len(rows), len(spec.inputs)
            )
            self.parameters[name] = spec.fit(p, np.array([h.outcome_index for h in rows], dtype=float))

    def defaults(self) -> None:
        for name in self.computed:
            learner = LEARNERS.get(name)
            self.parameters[name] = dict(learner([])) if learner else {}
        for name in self.stacked:
            spec = STACKED[name]
            self.parameters[name] = spec.fit(np.zeros((0, len(spec.inputs))), np.zeros(0))

    def p_yes(self, history: QuestionHistory, methods: Iterable[str]) -> dict[str, float]:
        values = {name: float(aggregate(name, history, self.parameters[name])[1]) for name in self.computed}
        out = {}
        for name in methods:
            if name in STACKED:
                spec = STACKED[name]
                out[name] = spec.combine(np.array([values[i] for i in spec.inputs]), self.parameters[name])
            else:
                out[name] = values[name]
        return out


def evaluate(
    frame: pd.DataFrame,
    *,
    since: str | date | datetime | pd.Timestamp | None = None,
    min_forecasters: int = DEFAULT_MIN_FORECASTERS,
    refit_every_days: float = DEFAULT_REFIT_EVERY_DAYS,
    methods: Iterable[str] | None = None,
    time_averaged: bool = False,
    progress: Progress | None = None,
    keep_predictions: bool = False,
) -> dict:
    """Causal walk-forward scores: ``{"questions": n, "causal": True, "causal_rule": str, "refits": k,
    "methods": {name: {"brier", "log", "ece"}}}``.

    ``frame`` is the output of ``load_forecasts`` (or any frame with the required columns: it is
    cleaned again, silently). With ``time_averaged`` each method's dict also has
    ``brier_time_averaged`` and ``log_time_averaged``. Scores are NaN when no question qualifies.
    ``progress(done, total)`` is called as the sweep advances. With ``keep_predictions`` the result
    also holds ``"predictions"``: per scored question (in scoring order) its id, outcome, end
    instant and each method's final P(YES) (for plots).
    """
    names = resolve_methods(methods)
    clean, _ = clean_forecasts(frame)
    histories = build_histories(clean)
    since_seconds = -math.inf if since is None else _timestamp_seconds(since)
    scored = [h for h in histories if h.resolved_at >= since_seconds and h.n_forecasters >= min_forecasters]
    training = [h for h in histories if h.n_forecasters >= MIN_TRAINING_FORECASTERS]
    sweep = _Sweep(names, training)
    learns = bool(sweep.inputs) or any(n in LEARNERS for n in sweep.computed)
    refits = refit_times(sweep.training_resolved, refit_every_days) if learns else np.zeros(0)

    # Every aggregate needed, grouped by the fit in effect at its instant.
    jobs: dict[int, list[_Job]] = defaultdict(list)
    scored_ids = {h.question_id for h in scored}
    for h in scored:
        jobs[fit_index(refits, h.ends_at)].append(_Job(("final", h.question_id), h, tuple(names)))
        if time_averaged:
            for count, instant, duration in _standing_steps(h):
                jobs[fit_index(refits, instant)].append(
                    _Job(("step", h.question_id, duration), h.truncated(count), tuple(names))
                )
    if sweep.inputs:  # stacked methods learn from every training question's out-of-sample final aggregate
        for h in training:
            if h.question_id not in scored_ids:
                jobs[fit_index(refits, h.ends_at)].append(_Job(("input", h.question_id), h, tuple(sweep.inputs)))

    finals: dict[str, dict[str, float]] = {name: {} for name in names}
    steps: dict[str, dict[str, list[tuple[float, float]]]] = {name: defaultdict(list) for name in names}
    last = max(jobs, default=-1)
    for index in range(-1, last + 1):
        if index == -1:
            sweep.defaults()
        elif learns:
            sweep.refit(refits[index])
        for job in jobs.get(index, ()):
            methods_needed = job.methods
            if job.key[0] == "final" and sweep.inputs:
                methods_needed = tuple(dict.fromkeys([*job.methods, *sweep.inputs]))
            values = sweep.p_yes(job.history, methods_needed)
            if job.key[0] in ("final", "input"):
                for name in sweep.inputs:
                    sweep.out_of_sample[name][job.history.question_id] = values[name]
            if job.key[0] == "final":
                for name in names:
                    finals[name][job.history.question_id] = values[name]
            elif job.key[0] == "step":
                for name in names:
                    steps[name][job.key[1]].append((job.key[2], values[name]))
        if progress is not None:
            progress(index + 2, last + 2)

    outcomes = np.array([h.outcome_index for h in scored], dtype=float)
    results = {}
    for name in names:
        p_final = np.array([finals[name][h.question_id] for h in scored])
        results[name] = _summary(p_final, outcomes)
        if time_averaged:
            results[name].update(_time_averaged(scored, steps[name], finals[name]))
    result = {
        "questions": len(scored),
        "causal": True,
        "causal_rule": CAUSAL_RULE,
        "refits": len(refits),
        "methods": results,
    }
    if keep_predictions:
        result["predictions"] = [
            {
                "question_id": h.question_id,
                "outcome": h.outcome_index,
                "ends_at": h.ends_at,
                "p_yes": {name: finals[name][h.question_id] for name in names},
            }
            for h in scored
        ]
    return result


def _time_averaged(
    scored: list[QuestionHistory], steps: dict[str, list[tuple[float, float]]], finals: dict[str, float]
) -> dict[str, float]:
    """Mean over questions of the duration-weighted Brier and log score of the standing aggregate;
    a question with a life of zero length counts its final aggregate."""
    if not scored:
        return {"brier_time_averaged": math.nan, "log_time_averaged": math.nan}
    brier, log = [], []
    for h in scored:
        rows = steps.get(h.question_id)
        if rows:
            durations = np.array([d for d, _ in rows])
            p = np.array([v for _, v in rows])
        else:
            durations, p = np.ones(1), np.array([finals[h.question_id]])
        p_outcome = np.clip(p if h.outcome_index == 1 else 1.0 - p, *LOG_CLIP)
        brier.append(float(np.sum(durations * (p - h.outcome_index) ** 2) / durations.sum()))
        log.append(float(np.sum(durations * np.log(p_outcome)) / durations.sum()))
    return {"brier_time_averaged": float(np.mean(brier)), "log_time_averaged": float(np.mean(log))}
