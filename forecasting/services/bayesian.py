"""The Bayesian aggregate in the app: refits of the forecaster model and per-question updates.

- A resolution, annulment or un-resolution calls ``bayes_refit_request``: it moves the
  schedule's ``requested_at`` forward and, after commit, queues a refit a few seconds later.
  ``bayes_refit_run`` (the Celery task's body) takes a lease on the singleton schedule row so
  that at most one fit runs; requests that arrive during a fit are served by one more fit when
  it ends, so a burst of resolutions gives one or two fits, never two at once. A task whose
  worker died is redelivered (``acks_late``) with the same task id and takes its lease back;
  any other task takes over once the lease has expired; a fit that stopped its worker
  ``MAX_REFIT_DELIVERIES`` times (out of memory) is given up. The run in use is the newest one
  that succeeded; a fit with bad diagnostics is recorded as failed and changes nothing. A good
  run queues one update per open question, after it commits (no long-held question locks).
- A new forecast marks the question's state ``bayes_pending`` and, if it was not pending yet,
  queues ``bayes_aggregate_update`` after a short delay: forecasts arriving meanwhile are
  folded into that one update (debounced per question). The update applies the fitted model
  in closed form to the question's latest forecasts: no MCMC on the request path. A repeated
  update (a redelivery) adds no duplicate value; ``bayes_pending_sweep`` re-queues lost ones, and
  ``bayes_refit_sweep`` a lost refit (its message gone with a broker restart, its fit dead).
- The model is yes/no: it is trained on yes/no questions only. A multiple-choice question gets the
  same model applied to each option as "does this option win?", renormalised (no interval).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Least
from django.utils import timezone

from .. import aggregation, sources
from ..jobs import enqueue, enqueue_many
from ..models import (
    CONTINUOUS_TYPES,
    AggregateSnapshot,
    AggregateState,
    ModelRun,
    ModelSchedule,
    Prediction,
    Question,
    Resolution,
)
from .latest import LatestForecasts
from .outbox import outbox_recently_queued

logger = logging.getLogger(__name__)

BAYES_METHOD = "bayes"
REFIT_TASK = "forecasting.tasks.refit_bayes"
UPDATE_TASK = "forecasting.tasks.update_bayes_aggregate"
WORKER_STOPPED = "The worker stopped before the fit finished."
MAX_REFIT_DELIVERIES = 3  # deliveries of one refit task that stopped its worker before it gives up
# A pending question with no update queued (or waiting in the outbox) for this long lost its update.
PENDING_STALE = dt.timedelta(minutes=5)


def _schedule() -> ModelSchedule:
    schedule, _ = ModelSchedule.objects.select_for_update().get_or_create(pk=1)
    return schedule


def bayes_warm_up(*, method: str) -> float:
    """Compile the model's fit (``"map"``) or its NUTS sampler (``"nuts"``) in this process; seconds taken."""
    from .. import bayes

    return bayes.warm_up() if method == "map" else bayes.sampling.warm_up()


def bayes_run_in_use() -> ModelRun | None:
    """The newest run that succeeded: the one every new Bayesian aggregate is made with."""
    return ModelRun.objects.filter(status=ModelRun.Status.SUCCEEDED).order_by("-finished_at", "-id").first()


@transaction.atomic
def bayes_refit_request(*, reason: str) -> None:
    """Ask for a refit (after this transaction commits); cheap and safe to call in bursts."""
    schedule = _schedule()
    schedule.requested_at = timezone.now()
    schedule.requested_reason = reason[:300]
    schedule.save(update_fields=["requested_at", "requested_reason"])
    enqueue(REFIT_TASK, countdown=settings.BAYES_REFIT_DEBOUNCE_SECONDS)


# --- training data ------------------------------------------------------------------------------


def _resolved_binary():
    return Resolution.objects.filter(
        retracted_at__isnull=True,
        question__status=Question.Status.RESOLVED,
        question__question_type=Question.Type.BINARY,
        outcome__in=[Resolution.Outcome.YES, Resolution.Outcome.NO],
    )


