"""Run every benchmark module bench/bench_*.py (or those named: python -m bench profile matching),
then print one summary table (each figure, its baseline, the ratio, the target, met or not).

Each module has `async def main() -> None` or `def main() -> None`, prints its own tables and
records its headline figures in `bench.summary`. A missed target never fails the run; a benchmark
that crashes does (exit 1, after the others ran and the summary was printed).

`python -m bench company [--scale 0.05]` runs the company-scale scenario instead (bench/company.py;
not part of the default run).

KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI point at the infrastructure (`make bench` starts it).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import signal
import sys
import time
import traceback
from pathlib import Path

from . import summary


def main(argv: list[str]) -> int:
    # SIGTERM (a `kill`, a CI timeout) ends a run as Ctrl-C does: the service processes, sinks and
    # topics a benchmark started are stopped in its `finally` blocks instead of being left running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if argv and argv[0] == "company":
        from .company import main as company

        return company(argv[1:])
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    if not names:
        print("no benchmark matched")
        return 1
    crashed: list[str] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        summary.begin(name.removeprefix("bench_"))
        # A service app run in-process may set up logging verbosely: keep the SMTP sink's chatter out.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            result = module.main()
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception:
            traceback.print_exc()
            crashed.append(name)
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    summary.print_summary(crashed)
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
