"""Business logic: the only place that writes forecasting data.

Every write is one atomic transaction that locks the question row first, so an editor
closing a question and a reader forecasting on it cannot interleave. Functions take
keyword-only arguments, raise ``ValidationError`` for bad input (and change nothing) and
``PermissionDenied`` when the actor may not act.
"""

from .accuracy import site_accuracy
from .aggregates import (
    CONTINUOUS_HEADLINE_METHOD,
    HEADLINE_METHOD,
    CommunityForecast,
    aggregate_history,
    aggregate_history_rebuild,
    aggregate_history_rebuild_many,
    aggregate_state_rebuild,
    aggregates_current,
    aggregates_recompute,
    aggregates_update_for_prediction,
    aggregator_fits_refresh,
    aggregator_parameters,
    community_forecast,
)
from .bayesian import (
    BAYES_METHOD,
    bayes_aggregate_request,
    bayes_aggregate_schedule,
    bayes_aggregate_update,
    bayes_pending_sweep,
    bayes_refit_request,
    bayes_refit_run,
    bayes_refit_sweep,
    bayes_run_in_use,
    bayes_stack_training,
    bayes_training_data,
    bayes_warm_up,
)
from .conditionals import conditional_create, conditional_sync
from .outbox import outbox_flush, outbox_prune
from .predictions import cdf_from_components, latest_predictions, prediction_create
from .profiles import may_see_track_record, profile_is_public, profile_update
from .questions import (
    active_resolution,
    question_annul,
    question_close,
    question_create,
    question_open,
    question_resolve,
    question_unresolve,
    question_update,
    questions_close_due,
)
from .scores import (
    Leaderboard,
    LeaderboardRow,
    TrackRecord,
    forecaster_track_record,
    leaderboard,
    question_scores_recompute,
    question_scores_recompute_many,
)
from .track_records import forecaster_record, leaderboard_period, public_leaderboard

__all__ = [
    "BAYES_METHOD",
    "CONTINUOUS_HEADLINE_METHOD",
    "HEADLINE_METHOD",
    "CommunityForecast",
    "Leaderboard",
    "LeaderboardRow",
    "TrackRecord",
    "active_resolution",
    "aggregate_history",
    "aggregate_history_rebuild",
    "aggregate_history_rebuild_many",
    "aggregate_state_rebuild",
    "aggregates_current",
    "aggregates_recompute",
    "aggregates_update_for_prediction",
    "aggregator_fits_refresh",
    "aggregator_parameters",
    "bayes_aggregate_request",
    "bayes_aggregate_schedule",
    "bayes_aggregate_update",
    "bayes_pending_sweep",
    "bayes_refit_request",
    "bayes_refit_run",
    "bayes_refit_sweep",
    "bayes_run_in_use",
    "bayes_stack_training",
    "bayes_training_data",
    "bayes_warm_up",
    "cdf_from_components",
    "community_forecast",
    "conditional_create",
    "conditional_sync",
    "forecaster_record",
    "forecaster_track_record",
    "latest_predictions",
    "leaderboard",
    "leaderboard_period",
    "may_see_track_record",
    "outbox_flush",
    "outbox_prune",
    "prediction_create",
    "profile_is_public",
    "profile_update",
    "public_leaderboard",
    "question_annul",
    "question_close",
    "question_create",
    "question_open",
    "question_resolve",
    "question_scores_recompute",
    "question_scores_recompute_many",
    "question_unresolve",
    "question_update",
    "questions_close_due",
    "site_accuracy",
]
