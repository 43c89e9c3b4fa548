"""Settings for development, tests and the one-command demo.

Everything that differs between machines comes from environment variables with embedded
defaults, so a fresh checkout runs with no configuration at all:

- ``DATABASE_URL``: defaults to a SQLite file under ``var/``.
- ``CELERY_BROKER_URL``: defaults to kombu's filesystem transport under ``var/broker``
  (an embedded broker: no server to install). Production uses ``redis://``.
- ``CACHE_URL`` (or ``REDIS_URL``): the default cache, which holds the rate limits' counters;
  defaults to a per-process memory cache. Production uses ``redis://``.
- ``SECRET_KEY``, ``DEBUG``, ``ALLOWED_HOSTS``.

``webapp.settings_production`` imports this module and hardens it.
"""

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def cache_from_url(url: str) -> dict:
    """A ``CACHES`` entry from ``redis://...`` (or ``rediss://``) or ``locmem://``."""
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    if url.startswith("locmem://"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": url.removeprefix("locmem://")}
    raise ValueError(f"Unsupported cache URL {url!r}: use redis://, rediss:// or locmem://.")


# Development default only; production settings refuse to start without a real key.
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-key-change-me-for-anything-but-a-local-demo")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_results",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "forecasting",
    "market",
    "comments",
    "notifications",
    "accounts",
    "demo",  # simulated demo readers (make demo); nothing imports it
    "webapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "webapp.middleware.RejectNulBytesMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: forecast forms answer an htmx request with the fragment to swap in place.
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: answers a login lockout (django-axes) with forecasting.api.throttles.lockout_response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.context_processors.demo_data",  # base.html's demo-data banner
                "notifications.context_processors.unread_notifications",  # base.html's bell
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'forecasting.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
        # With persistent connections (DB_CONN_MAX_AGE > 0), a database restart leaves every process
        # holding a dead connection: check it before each request or task reuses it, and reconnect.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Celery worker write to the same file: wait for locks instead of
    # failing at once, and take the write lock at BEGIN so that row-lock style sections
    # (select_for_update is a no-op on SQLite) are still serialised.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not the shared in-memory database, so that a Celery worker thread in the
    # integration tests sees what the test committed.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-forecasting-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The rate limits' and throttles' counters live here: one process's memory in development and
# tests, Redis in production (shared by every web process).
CACHES = {"default": cache_from_url(os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL") or "locmem://")}

# django-axes first: it refuses a locked-out username+address before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Security headers -----------------------------------------------------------------------
# A strict Content-Security-Policy (django-csp) everywhere, development included, so that an inline
# <script>, an onclick= or a style="" attribute breaks in the tests rather than in production: scripts
# and styles come from our static files only. uPlot sets its styles through the CSSOM, which CSP allows.
# The API docs (webapp/api/urls.py) widen style-src for their own pages only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- REST API (forecasting/api, market/api; its settings: webapp/api/conf.py) -----------------
from webapp.api.conf import REST_FRAMEWORK, SPECTACULAR_SETTINGS  # noqa: E402, F401

# A CSRF failure outside DRF answers the API's JSON error body under /api/ (Django's page elsewhere).
CSRF_FAILURE_VIEW = "webapp.errors.csrf_failure"

# --- Abuse limits --------------------------------------------------------------------------------
# Client addresses: REMOTE_ADDR, or behind NUM_PROXIES trusted proxies the X-Forwarded-For entry the
# outermost one appended (forecasting.ratelimit.client_ip; the limits, throttles and lockouts use it).
NUM_PROXIES = int(os.environ.get("NUM_PROXIES", "0"))
# Logins (the login form and POST /api/v1/auth/token/), django-axes: after AXES_FAILURE_LIMIT failed
# passwords for one username from one address, that pair is locked out, even with the right password,
# until AXES_COOLOFF_MINUTES after the last failure; a successful login resets the count.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "forecasting.ratelimit.client_ip"
AXES_LOCKOUT_CALLABLE = "forecasting.api.throttles.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["password"]
# The site's forms, per client address (forecasting.ratelimit.limited_per_ip; "N/s|m|h|d"). Each
# sign-up brings a market grant, so sign-ups are the tightest. The API's throttles: webapp/api/conf.py.
RATE_LIMITS = {
    "signup": os.environ.get("RATE_LIMIT_SIGNUP", "5/h"),
    "forecast": os.environ.get("RATE_LIMIT_FORECAST", "60/m"),
    "trade": os.environ.get("RATE_LIMIT_TRADE", "60/m"),
}
RATELIMIT_USE_CACHE = "default"
# Comments (web and API alike, comments.ratelimit): each window per account and per client address;
# over any of them, a 429 with Retry-After and nothing written.
COMMENT_RATE_LIMITS = {
    "account": env_list("COMMENT_RATE_ACCOUNT", "5/m,50/d"),
    "ip": env_list("COMMENT_RATE_IP", "20/m,200/d"),
}
COMMENT_MAX_LENGTH = int(os.environ.get("COMMENT_MAX_LENGTH", "2000"))  # characters of Markdown

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
# Password resets and sign-up: one account per e-mail address (accounts/forms.py).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(3 * 24 * 3600)))
RATE_LIMITS["password_reset"] = os.environ.get("RATE_LIMIT_PASSWORD_RESET", "5/h")

# --- E-mail (notifications, password resets) -------------------------------------------------------
# The demo and development print e-mails on the worker's console; production sends them by SMTP with
# the settings below from the environment (EMAIL_BACKEND overrides either).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "20"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Newsroom Forecasts <forecasts@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The site's public address, for absolute links where there is no request: e-mails, oEmbed, Open Graph.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Notifications (notifications/) ----------------------------------------------------------------
# "The community moved" when the headline aggregate is this many percentage points from the reader's
# latest forecast on an open question; "stale" forecasts are older than this many days.
NOTIFY_COMMUNITY_MOVE_POINTS = float(os.environ.get("NOTIFY_COMMUNITY_MOVE_POINTS", "10"))
NOTIFY_CLOSING_SOON_HOURS = float(os.environ.get("NOTIFY_CLOSING_SOON_HOURS", "24"))
NOTIFY_STALE_FORECAST_DAYS = float(os.environ.get("NOTIFY_STALE_FORECAST_DAYS", "30"))

# --- Embeds (forecasting/views/embeds.py) -----------------------------------------------------------
# Pages allowed to frame /embed/questions/<id>/ (CSP frame-ancestors; every other page is DENY):
# "*" lets any site embed a question, as a newsroom's partners do; list origins to restrict it.
EMBED_FRAME_ANCESTORS = env_list("EMBED_FRAME_ANCESTORS", "*")
LOGOUT_REDIRECT_URL = "home"

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("CELERY_BROKER_DIR", VAR_DIR / "broker"))
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # Producer and consumer share one folder, so both ends see every message.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # acks_late: the message of a task whose worker died (SIGKILL, out of memory, lost host) stays
    # unacknowledged in Redis and is delivered again once it has been so for visibility_timeout seconds.
    # It must exceed the longest task (a NUTS refit, bounded by BAYES_REFIT_LEASE_SECONDS) and the longest
    # countdown, or a task still running would be delivered twice; shorter redoes a killed task sooner.
    # The fault tests (tests/integration/test_faults.py) shorten it for their workers.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
        # How many polls (about a second each) between scans for such messages.
        "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Tasks recompute from the database and are idempotent, so a task whose worker died is
# simply run again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue tasks are published to (and a worker started without -Q consumes). The fault tests give
# their workers a queue of their own, so that tasks a worker queues (a refit's updates) stay on it.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Heavy work (model refits: seconds to minutes of CPU) can go to a queue of its own, so a refit never
# sits in front of the per-forecast and per-resolution tasks readers wait on (docs/scaling.md). Set
# CELERY_HEAVY_QUEUE=heavy and run `celery worker -Q heavy` beside the default workers. Unset (the
# demo, one worker), no route: they go wherever the default queue is when they are sent (a test that
# gives its worker a queue of its own changes that default at run time).
CELERY_HEAVY_QUEUE = os.environ.get("CELERY_HEAVY_QUEUE", "")
CELERY_HEAVY_TASKS = ("forecasting.tasks.refit_bayes", "forecasting.tasks.refit_aggregators")
CELERY_TASK_ROUTES = {name: {"queue": CELERY_HEAVY_QUEUE} for name in CELERY_HEAVY_TASKS} if CELERY_HEAVY_QUEUE else {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A new prefork process compiles the Bayesian model (10-40 s) before it reports in (forecasting/tasks.py:
# warm_up_bayes); Celery's default wait of 4 s may kill it ("Timed out waiting for UP message").
CELERY_WORKER_PROC_ALIVE_TIMEOUT = float(os.environ.get("CELERY_WORKER_PROC_ALIVE_TIMEOUT", "180"))
# Celery beat must run (``celery worker --beat``, or a ``celery beat`` process): tasks are written to
# an outbox with the data that needs them (forecasting/jobs.py), and the flush publishes any that a
# broker outage kept from being sent; the sweep re-queues Bayesian updates whose task was lost.
# ``expires``: a flush that waited longer than its period is dropped, never piled up.
# The newsroom's schedule (issue 20): every task is idempotent, so running late or twice changes nothing.
CELERY_BEAT_SCHEDULE = {
    "outbox-flush": {"task": "forecasting.tasks.outbox_flush", "schedule": 30.0, "options": {"expires": 25}},
    "sweep-unfinished": {"task": "forecasting.tasks.sweep_unfinished", "schedule": 300.0, "options": {"expires": 240}},
    # Questions close at closes_at with nobody acting (audited as done by the system).
    "close-due-questions": {
        "task": "forecasting.tasks.close_due_questions",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Readers: a question you forecast closes within a day; the community moved away from your forecast.
    "notify-closing-soon": {
        "task": "notifications.tasks.notify_closing_soon",
        "schedule": 900.0,
        "options": {"expires": 800},
    },
    "notify-community-moved": {
        "task": "notifications.tasks.notify_community_moved",
        "schedule": 900.0,
        "options": {"expires": 800},
    },
    # Daily: editors hear of overdue resolutions; readers of forecasts left stale on open questions.
    "remind-overdue-resolutions": {
        "task": "notifications.tasks.remind_overdue_resolutions",
        "schedule": crontab(hour=8, minute=0),
    },
    "remind-stale-forecasts": {
        "task": "notifications.tasks.remind_stale_forecasts",
        "schedule": crontab(hour=9, minute=0),
    },
    # E-mails that a crash or an SMTP outage left unsent.
    "send-pending-emails": {
        "task": "notifications.tasks.send_pending_emails",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Libraries speak at WARNING and up: at INFO, pytensor prints a line per config default it looks
    # up ("Suppressed KeyError ... for parameter 'cxx'") and its compiler flags on every Bayesian
    # command. Its logger is pinned too because a Celery worker resets the root logger to its
    # --loglevel. The project's own apps log at LOG_LEVEL.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        **{
            app: {"level": os.environ.get("LOG_LEVEL", "INFO")}
            for app in ("forecasting", "market", "comments", "notifications", "accounts", "demo", "webapp")
        },
        "pytensor": {"level": "WARNING"},
    },
}

# --- Exports ----------------------------------------------------------------------------------
# Salt of the forecaster pseudonyms in downloads (HMAC-SHA256 of the user id); falls back to
# SECRET_KEY in development. Keep it stable: changing it changes every pseudonym.
EXPORT_FORECASTER_SALT = os.environ.get("EXPORT_FORECASTER_SALT", "")

# --- Leaderboards ------------------------------------------------------------------------------
# Minimum coverage (sum over questions of the fraction of each question's open period with a
# standing forecast) before a forecaster is ranked, so one lucky forecast cannot top a board.
LEADERBOARD_MIN_COVERAGE = float(os.environ.get("LEADERBOARD_MIN_COVERAGE", "3"))
LEADERBOARD_MIN_COVERAGE_ARTICLE = float(os.environ.get("LEADERBOARD_MIN_COVERAGE_ARTICLE", "1.5"))

# --- Bayesian model (forecasting.bayes) ----------------------------------------------------------
# "map" (point estimate, L-BFGS: well under a second on demo-sized data) or "nuts" (full
# posterior with PyMC: compiles and samples for far longer, so opt in with BAYES_FIT_METHOD=nuts).
# A worker runs NUTS chains in its own process, never in forked ones (forecasting.bayes.sampling).
BAYES_FIT_METHOD = os.environ.get("BAYES_FIT_METHOD", "map")
BAYES_REFIT_DEBOUNCE_SECONDS = float(os.environ.get("BAYES_REFIT_DEBOUNCE_SECONDS", "5"))
BAYES_AGGREGATE_DEBOUNCE_SECONDS = float(os.environ.get("BAYES_AGGREGATE_DEBOUNCE_SECONDS", "2"))
BAYES_REFIT_LEASE_SECONDS = int(os.environ.get("BAYES_REFIT_LEASE_SECONDS", str(30 * 60)))
BAYES_MAX_RHAT = 1.05
BAYES_MIN_ESS = 100
BAYES_MAX_DIVERGENCES = 0
# Each Celery worker process compiles the model when it starts (forecasting/tasks.py: warm_up_bayes).
BAYES_WORKER_WARM_UP = env_bool("BAYES_WORKER_WARM_UP", True)
# Resolutions, annulments and un-resolutions queue a refit of the model (debounced, one at a time;
# see forecasting.services.bayesian). On by default; the unit tests turn it off unless a test asks
# for it (tests/conftest.py).
BAYES_AUTO_REFIT = env_bool("BAYES_AUTO_REFIT", True)

# --- Market --------------------------------------------------------------------------------------
MARKET_STARTING_GRANT = int(os.environ.get("MARKET_STARTING_GRANT", str(1_000 * 1_000_000)))  # micro-units
MARKET_DEFAULT_SUBSIDY = int(os.environ.get("MARKET_DEFAULT_SUBSIDY", str(100 * 1_000_000)))
