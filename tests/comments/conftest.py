import pytest

from tests.factories import UserFactory


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")
