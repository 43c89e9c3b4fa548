"""Schemathesis against the live test server: every API operation, as an anonymous caller, a reader,
an editor and an analyst, with generated valid and invalid input. No answer may be a server error,
and every answer must match the OpenAPI schema (status code, content type, body)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from forecasting import services
from forecasting.models import Question
from tests.factories import ArticleFactory, QuestionFactory, UserFactory, analyst_user, editor_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_password_hashing")]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def newsroom(db):
    """A little of everything for the generated requests to find: articles, open and resolved questions."""
    editor = editor_user(username="erin")
    article = ArticleFactory(slug="talks")
    for _ in range(2):
        services.question_open(question=QuestionFactory(article=article, status=Question.Status.DRAFT), actor=editor)
    return {"editor": editor, "reader": UserFactory(username="alice"), "analyst": analyst_user(username="ann")}


def _headers(role: str, newsroom) -> dict[str, str]:
    if role == "anonymous":
        return {}
    token, _ = Token.objects.get_or_create(user=newsroom[role])
    return {"Authorization": f"Token {token.key}"}


def _site_schema() -> dict:
    """The site's OpenAPI schema, as served at /api/schema/ (built once, when the tests are collected)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_site_schema())


@pytest.mark.parametrize("role", ["anonymous", "reader", "editor", "analyst"])
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_fails_or_leaves_its_schema(case, role, newsroom, live_server):
    case.call_and_validate(base_url=live_server.url, headers=_headers(role, newsroom), checks=CHECKS)
