"""Erasure over the real broker and store: a person with a full history (emails naming her to the
other party, in-app items at both sides, webhook deliveries about her, a held quiet-hours message,
a retrying delivery) is erased; then no string in any document of any collection of the
service's database holds her name, address or the words used, the other party's inbox still
lists its items (showing "a former member"), her timers are gone, a second erasure changes
nothing and a later ProfileState does not bring her back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from mentorship_contracts import Envelope
from mentorship_contracts.matching import (
    Agreement,
    IntroductionMade,
    MentorshipRequestAccepted,
    MentorshipRequested,
    MentorshipStarted,
)
from mentorship_contracts.profile import ProfileErased, ProfileSnapshot, ProfileState
from mentorship_contracts.scheduling import MilestoneReached, SessionScheduled
from mentorship_kit.consumer import PROCESSED
from mentorship_kit.timers import TIMERS
from tests.integration.notification.conftest import Running, known, person
from tests.support.kafka import eventually
from tests.support.processes import token
from tests.support.scan import found_in

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
ADA, GRACE, ALAN = "ada", "grace", "alan"
NAME, EMAIL = "Ada Lovelace", "ada@example.org"
WORDS = {
    "request": "I keep freezing in front of the board",
    "goal": "Speak calmly at the quarterly review",
    "agenda": "Rehearse the analytical engine pitch",
    "milestone": "First talk without notes",
    "introduction": "Ada wants to learn about compilers from you",
}
FORGOTTEN = (NAME, "Lovelace", EMAIL, *WORDS.values())
# The service's own collections (the kit's consumer markers and offsets hold event ids only).
OWN = ("contacts", "contact_waits", "deliveries", "inbox", "webhook_endpoints", "session_durations")


async def own_state(service: Running) -> dict[str, list[dict[str, Any]]]:
    """The service's own documents, but the webhook side (the flaky endpoint's retries go on meanwhile)."""
    db = service.runtime.db
    return {
        name: [d async for d in db[name].find({}).sort("_id", 1) if d.get("channel") != "webhook"]
        for name in OWN
        if name != "webhook_endpoints"
    }


async def settled_state(service: Running) -> dict[str, list[dict[str, Any]]] | None:
    """The service's own state once two reads a second apart agree (retries and timers have run)."""
    first = await own_state(service)
    await asyncio.sleep(1)
    return first if await own_state(service) == first else None


async def handled(service: Running, event: Envelope[Any]) -> bool:
    return await service.runtime.db[PROCESSED].find_one({"_id": f"contacts:{event.id}"}) is not None


