"""Many notifications are written with a COPY (issue 23): the same rows as the ORM's, once each."""

from __future__ import annotations

import pytest

from notifications.models import Notification
from notifications.services import core

from .conftest import forecast_question

pytestmark = pytest.mark.django_db
COLUMNS = ("recipient_id", "kind", "key", "title", "body", "url")  # the e-mails were sent after the first


def _rows(question) -> list[tuple]:
    return sorted(Notification.objects.filter(question=question).values_list(*COLUMNS))


def test_a_copy_writes_the_rows_the_orm_writes(resolve, monkeypatch):
    question, _ = forecast_question(12)
    resolve(question)
    by_orm = _rows(question)
    assert len(by_orm) == 12
    Notification.objects.filter(question=question).delete()
    monkeypatch.setattr(core, "COPY_MIN_ROWS", 1)
    from notifications.services import resolution_notify

    assert resolution_notify(question_id=question.pk) == 12
    assert _rows(question) == by_orm
    resolution_notify(question_id=question.pk)  # again: nobody is told twice
    assert _rows(question) == by_orm
