import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls from tests are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _geography_loaded(request):
    """Transactional tests (live server, races) flush every table, the INSEE geography included: reload it
    for the next database test when it is gone. One cheap query otherwise."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and "live_server" not in request.fixturenames:
        return
    if "live_server" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    else:
        request.getfixturevalue("db")
    from passnum.geo.loader import load_geography
    from passnum.geo.models import Commune

    if not Commune.objects.exists():
        load_geography()


@pytest.fixture
def funder():
    from tests.factories import OrganisationFactory

    return OrganisationFactory(funder=True, name="Département de la Marne")


@pytest.fixture
def cofunder():
    from tests.factories import OrganisationFactory

    return OrganisationFactory(funder=True, name="CU du Grand Reims")


@pytest.fixture
def program(funder, cofunder):
    from tests.factories import ProgramFactory

    return ProgramFactory(owner=funder, cofunder=cofunder)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
