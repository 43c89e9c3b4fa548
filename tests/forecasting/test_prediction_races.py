"""Concurrent forecasts by one reader on one question: the last one written is the latest one.

Found by the soak run (tests/integration/test_soak.py): a forecast that waited for the question's
lock kept the time it read before waiting, so it was written after a forecast stamped later; the
stored aggregates (built in write order) then disagreed with a recompute (by time).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from forecasting import services
from forecasting.models import Prediction
from tests.factories import QuestionFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's row locks (CI has it)"),
]


def waiting_for_my_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0] > 0


def test_a_forecast_that_waited_for_the_lock_is_stamped_after_the_one_written_before_it():
    question = QuestionFactory()
    reader = UserFactory()
    errors: list[BaseException] = []

    def late_writer() -> None:
        try:
            services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.30"))
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connections.close_all()

    with transaction.atomic():
        services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.50"))
        waiter = threading.Thread(target=late_writer)
        waiter.start()
        deadline = time.monotonic() + 10
        while not waiting_for_my_lock():  # the other forecast now waits for the question's lock
            assert time.monotonic() < deadline, "the second forecast never reached the lock"
            time.sleep(0.02)
        time.sleep(0.05)
        services.prediction_create(question=question, forecaster=reader, probability=Decimal("0.70"))
    waiter.join(timeout=10)
    assert not errors, errors

    written = list(Prediction.objects.filter(question=question).order_by("id").values_list("probability", "made_at"))
    assert [p for p, _ in written] == [Decimal("0.50"), Decimal("0.70"), Decimal("0.30")]
    assert [at for _, at in written] == sorted(at for _, at in written)  # write order is time order
    current = services.aggregates_current(question=question)
    for name, recomputed in services.aggregates_recompute(question=question).items():
        assert current[name].probabilities == pytest.approx(recomputed, abs=2e-6), name
    assert current[services.HEADLINE_METHOD].probability_yes == pytest.approx(0.30, abs=1e-6)
