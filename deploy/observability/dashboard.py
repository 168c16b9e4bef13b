#!/usr/bin/env python3
"""Writes the Grafana dashboard the chart ships (deploy/helm/mentorship/files/dashboard.json).

    python3 deploy/observability/dashboard.py          # rewrite the JSON
    python3 deploy/observability/dashboard.py --check  # exit 1 if the committed JSON is stale

One row per service (a repeated row over the `service` variable), one panel per metric in it.
PANELS is also the table in the README ("Deploy on Kubernetes").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "helm" / "mentorship" / "files" / "dashboard.json"
SEL = 'service="$service"'

# (title, unit, description, [(legend, PromQL)])
PANELS: list[tuple[str, str, str, list[tuple[str, str]]]] = [
    (
        "HTTP p99 latency by route",
        "s",
        "99th percentile of request duration, per route template",
        [
            (
                "{{route}}",
                (
                    "histogram_quantile(0.99, sum by (route, le) "
                    f"(rate(mentorship_http_request_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))"
                ),
            )
        ],
    ),
    (
        "HTTP requests by status",
        "reqps",
        "Requests per second, per status code",
        [
            (
                "{{status}}",
                (f"sum by (status) (rate(mentorship_http_request_duration_seconds_count{{{SEL}}}[$__rate_interval]))"),
            )
        ],
    ),
    (
        "Consumer lag by group and partition",
        "short",
        "Records not yet consumed (end offset minus committed)",
        [("{{group}} p{{partition}}", f"sum by (group, partition) (mentorship_consumer_lag{{{SEL}}})")],
    ),
    (
        "Oldest unpublished outbox entry",
        "s",
        "Age of the oldest event waiting for the relay, per collection",
        [("{{collection}}", f"max by (collection) (mentorship_outbox_oldest_unpublished_age_seconds{{{SEL}}})")],
    ),
    (
        "Timers due but not fired",
        "short",
        "Overdue timers and how late the oldest one is",
        [
            ("due timers", f"max(mentorship_timers_due{{{SEL}}})"),
            ("oldest lateness (s)", f"max(mentorship_timers_oldest_lateness_seconds{{{SEL}}})"),
        ],
    ),
    (
        "Dead letters written",
        "short",
        "Records sent to a dead-letter topic, per consumer and topic",
        [
            (
                "{{consumer}} {{topic}}",
                (
                    f"sum by (consumer, topic) (increase(mentorship_dead_letters_written_total"
                    f"{{{SEL}}}[$__rate_interval]))"
                ),
            )
        ],
    ),
    (
        "Deliveries failed",
        "short",
        "Failed delivery attempts (notification): retrying or given up",
        [
            (
                "{{channel}} {{outcome}}",
                (
                    f"sum by (channel, outcome) (increase(mentorship_deliveries_failed_total"
                    f"{{{SEL}}}[$__rate_interval]))"
                ),
            )
        ],
    ),
    (
        "Ready replicas",
        "short",
        "Replicas whose /ready answers (Kafka and MongoDB reachable)",
        [("ready", f"sum(service_ready{{{SEL}}})")],
    ),
]


def build() -> dict[str, Any]:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    panels: list[dict[str, Any]] = [
        {
            "type": "row",
            "title": "$service",
            "id": 1,
            "collapsed": False,
            "repeat": "service",
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
            "panels": [],
        }
    ]
    for index, (title, unit, description, targets) in enumerate(PANELS):
        panels.append(
            {
                "type": "timeseries",
                "id": index + 2,
                "title": title,
                "description": description,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": 6, "x": (index % 4) * 6, "y": 1 + (index // 4) * 8},
                "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
                "options": {
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
                "targets": [
                    {"refId": chr(ord("A") + i), "datasource": datasource, "expr": expr, "legendFormat": legend}
                    for i, (legend, expr) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": "mentorship-platform",
        "title": "Mentorship platform",
        "description": "Per service: HTTP latency and traffic, consumer lag, outbox, timers, dead letters, "
        "deliveries (alerts: deploy/helm/mentorship/files/alerts.rules.yaml)",
        "tags": ["mentorship"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "type": "query",
                    "name": "service",
                    "label": "Service",
                    "datasource": datasource,
                    "query": {"query": "label_values(service_ready, service)", "refId": "service"},
                    "definition": "label_values(service_ready, service)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "current": {"text": "All", "value": "$__all"},
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON differs")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python3 deploy/observability/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
