"""Security headers on every kind of page, the pages' HTML within the strict CSP, the API docs still
rendering under it (in Chromium), and the dependency audit's verdicts (bin/audit.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from forecasting.models import ModelRun
from tests.factories import PredictionFactory, QuestionFactory

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.usefixtures("fast_password_hashing")]


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.fixture
def pages(db, editor) -> dict[str, str]:
    """One URL of each kind of page the site serves."""
    question = QuestionFactory()
    PredictionFactory(question=question)
    return {
        "home": reverse("home"),
        "article": reverse("article_detail", args=[question.article.slug]),
        "question": reverse("question_detail", args=[question.pk]),
        "login": reverse("login"),
        "api json": reverse("api:question-list"),
        "api schema": reverse("api:schema"),
        "api docs": reverse("api:docs"),
        "api redoc": reverse("api:redoc"),
        "not found": "/no-such-page/",
        "api not found": "/api/v1/no-such-endpoint/",
    }


KINDS = ["home", "article", "question", "login", "api json", "api schema", "api docs", "api redoc", "not found"]


@pytest.mark.parametrize("kind", [*KINDS, "api not found"])
def test_every_kind_of_page_carries_a_strict_policy_and_the_other_headers(client, pages, kind):
    response = client.get(pages[kind])
    assert response.status_code in (200, 404), response.status_code
    csp = policy(response)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["script-src"] == ["'self'"], "scripts come from this site's files only"
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("kind", ["home", "article", "question", "login", "api json"])
def test_only_the_api_docs_allow_inline_styles(client, pages, kind):
    assert policy(client.get(pages[kind]))["style-src"] == ["'self'"]


def test_the_api_docs_widen_styles_alone_and_load_their_scripts_from_this_site(client, pages):
    for kind in ("api docs", "api redoc"):
        response = client.get(pages[kind])
        assert response.status_code == 200
        assert policy(response)["style-src"] == ["'self'", "'unsafe-inline'"]
        scripts = ScriptsAndAttributes.of(response.content.decode())
        assert scripts.inline_scripts == [], f"{kind} has an inline script, which the policy refuses"
        for src in scripts.sources:
            assert src.startswith("/"), f"{kind} loads {src} from another site"
            if src.startswith("/static/"):
                assert finders.find(src.removeprefix("/static/")), f"{src} is not among the static files"
            else:  # Swagger UI's start-up script, served by the docs view itself
                script = client.get(src)
                assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


class ScriptsAndAttributes(HTMLParser):
    """What a strict CSP refuses in a page: inline scripts, style="" and on...= attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_scripts: list[str] = []
        self.refused_attributes: list[str] = []
        self._in_script = False

    @classmethod
    def of(cls, html: str) -> ScriptsAndAttributes:
        parser = cls()
        parser.feed(html)
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in attributes:
            if name == "style" or name.startswith("on"):
                self.refused_attributes.append(f"<{tag} {name}=...>")
        if tag == "script":
            if attributes.get("src"):
                self.sources.append(attributes["src"])
            elif attributes.get("type") != "application/json":  # data, not code: CSP lets it be
                self._in_script = True

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip()[:80])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


@pytest.mark.parametrize("kind", ["home", "article", "question", "login"])
def test_the_sites_pages_have_nothing_the_policy_would_refuse(client, editor, pages, kind):
    client.force_login(editor)  # an editor sees the most: the editor's controls on every page
    found = ScriptsAndAttributes.of(client.get(pages[kind]).content.decode())
    assert found.inline_scripts == [] and found.refused_attributes == []


def test_the_model_runs_page_shows_a_running_fits_progress_without_a_style_attribute(client, editor):
    ModelRun.objects.create(
        method=ModelRun.Method.MAP, status=ModelRun.Status.RUNNING, progress=0.4, progress_message="sampling"
    )
    client.force_login(editor)
    html = client.get(reverse("editor_model_runs")).content.decode()
    assert '<progress class="progress" max="1" value="0.400">40%</progress>' in html
    found = ScriptsAndAttributes.of(html)
    assert found.inline_scripts == [] and found.refused_attributes == []


