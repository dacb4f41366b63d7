"""Production settings: refuse to start without a secret, and pass Django's deployment checks."""

import os
import secrets
import subprocess
import sys


def run_passnum(*args, env_extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "EMAIL_HOST"}
    }
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "passnum.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key():
    result = run_passnum("check", env_extra={"DJANGO_SETTINGS_MODULE": "config.settings.prod"})
    assert result.returncode != 0
    assert "SECRET_KEY doit être défini" in result.stderr


def test_production_passes_check_deploy():
    result = run_passnum(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_extra={
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "pass-numerique.example.fr",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/passnum",
            "EMAIL_HOST": "smtp.example.fr",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_database_or_mail():
    base = {"DJANGO_SETTINGS_MODULE": "config.settings.prod", "SECRET_KEY": secrets.token_urlsafe(64)}
    result = run_passnum("check", env_extra=base)
    assert result.returncode != 0 and "DATABASE_URL doit être défini" in result.stderr
    result = run_passnum("check", env_extra={**base, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/passnum"})
    assert result.returncode != 0 and "EMAIL_HOST" in result.stderr
