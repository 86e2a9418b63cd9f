"""Jobsite settings: one file, read from environment variables with safe development defaults.

Embedded default: SQLite (WAL) + django-q2 ORM broker + DatabaseCache, nothing to start.
Scale-out: DATABASE_URL=postgres://… and REDIS_URL=redis://… (broker and cache).
"""

import atexit
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("JOBSITE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if not value:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_filters",
    "template_partials",
    "django_q",
    "axes",
    "csp",
    "ninja",  # the API docs page's own Swagger UI files
    "jobs",
    "imports",
    "jobsite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "jobsite.metrics.RequestMetricsMiddleware",  # after static files: times the app's answers
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "jobsite.urls"
WSGI_APPLICATION = "jobsite.wsgi.application"

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

# --- Database ---------------------------------------------------------------
# SQLite is tuned for a web server and a qcluster writing at once: WAL lets readers
# run beside the writer, the busy timeout waits for the lock instead of failing, and
# IMMEDIATE transactions take the write lock up front so two writers never deadlock
# on a lock upgrade (without these django-q2 loses results to "database is locked").
SQLITE_OPTIONS = {
    "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "jobsite.sqlite3",
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast (and let /healthz answer 503) rather than hang on an unreachable server.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests that run a real qcluster need a database file the subprocess can open.
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME") or None}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and task queue ---------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    # A database cache lets the cluster publish its status with the ORM broker.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "jobsite_cache",
        }
    }

Q_TIMEOUT = env_int("Q_TIMEOUT", 1800)
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "jobsite"),
    "workers": env_int("Q_WORKERS", 2),
    # A task running past `timeout` is killed; the broker re-delivers it after `retry`,
    # which must be longer, or a slow task would run twice at once.
    "timeout": Q_TIMEOUT,
    "retry": env_int("Q_RETRY", Q_TIMEOUT + 60),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5),
    "save_limit": env_int("Q_SAVE_LIMIT", 250),
    "poll": env_int("Q_POLL_SECONDS", 1),
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any check
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/jobs/"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes) -----------------------------------------
# A username is locked after LOGIN_FAILURES_PER_USERNAME failed logins from one address, and an
# address after LOGIN_FAILURES_PER_ADDRESS failures across all usernames (axes has one limit,
# so jobsite/login_throttle.py adds the second), each until LOGIN_LOCKOUT_MINUTES have passed
# since the failure that locked it. A successful login clears its username's failures. Staff
# unlock in the admin (Axes > Access attempts) or with `manage.py axes_reset_username NAME`
# and `manage.py axes_reset_ip ADDRESS`.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
# Log lines name the username and address (axes masks them by default; passwords always).
AXES_SENSITIVE_PARAMETERS: list[str] = []
AXES_HANDLER = "jobsite.login_throttle.LoginThrottleHandler"
AXES_LOCKOUT_CALLABLE = "jobsite.login_throttle.lockout_response"
# Where the client address is read. With no proxy in front, the socket address; behind N
# proxies that each append to X-Forwarded-For, the entry the farthest one appended (the Nth
# from the right: entries a client wrote further left are ignored). django-ipware counts only
# the proxies named in the header, which leaves out the nearest one, hence N - 1.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT > 0:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR"]
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
    IPWARE_STRICT = False  # a longer header (client-written entries on the left) is expected
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# --- I18N, static and media -------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("DJANGO_STATIC_MANIFEST", not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security (production) --------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# A load balancer probes /healthz over plain HTTP and needs its 200 or 503, not a redirect;
# Prometheus scrapes /metrics where it is (a redirect would come after its token was sent).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# --- Content-Security-Policy and Permissions-Policy -------------------------
# Scripts and styles come only from the app's own static files: no inline scripts, event
# handler attributes or style attributes anywhere (htmx is configured to match in base.html).
# Pico CSS draws its icons as data: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Browser features the app never uses, denied to it and to anything it might embed.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
X_FRAME_OPTIONS = "DENY"

# --- API (docs/api.md) ------------------------------------------------------
# Requests per token (or per session user) and period: n/s, n/min, n/hour or n/day.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/min")

# --- Imports ----------------------------------------------------------------
IMPORT_MAX_UPLOAD_MB = env_int("IMPORT_MAX_UPLOAD_MB", 100)
IMPORT_BATCH_SIZE = env_int("IMPORT_BATCH_SIZE", 500)
IMPORT_MAX_STORED_ERRORS = env_int("IMPORT_MAX_STORED_ERRORS", 10_000)
IMPORT_MAX_ATTEMPTS = env_int("IMPORT_MAX_ATTEMPTS", 3)
IMPORT_MAX_RUNNING_PER_USER = env_int("IMPORT_MAX_RUNNING_PER_USER", 2)  # 0: no limit
# Past this many unparseable rows an import fails: the file is not CSV of the expected shape.
IMPORT_MAX_PARSE_ERRORS = env_int("IMPORT_MAX_PARSE_ERRORS", 1000)
# A worker renews its claim on an import with every batch; a claim older than this means the
# worker died, and the re-delivered task (or the stalled-import sweep) may resume the import.
IMPORT_LEASE_SECONDS = env_int("IMPORT_LEASE_SECONDS", 60)
IMPORT_RETENTION_DAYS = env_int("IMPORT_RETENTION_DAYS", 90)
IMPORT_RETENTION_KEEP_FAILED = env_bool("IMPORT_RETENTION_KEEP_FAILED", True)
IMPORT_RETENTION_HOUR = env_int("IMPORT_RETENTION_HOUR", 3)  # local time of the daily run
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # larger uploads stream to a temporary file

# --- Logging ----------------------------------------------------------------
# JSON lines in production, readable lines in development.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "filters": {
        # A 403 is one line (user, request, missing permission), not a traceback.
        "permission_denied": {"()": "jobsite.log_filters.PermissionDeniedInOneLine"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "jobs": {"level": LOG_LEVEL},
        "imports": {"level": LOG_LEVEL},
        "jobsite": {"level": LOG_LEVEL},
        "django-q": {"level": LOG_LEVEL, "handlers": ["console"], "propagate": False},
        "django.request": {"filters": ["permission_denied"]},
    },
}

# --- Bulk runs (docs/bulk-runs.md) --------------------------------------------
BULK_RUN_BATCH_SIZE = env_int("BULK_RUN_BATCH_SIZE", 1000)  # jobs per transaction
BULK_RUN_LEASE_SECONDS = env_int("BULK_RUN_LEASE_SECONDS", 60)
BULK_RUN_MAX_ATTEMPTS = env_int("BULK_RUN_MAX_ATTEMPTS", 3)

# --- Metrics (docs/metrics.md) ------------------------------------------------
# prometheus_client keeps every process's metrics in files of one folder, which the web workers
# and the cluster processes of a machine share and /metrics adds up. The library reads the
# variable when it is first imported, which in every process comes after the settings (in
# gunicorn's master too: jobsite/gunicorn_conf.py), so the settings put it in the environment,
# where the processes started from this one find it as well. A test run without it set gets a
# folder of its own, removed when the run ends.


def metrics_folder() -> Path:
    given = env_str("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return Path(given)
    if "PYTEST_VERSION" in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="jobsite-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return folder
    return VAR_DIR / "prometheus"


PROMETHEUS_MULTIPROC_DIR = metrics_folder()
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
