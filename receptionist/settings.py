"""Settings for Voice Receptionist.

Everything comes from the environment. With nothing set we run the *embedded default*: SQLite, the
in-memory channel layer, eager Celery and the offline voice engine, so a laptop with no network and
no keys can run the whole product. Setting `DATABASE_URL`, `REDIS_URL`, `OPENAI_API_KEY` and
`TWILIO_*` switches the same code onto PostgreSQL, Redis, Celery workers, OpenAI and Twilio.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's own .env (never committed) is read if present; the real environment wins.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)

_DEFAULT_SECRET_KEY = "insecure-dev-key-only-for-debug"  # noqa: S105 - refused outside DEBUG
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set. Set SECRET_KEY (or DEBUG=1 for local development).")
    # A per-process random key would log everyone out on each restart; a fixed dev key is fine
    # because DEBUG never faces the internet.
    SECRET_KEY = _DEFAULT_SECRET_KEY
elif not DEBUG and SECRET_KEY == _DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is the development default; set a real one.")
# Rotating the key (docs/runbooks/rotating-secrets.md): the old key stays here, comma-separated, until
# sessions and signed stream tokens made with it have expired, so nobody is logged out mid-shift.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is empty. Set ALLOWED_HOSTS=your.domain.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# How Twilio (and e-mailed links) reach us, e.g. https://receptionist.example.com
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "csp",
    "template_partials",
    "import_export",
    "allauth",
    "allauth.account",
    "shops",
    "calls",
    "voice",
    "telephony",
]

# WhiteNoise (sync only) comes last, not after SecurityMiddleware as its docs suggest: under ASGI a sync
# middleware high in the chain makes Django run every middleware below it async, and those run their
# process_request/process_response in a thread each (~12 hops between the event loop and a thread per
# request). Last, everything above it runs sync in one hop: ~3 ms less CPU per Twilio webhook, taken
# from the event loop that relays every call's audio. Static files now pass the other middleware too.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "receptionist.urls"
WSGI_APPLICATION = "receptionist.wsgi.application"
ASGI_APPLICATION = "receptionist.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Database: SQLite by default, PostgreSQL (psycopg 3) with DATABASE_URL
# ---------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Daphne serves HTTP and WebSockets from threads: WAL lets readers work while a call writes its
    # turn, NORMAL sync makes that write one cheap fsync-free commit, and writers wait, not fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Take the write lock when a transaction starts, so concurrent writers wait for it
            # instead of failing with "database is locked" when a read turns into a write.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    # psycopg's pool, one per server or worker process (docs/reliability.md, "Database connections").
    # A uvicorn process borrows one connection per HTTP request in flight (Django gives each its own
    # thread) plus one for all its WebSocket consumers (Channels' database work shares one thread), so
    # 10 covers a 20-call server: webhooks and dashboard pages are short. A Celery worker needs one per
    # concurrent task. Past `max_size` a request waits up to `timeout` seconds for a free connection,
    # then fails. With the database down every attempt waits that long too, and the consumers' one
    # thread with it: so it is short (a new connection takes milliseconds when the server is up).
    # Persistent connections (CONN_MAX_AGE) are the pool's job now: Django requires 0 with a pool.
    # DATABASE_POOL_MAX_SIZE=0 turns the pool off (e.g. behind pgbouncer; see the docs).
    DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=10)
    if DATABASE_POOL_MAX_SIZE < 0:
        raise ImproperlyConfigured("DATABASE_POOL_MAX_SIZE must be 0 (no pool) or a number of connections.")
    if DATABASE_POOL_MAX_SIZE:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE),
            "max_size": DATABASE_POOL_MAX_SIZE,
            "timeout": 2,
            "max_idle": 300,  # idle connections above min_size are closed after 5 minutes
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    # Pooled connections are checked when borrowed; unpooled ones when reused.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Behind pgbouncer in transaction mode a cursor must not outlive its transaction (.iterator()).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Redis: channel layer, Celery broker. Unset = in-memory layer + eager Celery (one process).
# ---------------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Each consumer with a channel layer (the live dashboard) waits for messages in a 5 s BZPOPMIN;
    # redis-py 8 reads every socket with a 5 s timeout by default, so a quiet spell of 5 s raised
    # TimeoutError and closed the dashboard socket (1011). The read timeout must outlast the pop.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 10}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds rate-limit counters: shared through Redis when there is one, so the limits hold
# across server processes; per process otherwise. A Redis that is down or hangs costs a request at
# most a second (rate limits then let requests through: voice.ratelimit), never a hung webhook.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Embedded: an in-process broker (tasks run eagerly); named with a host, or kombu warns at each use.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# Queuing a task (a call's summary, when the call ends) must not hang on a Redis that is down or hangs:
# connect and socket timeouts bound each publish (calls.tasks.queue_summary tries once and logs; a beat
# task re-queues what was lost). No reconnect loop when publishing (max_retries 0: the worker reconnects
# on its own terms, broker_connection_max_retries). The socket timeout stays above the worker's 1 s poll.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 3, "max_retries": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1
CELERY_REDIS_SOCKET_TIMEOUT = 3
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TIMEZONE = "UTC"
# Django's LOGGING owns the log format; a worker must not replace the root logger's handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Transcripts (what callers said, summaries, messages) are deleted this many days after a call ends;
# the call's row stays for analytics (calls/retention.py). 0 keeps them forever.
TRANSCRIPT_RETENTION_DAYS = env.int("TRANSCRIPT_RETENTION_DAYS", default=90)
if TRANSCRIPT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("TRANSCRIPT_RETENTION_DAYS must be 0 (keep forever) or a number of days.")
# Periodic tasks, run by `celery -A receptionist beat` (the Procfile's `beat:` process; one only).
CELERY_BEAT_SCHEDULE = {
    "delete-expired-transcripts": {
        "task": "calls.tasks.delete_expired_transcripts",
        "schedule": crontab(hour=3, minute=17),  # daily, at a quiet hour (UTC); idempotent if run twice
    },
    # Summaries lost while the broker or the workers were down (calls.tasks.summarize_missed_calls).
    "summarize-missed-calls": {
        "task": "calls.tasks.summarize_missed_calls",
        "schedule": crontab(minute="*/5"),
    },
    # Calls left open when their server process died and no status callback came (calls.tasks.close_stale_calls).
    "close-stale-calls": {
        "task": "calls.tasks.close_stale_calls",
        "schedule": crontab(minute="2-59/5"),
    },
}

# ---------------------------------------------------------------------------------------------
# Auth (django-allauth)
# ---------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
# Every login POST: 30 a minute per address, then 429. Failed logins: 10 a minute per address and 5 per
# 5 minutes per account, then the form refuses even the right password until the window passes.
ACCOUNT_RATE_LIMITS = {"login": "30/m/ip", "login_failed": "10/m/ip,5/5m/key"}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Voice Receptionist <noreply@localhost>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------------------------
# I18N, time, static
# ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# django-import-export: exported cells starting with = + - @ are neutralised (CSV injection).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False

# ---------------------------------------------------------------------------------------------
# Voice and telephony vendors (off, and saying so, when credentials are missing)
# ---------------------------------------------------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_REALTIME_URL = env.str("OPENAI_REALTIME_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=8.0)
OPENAI_VOICE = env.str("OPENAI_VOICE", default="alloy")


def _rate(name: str, default: str) -> str:
    """A rate limit from the environment, "<count>/<period>" as voice.ratelimit.Rate reads it."""
    value = env.str(name, default=default)
    if not re.fullmatch(r"\s*\d+\s*/\s*\d*\s*[smhd]\s*", value):
        raise ImproperlyConfigured(f"{name} must look like '30/m' (count / s, m, h, d or e.g. 10m), not {value!r}.")
    return value


# Requests per API token (or per IP without one) to /api/voice/chat, e.g. "30/m".
VOICE_CHAT_RATE_LIMIT = _rate("VOICE_CHAT_RATE_LIMIT", "30/m")

VOICE_ENGINE = env.str("VOICE_ENGINE", default="auto")
if VOICE_ENGINE not in {"auto", "openai", "local"}:
    raise ImproperlyConfigured("VOICE_ENGINE must be one of auto, openai, local.")
if VOICE_ENGINE == "openai" and not OPENAI_API_KEY:
    raise ImproperlyConfigured("VOICE_ENGINE=openai needs OPENAI_API_KEY.")

TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
# The previous auth token(s), comma-separated, while rotating TWILIO_AUTH_TOKEN: webhooks signed with
# them are still accepted (REST calls use TWILIO_AUTH_TOKEN only).
TWILIO_AUTH_TOKEN_FALLBACKS = env.list("TWILIO_AUTH_TOKEN_FALLBACKS", default=[])
# Signed stream tokens (webhook → media stream) live this long.
TWILIO_STREAM_TOKEN_SECONDS = env.int("TWILIO_STREAM_TOKEN_SECONDS", default=60)
# Twilio webhook requests per client address, counted before the signature is checked so a flood
# costs one cache hit each. A call makes 2-6 requests (voice, status, connect/dial actions, message
# steps) and Twilio sends them from a handful of addresses: 600/m is ~100 new calls a minute per
# address, far above a shop's traffic, and load tests from one address stay under it.
WEBHOOK_RATE_LIMIT = _rate("WEBHOOK_RATE_LIMIT", "600/m")
# How many reverse proxies of ours stand in front of the app (0: clients connect directly). With N,
# per-address rate limits use the address the outermost proxy saw (Nth from the right of
# X-Forwarded-For); the client-written part of that header is never trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 (no proxy) or the number of proxies in front.")
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT  # login rate limits read the same address


# ---------------------------------------------------------------------------------------------
# Content Security Policy (django-csp), in DEBUG too so development and the browser tests see it.
# Every page loads its scripts and styles from static/: no inline code, no eval, no CDN. htmx's
# injected indicator <style> and eval are switched off in base.html's htmx-config meta.
# ---------------------------------------------------------------------------------------------
def _websocket_sources(hosts: list[str], *, debug: bool) -> list[str]:
    """wss:// (and ws:// with any port in DEBUG) for each allowed host: older browsers do not count
    a WebSocket to the page's own host as 'self'."""
    sources = []
    for host in hosts:
        if host == "*" or host.startswith("["):  # no wildcard; CSP has no IPv6 literal host syntax
            continue
        names = [host.lstrip("."), "*" + host] if host.startswith(".") else [host]
        for name in names:
            sources.append(f"wss://{name}")
            if debug:
                sources.append(f"ws://{name}:*")
    return sources


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],  # the voice test's AudioWorklet module is a static file too
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "media-src": [SELF],  # the greeting preview <audio>
        "connect-src": [SELF, *_websocket_sources(ALLOWED_HOSTS, debug=DEBUG)],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# ---------------------------------------------------------------------------------------------
