"""Imported forecasters live in their own namespace: never a site account, always a valid username."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from forecasting.io.imports import ImportFileError, forecasts_import
from forecasting.models import Prediction
from tests.factories import UserFactory
from tests.forecasting.io.test_import import CLEAN_ROWS, counts, write_csv

pytestmark = pytest.mark.django_db

RESOLVED = ["2020-01-01T00:00:00Z", "0.6", "1", "2020-03-01T00:00:00Z"]


def imported_forecasters() -> set[User]:
    return {prediction.forecaster for prediction in Prediction.objects.select_related("forecaster")}


def test_imported_id_equal_to_a_site_username_does_not_touch_that_account(tmp_path):
    alice = UserFactory(username="alice")
    password_hash = alice.password

    report = forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))

    assert report.imported == 5
    assert report.forecasters_created == 3  # alice of the file is a new forecaster, not the reader
    assert not Prediction.objects.filter(forecaster=alice).exists()
    alice.refresh_from_db()
    assert alice.password == password_hash
    assert alice.check_password("correct horse battery")
    usernames = {user.username for user in imported_forecasters()}
    assert len(usernames) == 3 and "alice" not in usernames
    assert all("alice" in name or "bob" in name or "carol" in name for name in usernames)


def test_a_site_account_holding_the_namespaced_name_is_never_reused(tmp_path):
    # the documented name of forecaster "alice" imported into the article "imported-first"
    squatter = UserFactory(username="alice@imported-first")

    report = forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS[:2], name="first.csv"))

    assert report.imported == 1  # bob's row
    assert [r.line for r in report.rejected] == [2]
    assert "alice@imported-first" in report.rejected[0].reason
    assert "site account" in report.rejected[0].reason
    assert not Prediction.objects.filter(forecaster=squatter).exists()
    squatter.refresh_from_db()
    assert squatter.check_password("correct horse battery")


@pytest.mark.parametrize("bad_id", ["evil/../admin", "a b", "tab\there", "semi;colon", "quote'd"])
def test_forecaster_id_that_is_not_a_valid_username_is_rejected_with_its_line(tmp_path, bad_id):
    rows = [["q1", "alice", *RESOLVED], ["q1", bad_id, *RESOLVED]]

    report = forecasts_import(path=write_csv(tmp_path, rows))

    assert report.imported == 1
    assert [r.line for r in report.rejected] == [3]
    assert "forecaster_id" in report.rejected[0].reason
    assert "letters, digits and @ . + - _" in report.rejected[0].reason
    assert not User.objects.filter(username__contains=bad_id).exists()


def test_too_long_forecaster_id_is_rejected_not_cut(tmp_path):
    rows = [["q1", "f" * 200, *RESOLVED], ["q1", "f" * 200 + "x", *RESOLVED], ["q1", "alice", *RESOLVED]]
    report = forecasts_import(path=write_csv(tmp_path, rows))
    assert [r.line for r in report.rejected] == [2, 3]
    assert all("forecaster_id longer than" in r.reason for r in report.rejected)
    assert report.imported == 1


def test_every_imported_username_is_valid_for_django(tmp_path):
    rows = [["q1", name, *RESOLVED] for name in ("alice", "a.b+c-d_e", "x@y", "Zoë", "1" * 90)]
    report = forecasts_import(path=write_csv(tmp_path, rows))
    assert report.rejected == []
    username_field = User._meta.get_field("username")
    for user in imported_forecasters():
        username_field.run_validators(user.username)  # raises ValidationError when invalid
        assert len(user.username) <= username_field.max_length


def test_slash_in_forecaster_id_does_not_break_the_public_pages(client, tmp_path):
    rows = [["q1", "alice", *RESOLVED], ["q1", "mallory/x", *RESOLVED], ["q1", "bob", *RESOLVED]]
    forecasts_import(path=write_csv(tmp_path, rows))
    article_slug = Prediction.objects.first().question.article.slug

    for url in (reverse("leaderboard"), reverse("article_leaderboard", args=[article_slug])):
        response = client.get(url)
        assert response.status_code == 200
        assert "mallory" not in response.content.decode()
    for forecaster in imported_forecasters():
        page = client.get(reverse("track_record", args=[forecaster.username]))
        assert page.status_code == 200
        assert forecaster.username in page.content.decode()
    assert len(imported_forecasters()) == 2


def test_reimport_with_namespaced_forecasters_creates_nothing(tmp_path):
    UserFactory(username="bob")  # a site reader sharing an id of the file
    path = write_csv(tmp_path, [*CLEAN_ROWS, ["q1", "bad/id", *RESOLVED]])
    first = forecasts_import(path=path)
    before = counts()

    again = forecasts_import(path=path)

    assert counts() == before
    assert (again.imported, again.already_imported, again.forecasters_created) == (0, 5, 0)
    assert [r.line for r in again.rejected] == [r.line for r in first.rejected] == [7]


def test_a_site_account_named_importer_is_not_made_the_author_of_resolutions(tmp_path):
    reader = UserFactory(username="importer")
    before = counts()

    with pytest.raises(ImportFileError, match="belongs to a site account"):
        forecasts_import(path=write_csv(tmp_path, CLEAN_ROWS))

    assert counts() == before
    reader.refresh_from_db()
    assert reader.is_active and reader.check_password("correct horse battery")
