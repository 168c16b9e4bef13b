"""The chaos run (`make chaos`): two replicas of every service on a Kafka and a store of its own,
a realistic load through the HTTP APIs, and meanwhile SIGKILLed replicas, a killed broker and
store, and planted poison records; then the invariants (nothing lost, nothing twice) and a table."""

from .run import Outcome, print_outcome, run_chaos

__all__ = ["Outcome", "print_outcome", "run_chaos"]
