"""Production settings: refuse to start without a secret, and pass Django's deployment checks."""

import os
import secrets
import subprocess
import sys


def run_passnum(*args, env_extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
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
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
