"""The Bayesian aggregate in the app: refits of the forecaster model and per-question updates.

- A resolution, annulment or un-resolution calls ``bayes_refit_request``: it moves the
  schedule's ``requested_at`` forward and, after commit, queues a refit a few seconds later.
  ``bayes_refit_run`` (the Celery task's body) takes a lease on the singleton schedule row so
  that at most one fit runs; requests that arrive during a fit are served by one more fit when
  it ends, so a burst of resolutions gives one or two fits, never two at once. A task whose
  worker died is redelivered (``acks_late``) with the same task id and takes its lease back;
  any other task takes over once the lease has expired. The run in use is the newest one
  that succeeded; a fit with bad diagnostics is recorded as failed and changes nothing.
- A new forecast marks the question's state ``bayes_pending`` and, if it was not pending yet,
  queues ``bayes_aggregate_update`` after a short delay: forecasts arriving meanwhile are
  folded into that one update (debounced per question). The update applies the fitted model
  in closed form to the question's latest forecasts: no MCMC on the request path.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import (
    AggregateSnapshot,
    AggregateState,
    ModelRun,
    ModelSchedule,
    Prediction,
    Question,
    Resolution,
)

logger = logging.getLogger(__name__)

BAYES_METHOD = "bayes"


def _schedule() -> ModelSchedule:
    schedule, _ = ModelSchedule.objects.select_for_update().get_or_create(pk=1)
    return schedule


def bayes_run_in_use() -> ModelRun | None:
    """The newest run that succeeded: the one every new Bayesian aggregate is made with."""
    return ModelRun.objects.filter(status=ModelRun.Status.SUCCEEDED).order_by("-finished_at", "-id").first()


@transaction.atomic
def bayes_refit_request(*, reason: str) -> None:
    """Ask for a refit (after this transaction commits); cheap and safe to call in bursts."""
    from ..tasks import refit_bayes

    schedule = _schedule()
    schedule.requested_at = timezone.now()
    schedule.requested_reason = reason[:300]
    schedule.save(update_fields=["requested_at", "requested_reason"])
    transaction.on_commit(lambda: refit_bayes.apply_async(countdown=settings.BAYES_REFIT_DEBOUNCE_SECONDS))


# --- training data ------------------------------------------------------------------------------


def bayes_training_data():
    """Every forecast on resolved yes/no questions made before resolution, as ``bayes.ForecastData``."""
    from .. import bayes

    resolutions = {
        r.question_id: r
        for r in Resolution.objects.filter(
            retracted_at__isnull=True,
            question__status=Question.Status.RESOLVED,
            question__question_type=Question.Type.BINARY,
            outcome__in=[Resolution.Outcome.YES, Resolution.Outcome.NO],
        )
    }
    rows = (
        Prediction.objects.filter(question_id__in=list(resolutions))
        .order_by("question_id", "made_at", "id")
        .values_list("question_id", "forecaster_id", "probability", "made_at")
    )
    question_index: dict[int, int] = {}
    q_idx, forecasters, probabilities, seconds = [], [], [], []
    for question_id, forecaster_id, probability, made_at in rows.iterator(chunk_size=10_000):
        resolved_at = resolutions[question_id].resolved_at
        if made_at > resolved_at:
            continue
        q_idx.append(question_index.setdefault(question_id, len(question_index)))
        forecasters.append(forecaster_id)
        probabilities.append(float(probability))
        seconds.append((resolved_at - made_at).total_seconds())
    outcomes = np.zeros(len(question_index), dtype=int)
    for question_id, i in question_index.items():
        outcomes[i] = int(resolutions[question_id].outcome == Resolution.Outcome.YES)
    data_through = max((r.resolved_at for r in resolutions.values()), default=None)
    data = bayes.ForecastData(
        question_index=np.asarray(q_idx, dtype=int),
        forecaster_key=np.asarray(forecasters),
        probability=np.asarray(probabilities, dtype=float),
        seconds_to_resolution=np.asarray(seconds, dtype=float),
        outcome=outcomes,
    )
    return data, data_through


# --- refits -------------------------------------------------------------------------------------


def _progress(run: ModelRun, fraction: float, message: str) -> None:
    ModelRun.objects.filter(pk=run.pk).update(progress=min(max(fraction, 0.0), 1.0), progress_message=message[:200])


def _diagnostics_ok(method: str, diagnostics: dict) -> tuple[bool, str]:
    if method == ModelRun.Method.NUTS:
        if diagnostics.get("max_rhat", np.inf) > settings.BAYES_MAX_RHAT:
            return False, f"max r_hat {diagnostics.get('max_rhat')} > {settings.BAYES_MAX_RHAT}"
        if diagnostics.get("min_ess", 0) < settings.BAYES_MIN_ESS:
            return False, f"min ESS {diagnostics.get('min_ess')} < {settings.BAYES_MIN_ESS}"
        if diagnostics.get("divergences", 0) > settings.BAYES_MAX_DIVERGENCES:
            return False, f"{diagnostics.get('divergences')} divergences"
    elif not diagnostics.get("converged", True):
        return False, f"the optimiser did not converge: {diagnostics.get('message', '')}"
    return True, ""


def bayes_refit_run(*, task_id: str, method: str | None = None, lease_seconds: int | None = None) -> ModelRun | None:
    """Fit the model if no other fit is running; returns the run, or None when there was nothing to do."""
    from .. import bayes

    method = method or settings.BAYES_FIT_METHOD
    lease = dt.timedelta(seconds=lease_seconds or settings.BAYES_REFIT_LEASE_SECONDS)
    now = timezone.now()
    with transaction.atomic():
        schedule = _schedule()
        lease_held = bool(schedule.running_id and schedule.lease_expires_at and schedule.lease_expires_at > now)
        if lease_held and schedule.running_task_id != task_id:
            return None  # another fit is running; it will serve this request when it ends
        if schedule.running_id:  # a previous fit died (our own redelivery, or its lease expired)
            ModelRun.objects.filter(pk=schedule.running_id, status=ModelRun.Status.RUNNING).update(
                status=ModelRun.Status.FAILED, finished_at=now, error="The worker stopped before the fit finished."
            )
        last = bayes_run_in_use()
        up_to_date = last is not None and schedule.requested_at is not None and schedule.requested_at <= last.started_at
        if up_to_date and not schedule.running_id:
            return None  # the newest good run already includes every request
        run = ModelRun.objects.create(method=method, reason=schedule.requested_reason, task_id=task_id)
        schedule.running, schedule.running_task_id = run, task_id
        schedule.running_for = schedule.requested_at or now
        schedule.lease_expires_at = now + lease
        schedule.save()

    started = time.perf_counter()
    try:
        _progress(run, 0.05, "Reading resolved forecasts")
        data, data_through = bayes_training_data()
        run.n_questions = len(data.outcome)
        run.n_forecasters = len(np.unique(data.forecaster_key)) if len(data.forecaster_key) else 0
        run.n_forecasts = len(data.probability)
        run.data_through = data_through
        _progress(run, 0.15, f"Fitting ({run.get_method_display()}) on {run.n_forecasts:,} forecasts")
        previous = bayes_run_in_use()
        warm = bayes.BayesFit.from_dict(previous.fit) if previous and previous.fit else None
        fit = bayes.fit(data, method=method, previous=warm)
        run.diagnostics = fit.diagnostics
        run.fit = fit.to_dict()
        ok, why = _diagnostics_ok(method, fit.diagnostics)
        run.status = ModelRun.Status.SUCCEEDED if ok else ModelRun.Status.FAILED
        run.error = "" if ok else f"Bad diagnostics: {why}; the previous run stays in use."
    except Exception as error:  # recorded on the run; the previous good run stays in use
        logger.exception("Bayesian refit failed")
        run.status = ModelRun.Status.FAILED
        run.error = "".join(traceback.format_exception_only(error)).strip()[:2000]
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - started
    run.progress, run.progress_message = 1.0, "Done" if run.status == ModelRun.Status.SUCCEEDED else "Failed"

    with transaction.atomic():
        schedule = _schedule()
        run.save()
        again = (
            schedule.requested_at is not None
            and schedule.running_for is not None
            and (schedule.requested_at > schedule.running_for)
        )
        schedule.running, schedule.running_task_id, schedule.lease_expires_at = None, "", None
        schedule.save()
        if run.status == ModelRun.Status.SUCCEEDED:
            for question_id in Question.objects.filter(
                status=Question.Status.OPEN, question_type=Question.Type.BINARY
            ).values_list("pk", flat=True):
                bayes_aggregate_update(question_id=question_id)
        if again:
            from ..tasks import refit_bayes

            transaction.on_commit(lambda: refit_bayes.apply_async(countdown=settings.BAYES_REFIT_DEBOUNCE_SECONDS))
    return run


# --- per-question aggregate -------------------------------------------------------------------------


def bayes_aggregate_schedule(*, state: AggregateState) -> None:
    """Called with the question's row locked, after a new forecast: queue one debounced update."""
    from ..tasks import update_bayes_aggregate

    if state.bayes_pending:
        return
    state.bayes_pending = True
    state.save(update_fields=["bayes_pending"])
    question_id = state.question_id
    transaction.on_commit(
        lambda: update_bayes_aggregate.apply_async((question_id,), countdown=settings.BAYES_AGGREGATE_DEBOUNCE_SECONDS)
    )


