"""Right to be forgotten: what scheduling does when a person erased their profile.

Future sessions with the person are cancelled through the normal path (SessionCancelled, so the
other participant is told; the event carries ids, times and a neutral reason only), every session
with them loses its free text, their booking claims, timers and calendar feeds go, and their
mentorships here end without participants or milestones. Every step is idempotent: a duplicate
`ProfileErased` changes nothing more. The profile tombstone keeps later events from bringing the
person back (a late profile update, a late or re-driven start of a mentorship with them).
"""

from __future__ import annotations

import contextlib
from typing import Any

from mentorship_contracts import Envelope
from mentorship_kit.problems import Conflict

from ..domain import LEFT_REASON, scrubbed_session
from .sessions import SessionUseCases


class Forgetting(SessionUseCases):
    async def profile_erased(self, event: Envelope[Any]) -> None:
        person_id: str = event.data.profile_id
        await self.profiles.erase(person_id, event.time)
        now = self.now()
        for s in await self.store.all_of_person(person_id):
            # Scrub before cancelling: the cancel puts an event in the session's outbox, and the
            # relay's later removal rewrites the document; on FerretDB (read-modify-write) a scrub
            # racing that removal could be lost, a scrub written before it cannot.
            await self.store.scrub(s["_id"], scrubbed_session(s))
            if s["status"] == "scheduled" and s["start"] > now:
                with contextlib.suppress(Conflict):  # changed meanwhile (cancelled by someone): nothing to do
                    await self.cancel(None, s["_id"], reason=LEFT_REASON, cause=event, by="system")
            await self.ctx.timers.cancel_group(f"session:{s['_id']}")
        await self.store.release_person(person_id)
        for m in await self.mentorships.of_person(person_id):
            await self.ctx.timers.cancel_group(f"checkin:{m['_id']}")
            await self.mentorships.participant_left(m["_id"])
        await self.store.forget_person(person_id)  # calendar feed tokens
