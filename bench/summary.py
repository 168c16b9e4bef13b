"""The figures every benchmark reports for the closing summary table of `python -m bench`.

Each benchmark calls `record(...)` for its headline figures: the figure, the baseline it is
compared with (measured in the same run), their ratio, the target it is held to (issue 14's
Targets) and whether the target was met. Targets are figures, never assertions: a missed target
does not fail the run (a benchmark that crashes does).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from mentorship_ops.support import print_table

# Issue 14, "Targets (benchmarks, not timed tests)".
TARGET_NOTIFICATION_RATIO = 0.5  # notification event -> inbox and email, vs its same-work baseline
TARGET_PROFILE_RATIO = 0.5  # profile PATCH -> event on the topic, 8 workers, vs its same-work baseline
TARGET_TIMER_SCALING = 1.5  # 2 replicas vs 1 (when each service has its own store)
TARGET_ACCEPT_P99_MS = 250.0  # accept -> email in the sink, one at a time
TARGET_BURST_P99_MS = 2000.0  # burst of 200 accepts, all emailed
TARGET_FIRST_SUGGESTION_MS = 100.0  # first suggestion after a restart, 15k mentors
TARGET_SUGGESTION_P99_MS = 50.0  # suggestion HTTP p99
TARGET_COHORT_10K_S, TARGET_COHORT_10K_QUALITY = 1.5, 99.99
TARGET_COHORT_50K_S, TARGET_COHORT_50K_MIB, TARGET_COHORT_50K_QUALITY = 10.0, 3072.0, 99.95
TARGET_COMPANY_IMPORT_S = 120.0  # 100k profiles imported
TARGET_COMPANY_PUBLISH_S = 120.0  # publish -> last of the cohort's notifications delivered


@dataclass
class Figure:
    bench: str
    figure: str
    value: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: bool | None = None  # None: no target, or not measured at the target's scale


FIGURES: list[Figure] = []
_current = {"bench": ""}


def begin(bench: str) -> None:
    """The benchmark whose figures follow."""
    _current["bench"] = bench


def record(
    figure: str,
    value: str,
    *,
    baseline: str = "-",
    ratio: float | None = None,
    target: str = "-",
    met: bool | None = None,
) -> None:
    FIGURES.append(
        Figure(
            bench=_current["bench"],
            figure=figure,
            value=value,
            baseline=baseline,
            ratio="-" if ratio is None else f"{ratio:.2f}",
            target=target,
            met=met,
        )
    )


def rate(n: int, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    per_second = n / seconds
    return f"{per_second:,.1f}/s" if per_second < 10 else f"{per_second:,.0f}/s"


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT MET")


def print_summary(crashed: list[str]) -> None:
    print_table(
        ("figure", "value", "baseline (same run)", "ratio", "target", "met"),
        [(f.figure, f.value, f.baseline, f.ratio, f.target, verdict(f.met)) for f in FIGURES],
        title="=== summary (one shared 2-core machine: figures are noisy, ratios less so) ===",
    )
    print(
        "ratio: the service against its baseline, 1.00 = as fast (rates: service/baseline; latencies: baseline/service)"
    )
    for name in crashed:
        print(f"CRASHED: {name} (see its traceback above); its figures are missing")
    path = os.environ.get("BENCH_SUMMARY_JSON")
    if path:
        with open(path, "w") as out:
            json.dump({"figures": [asdict(f) for f in FIGURES], "crashed": crashed}, out, indent=2)