# Production hardening (active whenever DEBUG is off)
# ---------------------------------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Health probes from the load balancer and the metrics scraper arrive over plain HTTP on the
    # private network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# ---------------------------------------------------------------------------------------------
# Monitoring: logs, error reports, metrics (receptionist/logs.py, sentry.py, metrics.py)
# ---------------------------------------------------------------------------------------------
# One line per event on stderr: JSON outside DEBUG (for a log collector), readable text in DEBUG. Lines
# logged while handling a call carry its call_sid and shop; phone numbers are masked by the code that
# logs them and again by the formatter.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured("LOG_FORMAT must be json or text.")
# Python warnings become log records (logger py.warnings) instead of bare lines on stderr.
logging.captureWarnings(True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"call": {"()": "receptionist.logs.CallContextFilter"}},
    "formatters": {
        "text": {"()": "receptionist.logs.TextFormatter"},
        "json": {"()": "receptionist.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["call"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # uvicorn sets up its own text handlers before it loads the app: hand its lines (startup, errors,
        # the access log with query strings like ?From=%2B1…) to ours, so they are JSON and masked too.
        **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    },
}

# Error reports to Sentry when set (Django + Celery, no personal data, phone numbers masked).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from receptionist.sentry import init_sentry

    init_sentry(SENTRY_DSN)

# /metrics (Prometheus) answers only `Authorization: Bearer <METRICS_TOKEN>`; unset: open in DEBUG,
# 404 otherwise.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
