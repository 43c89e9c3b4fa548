"""Walk-forward benchmark of the aggregation methods on resolved questions. No Django import.

Input is the flat benchmark format, one row per individual forecast on a yes/no question::

    question_id, forecaster_id, made_at, probability, outcome, resolved_at

(extra columns are ignored; dates are ISO 8601, naive ones read as UTC; ``outcome`` is 1 for
YES and 0 for NO). ``load_forecasts`` reads such a CSV (gzipped or not) and ``evaluate`` scores
every registered aggregator (``forecasting.aggregation.AGGREGATORS``) on it.

Protocol
--------
Cleaning (``clean_forecasts``): rows with an unparsable date, a probability that is not a
finite number in [0, 1], or an outcome other than 0/1 are dropped, and so are forecasts made
after their question resolved (one made exactly at ``resolved_at`` is kept), and every row of a
question whose rows disagree on ``outcome`` or ``resolved_at``. The counts are returned per
reason. Raw probabilities of exactly 0 or 1 are kept: each aggregator clips as it documents.

Per question (``QuestionHistory``): each forecaster's latest kept forecast (on a tie in
``made_at``, the later row of the file), these rows ordered oldest to newest by ``made_at``
(ties in file order).

Scored questions: those resolved on or after ``since`` with at least ``min_forecasters``
distinct forecasters. Each method aggregates the question's latest forecasts; the score uses
P(YES) of that final aggregate:

- ``brier``: mean over questions of ``(p - outcome)**2`` (lower is better);
- ``log``: mean of ``ln`` of the probability given to the outcome, clipped to
  ``[0.001, 0.999]`` (<= 0, higher is better);
- ``ece``: ``forecasting.scoring.expected_calibration_error`` with 10 equal-width bins;
- ``brier_time_averaged`` (only with ``time_averaged=True``): per question, the Brier score of
  the aggregate averaged over time from the question's first kept forecast to ``resolved_at``,
  the aggregate being recomputed after each forecast (on every forecaster's latest forecast so
  far) and standing until the next one; then the mean over questions. A question whose
  forecasts were all made at ``resolved_at`` (a life of zero length) counts its final Brier.

Walk-forward learning: questions are scored in order of ``resolved_at`` (ties in order of first
appearance in the file). A method that learns something has a learner in ``LEARNERS``; its
parameters are refit when the question being scored resolved at least ``refit_every_days``
after the previous fit (or when there is no fit yet), and otherwise kept. A fit made for a
question resolved at time T is trained on every question in the file resolved strictly before T
with at least 2 forecasters -- including questions that are not scored themselves (resolved
before ``since`` or with fewer than ``min_forecasters`` forecasters): all of them were known at
T. So no question is ever scored with parameters learnt from itself or from a question that
resolved at the same time or later. The time-averaged score of a question uses the same
parameters as its final score.

Pluggable learning
------------------
``LEARNERS[name](training: list[QuestionHistory]) -> dict`` returns the keyword arguments of
aggregator ``name``; the method is then called as ``AGGREGATORS[name](probabilities, **kwargs)``.
``training`` may be empty (the first scored question has nothing before it): the learner then
returns its defaults. A method that needs more than the probabilities (e.g. forecaster ids or
times to resolution) returns instead a dict holding a callable under ``"__aggregate__"``: it is
called as ``kwargs["__aggregate__"](history)`` with the question's ``QuestionHistory`` (for the
time-averaged score, a history truncated to the forecasts made so far) and returns the
aggregate probability vector ``[P(no), P(yes)]``. Methods without a learner are called with no
keyword arguments (their defaults).

Modules: ``data`` (reading and cleaning the CSV, ``QuestionHistory``), ``learners`` (``LEARNERS``,
the methods that learn, the Bayesian model's and the skill-weighted mean's included),
``skill_weighted`` (the skill-weighted log-odds mean), ``protocol`` (``evaluate``, the walk-forward)
and ``report`` (the table).
"""

from .data import (
    DROP_REASONS,
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
    "MIN_TRAINING_FORECASTERS",
    "REQUIRED_COLUMNS",
    "STACKED",
    "ForecastLog",
    "Learner",
    "MissingColumnsError",
    "QuestionHistory",
    "Stacked",
    "aggregate",
    "build_histories",
    "clean_forecasts",
    "clean_multiple_choice",
    "evaluate",
    "evaluate_multiple_choice",
    "fit_extremized_logodds",
    "fit_index",
    "fit_skill_weighted_logodds",
    "format_table",
    "is_multiple_choice",
    "load_forecasts",
    "questions_without_close",
    "read_csv",
    "refit_times",
    "resolve_methods",
]
