"""Each service reads its own store URI (<SERVICE>_MONGODB_URI) before the shared MONGODB_URI."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_the_operator_cli_finds_each_service_s_store_in_make_run_s_state_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mentorship_ops.connection import locate

    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "infra.json").write_text(
        json.dumps(
            {
                "kafka_bootstrap": "127.0.0.1:9",
                "mongodb_uri": "mongodb://default:1/",
                "mongodb_uris": {"profile": "mongodb://profile-store:2/"},
            }
        )
    )
    monkeypatch.setenv("MENTORSHIP_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    platform = locate()
    assert platform.store("profile") == "mongodb://profile-store:2/"
    assert platform.store("insights") == "mongodb://default:1/"  # no store of its own: the default one
    monkeypatch.setenv("MATCHING_MONGODB_URI", "mongodb://matching-store:3/")
    assert locate().store("matching") == "mongodb://matching-store:3/"
    assert locate(mongo="mongodb://given:4/").store("profile") == "mongodb://given:4/"
