import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )


def test_production_settings_pass_the_deploy_check():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="webapp.settings_production",
        SECRET_KEY="x" * 20 + "a-long-random-production-secret-key-for-the-check",
        ALLOWED_HOSTS="forecasts.example.org",
        EXPORT_FORECASTER_SALT="a-stable-salt",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "webapp.settings_production"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_database_and_broker_come_from_the_environment():
    code = "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    result = _manage(
        "shell",
        "-c",
        code,
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/somedb",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
    )
    assert result.stdout.strip().splitlines()[-1].split() == [
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/3",
    ], result.stderr
