import threading

import pytest
from django.db import connection, connections


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/races/" in str(item.fspath):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def run_concurrently():
    """Run `fn(i)` in `n` threads released together; each thread has its own database connection.
    Returns (results, errors) in thread order."""
    if connection.vendor != "postgresql":
        pytest.skip("race tests need PostgreSQL (DATABASE_URL=postgres://…)")

    def run(fn, n):
        barrier = threading.Barrier(n)
        results: list = [None] * n
        errors: list = [None] * n

        def worker(i):
            try:
                barrier.wait()
                results[i] = fn(i)
            except Exception as exc:  # noqa: BLE001 — collected and asserted by the test
                errors[i] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return results, errors

    return run
