import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )


# Everything production needs; each test below takes one away. The variables the process may already
# have (CI sets DATABASE_URL...) are dropped first, so that only these count.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "webapp.settings_production",
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-key-for-the-check",
    "ALLOWED_HOSTS": "forecasts.example.org",
    "EXPORT_FORECASTER_SALT": "a-stable-salt",
    "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/somedb",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
    "CACHE_URL": "redis://127.0.0.1:6379/4",
    "SITE_URL": "https://forecasts.example.org",
}
OPTIONAL_ENV = ("REDIS_URL", "DEBUG")


def _production(*args: str, without: str = "", **overrides: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k not in OPTIONAL_ENV}
    env = {**base, **PRODUCTION_ENV, **overrides}
    env.pop(without, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_the_deploy_check():
    result = _production("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_use_what_the_environment_says():
    code = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], "
        "','.join(s.ALLOWED_HOSTS))"
    )
    result = _production("shell", "-c", code)
    assert result.stdout.strip().splitlines()[-1].split() == [
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/3",
        "django.core.cache.backends.redis.RedisCache",
        "forecasts.example.org",
    ], result.stderr


@pytest.mark.parametrize(
    "name", ["DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS", "EXPORT_FORECASTER_SALT", "SITE_URL"]
)
def test_production_settings_refuse_to_start_without_each_required_variable(name):
    result = _production("check", without=name)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and f"{name} must be set" in result.stderr, result.stderr


def test_production_settings_refuse_to_start_without_a_shared_cache():
    result = _production("check", without="CACHE_URL")
    assert result.returncode != 0 and "CACHE_URL (or REDIS_URL) must be set" in result.stderr, result.stderr


def test_production_settings_take_the_cache_from_redis_url_too():
    code = "from django.conf import settings as s; print(s.CACHES['default']['LOCATION'])"
    result = _production("shell", "-c", code, without="CACHE_URL", REDIS_URL="redis://127.0.0.1:6379/5")
    assert result.stdout.strip().splitlines()[-1] == "redis://127.0.0.1:6379/5", result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "sqlite:///tmp/prod.sqlite3"),
        ("CELERY_BROKER_URL", "filesystem://"),
        ("ALLOWED_HOSTS", "forecasts.example.org,testserver"),
        ("CACHE_URL", "locmem://"),
    ],
)
def test_production_settings_refuse_development_values(name, value):
    result = _production("check", **{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr, result.stderr


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