# --- the dependency audit (bin/audit.py, `make audit`, .ci/run) ----------------------------------


def _fake_pip_audit(tmp_path: Path, report: dict | None, exit_code: int = 0) -> Path:
    """A pip-audit stand-in that prints ``report`` (or fails like a network error when None)."""
    script = tmp_path / "pip-audit"
    body = (
        f"import sys; sys.stdout.write({json.dumps(json.dumps(report))}); sys.exit({exit_code})"
        if report is not None
        else "import sys; sys.stderr.write('ConnectionError: Name or service not known'); sys.exit(1)"
    )
    script.write_text(f"#!{sys.executable}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def _audit(tmp_path: Path, fake: Path, *flags: str) -> subprocess.CompletedProcess:
    lock = tmp_path / "requirements.lock"
    lock.write_text("django==5.2.1\nwhitenoise==6.8.0\n")
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / "audit.py"), *flags, str(lock)],
        env={**os.environ, "PIP_AUDIT": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
    )


CLEAN = {"dependencies": [{"name": "django", "version": "5.2.1", "vulns": []}], "fixes": []}
NOTHING_AUDITED = {"dependencies": [{"name": "django", "skip_reason": "Dependency not found on PyPI"}], "fixes": []}
FINDING = {
    "dependencies": [
        {"name": "django", "version": "5.2.1", "vulns": [{"id": "PYSEC-2099-1", "fix_versions": ["5.2.2"]}]}
    ],
    "fixes": [],
}


def test_the_audit_passes_when_nothing_is_known(tmp_path):
    result = _audit(tmp_path, _fake_pip_audit(tmp_path, CLEAN))
    assert result.returncode == 0 and "no known vulnerabilities" in result.stdout, result.stdout


def test_the_audit_fails_on_a_finding_even_when_offline_is_allowed(tmp_path):
    result = _audit(tmp_path, _fake_pip_audit(tmp_path, FINDING, exit_code=1), "--offline-ok")
    assert result.returncode == 1
    assert "django 5.2.1: PYSEC-2099-1 (fixed in: 5.2.2)" in result.stdout, result.stdout


@pytest.mark.parametrize("report", [None, NOTHING_AUDITED], ids=["network error", "service knows no package"])
def test_an_unreachable_advisory_service_is_a_skip_in_ci_and_a_failure_otherwise(tmp_path, report):
    fake = _fake_pip_audit(tmp_path, report)
    in_ci = _audit(tmp_path, fake, "--offline-ok")
    assert in_ci.returncode == 0 and in_ci.stdout.startswith("audit skipped: no network"), in_ci.stdout
    by_hand = _audit(tmp_path, fake)
    assert by_hand.returncode == 2 and by_hand.stdout.startswith("audit skipped: no network")


def test_the_audit_says_so_when_pip_audit_is_missing(tmp_path):
    result = _audit(tmp_path, tmp_path / "no-such-pip-audit")
    assert result.returncode == 2 and "not found" in result.stdout


# --- production (the deploy check itself: tests/webapp/test_settings.py) --------------------------


def _production_value(expression: str) -> str:
    from tests.webapp.test_settings import _production

    result = _production("shell", "-c", f"from django.conf import settings as s; print({expression})")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_production_keeps_the_policy():
    assert "csp.middleware.CSPMiddleware" in _production_value("','.join(s.MIDDLEWARE)").split(",")
    directives = json.loads(_production_value("__import__('json').dumps(s.CONTENT_SECURITY_POLICY['DIRECTIVES'])"))
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]


def test_production_sends_hsts_and_secure_cookies():
    values = _production_value(
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_REFERRER_POLICY, s.X_FRAME_OPTIONS"
    )
    hsts, *flags, referrer, frames = values.split()
    assert int(hsts) >= 31_536_000, "a year at least, as HSTS preload lists require"
    assert flags == ["True"] * 4
    assert (referrer, frames) == ("same-origin", "DENY")
