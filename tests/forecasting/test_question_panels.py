"""The question page's extension point (forecasting/views/panels.py): other apps add panels to it."""

import pytest

from forecasting.views import panels

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(monkeypatch):
    """A registry of this test's own (the apps' panels, such as the market's, are set aside)."""
    monkeypatch.setattr(panels, "_panels", {})
    return panels


def test_a_panel_without_context_is_left_out_and_the_rest_keep_their_order(registry, rf, question):
    registry.register_question_panel("first", template="first.html", context=lambda request, q: {"n": q.pk})
    registry.register_question_panel("skipped", template="skipped.html", context=lambda request, q: None)
    registry.register_question_panel(
        "last", template="last.html", headline_template="last_headline.html", context=lambda request, q: {}
    )
    shown = registry.question_panels(rf.get("/"), question)
    assert [(p.template, p.headline_template, p.context) for p in shown] == [
        ("first.html", None, {"n": question.pk}),
        ("last.html", "last_headline.html", {}),
    ]


def test_registering_a_name_again_replaces_the_panel(registry, rf, question):
    registry.register_question_panel("p", template="old.html", context=lambda request, q: {})
    registry.register_question_panel("p", template="new.html", context=lambda request, q: {})
    assert [p.template for p in registry.question_panels(rf.get("/"), question)] == ["new.html"]


def test_the_question_page_hands_its_panels_to_the_template(registry, client, question):
    registry.register_question_panel(
        "mine", template="forecasting/_forecast_form.html", context=lambda request, q: {"seen": q}
    )
    response = client.get(question.get_absolute_url())
    assert response.status_code == 200
    assert [p.context for p in response.context["question_panels"]] == [{"seen": question}]
