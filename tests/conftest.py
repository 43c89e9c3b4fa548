import os

import pytest
from hypothesis import settings as hypothesis_settings

from tests.factories import QuestionFactory, UserFactory, editor_user

# CI (``.ci/run``) sets HYPOTHESIS_PROFILE=ci: the same examples on every run, so that a gate never
# fails on a new random draw; local runs keep drawing new examples, which is where bugs are found.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def celery_eager(settings):
    """Run tasks inline (still only when the enqueuing transaction commits).

    The integration tests in tests/integration turn this off and use a real worker.
    """
    from webapp.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def no_automatic_model_refits(settings):
    """Resolutions in tests don't fit the Bayesian model unless a test asks for it (the automatic
    path is tested in tests/forecasting/test_bayesian_service.py); fits are MAP (fast), and test
    workers (tests/integration) skip the model's warm-up compile."""
    settings.BAYES_AUTO_REFIT = False
    settings.BAYES_FIT_METHOD = "map"
    settings.BAYES_WORKER_WARM_UP = False


@pytest.fixture
def reader(db):
    return UserFactory(username="alice")


@pytest.fixture
def editor(db):
    return editor_user(username="erin")


@pytest.fixture
def question(db):
    return QuestionFactory()
