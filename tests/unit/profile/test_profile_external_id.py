"""The directory's id on a profile: unique when set, set only by an admin, the import or SCIM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mentorship_kit.problems import Conflict, Forbidden
from profile_service import domain
from profile_service.adapters.repository import Lookup
from profile_service.application import ProfileUseCases
from profile_service.import_format import read_jsonl
from profile_service.importing import ImportReport, ProfileImportUseCases
from profile_service.settings import Settings
from tests.unit.kit_fakes import FakeContext
from tests.unit.profile.fakes import FakeProfileRepository


def person(pid: str, email: str, **extra: object):
    return domain.validate({"profile_id": pid, "display_name": "Ada", "email": email, "roles": ["mentee"], **extra})


@pytest.fixture
def fake() -> FakeContext:
    return FakeContext("profile", now=datetime(2031, 5, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def repo() -> FakeProfileRepository:
    return FakeProfileRepository()


@pytest.fixture
def profiles(fake: FakeContext, repo: FakeProfileRepository) -> ProfileUseCases:
    return ProfileUseCases(fake.ctx, settings=Settings(), profiles=repo)


def test_the_store_keys():
    assert domain.external_key(person("p1", "a@b.org")) == "none:p1"
    assert domain.external_key(person("p1", "a@b.org", external_id="none:p2")) == "id:none:p2"


async def test_unique_and_only_an_admin_sets_it(profiles):
    with pytest.raises(Forbidden):
        await profiles.register(person("p1", "a@b.org", external_id="emp-1"))
    await profiles.register(person("p1", "a@b.org", external_id="emp-1"), by_admin=True)
    with pytest.raises(Conflict) as caught:
        await profiles.register(person("p2", "b@b.org", external_id="emp-1"), by_admin=True)
    assert caught.value.extra["field"] == "external_id"
    await profiles.register(person("p2", "b@b.org"), by_admin=True)
    with pytest.raises(Forbidden):
        await profiles.update("p2", {"external_id": "emp-2"})
    with pytest.raises(Conflict):
        await profiles.update("p2", {"external_id": "emp-1"}, by_admin=True)
    assert (await profiles.update("p2", {"external_id": "emp-2"}, by_admin=True)).profile.external_id == "emp-2"
    total, found = await profiles.lookup(Lookup(external_id="emp-2"), skip=0, limit=10)
    assert total == 1 and found[0].profile.profile_id == "p2"


async def test_the_import_refuses_a_taken_or_repeated_external_id(fake, repo, profiles):
    await profiles.register(person("p1", "ada@example.org", external_id="emp-1"), by_admin=True)
    imports = ProfileImportUseCases(fake.ctx, settings=Settings(profile_import_batch_size=2), profiles=repo)
    rows = read_jsonl(
        '{"email": "ada@example.org", "display_name": "Ada", "roles": ["mentee"], "external_id": "emp-1"}\n'
        '{"email": "bob@example.org", "display_name": "Bob", "roles": ["mentee"], "external_id": "emp-1"}\n'
        '{"email": "cy@example.org", "display_name": "Cy", "roles": ["mentee"], "external_id": "emp-3"}\n'
        '{"email": "di@example.org", "display_name": "Di", "roles": ["mentee"], "external_id": "emp-3"}\n'
    )
    report = ImportReport()
    _ = [m async for m in imports.run(rows, report, correlation_id="import-1")]
    assert report.counts() == {"rows": 4, "created": 1, "updated": 0, "unchanged": 1, "rejected": 2, "held": 0}
    assert sorted((r.row, r.field, r.reason) for r in report.rejections) == [
        (2, "external_id", "already used by another profile"),
        (4, "external_id", "same external_id as row 3"),
    ]