def bayes_training_data():
    """Every forecast on resolved yes/no questions made up to its close (or resolution, if that came
    first), as ``bayes.ForecastData``.

    One row per forecast, superseded ones included (the model keeps each forecaster's latest per
    question and counts the earlier ones as revisions; the question's first forecast names its
    opener). The clock is the one an open question's aggregate runs on (``bayes_aggregate_update``):
    ``seconds_to_resolution`` runs from the forecast to the question's close date and
    ``life_seconds`` from its opening (or its first forecast, if earlier) to the close date, so
    what is learnt applies to open questions as they are read (the causal evaluation's rule).
    Multiple-choice questions are left out: the model is yes/no only. Returns ``(data,
    data_through)``, the latter the newest resolution included.
    """
    from .. import bayes

    resolutions = {r.question_id: r for r in _resolved_binary().select_related("question")}
    rows = (
        Prediction.objects.filter(question_id__in=list(resolutions))
        .order_by("question_id", "made_at", "id")
        .values_list("question_id", "forecaster_id", "probability", "made_at")
    )
    question_index: dict[int, int] = {}
    q_idx, forecasters, probabilities, seconds = [], [], [], []
    for question_id, forecaster_id, probability, made_at in rows.iterator(chunk_size=10_000):
        resolution = resolutions[question_id]
        if made_at > min(resolution.resolved_at, resolution.question.closes_at):
            continue
        q_idx.append(question_index.setdefault(question_id, len(question_index)))
        forecasters.append(forecaster_id)
        probabilities.append(float(probability))
        seconds.append((resolution.question.closes_at - made_at).total_seconds())
    outcomes = np.zeros(len(question_index), dtype=int)
    life = np.zeros(len(question_index))
    for question_id, i in question_index.items():
        resolution = resolutions[question_id]
        outcomes[i] = int(resolution.outcome == Resolution.Outcome.YES)
        # ForecastData stretches it to the oldest forecast when that came before the opening.
        life[i] = max((resolution.question.closes_at - resolution.question.opens_at).total_seconds(), 0.0)
    data_through = max((resolutions[q].resolved_at for q in question_index), default=None)
    data = bayes.ForecastData(
        question_index=np.asarray(q_idx, dtype=int),
        forecaster_key=forecasters,
        probability=np.asarray(probabilities, dtype=float),
        seconds_to_resolution=np.asarray(seconds, dtype=float),
        outcome=outcomes,
        life_seconds=life,
        n_questions=len(question_index),
    )
    return data, data_through


def bayes_stack_training() -> tuple[np.ndarray, np.ndarray]:
    """What the stack learns from: per resolved yes/no question, the model's, the log-odds mean's and
    the market's P(YES) (NaN without a market) in the last Bayesian snapshot taken up to its close
    (or resolution, if earlier) -- out of sample, as readers saw it -- as an (n, 3) array, and the
    outcomes (n,). Questions with no such snapshot (resolved before the model had a run) are left out."""
    last_shown = (
        AggregateSnapshot.objects.filter(
            question_id=OuterRef("question_id"),
            method=BAYES_METHOD,
            at__lte=Least(OuterRef("question__closes_at"), OuterRef("resolved_at")),
        )
        .order_by("-at", "-id")
        .values("parameters")[:1]
    )
    rows = _resolved_binary().annotate(shown=Subquery(last_shown)).values_list("outcome", "shown")
    pairs, outcomes = [], []
    for outcome, shown in rows.iterator(chunk_size=10_000):
        if isinstance(shown, str):  # a JSON subquery comes back as text on some backends
            shown = json.loads(shown)
        if not shown or "model_p" not in shown or "pool_p" not in shown:
            continue
        market = shown.get("market_p")
        pairs.append((float(shown["model_p"]), float(shown["pool_p"]), np.nan if market is None else float(market)))
        outcomes.append(int(outcome == Resolution.Outcome.YES))
    return np.array(pairs, dtype=float).reshape(-1, 3), np.array(outcomes, dtype=float)


