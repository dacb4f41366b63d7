"""Tests: SQLite by default, the database named by DATABASE_URL when set."""

import atexit
import shutil
import tempfile
from pathlib import Path

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

# One scratch folder per test process (signing keys, uploaded documents, SMS files), removed at exit.
_SCRATCH = Path(tempfile.mkdtemp(prefix="passnum-test-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
PASSNUM_SIGNING_KEYS_DIR = _SCRATCH / "keys"
MEDIA_ROOT = _SCRATCH / "media"
SMS_FILE_PATH = _SCRATCH / "sms"
SMS_BACKEND = "passnum.common.sms.MemoryBackend"
