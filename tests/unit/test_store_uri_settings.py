"""Each service reads its own store URI (<SERVICE>_MONGODB_URI) before the shared MONGODB_URI."""

from __future__ import annotations

import pytest

from mentorship_kit.settings import ServiceSettings


class ProfileLikeSettings(ServiceSettings):
    service_name: str = "profile"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONGODB_URI", "SERVICE_NAME", "PROFILE_MONGODB_URI", "MATCHING_MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)


def test_mongodb_uri_is_the_default_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://shared:1/")
    assert ProfileLikeSettings().mongodb_uri == "mongodb://shared:1/"


def test_the_service_s_own_uri_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://shared:1/")
    monkeypatch.setenv("PROFILE_MONGODB_URI", "mongodb://profile-store:2/")
    monkeypatch.setenv("MATCHING_MONGODB_URI", "mongodb://matching-store:3/")
    assert ProfileLikeSettings().mongodb_uri == "mongodb://profile-store:2/"


def test_service_name_from_the_environment_picks_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_NAME", "matching")
    monkeypatch.setenv("PROFILE_MONGODB_URI", "mongodb://profile-store:2/")
    monkeypatch.setenv("MATCHING_MONGODB_URI", "mongodb://matching-store:3/")
    assert ProfileLikeSettings().mongodb_uri == "mongodb://matching-store:3/"


def test_an_argument_wins_over_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFILE_MONGODB_URI", "mongodb://profile-store:2/")
    assert ProfileLikeSettings(mongodb_uri="mongodb://given:4/").mongodb_uri == "mongodb://given:4/"


def test_without_any_variable_the_local_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProfileLikeSettings().mongodb_uri == "mongodb://127.0.0.1:27017/"