def _stack(run: ModelRun):
    from .. import bayes

    return bayes.StackWeights.from_dict((run.fit or {}).get("stack"))


# --- refits -------------------------------------------------------------------------------------


def _stored_fit(run: ModelRun | None):
    """The run's fit, or None when there is none or an older model version made it."""
    from .. import bayes

    if run is None or not run.fit:
        return None
    try:
        return bayes.BayesFit.from_dict(run.fit)
    except ValueError:
        return None


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
                status=ModelRun.Status.FAILED, finished_at=now, error=WORKER_STOPPED
            )
            # A fit that kills its worker (out of memory) is redelivered with the same task id
            # (acks_late, reject_on_worker_lost): give up after a few deliveries instead of forever.
            died = ModelRun.objects.filter(task_id=task_id, status=ModelRun.Status.FAILED, error=WORKER_STOPPED)
            if schedule.running_task_id == task_id and died.count() >= MAX_REFIT_DELIVERIES:
                schedule.running, schedule.running_task_id, schedule.lease_expires_at = None, "", None
                # Served, badly: the next resolution asks again; until then the last good run stays.
                schedule.running_for = None
                schedule.save()
                ModelRun.objects.create(
                    method=method,
                    reason=schedule.requested_reason,
                    task_id=task_id,
                    status=ModelRun.Status.FAILED,
                    finished_at=now,
                    progress=1.0,
                    progress_message="Failed",
                    error=f"Gave up: the fit stopped its worker {MAX_REFIT_DELIVERIES} times (out of memory?).",
                )
                logger.error("Bayesian refit task %s stopped its worker %d times; giving up", task_id, died.count())
                return None
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
        run.n_forecasts = len(data.probability)  # every forecast read; the fit's own count replaces it
        run.data_through = data_through
        _progress(run, 0.15, f"Fitting ({run.get_method_display()}) on {run.n_forecasts:,} forecasts")
        previous = bayes_run_in_use()
        warm = _stored_fit(previous)
        # NUTS runs its chains in this process, as threads (nutpie): a prefork worker must not
        # fork again.
        fit = bayes.fit(
            data, method=method, previous=warm, max_rhat=settings.BAYES_MAX_RHAT, min_ess=settings.BAYES_MIN_ESS
        )
        run.n_questions, run.n_forecasters, run.n_forecasts = fit.n_questions, fit.n_forecasters, fit.n_forecasts
        run.diagnostics = fit.diagnostics
        _progress(run, 0.9, "Learning how far to trust the model")
        stack = bayes.fit_stack(*bayes_stack_training())
        run.fit = {**fit.to_dict(), "stack": stack.as_dict()}
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
            # One update task per open question, each a short transaction locking only its own
            # question, queued after this commit: never every question's lock at once.
            # (Questions with no forecast have no aggregate state and nothing to update.)
            states = AggregateState.objects.filter(question__status=Question.Status.OPEN).exclude(
                question__question_type__in=CONTINUOUS_TYPES  # the model reads probabilities, not CDFs
            )
            open_ids = list(states.values_list("question_id", flat=True))
            AggregateState.objects.filter(question_id__in=open_ids).update(bayes_pending=True)
            enqueue_many(UPDATE_TASK, [(question_id,) for question_id in open_ids])
        if again:
            enqueue(REFIT_TASK, countdown=settings.BAYES_REFIT_DEBOUNCE_SECONDS)
    return run


# --- per-question aggregate -------------------------------------------------------------------------


def bayes_aggregate_request(*, question_id: int) -> bool:
    """Queue one debounced update of the question's Bayesian aggregate unless one is pending (an input
    other than a forecast moved: a market price). One conditional UPDATE, no row lock held: cheap on
    the trade path. Returns whether an update was queued."""
    if not AggregateState.objects.filter(question_id=question_id, bayes_pending=False).update(bayes_pending=True):
        return False
    enqueue(UPDATE_TASK, question_id, countdown=settings.BAYES_AGGREGATE_DEBOUNCE_SECONDS)
    return True


