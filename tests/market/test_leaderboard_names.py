"""How the market leaderboard names traders: a public reader by their display name, a private one as
"Private trader", a deleted account as "Deleted reader" with no link, whoever looks."""

import pytest

from accounts.services import account_delete
from forecasting import services as forecasting_services
from forecasting.services.profiles import DELETED_LABEL
from market import services
from market.services.portfolio import PRIVATE_TRADER
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def test_public_private_and_deleted_traders_are_named_as_they_chose():
    ada, bo, cy = (UserFactory(username=name) for name in ("ada", "bo", "cy"))
    for user in (ada, bo, cy):
        services.account_for_user(user=user)
    forecasting_services.profile_update(user=ada, is_public=True, display_name="Ada L.")
    forecasting_services.profile_update(user=cy, is_public=True)
    cy.set_password("a long pass phrase")
    cy.save()
    account_delete(user=cy, password="a long pass phrase")

    rows = {row["label"]: row for row in services.profit_leaderboard()}
    assert set(rows) == {"Ada L.", PRIVATE_TRADER, DELETED_LABEL}
    assert rows["Ada L."]["username"] == "ada"
    assert rows[PRIVATE_TRADER]["username"] is None and rows[DELETED_LABEL]["username"] is None

    # The viewer sees their own row named, unless the account is gone.
    mine = {row["label"] for row in services.profit_leaderboard(viewer=bo)}
    assert "bo" in mine and PRIVATE_TRADER not in mine
