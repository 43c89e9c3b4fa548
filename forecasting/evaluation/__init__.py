"""Causal walk-forward benchmark of the aggregation methods on resolved questions. No Django import.

Input is the flat benchmark format, one row per individual forecast on a yes/no question::

    question_id, forecaster_id, made_at, probability, outcome, resolved_at[, closes_at]

(extra columns are ignored; dates are ISO 8601, naive ones read as UTC; ``outcome`` is 1 for
YES and 0 for NO). ``load_forecasts`` reads such a CSV (gzipped or not) and ``evaluate`` scores
every registered aggregator (``forecasting.aggregation.AGGREGATORS``) and the hook-only methods on
it. Multiple-choice files (``options``, ``probabilities`` columns) go to ``multiple_choice``.

Causal, by construction (``CAUSAL_RULE``)
-----------------------------------------
A question is scored as a reader saw it while it was open:

- Its **close** is ``closes_at`` when that is plausible: parsable, the same on every row, not
  before the question's first forecast and at most ``MAX_PLAUSIBLE_LIFE_DAYS`` after it (typed
  dates such as year 3008 count as missing). Forecasts made after the close, or after the
  resolution, are dropped (counted per reason).
- Its **clock** (``QuestionHistory.clock_at``), to which lead times run, is the close; with no
  plausible close it is the newest forecast so far. Never ``resolved_at``, which nobody knew.
- Its **final aggregate** is the one standing at its end (``ends_at``: the close, or the
  resolution if that came first).
- **Learning** is one timeline: the learners refit after every distinct resolution time (or,
  with ``refit_every_days`` > 0, at most that often), each fit on every question resolved up to
  then with at least 2 forecasters (scored or not). Every aggregate -- final, or a step of the
  time average -- uses the last fit made **strictly before its instant**, so no outcome, and no
  question resolved later, reaches it.
- The **time-averaged** Brier and log scores (``time_averaged=True``) average, over the question's
  life from its first kept forecast to its end, the aggregate recomputed at each forecast (on
  every forecaster's latest forecast so far, with the fit in effect at that instant) and standing
  until the next one; then the mean over questions. A question with a life of zero length counts
  its final aggregate.

Cleaning (``clean_forecasts``) also drops rows with an unparsable date, a probability that is not
a finite number in [0, 1] or an outcome other than 0/1, and every row of a question whose rows
disagree on ``outcome`` or ``resolved_at``. Raw probabilities of exactly 0 or 1 are kept: each
aggregator clips as it documents. Per question (``QuestionHistory``): each forecaster's latest
kept forecast (on a tie in ``made_at``, the later row of the file), ordered oldest to newest.

Scored questions: those resolved on or after ``since`` with at least ``min_forecasters``
distinct forecasters, in order of resolution. Scores of the final P(YES): ``brier`` (mean of
``(p - outcome)**2``), ``log`` (mean ``ln`` of the probability given to the outcome, clipped to
``[0.001, 0.999]``), ``ece`` (``forecasting.scoring.expected_calibration_error``, 10 bins).

Pluggable learning
------------------
``LEARNERS[name](training: list[QuestionHistory]) -> dict`` returns the keyword arguments of
aggregator ``name``; the method is then called as ``AGGREGATORS[name](probabilities, **kwargs)``.
``training`` may be empty: the learner then returns its defaults. A method that needs more than
the probabilities (forecaster ids, times) returns instead a dict holding a callable under
``"__aggregate__"``, called with the question's ``QuestionHistory`` (truncated to the forecasts
made so far for a time-average step). ``STACKED[name]`` methods combine other methods'
aggregates with weights learnt from those methods' out-of-sample final aggregates on the
training questions (``bayes``: the model ``bayes_model`` stacked with ``logodds_mean``).

Numeric and date questions
--------------------------
Files with a ``cdf`` column are in the numeric flat format (``numeric``: ``question_id, forecaster_id,
made_at, cdf, range_min, range_max, open_lower_bound, open_upper_bound, outcome, resolved_at`` and
optionally ``zero_point, question_type, closes_at``; ``cdf`` a JSON list of 201 values on the scaled
range, ``outcome`` a number, an ISO date or ``below_lower_bound`` / ``above_upper_bound``). They are
cleaned by the same row rules (plus ``bad_scale``, ``bad_cdf``, ``bad_outcome``) and scored under the same
``CAUSAL_RULE`` by ``evaluate_numeric``: each question's latest CDFs at its end, the mean CRPS (units of
the range) and mean log density at the outcome of ``linear_pool``, ``recency_weighted_mean``,
``quantile_average`` and ``learnt_pool`` (``forecasting.continuous.learnt``: a skill-weighted, dispersion-recalibrated
linear pool learnt walk-forward from questions resolved strictly before each question's end).
See docs/continuous.md.

Modules: ``data`` (reading and cleaning, ``QuestionHistory``), ``learners`` (``LEARNERS``,
``STACKED``), ``skill_weighted``, ``protocol`` (``evaluate``: the sweep), ``multiple_choice``,
``numeric`` (with ``forecasting.continuous.learnt``), ``plots`` (``--plots``) and ``report`` (the table).
"""

