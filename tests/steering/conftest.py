import pytest

from tests.steering.world import build_world


@pytest.fixture
def world(db):
    return build_world()
