import pytest

from passnum.geo.loader import load_geography
from passnum.geo.models import Commune


@pytest.fixture
def geography(db):
    """Migration 0002 loads the data; reload only if a transactional test flushed the tables."""
    if not Commune.objects.exists():
        load_geography()