def bayes_aggregate_schedule(*, state: AggregateState) -> None:
    """Called with the question's row locked, after a new forecast: queue one debounced update."""
    if state.bayes_pending:
        return
    state.bayes_pending = True
    state.save(update_fields=["bayes_pending"])
    enqueue(UPDATE_TASK, state.question_id, countdown=settings.BAYES_AGGREGATE_DEBOUNCE_SECONDS)


@transaction.atomic
def bayes_aggregate_update(*, question_id: int, now: dt.datetime | None = None) -> AggregateSnapshot | None:
    """Apply the run in use to the question's latest forecasts and store the aggregate with its interval.

    Yes/no and multiple-choice questions (None for numeric and date ones). The resolution date of
    an unresolved question is unknown, so its close date stands in: each forecast's
    ``seconds_to_resolution`` runs to the close date and the question's life from its opening to the
    close date (once the close date has passed, no forecast comes after it). The 90% interval is
    that of the probability over the uncertainty in these forecasters' parameters
    (``BayesFit.aggregate``).
    """
    question = Question.objects.select_for_update().get(pk=question_id)
    state = AggregateState.objects.filter(question=question).first()
    if state is None:
        return None
    if state.bayes_pending:
        state.bayes_pending = False
        state.save(update_fields=["bayes_pending"])
    run = bayes_run_in_use()
    latest = LatestForecasts.load(state)
    if run is None or not len(latest.forecaster_ids) or question.is_continuous:
        return None

    now = now or timezone.now()
    fit = _stored_fit(run)
    if fit is None:  # made by an older version of the model: the next refit replaces it
        return None
    horizon = question.closes_at.timestamp() if question.closes_at else now.timestamp()
    keys = [int(k) for k in latest.forecaster_ids]
    forecasts = Prediction.objects.filter(question=question)
    first = forecasts.order_by("made_at", "id").values_list("forecaster_id", flat=True).first()
    counts = dict(
        forecasts.order_by().values("forecaster_id").annotate(n=Count("id")).values_list("forecaster_id", "n")
    )

    # The same reading of the forecasts for every outcome: only the probabilities differ.
    def read(p_yes: np.ndarray, *, interval: bool = True) -> tuple[float, float, float]:
        return fit.aggregate(
            keys,
            p_yes,
            np.maximum(horizon - latest.made_at, 0.0),
            life_seconds=max(horizon - question.opens_at.timestamp(), 0.0),
            opener_key=first,
            revisions=[max(counts.get(k, 1) - 1, 0) for k in keys],
            interval=interval,
        )

    if not question.is_binary:
        return _multiple_choice_snapshot(question, run, read, keys, latest, now)
    p_model, p_low, p_high = read(latest.probabilities[:, 1])
    # What readers see is the model stacked with the log-odds mean by the trust its record earned
    # (``bayes.stacking``); the interval covers both how far to trust the model and the model's own.
    stack = _stack(run)
    p_pool = float(aggregation.logodds_mean(latest.probabilities)[1])
    p_market = sources.price(sources.MARKET, question.pk)
    p_mean = stack.combine([p_model, p_pool, p_market])
    p_low, p_high = stack.interval((p_model, p_low, p_high), p_pool, p_market)
    snapshot = AggregateSnapshot(
        question=question,
        method=BAYES_METHOD,
        at=now,
        probabilities=[round(1 - float(p_mean), 6), round(float(p_mean), 6)],
        forecasters=len(keys),
        low=round(float(min(p_low, p_mean)), 6),
        high=round(float(max(p_high, p_mean)), 6),
        model_run=run,
        parameters={
            "model_run": run.pk,
            "method": run.method,
            "model_p": round(float(p_model), 6),
            "pool_p": round(p_pool, 6),
            "market_p": None if p_market is None else round(p_market, 6),
            "stack_weights": [round(w, 6) for w in stack.weights],
        },
    )
    return _save_unless_repeated(snapshot)


