"""Editors hide a forecast's rationale from readers (kept, audited); the forecast still counts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from comments import services
from comments.models import HiddenRationale, RationaleEvent
from forecasting import services as forecasting_services
from tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rationale(question, reader):
    forecasting_services.profile_update(user=reader, is_public=True)
    return forecasting_services.prediction_create(
        question=question, forecaster=reader, probability=Decimal("0.7"), rationale="Buy **now**!"
    )


def test_an_editor_hides_a_rationale_from_readers_and_sees_it_marked(client, rationale, editor):
    response = client.post(reverse("rationale_hide", args=[rationale.pk]), {"reason": "advertising"})
    assert response.status_code == 302  # to log in
    client.force_login(editor)
    response = client.post(reverse("rationale_hide", args=[rationale.pk]), {"reason": "advertising"})
    assert response.status_code == 302 and response["Location"].endswith(f"#rationale-{rationale.pk}")
    editor_page = client.get(rationale.question.get_absolute_url()).content.decode()
    assert "<strong>now</strong>" in editor_page and "Hidden from readers by erin" in editor_page
    client.logout()
    page = client.get(rationale.question.get_absolute_url()).content.decode()
    assert "<strong>now</strong>" not in page
    assert [(e.action, e.reason) for e in RationaleEvent.objects.all()] == [("hide", "advertising")]
    rationale.refresh_from_db()
    assert rationale.rationale == "Buy **now**!"  # kept
    assert forecasting_services.community_forecast(question=rationale.question).forecasters == 1  # still counts


def test_unhiding_shows_it_again_and_is_audited(client, rationale, editor):
    services.rationale_hide(prediction=rationale, actor=editor, reason="checking")
    client.force_login(editor)
    assert client.post(reverse("rationale_unhide", args=[rationale.pk]), {"reason": "fine"}).status_code == 302
    assert not HiddenRationale.objects.exists()
    client.logout()
    assert "<strong>now</strong>" in client.get(rationale.question.get_absolute_url()).content.decode()
    assert [e.action for e in RationaleEvent.objects.all()] == ["hide", "unhide"]


def test_readers_may_not_hide_and_bad_requests_change_nothing(client, rationale, reader, editor):
    with pytest.raises(PermissionDenied):
        services.rationale_hide(prediction=rationale, actor=reader, reason="I dislike it")
    client.force_login(reader)
    assert client.post(reverse("rationale_hide", args=[rationale.pk]), {"reason": "x"}).status_code == 403
    with pytest.raises(ValidationError, match="reason"):
        services.rationale_hide(prediction=rationale, actor=editor, reason="  ")
    services.rationale_hide(prediction=rationale, actor=editor, reason="spam")
    with pytest.raises(ValidationError, match="already hidden"):
        services.rationale_hide(prediction=rationale, actor=editor, reason="spam again")
    bare = PredictionFactory(question=rationale.question)
    with pytest.raises(ValidationError, match="no rationale"):
        services.rationale_hide(prediction=bare, actor=editor, reason="nothing to hide")
    with pytest.raises(ValidationError, match="not hidden"):
        services.rationale_unhide(prediction=bare, actor=editor)
    assert RationaleEvent.objects.count() == 1 and HiddenRationale.objects.count() == 1
