"""Settings shared by every environment. Everything that differs per machine comes from the environment."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("PASSNUM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "")
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "widget_tweaks",
    "dsfr",
    "passnum.common",
    "passnum.accounts",
    "passnum.geo",
    "passnum.journal",
    "passnum.places",
    "passnum.programs",
    "passnum.vouchers",
    "passnum.settlement",
    "passnum.steering",
    "passnum.nudges",
    "passnum.www",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "passnum.accounts.middleware.CurrentOrganisationMiddleware",
]

ROOT_URLCONF = "config.urls"
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "passnum.www.context_processors.site",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'passnum.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout so a demo on one machine copes with a few concurrent requests.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameters and prepared statements (psycopg 3): a statement run DB_PREPARE_THRESHOLD times on a
    # connection is then parsed and planned once by PostgreSQL, not on every request (a redemption sends the same
    # dozen statements each time). Behind a transaction-mode pooler that cannot keep prepared statements
    # (PgBouncer < 1.21, or without max_prepared_statements), set DB_PREPARE_THRESHOLD=off.
    _threshold = os.environ.get("DB_PREPARE_THRESHOLD", "2").strip().lower()
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "server_side_binding": env_bool("DB_SERVER_SIDE_BINDING", True),
            "prepare_threshold": None if _threshold in {"", "off", "none"} else int(_threshold),
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "www:login"
LOGIN_REDIRECT_URL = "www:home"
LOGOUT_REDIRECT_URL = "www:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
# French only until the English locale is translated: a half-English page is worse than a French one.
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))  # supporting documents: private, never served
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))

# E-mail: console by default; SMTP when EMAIL_HOST is set.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Pass numérique <ne-pas-repondre@pass-numerique.example>")

SESSION_COOKIE_AGE = 60 * 60 * 8
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# State branding (DSFR header): shown in every page's Marianne block and service title.
PASSNUM_BRAND = {
    "header_brand_html": os.environ.get("PASSNUM_BRAND_HTML", "République<br>française"),
    "site_title": os.environ.get("PASSNUM_SITE_TITLE", "Pass numérique"),
    "site_tagline": os.environ.get("PASSNUM_SITE_TAGLINE", "Des chèques pour se former au numérique, près de chez soi"),
    "footer_description": os.environ.get(
        "PASSNUM_FOOTER",
        "Plateforme publique et ouverte du pass numérique. Elle ne détient jamais d’argent : "
        "chaque financeur paie directement les lieux.",
    ),
    "beta_tag": env_bool("PASSNUM_BETA", True),
    "mourning": False,
}

INVITATION_VALIDITY_DAYS = 14

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
DSFR_MARK_OPTIONAL_FIELDS = True

# Public finder map: tiles come from a configurable server (OpenStreetMap's by default).
PASSNUM_MAP_TILE_URL = os.environ.get("PASSNUM_MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
PASSNUM_MAP_ATTRIBUTION = os.environ.get(
    "PASSNUM_MAP_ATTRIBUTION", "© les contributeurs d’OpenStreetMap (https://www.openstreetmap.org/copyright)"
)

# Rate limits (code checks, sign-ups) count in the cache: use a shared cache (database or Redis) when several
# web processes run. The database cache needs `passnum createcachetable`.
CACHES = {
    "default": {
        "BACKEND": os.environ.get("CACHE_BACKEND", "django.core.cache.backends.locmem.LocMemCache"),
        "LOCATION": os.environ.get("CACHE_LOCATION", "passnum"),
    }
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024  # sign-up carries up to a few 5 MB documents
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Ed25519 keys signing the vouchers' QR codes (PEM files, one per key id). Keep this folder secret, backed up and
# identical on every web node. Development creates a key on first use; production needs `passnum keys rotate`.
PASSNUM_SIGNING_KEYS_DIR = Path(os.environ.get("PASSNUM_SIGNING_KEYS_DIR", VAR_DIR / "keys"))
PASSNUM_SIGNING_AUTOCREATE = env_bool("PASSNUM_SIGNING_AUTOCREATE", True)

# Absolute public address of the platform, printed on paper booklets (QR to the finder) and in e-mails/SMS.
PASSNUM_PUBLIC_URL = os.environ.get("PASSNUM_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# SMS for digital passes: console (masked) by default; FileBackend writes an outbox; BrevoBackend sends for real.
SMS_BACKEND = os.environ.get("SMS_BACKEND", "passnum.common.sms.ConsoleBackend")
SMS_FILE_PATH = Path(os.environ.get("SMS_FILE_PATH", VAR_DIR / "sms"))
SMS_SENDER = os.environ.get("SMS_SENDER", "PassNum")  # Brevo: at most 11 letters and digits
BREVO_API_KEY = os.environ.get("BREVO_API_KEY", "")
BREVO_API_URL = os.environ.get("BREVO_API_URL", "https://api.brevo.com/v3/transactionalSMS/send")
SMS_TIMEOUT = int(os.environ.get("SMS_TIMEOUT", "10"))

# Number of reverse proxies in front of the app that append to X-Forwarded-For (1 behind nginx). Rate limits use
# the client address they report; 0 means REMOTE_ADDR.
PASSNUM_TRUSTED_PROXY_COUNT = int(os.environ.get("PASSNUM_TRUSTED_PROXY_COUNT", "0"))

# Redemption desk (issue 6). Failed code checks allowed per (limit, window in seconds) before checks are blocked
# until the window ends: per person or API key, per organisation, per IP address.
PASSNUM_CODE_CHECK_LIMITS = {
    "who": (int(os.environ.get("PASSNUM_CODE_FAILS_PER_USER", "10")), 900),
    "org": (int(os.environ.get("PASSNUM_CODE_FAILS_PER_ORG", "50")), 900),
    "ip": (int(os.environ.get("PASSNUM_CODE_FAILS_PER_IP", "20")), 900),
}
# A place may undo a redemption within this many hours (then only the funder can correct it).
PASSNUM_UNDO_WINDOW_HOURS = int(os.environ.get("PASSNUM_UNDO_WINDOW_HOURS", "24"))
# Settlement cut-offs: days of the month ("1,16") or "weekly:N" (N = 0 for Monday … 6 for Sunday).
PASSNUM_SETTLEMENT_CALENDAR = os.environ.get("PASSNUM_SETTLEMENT_CALENDAR", "1,16")
# Fernet key(s), comma-separated, encrypting the contact of people who consented to expiry reminders. Empty: a key
# derived from SECRET_KEY (rotating SECRET_KEY then makes pending reminders unreadable; they are simply not sent).
PASSNUM_CONTACT_KEY = os.environ.get("PASSNUM_CONTACT_KEY", "")
# Nudges (passnum/nudges/): a reminder to a digital-pass holder who consented and has used nothing this many days
# after the hand-out; booklets at a distributor this many days after allocation and not handed out are "sleeping".
PASSNUM_NUDGE_AFTER_DAYS = int(os.environ.get("PASSNUM_NUDGE_AFTER_DAYS", "21"))
PASSNUM_SLEEPING_AFTER_DAYS = int(os.environ.get("PASSNUM_SLEEPING_AFTER_DAYS", "60"))

# JSON API (/api/v1/, passnum/api/). Its requests skip the site's middleware (sessions, CSRF, messages, users,
# organisation switcher): config/wsgi.py sends /api/ to a handler built with this list only. Bearer keys, no cookies.
INSTALLED_APPS += ["ninja"]  # the docs page (/api/v1/docs) uses ninja's own Swagger UI files, not a CDN
API_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
API_MAX_BODY_BYTES = 64 * 1024  # larger API request bodies are refused (413) before they are read
