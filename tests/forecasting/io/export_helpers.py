"""Helpers of the export tests: downloading with a test client and reading what comes back."""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal

import pandas as pd
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.http import StreamingHttpResponse
from django.test import Client

from forecasting import services
from forecasting.io import exports
from forecasting.models import Prediction

TABLES = ("questions", "forecasts", "aggregates", "scores", "market")


def forecast(question, user, p):
    return services.prediction_create(question=question, forecaster=user, probability=Decimal(p))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def identities_permission() -> Permission:
    """The permission the main code base declares (created here if its migration is not there yet)."""
    app_label, codename = exports.IDENTITIES_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    return permission or Permission.objects.create(
        codename=codename,
        name="Can see forecasters' identities in data exports",
        content_type=ContentType.objects.get_for_model(Prediction),
    )


def fetch(client, url, expect=200, **params):
    response = client.get(url, params)
    assert response.status_code == expect, (response.status_code, getattr(response, "content", b"")[:300])
    if isinstance(response, StreamingHttpResponse):
        response.body = b"".join(response.streaming_content)
    return response


def unzip(response) -> dict[str, bytes]:
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def text_table(data: bytes) -> pd.DataFrame:
    """A CSV read as exact text (no type guessing, empty cells as "")."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


def csv_tables(response) -> tuple[dict[str, pd.DataFrame], str]:
    files = unzip(response)
    return {
        name.removesuffix(".csv"): text_table(data) for name, data in files.items() if name.endswith(".csv")
    }, files["README.md"].decode()


def documented_columns(readme: str, heading: str) -> list[str]:
    """The column names listed in the README's table under ``## heading``."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    types = "|".join(exports.TYPES)
    return re.findall(rf"^\| ([a-z_]+) \| (?:{types}) \| \S", section, flags=re.MULTILINE)


def key(user) -> str:
    return exports.forecaster_key(user.pk)
