"""Profile use cases against an in-memory repository: events, versions, conflicts, import."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mentorship_contracts.profile import (
    ProfileErased,
    ProfileRegisteredV2,
    ProfileRoleAdded,
    ProfileState,
    ProfileUpdatedV2,
    Role,
)
from mentorship_kit.outbox import Tombstone
from mentorship_kit.problems import Conflict, NotFound, Unprocessable
from profile_service import domain
from profile_service.application import PreconditionFailed, ProfileUseCases
from profile_service.import_format import read_jsonl
from profile_service.importing import ImportReport, ProfileImportUseCases
from profile_service.settings import Settings
from tests.unit.kit_fakes import FakeContext
from tests.unit.profile.fakes import FakeProfileRepository


def person(pid: str = "p1", email: str = "ada@example.org", **extra: object):
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


async def test_register_then_change_emits_one_correlated_event_each(profiles, repo, fake):
    stored = await profiles.register(person(), correlation_id="req-1")
    assert stored.version == 1
    changed = await profiles.update("p1", {"job_title": "Engineer"}, expected_version=1)
    assert changed.version == 2 and changed.profile.job_title == "Engineer"
    registered, updated = repo.outbox
    assert isinstance(registered.data, ProfileRegisteredV2) and registered.correlationid == "req-1"
    assert isinstance(updated.data, ProfileUpdatedV2) and updated.correlationid == updated.id
    # each write also publishes the whole current profile on profile.state, with the profile's version
    assert [(type(s.data), s.data.version, s.data.profile.job_title) for s in repo.states] == [
        (ProfileState, 1, None),
        (ProfileState, 2, "Engineer"),
    ]
    assert {e.source for e in repo.outbox} == {"profile"}
    assert registered.time.year == 2031  # the service's clock (movable in demos), not the wall clock
    assert fake.written == 2  # the relay is woken after each write that queued events


async def test_a_change_that_changes_nothing_writes_and_emits_nothing(profiles, repo, fake):
    await profiles.register(person(job_title="Engineer"))
    same = await profiles.update("p1", {"job_title": "Engineer"})
    assert same.version == 1 and len(repo.outbox) == 1 and fake.written == 1


async def test_stale_version_duplicate_email_and_bad_input_are_refused(profiles, repo):
    await profiles.register(person())
    await profiles.register(person("p2", "grace@example.org"))
    with pytest.raises(PreconditionFailed):
        await profiles.update("p1", {"job_title": "x"}, expected_version=7)
    with pytest.raises(Conflict):
        await profiles.update("p2", {"email": "ADA@example.org"})
    with pytest.raises(Conflict):
        await profiles.register(person("p3", "ada@example.org"))
    with pytest.raises(Unprocessable):
        await profiles.update("p1", {"time_zone": "Mars/Olympus"})
    assert len(repo.outbox) == 2


async def test_roles_and_erasure(profiles, repo):
    await profiles.register(person())
    await profiles.add_role("p1", Role.MENTOR, mentor_capacity=2)
    assert isinstance(repo.outbox[-1].data, ProfileRoleAdded)
    await profiles.erase("p1")
    assert isinstance(repo.outbox[-1].data, ProfileErased)
    tombstone = repo.states[-1]  # profile.state: a null value, so compaction removes the person's states
    assert isinstance(tombstone, Tombstone) and tombstone.key == "p1" and tombstone.topic == "profile.state"
    await profiles.erase("p1")  # erasing again is a no-op
    with pytest.raises(NotFound):
        await profiles.get("p1")
    with pytest.raises(NotFound):
        await profiles.erase("nobody")


async def test_import_creates_updates_and_rejects_in_one_correlation(fake, repo, profiles):
    await profiles.register(person("p1", "ada@example.org"), by_admin=True)  # verified: the import may merge
    imports = ProfileImportUseCases(fake.ctx, settings=Settings(profile_import_batch_size=2), profiles=repo)
    rows = read_jsonl(
        '{"email": "ada@example.org", "display_name": "Ada", "roles": ["mentee"], "job_title": "Lead"}\n'
        '{"email": "grace@example.org", "display_name": "Grace", "roles": ["mentor"], "mentor_capacity": 1}\n'
        '{"email": "grace@example.org", "display_name": "Grace again", "roles": ["mentee"]}\n'
        '{"email": "bad", "display_name": "Bad", "roles": ["mentee"]}\n'
    )
    report = ImportReport()
    messages = [m async for m in imports.run(rows, report, correlation_id="import-1")]
    assert report.counts() == {"rows": 4, "created": 1, "updated": 1, "unchanged": 0, "rejected": 2, "held": 0}
    assert [m["type"] for m in messages].count("progress") == 2  # one per batch of two rows
    imported = repo.outbox[1:]
    assert {type(e.data) for e in imported} == {ProfileUpdatedV2, ProfileRegisteredV2}
    assert {e.correlationid for e in imported} == {"import-1"}
    again = ImportReport()
    _ = [
        m
        async for m in imports.run(
            read_jsonl(
                '{"email": "ada@example.org", "display_name": "Ada", "roles": ["mentee"], "job_title": "Lead"}\n'
            ),
            again,
        )
    ]
    assert again.unchanged == 1 and len(repo.outbox) == 3
