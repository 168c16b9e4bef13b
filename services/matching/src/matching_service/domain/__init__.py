"""Pure rules of matching (no I/O): program configuration and the mentorship lifecycle."""

from .mentorship import (
    AUTO_DECLINE_REASON,
    HOLDS_SLOT,
    OPEN_STATES,
    PARTNER_STATES,
    PENDING_STATES,
    AgreementDefaults,
    Change,
    LifecycleError,
    Mentorship,
    RequestExpired,
    RuleViolation,
    State,
    TransitionRefused,
    request_mentorship,
    settle_agreement,
    start_from_cohort,
)
from .programs import (
    Constraints,
    MatchingMode,
    ProgramSpec,
    ProgramStatus,
    Weights,
    allows_self_enrollment,
    planned_end,
    program_status,
)
from .text import free_text, single_line

__all__ = [
    "AUTO_DECLINE_REASON", "HOLDS_SLOT", "OPEN_STATES", "PARTNER_STATES", "PENDING_STATES", "AgreementDefaults",
    "Change", "Constraints", "LifecycleError", "MatchingMode", "Mentorship", "ProgramSpec", "ProgramStatus",
    "RequestExpired",
    "RuleViolation", "State", "TransitionRefused", "Weights",
    "allows_self_enrollment", "planned_end", "program_status", "request_mentorship",
    "settle_agreement", "start_from_cohort", "free_text", "single_line",
]
