"""Local development and the embedded demo (SQLite under var/)."""

from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY

DEBUG = True
SECRET_KEY = SECRET_KEY or "dev-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
