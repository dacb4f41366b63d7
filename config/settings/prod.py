"""Production: PostgreSQL, behind a TLS-terminating reverse proxy. Refuses to start without a secret."""

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import MIDDLEWARE, env_bool

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY doit être défini (au moins 50 caractères) en production.")

if "DATABASE_URL" not in os.environ:
    raise ImproperlyConfigured("DATABASE_URL doit être défini en production (PostgreSQL).")
# The console backend would print recipients and links into the logs: never in production.
if not os.environ.get("EMAIL_HOST") and "EMAIL_BACKEND" not in os.environ:
    raise ImproperlyConfigured("EMAIL_HOST (ou EMAIL_BACKEND) doit être défini en production.")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Static files served by the app itself (compressed, cache-busted); a reverse proxy may serve STATIC_ROOT instead.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]

# Rate-limit counters must be shared by every web process: the database cache by default
# (`passnum createcachetable` once), or Redis through CACHE_BACKEND/CACHE_LOCATION.
CACHES = {
    "default": {
        "BACKEND": os.environ.get("CACHE_BACKEND", "django.core.cache.backends.db.DatabaseCache"),
        "LOCATION": os.environ.get("CACHE_LOCATION", "passnum_cache"),
    }
}

PASSNUM_SIGNING_AUTOCREATE = env_bool("PASSNUM_SIGNING_AUTOCREATE", False)