from forecasting.continuous.learnt import LearntPool, extremize_cdf, fit_dispersion, learnt_pool

from .data import (
    DROP_REASONS,
    MAX_PLAUSIBLE_LIFE_DAYS,
    REQUIRED_COLUMNS,
    ForecastLog,
    MissingColumnsError,
    QuestionHistory,
    build_histories,
    clean_forecasts,
    load_forecasts,
    questions_without_close,
    read_csv,
)
from .learners import (
    AGGREGATE_HOOK,
    HOOK_ONLY_METHODS,
    LEARNERS,
    STACKED,
    Learner,
    Stacked,
    fit_extremized_logodds,
    fit_skill_weighted_logodds,
)
from .multiple_choice import clean_multiple_choice, evaluate_multiple_choice, is_multiple_choice
from .numeric import (
    NumericQuestion,
    build_numeric_questions,
    clean_numeric,
    evaluate_numeric,
    format_numeric_table,
    is_numeric,
    resolve_numeric_methods,
)
from .protocol import (
    CAUSAL_RULE,
    DEFAULT_MIN_FORECASTERS,
    DEFAULT_REFIT_EVERY_DAYS,
    ECE_BINS,
    LOG_CLIP,
    MIN_TRAINING_FORECASTERS,
    aggregate,
    evaluate,
    fit_index,
    refit_times,
    resolve_methods,
)
from .report import format_table

__all__ = [
    "AGGREGATE_HOOK",
    "CAUSAL_RULE",
    "DEFAULT_MIN_FORECASTERS",
    "DEFAULT_REFIT_EVERY_DAYS",
    "DROP_REASONS",
    "ECE_BINS",
    "HOOK_ONLY_METHODS",
    "LEARNERS",
    "LOG_CLIP",
    "MAX_PLAUSIBLE_LIFE_DAYS",
    "MIN_TRAINING_FORECASTERS",
    "REQUIRED_COLUMNS",
    "STACKED",
    "ForecastLog",
    "Learner",
    "LearntPool",
    "MissingColumnsError",
    "NumericQuestion",
    "QuestionHistory",
    "Stacked",
    "aggregate",
    "build_histories",
    "build_numeric_questions",
    "clean_forecasts",
    "clean_multiple_choice",
    "clean_numeric",
    "evaluate",
    "evaluate_multiple_choice",
    "evaluate_numeric",
    "extremize_cdf",
    "fit_dispersion",
    "fit_extremized_logodds",
    "fit_index",
    "fit_skill_weighted_logodds",
    "format_numeric_table",
    "format_table",
    "is_multiple_choice",
    "is_numeric",
    "learnt_pool",
    "load_forecasts",
    "questions_without_close",
    "read_csv",
    "refit_times",
    "resolve_methods",
    "resolve_numeric_methods",
]
