"""Tests: SQLite by default, the database named by DATABASE_URL when set."""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
SECRET_KEY = "test-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": ""}  # in-memory per worker
    DATABASES["default"]["OPTIONS"].pop("init_command", None)

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

PASSNUM_SIGNING_KEYS_DIR = Path(tempfile.mkdtemp(prefix="passnum-test-keys-"))
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="passnum-test-media-"))