async def inbox(service: Running, pid: str) -> list[dict[str, Any]]:
    r = await service.http.get(f"/people/{pid}/inbox", headers=token(pid), params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_an_erased_person_leaves_nothing_readable_and_late_events_bring_nothing_back(service, smtp, receiver):
    box, _ = smtp
    receiver.statuses["flaky"] = 503
    for path, types in (("all", ["*"]), ("flaky", ["mentorship.matching.introduction_made"])):
        r = await service.http.post(
            "/webhooks",
            headers=ADMIN,
            json={"url": receiver.url(path), "secret": receiver.secret, "event_types": types},
        )
        assert r.status_code == 201, r.text
    flaky = r.json()["endpoint_id"]
    now = service.runtime.clock.now()
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=1)).strftime("%H:%M")}
    await service.send(person(ADA, NAME))
    await service.send(person(GRACE, "Grace Hopper", roles=("mentor",)))
    await service.send(person(ALAN, "Alan Turing", roles=("mentor",), prefs={"quiet_hours": quiet}))
    await known(service, ADA, GRACE, ALAN)

    m = dict(mentorship_id="m-1", mentee_id=ADA, mentor_id=GRACE)
    requested = await service.send(
        MentorshipRequested(**m, message=WORDS["request"], expires_at=now + timedelta(days=7))
    )
    started = await service.send(MentorshipStarted(**m, agreement=Agreement(goals=[WORDS["goal"]]), started_at=now))
    session = await service.send(
        SessionScheduled(
            **m,
            session_id="s-1",
            ical_uid="s-1@mentorship",
            start=now + timedelta(days=2),
            duration_minutes=45,
            agenda=WORDS["agenda"],
            scheduled_by=ADA,
        )
    )
    milestone = await service.send(MilestoneReached(**m, milestone_id="ms-1", title=WORDS["milestone"], reached_at=now))
    intro = await service.send(
        IntroductionMade(
            introduction_id="i-1",
            mentorship_id="m-1",
            mentee_id=ADA,
            contact_id=ALAN,
            introduced_by=GRACE,
            message=WORDS["introduction"],
        )
    )
    for event in (requested, started, session, milestone):
        await service.delivery(f"{event.id}:{GRACE}:email", state="delivered")
        await service.delivery(f"{event.id}:{GRACE}:in_app", state="delivered")
    await service.delivery(f"{intro.id}:{ADA}:email", state="delivered")
    held = await service.delivery(f"{intro.id}:{ALAN}:email", state="held")
    await service.delivery(f"{intro.id}:{ALAN}:in_app", state="held")
    await service.delivery(f"{intro.id}:{flaky}:webhook", state="retrying")
    await eventually(lambda: _async(len(receiver.on("all")) >= 5))
    # Her own email fails for now (the mail server is away): a retrying delivery with her address.
    box.stop()
    accepted = await service.send(MentorshipRequestAccepted(mentorship_id="m-2", mentee_id=ADA, mentor_id=GRACE))
    retrying_mail = await service.delivery(f"{accepted.id}:{ADA}:email", state="retrying")

    assert any(NAME in str(msg["Subject"]) for msg in box.to("grace@example.org"))  # she was named to Grace
    # v1 events in, v2 out: webhooks carry flags, never the words (a v1 subscription gets v2)
    assert not any(WORDS["request"] in str(call["body"]) for call in receiver.on("all"))
    assert any('"has_message":true' in str(call["body"]).replace(" ", "") for call in receiver.on("all"))
    assert await found_in(service.runtime.db, FORGOTTEN)  # the scan sees what is there
    grace_before = await inbox(service, GRACE)
    assert any(NAME in i["title"] for i in grace_before)
    # Its retry timer (the mail server stays away until after the erasure, so it cannot succeed first).
    await eventually(lambda: _pending_timers(service, ADA))

    assert WORDS["introduction"] not in str(receiver.on("flaky")[0]["body"])
    erased = await service.send(ProfileErased(profile_id=ADA))
    await eventually(lambda: handled(service, erased))
    box.start()
    hook_calls = len(receiver.on("flaky"))

    assert await found_in(service.runtime.db, FORGOTTEN) == []
    # Grace's inbox still lists every item, naming Ada as a former member.
    grace_after = await inbox(service, GRACE)
    assert [i["item_id"] for i in grace_after] == [i["item_id"] for i in grace_before]
    assert any("a former member asked you to be their mentor" in i["title"] for i in grace_after)
    assert any(i["title"] == "A milestone was reached" for i in grace_after)
    assert await inbox(service, ADA) == []
    # Her timers are gone; the held email about her is cancelled, Alan's in-app item still comes.
    assert await service.runtime.db[TIMERS].count_documents({"group": ADA, "state": "pending"}) == 0
    assert (await service.delivery(retrying_mail["_id"]))["state"] == "cancelled"
    assert (await service.delivery(held["_id"]))["state"] == "cancelled"
    service.runtime.clock.set(held["due_at"] + timedelta(hours=2))
    await service.fire_timers()
    await service.delivery(f"{intro.id}:{ALAN}:in_app", state="delivered")
    # The webhook retry after the erasure (timer or recovery) goes out without the words.
    await eventually(lambda: _async(len(receiver.on("flaky")) > hook_calls))
    assert [i["title"] for i in await inbox(service, ALAN)] == ["Grace Hopper introduced you to a former member"]
    assert all(WORDS["introduction"] not in str(call["body"]) for call in receiver.on("flaky")[hook_calls:])
    assert box.to(EMAIL) == [m for m in box.to(EMAIL) if m["X-Mentorship-Delivery"] != retrying_mail["_id"]]
    assert await found_in(service.runtime.db, FORGOTTEN) == []

    # A second erasure changes nothing; a ProfileState written before it (replayed) or after does
    # not bring her back, nor does a late event about her.
    before = await eventually(lambda: settled_state(service), timeout=60)  # in-flight deliveries done first
    again = await service.send(ProfileErased(profile_id=ADA))
    await eventually(lambda: handled(service, again))
    assert await own_state(service) == before
    snapshot = ProfileSnapshot(profile_id=ADA, display_name=NAME, email=EMAIL, roles=["mentee"])
    # her state on profile.state again (a replay before compaction); someone's state after it (one
    # partition: read after it) tells it was read
    await service.send(ProfileState(profile_id=ADA, version=9, profile=snapshot))
    other = ProfileSnapshot(
        profile_id="after-ada", display_name="Someone Else", email="else@example.org", roles=["mentee"]
    )
    await service.send(ProfileState(profile_id="after-ada", version=1, profile=other))
    await known(service, "after-ada")
    late = await service.send(
        MentorshipRequested(
            mentorship_id="m-3",
            mentee_id=ADA,
            mentor_id=GRACE,
            message=WORDS["request"],
            expires_at=now + timedelta(days=7),
        )
    )
    await service.delivery(f"{late.id}:{GRACE}:in_app", state="delivered")
    assert (await service.notifications.contacts.get(ADA)).get("erased")
    assert await found_in(service.runtime.db, FORGOTTEN) == []
    [late_mail] = box.for_event(late.id)
    assert "a former member" in str(late_mail["Subject"]) and WORDS["request"] not in late_mail.as_string()


async def _pending_timers(service: Running, group: str) -> int:
    return await service.runtime.db[TIMERS].count_documents({"group": group, "state": "pending"})


async def _async(value: Any) -> Any:
    return value
