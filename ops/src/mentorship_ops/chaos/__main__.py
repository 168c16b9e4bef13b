"""`python -m mentorship_ops.chaos [--duration S] [--seed N]` (what `make chaos` runs)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .run import print_outcome, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load and faults (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the load and the fault moments")
    parser.add_argument("--state-dir", type=Path, default=None, help="keep infra data and service logs here")
    parser.add_argument(
        "--faults",
        default="replica,broker,store,poison,inflight",
        help="comma-separated subset of replica, broker, store, poison, inflight (the replica serving a "
        "cohort run, a publish or an accept killed mid-way)",
    )
    parser.add_argument("--workers", type=int, default=3, help="concurrent load workers")
    args = parser.parse_args(argv)
    outcome = asyncio.run(
        run_chaos(
            duration=args.duration,
            seed=args.seed,
            state_dir=args.state_dir,
            faults=tuple(x.strip() for x in args.faults.split(",") if x.strip()),
            workers=args.workers,
        )
    )
    print_outcome(outcome)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