def _save_unless_repeated(snapshot: AggregateSnapshot) -> AggregateSnapshot:
    # A redelivered or repeated update (same run, same forecasts) gives the same value: the history
    # keeps one point for it, not one per delivery.
    last = (
        AggregateSnapshot.objects.filter(question=snapshot.question, method=BAYES_METHOD).order_by("-at", "-id").first()
    )
    if last is not None and (last.model_run_id, last.probabilities, last.low, last.high, last.forecasters) == (
        snapshot.model_run_id,
        snapshot.probabilities,
        snapshot.low,
        snapshot.high,
        snapshot.forecasters,
    ):
        return last
    snapshot.save()
    return snapshot


def _multiple_choice_snapshot(question, run, read, keys, latest, now) -> AggregateSnapshot:
    """Each option read by the yes/no model as "does this option win?" and stacked like a yes/no
    question; the options' values renormalised (the same reduction the evaluation scores)."""
    stack = _stack(run)
    model, pool, shown = [], [], []
    for k in range(latest.probabilities.shape[1]):
        p_option = latest.probabilities[:, k]
        p_model, _, _ = read(p_option, interval=False)
        p_pool = float(aggregation.logodds_mean(p_option)[1])
        model.append(float(p_model))
        pool.append(p_pool)
        shown.append(stack.combine([p_model, p_pool]))
    total = sum(shown)
    snapshot = AggregateSnapshot(
        question=question,
        method=BAYES_METHOD,
        at=now,
        probabilities=[round(p / total, 6) for p in shown],
        forecasters=len(keys),
        model_run=run,
        parameters={
            "model_run": run.pk,
            "method": run.method,
            "model_p": [round(p, 6) for p in model],
            "pool_p": [round(p, 6) for p in pool],
            "stack_weights": [round(w, 6) for w in stack.weights],
        },
    )
    return _save_unless_repeated(snapshot)


@transaction.atomic
def bayes_pending_sweep(*, now: dt.datetime | None = None, stale: dt.timedelta = PENDING_STALE) -> list[int]:
    """Re-queue the Bayesian update of every pending question with no update queued in the last ``stale``.

    ``bayes_pending`` says an update is queued; if its task was lost (a worker lost the message, or
    it was queued before the outbox existed) the flag would stay set and the question's aggregate
    would never move again. Returns the questions re-queued.
    """
    now = now or timezone.now()
    recent = outbox_recently_queued(task_name=UPDATE_TASK, since=now - stale)
    pending = AggregateState.objects.filter(bayes_pending=True).values_list("question_id", flat=True)
    lost = [question_id for question_id in pending if (question_id,) not in recent]
    enqueue_many(UPDATE_TASK, [(question_id,) for question_id in lost])
    return lost


@transaction.atomic
def bayes_refit_sweep(*, now: dt.datetime | None = None, stale: dt.timedelta = PENDING_STALE) -> bool:
    """Queue a refit when the one asked for was lost; returns whether one was queued.

    Lost means: a fit is marked running but its lease has expired (its worker died and no
    redelivery came, e.g. a broker restarted without persistence), or a request is newer than every
    run, fitted or failed, and no refit was queued in the last ``stale`` (its message vanished before
    a worker took it). A request served by a failed run counts as served: the next resolution asks
    again, so a fit with bad diagnostics is not retried forever.
    """
    now = now or timezone.now()
    schedule = _schedule()
    if schedule.running_id:
        lost = schedule.lease_expires_at is None or schedule.lease_expires_at <= now
    else:
        newest_run = ModelRun.objects.order_by("-started_at").values_list("started_at", flat=True).first()
        lost = schedule.requested_at is not None and (newest_run is None or schedule.requested_at > newest_run)
    if not lost or outbox_recently_queued(task_name=REFIT_TASK, since=now - stale):
        return False
    enqueue(REFIT_TASK)
    return True
