"""Every benchmark still runs, at a toy size, and ends with its `ratio=… goal=…` line.

The figures are not checked (a shared machine is too noisy, and a toy size measures nothing): only that a schema or
API change did not leave a script broken. The PostgreSQL ones create and drop their own databases, so they run when
the suite runs on PostgreSQL."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
LAST_LINE = re.compile(r"^ratio=\d+(\.\d+)? goal=\d+(\.\d+)?$")

SCRIPTS = {
    "finder": ["--places", "300", "--runs", "2"],
    "booklet_pdf": ["--booklets", "3"],
    "issuance": ["--vouchers", "2000"],
    "settlement": ["--redemptions", "600", "--places", "12", "--funders", "4", "--db-name", "passnum_smoke_settle"],
    "dashboard": [
        *("--vouchers", "3000", "--distributors", "6", "--places", "12", "--runs", "1"),
        *("--db-name", "passnum_smoke_dashboard"),
    ],
    "redemption": ["--clients", "2", "--duration", "1", "--workers", "1", "--threads", "2"],
}
POSTGRES_ONLY = {"issuance", "settlement", "dashboard", "redemption"}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_and_prints_its_ratio(script):
    if script in POSTGRES_ONLY and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL benchmark: runs with the suite on PostgreSQL")
    if script == "redemption" and not shutil.which("wrk"):
        pytest.skip("the redemption benchmark drives gunicorn with wrk (apt install wrk)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # each script picks its own settings and database
    if script not in POSTGRES_ONLY:
        env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *SCRIPTS[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert LAST_LINE.match(last), done.stdout[-2000:]
