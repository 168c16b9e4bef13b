"""Use cases of the matching service, one group per capability. Each state change is one
conditional single-document write carrying its events (see `adapters.store`)."""

from .claims import ClaimsReconciler
from .cohorts import CohortUseCases
from .erasure import ErasureUseCases
from .introductions import IntroductionUseCases
from .lifecycle import LifecycleUseCases, MentorshipView
from .profile_cache import ProfileCache
from .programs import ProgramQuery, ProgramUseCases
from .reviews import ReviewUseCases
from .revisions import RevisionUseCases
from .shared import EXPIRY_TIMER
from .suggestions import SuggestionUseCases

__all__ = [
    "EXPIRY_TIMER",
    "ClaimsReconciler",
    "CohortUseCases",
    "ErasureUseCases",
    "IntroductionUseCases",
    "LifecycleUseCases",
    "MentorshipView",
    "ProfileCache",
    "ProgramQuery",
    "ProgramUseCases",
    "ReviewUseCases",
    "RevisionUseCases",
    "SuggestionUseCases",
]
