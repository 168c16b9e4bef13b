"""Run every benchmark module bench/bench_*.py (or those named: python -m bench profile matching).

Each module has `async def main() -> None` or `def main() -> None` and prints its own table.
KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI point at the infrastructure (`make bench` starts it).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    if not names:
        print("no benchmark matched")
        return 1
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        result = module.main()
        if inspect.iscoroutine(result):
            asyncio.run(result)
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