@transaction.atomic
def bayes_aggregate_update(*, question_id: int) -> AggregateSnapshot | None:
    """Apply the run in use to the question's latest forecasts and store the aggregate with its interval."""
    from .aggregates import _Latest

    question = Question.objects.select_for_update().get(pk=question_id)
    state = AggregateState.objects.filter(question=question).first()
    if state is None or not question.is_binary:
        return None
    if state.bayes_pending:
        state.bayes_pending = False
        state.save(update_fields=["bayes_pending"])
    run = bayes_run_in_use()
    latest = _Latest.load(state)
    if run is None or not len(latest.forecaster_ids):
        return None
    from .. import bayes  # imports PyMC: only once a model has been fitted

    fit = bayes.BayesFit.from_dict(run.fit)
    # For an open question the resolution date is unknown: time to the close date stands in.
    horizon = question.closes_at.timestamp()
    p_mean, p_low, p_high = fit.aggregate(
        latest.forecaster_ids, latest.probabilities[:, 1], np.maximum(horizon - latest.made_at, 0.0)
    )
    return AggregateSnapshot.objects.create(
        question=question,
        method=BAYES_METHOD,
        at=timezone.now(),
        probabilities=[round(1 - float(p_mean), 6), round(float(p_mean), 6)],
        forecasters=len(latest.forecaster_ids),
        low=round(float(p_low), 6),
        high=round(float(p_high), 6),
        model_run=run,
        parameters={"model_run": run.pk, "method": run.method},
    )
