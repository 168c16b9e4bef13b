from typing import Literal

from pydantic import Field

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "matching"
    http_port: int = 8002
    request_expiry_hours: float = Field(default=168.0, gt=0, description="An unanswered request expires after this")
    default_mentor_capacity: int = Field(
        default=2, ge=0, le=50, description="Capacity of a mentor whose profile gives none"
    )
    suggestion_hold_minutes: float = Field(
        default=30.0, ge=0, description="How long a shown suggestion counts against the mentor's free slots"
    )
    profile_index_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the in-memory mentor index looks for profile changes (a read of one counter)",
    )
    suggestion_max_k: int = Field(default=20, ge=1, le=100)
    cohort_candidates_k: int = Field(
        default=10,
        ge=1,
        le=500,
        description="Candidates per mentee in cohort runs (each mentor gets 5x as many mentees)",
    )

    # --- durable cohort runs and publishes, claims reconciler (issue 15) -----------------------
    cohort_run_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A computing cohort run is leased to its replica, renewed while it computes; "
        "another replica takes it over once the lease lapses",
    )
    cohort_run_watch_seconds: float = Field(
        default=10.0, gt=0, description="How often each replica looks for cohort runs whose replica stopped"
    )
    cohort_run_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Computations of one run (first + takeovers) before it is marked failed"
    )
    cohort_publish_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A cohort publish is leased to its replica; a retry or the reconciler resumes it once it lapses",
    )
    claims_reconcile_seconds: float = Field(
        default=60.0, gt=0, description="How often the claims reconciler runs (one replica at a time, leased)"
    )
    claims_reconcile_lease_seconds: float = Field(default=120.0, gt=0, description="Lease of the claims reconciler")
    claims_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="A capacity claim without a mentorship holding it is released only when older than this "
        "(an accept in flight takes its slot just before writing the mentorship)",
    )

    # --- fault injection (tests only) ------------------------------------------------------
    fault_exit_at: Literal["", "cohort_run_computed", "cohort_publish_midway", "accept_after_slot"] = Field(
        default="",
        description="TEST ONLY: the process exits (status 70) at this point: after a cohort run computed "
        "its result but before writing it; in a cohort publish after its first mentorship; in an accept "
        "after taking the mentor's slot, before writing the accept",
    )
