"""Erasure against in-memory ports: after `ProfileErased` nothing the service keeps (contact book,
delivery log, inboxes, webhook bodies, timers) holds the person's name, address or words, the
other party's inbox still reads, and nothing arriving later brings any of it back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mentorship_contracts import Envelope
from mentorship_contracts.matching import IntroductionMade, MentorshipRequested
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_contracts.scheduling import MilestoneReached
from notification_service import domain
from notification_service.application import RELEASE_TIMER, RETRY_TIMER
from tests.unit.notification.test_notification_use_cases import NOW, World, known, snapshot, world

SECRET = "my divorce is why I need a mentor"
TITLE = "My first conference talk"


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *strings(v)]]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


def stored(w: World) -> list[str]:
    """Every string the service keeps, in every port."""
    return strings([w.contacts.docs, w.deliveries.docs, w.inbox.items, w.endpoints.docs, w.fake.timers.timers])


def assert_forgotten(w: World) -> None:
    leaks = [s for s in stored(w) if any(p in s for p in ("Ada", "ada@example.org", SECRET, "conference"))]
    assert not leaks


def requested(message: str = SECRET) -> Envelope[Any]:
    return Envelope.wrap(
        MentorshipRequested(
            mentorship_id="m1", mentee_id="ada", mentor_id="grace", message=message, expires_at=NOW + timedelta(days=7)
        ),
        source="matching",
        time=NOW,
    )


def milestone() -> Envelope[Any]:
    return Envelope.wrap(
        MilestoneReached(
            mentorship_id="m1", milestone_id="ms1", title=TITLE, mentor_id="grace", mentee_id="ada", reached_at=NOW
        ),
        source="scheduling",
        time=NOW,
    )


async def inbox_texts(w: World, pid: str) -> list[str]:
    items = await w.notifications.inbox_page(pid, limit=100, after=None, unread_only=False)
    return [f"{i['title']} | {i['text']}" for i in items]


async def full_history(w: World) -> None:
    await known(
        w,
        snapshot("ada", "Ada Lovelace"),
        snapshot("grace", "Grace Hopper"),
        snapshot("alan", "Alan", quiet_hours={"start": "11:00", "end": "14:00"}),
    )
    await w.endpoints.add(
        {
            "_id": "wh_1",
            "url": "https://hooks.example.org/x",
            "secret": "s",
            "enabled": True,
            "event_types": ["*"],
            "consecutive_failures": 0,
        }
    )
    await w.notifications.handle(requested())
    await w.notifications.handle(milestone())
    w.webhooks.statuses = [503]  # the introduction's webhook delivery is retrying at the erase
    await w.notifications.handle(
        Envelope.wrap(
            IntroductionMade(
                introduction_id="i1",
                mentorship_id="m1",
                mentee_id="ada",
                contact_id="alan",
                introduced_by="grace",
                message=SECRET,
            ),
            source="matching",
            time=NOW,
        )
    )


async def test_in_app_items_name_people_when_read_and_an_erased_one_as_a_former_member():
    w = world()
    await full_history(w)
    assert any("Ada Lovelace asked you to be their mentor" in t for t in await inbox_texts(w, "grace"))
    assert not [s for s in strings(w.inbox.items) if "Ada" in s]  # stored as references, not names
    await known(w, snapshot("ada", "Ada King"))  # a new name shows in old items too
    assert any("Ada King asked you" in t for t in await inbox_texts(w, "grace"))

    await w.notifications.forget("ada", NOW + timedelta(seconds=1))
    grace = await inbox_texts(w, "grace")
    assert len(grace) == 2 and any("a former member asked you to be their mentor" in t for t in grace)
    assert any("A milestone was reached" in t for t in grace)  # its title (the person's words) is never shown
    assert not [t for t in grace if "Ada" in t or "conference" in t]
    assert await inbox_texts(w, "ada") == []


async def test_erasure_leaves_no_name_address_or_words_and_cancels_what_would_still_be_sent():
    w = world()
    await full_history(w)
    # Alan (quiet hours) has the introduction held: it names Ada; the introducer's words were never
    # in it (the v1 event is read as v2, which has none: the email links to the app instead).
    held = w.deliveries.of("alan")["email"]
    assert held["state"] == "held" and "Ada" in held["message"]["text"]
    assert SECRET not in held["message"]["text"] and "They wrote a note" in held["message"]["text"]
    hook = next(d for d in w.deliveries.docs.values() if d["channel"] == "webhook" and d["state"] == "retrying")
    assert SECRET not in hook["message"]["body"] and '"has_message":true' in hook["message"]["body"].replace(" ", "")
    # Delivered messages keep ids and states only, the erasure or not.
    assert all(d["message"] is None for d in w.deliveries.docs.values() if d["state"] == "delivered")

    await w.notifications.forget("ada", NOW + timedelta(seconds=1))
    assert_forgotten(w)
    assert w.contacts.docs["ada"] == {"_id": "ada", "erased": True, "as_of": NOW + timedelta(seconds=1)}
    held = w.deliveries.docs[held["_id"]]
    assert (held["state"], held["reason"], held["message"]) == ("cancelled", domain.ERASED_MENTION, None)
    assert not [t for t in w.fake.timers.pending(RELEASE_TIMER) if t["payload"]["delivery_id"] == held["_id"]]
    hook = w.deliveries.docs[hook["_id"]]
    assert hook["state"] == "retrying" and '"mentee_id":"ada"' in hook["message"]["body"].replace(" ", "")
    assert {d["state"] for d in w.deliveries.of("ada").values()} <= {"delivered", "cancelled", "skipped", "failed"}

    # The webhook retry still goes out, without the words.
    [retry] = [t for t in w.fake.timers.pending(RETRY_TIMER) if t["payload"]["delivery_id"] == hook["_id"]]
    await w.notifications.on_timer(retry, retry["due_at"])
    assert w.deliveries.docs[hook["_id"]]["state"] == "delivered"
    assert SECRET.encode() not in w.webhooks.calls[-1]["body"]


async def test_a_second_erasure_changes_nothing_and_late_events_bring_nobody_back():
    w = world()
    await full_history(w)
    await w.notifications.forget("ada", NOW + timedelta(seconds=1))
    before = stored(w)
    await w.notifications.forget("ada", NOW + timedelta(minutes=5))
    assert stored(w) == before

    # A ProfileUpdated written before the erase but arriving after it, and one dated later.
    for at in (NOW, NOW + timedelta(days=1)):
        await w.notifications.contact_changed(
            ProfileSnapshot(profile_id="ada", display_name="Ada Lovelace", email="ada@example.org", roles=["mentee"]),
            at,
        )
    # A re-driven dead letter about her: Grace is still told, without Ada's name or words.
    sent = len(w.mailer.sent)
    await w.notifications.handle(requested())  # a new event id: a new request, re-driven
    assert_forgotten(w)
    assert w.contacts.docs["ada"]["erased"]
    [mail] = [m for m, to in w.mailer.sent[sent:]]
    assert "a former member" in str(mail["Subject"]) and SECRET not in mail.as_string()
    assert SECRET.encode() not in w.webhooks.calls[-1]["body"] and b'"ada"' in w.webhooks.calls[-1]["body"]


async def test_a_retry_or_release_after_the_erase_sends_nothing_to_the_person():
    w = world()
    await known(w, snapshot("ada", "Ada Lovelace"), snapshot("grace", "Grace Hopper"))

    async def flaky(message: Any, recipient: str) -> None:
        raise ConnectionError("smtp went away")

    w.mailer.send = flaky  # type: ignore[method-assign]
    await w.notifications.handle(milestone())
    timers = w.fake.timers.pending(RETRY_TIMER)
    assert len(timers) == 2
    # The retry timer write of an attempt in flight can land after the erase: the attempt checks.
    await w.notifications.forget("ada", NOW + timedelta(seconds=1))
    for timer in timers:
        w.fake.timers.timers[timer["_id"]]["state"] = "pending"
        await w.deliveries.move(timer["payload"]["delivery_id"], "cancelled", "retrying", NOW)
    w.mailer.send = type(w.mailer).send.__get__(w.mailer)  # type: ignore[method-assign]
    for timer in timers:
        await w.notifications.on_timer(timer, timer["due_at"])
    assert w.mailer.sent == []  # Ada's own is cancelled, and Grace's email names Ada
    assert {d["state"] for d in w.deliveries.docs.values() if d["channel"] == "email"} == {"cancelled"}
    assert_forgotten(w)


async def test_an_attempt_under_way_at_the_erase_leaves_no_retry_behind():
    w = world()
    await known(w, snapshot("ada", "Ada Lovelace"), snapshot("grace", "Grace Hopper"))

    async def erased_while_sending(message: Any, recipient: str) -> None:
        await w.notifications.forget("ada", NOW)  # the erasure runs while this attempt is under way
        raise ConnectionError("smtp went away")

    w.mailer.send = erased_while_sending  # type: ignore[method-assign]
    await w.notifications.handle(milestone())
    emails = [d for d in w.deliveries.docs.values() if d["channel"] == "email"]
    assert {(d["state"], d["message"]) for d in emails} == {("cancelled", None)}
    assert w.fake.timers.pending(RETRY_TIMER) == []
    # Grace's in-app item, sent concurrently, is written after the erasure rewrote the stored
    # items: its sender sees the tombstone and drops the words itself.
    assert_forgotten(w)
