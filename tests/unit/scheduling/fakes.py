"""In-memory stores of the scheduling service, with the contracts of `adapters.read_models` and
`adapters.sessions` (conditional writes on the sequence, per-person booking claims); the events
of each write are kept in `outbox`."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from mentorship_contracts import Envelope
from scheduling_service.adapters.sessions import BookingConflict, claim_id
from scheduling_service.domain import OPEN_STATUSES, buckets


class Outbox:
    def __init__(self) -> None:
        self.outbox: list[Envelope[Any]] = []

    def types(self) -> list[str]:
        return [e.type.rsplit(".", 1)[1] for e in self.outbox]


class FakeMentorships(Outbox):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}

    async def started(
        self,
        *,
        mentorship_id: str,
        mentor_id: str,
        mentee_id: str,
        cadence: str,
        goal_count: int,
        goal_ids: list[str],
        planned_end: str | None,
        started_at: datetime,
        event_time: datetime,
    ) -> bool:
        current = self.docs.get(mentorship_id)
        if current is not None and current["as_of"] > event_time:
            return False
        fields = {
            "status": "active",
            "mentor_id": mentor_id,
            "mentee_id": mentee_id,
            "participants": [mentor_id, mentee_id],
            "cadence": cadence,
            "planned_end": planned_end,
            "started_at": started_at,
            "as_of": event_time,
        }
        if current is None:
            milestones = {
                f"m{i + 1}": {
                    "title": None,
                    "goal_id": goal_ids[i] if i < len(goal_ids) else None,
                    "reached_at": None,
                    "order": i + 1,
                }
                for i in range(max(goal_count, len(goal_ids)))
            }
            current = self.docs[mentorship_id] = {
                "_id": mentorship_id,
                "milestones": milestones,
                "last_session_at": None,
            }
        current.update(fields)
        return True

    async def revised(self, mentorship_id: str, *, cadence: str, planned_end: str | None, event_time: datetime) -> bool:
        current = self.docs.get(mentorship_id)
        if current is None or current["as_of"] > event_time or current.get("status") != "active":
            return False
        current.update(cadence=cadence, planned_end=planned_end, as_of=event_time)
        return True

    async def ended(self, mentorship_id: str, event_time: datetime) -> bool:
        current = self.docs.setdefault(mentorship_id, {"_id": mentorship_id, "as_of": event_time})
        if current["as_of"] > event_time:
            return False
        current.update(status="ended", milestones={}, participants=[], as_of=event_time)
        return True

    async def get(self, mentorship_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.docs.get(mentorship_id))

    async def session_held(self, mentorship_id: str, start: datetime) -> None:
        m = self.docs[mentorship_id]
        if m["last_session_at"] is None or m["last_session_at"] < start:
            m["last_session_at"] = start

    async def add_milestone(self, mentorship_id: str, milestone_id: str, milestone: dict[str, Any]) -> None:
        self.docs[mentorship_id]["milestones"][milestone_id] = dict(milestone)

    async def reach_milestone(
        self, mentorship_id: str, milestone_id: str, *, at: datetime, by: str, events: list[Envelope[Any]]
    ) -> bool:
        ms = self.docs[mentorship_id]["milestones"].get(milestone_id)
        if ms is None or ms["reached_at"] is not None:
            return False
        ms.update(reached_at=at, reached_by=by)
        self.outbox += events
        return True

    async def of_person(self, person_id: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(m) for m in self.docs.values() if person_id in m.get("participants", [])]

    async def participant_left(self, mentorship_id: str) -> None:
        self.docs[mentorship_id].update(status="ended", milestones={}, participants=[])


class FakeProfiles:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def upsert(
        self,
        profile_id: str,
        time_zone: str,
        availability: list[dict[str, Any]],
        event_time: datetime,
        *,
        external_id: str | None = None,
    ) -> bool:
        current = self.docs.get(profile_id)
        if current is not None and (current.get("erased") or current["as_of"] > event_time):
            return False
        self.docs[profile_id] = {
            "_id": profile_id,
            "time_zone": time_zone,
            "availability": availability,
            "as_of": event_time,
            "external_id": external_id,
        }
        return True

    async def erase(self, profile_id: str, event_time: datetime) -> None:
        if not await self.is_erased(profile_id):
            self.docs[profile_id] = {"_id": profile_id, "erased": True, "as_of": event_time}

    async def is_erased(self, profile_id: str) -> bool:
        return bool(self.docs.get(profile_id, {}).get("erased"))

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(profile_id)
        return None if doc is None or doc.get("erased") else dict(doc)


class FakeSessions(Outbox):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.claims: dict[str, str] = {}  # claim id -> session id
        self.feeds: dict[str, str] = {}  # token hash -> person id

    async def get(self, session_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.sessions.get(session_id))

    async def add(self, session: dict[str, Any], events: list[Envelope[Any]]) -> None:
        assert session["_id"] not in self.sessions
        self.sessions[session["_id"]] = copy.deepcopy(session)
        self.outbox += events

    async def _update(
        self,
        session_id: str,
        expected_sequence: int,
        fields: dict[str, Any],
        events: list[Envelope[Any]],
        *,
        next_sequence: bool,
    ) -> dict[str, Any] | None:
        s = self.sessions.get(session_id)
        if s is None or s["sequence"] != expected_sequence or s["status"] not in OPEN_STATUSES:
            return None
        s.update(fields)
        if next_sequence:
            s["sequence"] += 1
        self.outbox += events
        return copy.deepcopy(s)

    async def move(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        start: datetime,
        duration_minutes: int,
        location: str | None,
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            {
                "start": start,
                "end": start + timedelta(minutes=duration_minutes),
                "duration_minutes": duration_minutes,
                "location": location,
                "updated_at": now,
            },
            events,
            next_sequence=True,
        )

    async def cancel(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        reason: str,
        by: str | None,
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            {"status": "cancelled", "cancel_reason": reason, "cancelled_by": by, "updated_at": now},
            events,
            next_sequence=True,
        )

    async def complete(
        self, session_id: str, expected_sequence: int, *, notes: str, now: datetime, events: list[Envelope[Any]]
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            {"status": "completed", "notes": notes, "completed_at": now, "updated_at": now},
            events,
            next_sequence=False,
        )

    async def no_show(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        absent_ids: list[str],
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            {"status": "no_show", "absent_ids": absent_ids, "updated_at": now},
            events,
            next_sequence=False,
        )

    async def add_feedback(
        self, session_id: str, role: str, feedback: dict[str, Any], events: list[Envelope[Any]]
    ) -> bool:
        s = self.sessions[session_id]
        if s["status"] != "completed" or role in s["feedback"]:
            return False
        s["feedback"][role] = dict(feedback)
        self.outbox += events
        return True

    def _sorted(self, docs: list[dict[str, Any]], key: str = "start") -> list[dict[str, Any]]:
        return [copy.deepcopy(d) for d in sorted(docs, key=lambda d: d[key])]

    async def of_mentorship(self, mentorship_id: str) -> list[dict[str, Any]]:
        return self._sorted([s for s in self.sessions.values() if s["mentorship_id"] == mentorship_id])

    async def upcoming(self, now: datetime) -> list[dict[str, Any]]:
        return self._sorted([s for s in self.sessions.values() if s["status"] == "scheduled" and s["start"] > now])

    async def of_series(self, series_id: str) -> list[dict[str, Any]]:
        return self._sorted([s for s in self.sessions.values() if s.get("series_id") == series_id], "series_index")

    async def of_person(self, person_id: str, since: datetime) -> list[dict[str, Any]]:
        return self._sorted(
            [s for s in self.sessions.values() if person_id in s["participants"] and s["start"] >= since]
        )

    async def busy(
        self, people: Sequence[str], start: datetime, end: datetime, statuses: Sequence[str]
    ) -> list[dict[str, Any]]:
        return self._sorted(
            [
                s
                for s in self.sessions.values()
                if set(people) & set(s["participants"])
                and s["status"] in statuses
                and start - timedelta(days=1) <= s["start"] < end
            ]
        )

    async def claim(
        self, session_id: str, people: Sequence[str], start: datetime, duration_minutes: int, now: datetime
    ) -> list[str]:
        wanted = [(p, b, claim_id(p, b)) for p in people for b in buckets(start, duration_minutes)]
        for person, bucket, cid in wanted:
            holder = self.claims.get(cid)
            if holder is not None and holder != session_id:
                raise BookingConflict(person, holder, bucket)
        taken = [cid for _, _, cid in wanted if cid not in self.claims]
        for cid in taken:
            self.claims[cid] = session_id
        return taken

    async def release_ids(self, ids: Sequence[str]) -> None:
        for cid in ids:
            self.claims.pop(cid, None)

    async def release_except(
        self, session_id: str, keep_people: Sequence[str], start: datetime, duration_minutes: int
    ) -> None:
        keep = {claim_id(p, b) for p in keep_people for b in buckets(start, duration_minutes)}
        for cid in [c for c, sid in self.claims.items() if sid == session_id and c not in keep]:
            del self.claims[cid]

    async def set_feed(self, token_hash: str, person_id: str, now: datetime) -> None:
        self.feeds = {h: p for h, p in self.feeds.items() if p != person_id}
        self.feeds[token_hash] = person_id

    async def feed_owner(self, token_hash: str) -> str | None:
        return self.feeds.get(token_hash)

    async def forget_person(self, person_id: str) -> None:
        self.feeds = {h: p for h, p in self.feeds.items() if p != person_id}

    async def all_of_person(self, person_id: str) -> list[dict[str, Any]]:
        return self._sorted([s for s in self.sessions.values() if person_id in s["participants"]])

    async def scrub(self, session_id: str, changes: dict[str, Any]) -> bool:
        s = self.sessions[session_id]
        for key, value in changes.items():
            *path, last = key.split(".")
            target = s
            for part in path:
                target = target[part]
            target[last] = value
        return bool(changes)

    async def release_person(self, person_id: str) -> int:
        mine = [c for c in self.claims if c.startswith(f"{person_id}|")]
        for cid in mine:
            del self.claims[cid]
        return len(mine)
