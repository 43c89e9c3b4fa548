"""Production settings: PostgreSQL, Redis, HTTPS only.

Use with ``DJANGO_SETTINGS_MODULE=webapp.settings_production``. Required environment:
``SECRET_KEY``, ``EXPORT_FORECASTER_SALT``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` (PostgreSQL),
``CELERY_BROKER_URL`` (Redis) and ``CACHE_URL`` or ``REDIS_URL`` (Redis: the rate limits'
counters, shared by every web process). Without one of them, or with a development value (SQLite,
the filesystem broker, ``testserver``, a per-process cache), it refuses to start rather than run on
development defaults. Passes ``manage.py check --deploy``.
"""

import os

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .settings import *  # noqa: F403
from .settings import STORAGES, cache_from_url, env_bool, env_list


def _required(name: str, why: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment for production: {why}")
    return value


SECRET_KEY = _required("SECRET_KEY", "it signs sessions and tokens.")
EXPORT_FORECASTER_SALT = _required("EXPORT_FORECASTER_SALT", "it keeps forecaster pseudonyms stable.")
DEBUG = env_bool("DEBUG", False)

_required("ALLOWED_HOSTS", "the host names the site answers to, comma-separated.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "")
if "testserver" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must not include the test client's 'testserver' in production.")

DATABASES = {
    "default": dj_database_url.parse(
        _required("DATABASE_URL", "a PostgreSQL URL (postgres://user:password@host:5432/name)."),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # Row locks (select_for_update) keep the money exact under concurrent trades; SQLite has none.
    raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL in production (postgres://...).")

CELERY_BROKER_URL = _required("CELERY_BROKER_URL", "a Redis URL (redis://host:6379/0).")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker only works when the web server and the worker share one machine's disk.
    raise ImproperlyConfigured("CELERY_BROKER_URL must not be the filesystem broker in production (use redis://).")
CELERY_BROKER_TRANSPORT_OPTIONS = {}

_cache_url = os.environ.get("CACHE_URL", "").strip() or os.environ.get("REDIS_URL", "").strip()
if not _cache_url:
    raise ImproperlyConfigured(
        "CACHE_URL (or REDIS_URL) must be set in the environment for production: a Redis URL that holds "
        "the rate limits' counters for every web process."
    )
if not _cache_url.startswith(("redis://", "rediss://")):
    # A per-process cache would give each web process its own counters: N times the limits.
    raise ImproperlyConfigured("CACHE_URL (or REDIS_URL) must be a Redis URL (redis://...) in production.")
CACHES = {"default": cache_from_url(_cache_url)}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# E-mail goes out by SMTP (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS
# from the environment); the development console backend would print readers' mail in the logs.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
SITE_URL = _required("SITE_URL", "the site's public https address, for links in e-mails and embeds.").rstrip("/")
