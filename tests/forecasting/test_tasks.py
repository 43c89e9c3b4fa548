"""The worker's start (forecasting/tasks.py): each worker process warms the Bayesian model up, and a
failed warm-up never stops the worker."""

import logging

import pytest

from forecasting import bayes
from forecasting.bayes import sampling as bayes_sampling
from forecasting.tasks import warm_up_bayes


@pytest.fixture
def warm_up_on(settings):
    settings.BAYES_WORKER_WARM_UP = True  # tests/conftest.py turns it off for test workers


def test_a_new_worker_process_compiles_the_model_and_logs_how_long_it_took(warm_up_on, monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(bayes, "warm_up", lambda: calls.append("map") or 12.34)
    with caplog.at_level(logging.INFO, logger="forecasting.tasks"):
        warm_up_bayes(sender="worker@host")
    assert calls == ["map"]
    assert "Bayesian model warm-up (MAP) took 12.3 s" in caplog.text


def test_the_nuts_sampler_is_warmed_up_too_when_it_is_the_fit_method(warm_up_on, settings, monkeypatch, caplog):
    settings.BAYES_FIT_METHOD = "nuts"
    calls = []
    monkeypatch.setattr(bayes, "warm_up", lambda: calls.append("map") or 1.0)
    monkeypatch.setattr(bayes_sampling, "warm_up", lambda: calls.append("nuts") or 30.0)
    with caplog.at_level(logging.INFO, logger="forecasting.tasks"):
        warm_up_bayes(sender="worker@host")
    assert calls == ["map", "nuts"]
    assert "warm-up (NUTS) took 30.0 s" in caplog.text


def test_a_failed_warm_up_is_logged_and_the_worker_starts_anyway(warm_up_on, monkeypatch, caplog):
    def broken():
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(bayes, "warm_up", broken)
    with caplog.at_level(logging.ERROR, logger="forecasting.tasks"):
        warm_up_bayes(sender="worker@host")  # does not raise
    assert "warm-up failed" in caplog.text and "no C compiler" in caplog.text


def test_the_warm_up_can_be_turned_off(settings, monkeypatch):
    settings.BAYES_WORKER_WARM_UP = False
    monkeypatch.setattr(bayes, "warm_up", lambda: pytest.fail("warmed up"))
    warm_up_bayes(sender="worker@host")


def test_the_handler_runs_when_a_worker_process_starts(settings, monkeypatch):
    from celery.signals import worker_process_init

    settings.BAYES_WORKER_WARM_UP = True
    calls = []
    monkeypatch.setattr(bayes, "warm_up", lambda: calls.append(1) or 0.0)
    worker_process_init.send(sender="worker@host")
    assert calls == [1]
