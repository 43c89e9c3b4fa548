"""The OpenAPI schema: valid, complete, warning-free; the docs pages work offline; errors look alike."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import URLResolver
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

from tests.api_helpers import assert_error
from webapp.api.urls import v1

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def _endpoints(patterns, prefix: str = ""):
    """Every (route, view class) under ``patterns``, through the apps' included URLconfs."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _endpoints(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback.view_class


def _openapi_path(route: str) -> str:
    """``questions/<int:pk>/open/`` -> ``/api/v1/questions/{id}/open/`` (spectacular names pk ``id``)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{%s}" % ("id" if m.group(1) == "pk" else m.group(1)), route)
    return f"/api/v1/{path}"


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Newsroom Forecasts API"


def test_every_endpoint_and_method_is_in_the_schema(schema):
    expected = {}
    for route, view in _endpoints(v1):
        methods = {m for m in view.http_method_names if m in HTTP_METHODS and hasattr(view, m)}
        expected[_openapi_path(route)] = methods
    documented = {path: set(operations) & HTTP_METHODS for path, operations in schema["paths"].items()}
    assert documented == expected


def test_every_operation_documents_its_errors_with_the_error_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith("4")}
            assert errors, f"{method} {path} documents no error"
            for code in errors:
                ref = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error"
            if operation.get("security") and {} not in operation["security"]:
                assert "401" in errors, f"{method} {path} needs credentials but documents no 401"


def test_money_is_documented_as_integer_micro_units_and_a_decimal_string(schema):
    money = schema["components"]["schemas"]["MicroUnits"]
    assert money["properties"]["micro"] == {**money["properties"]["micro"], "type": "integer", "format": "int64"}
    assert money["properties"]["units"]["type"] == "string"
    assert money["properties"]["units"]["format"] == "decimal"
    trade = schema["components"]["schemas"]["Trade"]["properties"]
    for field in ("cost", "shares"):
        ref = trade[field].get("$ref") or trade[field]["allOf"][0]["$ref"]  # allOf when it has a description
        assert ref == "#/components/schemas/MicroUnits"


def test_schema_generates_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS, "drf-spectacular warned while generating the schema (see the captured output)"
    validate(schema)


def test_schema_yaml_by_default(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3")


@pytest.mark.parametrize(
    ("path", "asset"),
    [
        ("/api/docs/", "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
        ("/api/redoc/", "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"),
    ],
)
def test_docs_pages_use_local_assets_not_a_cdn(api, path, asset):
    response = api.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/static/{asset}" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    assert finders.find(asset), f"{asset} is not in the static files"
    if path == "/api/docs/":  # Swagger UI's start-up script is a file of its own (no inline script: CSP)
        page = api.get(path, {"script": ""}).content.decode()
    assert "/api/schema/" in page


def test_unknown_api_path_is_a_json_404(api):
    assert_error(api.get("/api/v1/nothing-here/"), 404, "not_found")


def test_wrong_method_is_a_405_with_the_error_body(api):
    assert_error(api.delete("/api/v1/articles/"), 405, "method_not_allowed")


def test_malformed_json_is_a_400_parse_error(reader_api):
    response = reader_api.post("/api/v1/predictions/", data="{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")
