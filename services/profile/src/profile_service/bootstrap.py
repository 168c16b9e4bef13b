"""Everything the profile service process is made of, gathered in one place.

Stores, use cases, indexes, outbox collections and produced topics. The profile service
consumes no topic and runs no timers: it is the source of truth for people.
"""

from __future__ import annotations

from dataclasses import dataclass

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime

from .adapters.repository import INDEXES, PROFILES, ProfileRepository
from .application import ProfileIdentities, ProfileUseCases
from .importing import ProfileImportUseCases
from .provisioning import ScimProvisioning
from .settings import Settings


@dataclass(frozen=True)
class ProfileApp:
    """The profile service's application objects."""

    profiles: ProfileUseCases
    imports: ProfileImportUseCases
    scim: ScimProvisioning


def bootstrap(settings: Settings | None = None) -> tuple[ServiceRuntime, ProfileApp]:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    ctx = runtime.context()
    repository = ProfileRepository(runtime.db)
    profiles = ProfileUseCases(ctx, settings=settings, profiles=repository)
    app = ProfileApp(
        profiles=profiles,
        imports=ProfileImportUseCases(ctx, settings=settings, profiles=repository),
        scim=ScimProvisioning(profiles),
    )
    runtime.identities = ProfileIdentities(repository)
    runtime.indexes(INDEXES)
    runtime.outbox_collection(PROFILES)
    runtime.produces(Topic.PROFILE, Topic.PROFILE_STATE)
    return runtime, app
